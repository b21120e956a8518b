//! OAuth: the authorization servers named in the RFC 9728 protected resource metadata, and
//! RFC 7662 token introspection for opaque tokens.

use crate::ConfigError;
use crate::authenticators::introspection::{IntrospectionAuthenticator, IntrospectionBuilder};
use crate::env::EnvReader;
use crate::oauth::ProtectedResource;
use crate::oauth::ReqwestFetcher;
use crate::scope::ScopePolicy;

use super::{Guards, list};

/// The issuers named in the protected resource metadata (`MCP_AUTHORIZATION_SERVERS`, default
/// `default`: every issuer of `MCP_OIDC_ISSUER` and `MCP_ISSUERS`).
pub(super) fn load_authorization_servers(env: &mut EnvReader, default: Vec<String>) -> Vec<String> {
    env.raw("MCP_AUTHORIZATION_SERVERS")
        .map(|v| list(&v))
        .unwrap_or(default)
}

/// What the RFC 9728 metadata says besides the authorization servers.
pub(super) struct Metadata {
    /// `MCP_PUBLIC_URL`.
    pub(super) public_url: String,
    /// `MCP_BASIC_SCOPES`: what a 401 asks for.
    pub(super) basic_scopes: Vec<String>,
    /// `MCP_RESOURCE_NAME`.
    pub(super) resource_name: Option<String>,
}

/// The RFC 9728 metadata, when authorization servers are configured.
pub(super) fn protected_resource(
    m: Metadata,
    authorization_servers: &[String],
    policy: &ScopePolicy,
    guards: &Guards,
    dpop: Option<(Vec<String>, bool)>,
) -> Result<Option<ProtectedResource>, ConfigError> {
    if authorization_servers.is_empty() {
        return Ok(None);
    }
    let mut b = ProtectedResource::builder(m.public_url)
        .scopes_supported(policy.scopes())
        .basic_scopes(m.basic_scopes);
    if let Some(name) = m.resource_name {
        b = b.resource_name(name);
    }
    for issuer in authorization_servers {
        b = b.authorization_server(issuer);
    }
    if let Some((algs, required)) = dpop {
        b = b.dpop(algs, required);
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
