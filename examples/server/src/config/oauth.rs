//! OAuth: the authorization servers named in the RFC 9728 protected resource metadata, and
//! RFC 7662 token introspection for opaque tokens.

use mcp_auth::ConfigError;
use mcp_auth::authenticators::introspection::{IntrospectionAuthenticator, IntrospectionBuilder};
use mcp_auth::env::EnvReader;
use mcp_auth::oauth::ProtectedResource;
use mcp_auth::oauth::ReqwestFetcher;
use mcp_auth::scope::ScopePolicy;

use super::{Guards, list};
use crate::policy::BASIC_SCOPES;

/// The issuers named in the protected resource metadata (`MCP_AUTHORIZATION_SERVERS`, default
/// `MCP_OIDC_ISSUER`).
pub(super) fn load_authorization_servers(env: &mut EnvReader) -> Vec<String> {
    env.raw("MCP_AUTHORIZATION_SERVERS")
        .map(|v| list(&v))
        .or_else(|| {
            env.raw("MCP_OIDC_ISSUER")
                .map(|v| vec![v.trim().to_owned()])
        })
        .unwrap_or_default()
}

/// The RFC 9728 metadata, when authorization servers are configured.
pub(super) fn protected_resource(
    public_url: String,
    authorization_servers: &[String],
    policy: &ScopePolicy,
    guards: &Guards,
) -> Result<Option<ProtectedResource>, ConfigError> {
    if authorization_servers.is_empty() {
        return Ok(None);
    }
    let mut b = ProtectedResource::builder(public_url)
        .scopes_supported(policy.scopes())
        .basic_scopes(BASIC_SCOPES)
        .resource_name("mcp-auth example data server");
    for issuer in authorization_servers {
        b = b.authorization_server(issuer);
    }
    if guards.forwarded_host {
        b = b.trust_forwarded_headers(guards.trusted_proxies.clone());
    }
    Ok(Some(b.build()?))
}

/// Introspection settings; `None` unless a client id is set.
pub(super) fn load_introspection(
    env: &mut EnvReader,
    audiences: &[String],
    authorization_servers: &[String],
    fetcher: &ReqwestFetcher,
) -> Option<IntrospectionBuilder> {
    let url = env
        .raw("MCP_INTROSPECTION_URL")
        .map(|v| v.trim().to_owned());
    let id = env
        .raw("MCP_INTROSPECTION_CLIENT_ID")
        .map(|v| v.trim().to_owned());
    // `MCP_INTROSPECTION_CLIENT_SECRET` or the file named by `…_FILE`, trimmed, in a
    // zeroizing `Secret`.
    let secret = env.secret("MCP_INTROSPECTION_CLIENT_SECRET");
    let (id, secret) = match (id, secret, &url) {
        (None, None, None) => return None,
        (Some(id), Some(secret), _) => (id, secret),
        _ => {
            env.problem(
                "MCP_INTROSPECTION_CLIENT_ID",
                "introspection needs MCP_INTROSPECTION_CLIENT_ID and MCP_INTROSPECTION_CLIENT_SECRET",
            );
            return None;
        }
    };
    // Client-credentials tokens have no `sub` at oidc-provider: their client is the subject
    // (its principal still differs from a user's, as it carries the client id).
    let mut b = IntrospectionAuthenticator::builder()
        .client_credentials(id, secret)
        .client_id_as_subject()
        .fetcher(fetcher.clone());
    match (url, authorization_servers.first()) {
        (Some(url), _) => b = b.endpoint(url),
        (None, Some(issuer)) => b = b.issuer(issuer),
        (None, None) => {
            env.problem(
                "MCP_INTROSPECTION_URL",
                "set it, or MCP_AUTHORIZATION_SERVERS to find it from metadata",
            );
            return None;
        }
    }
    for issuer in authorization_servers {
        b = b.accept_issuer(issuer);
    }
    for a in audiences {
        b = b.audience(a);
    }
    Some(b)
}
