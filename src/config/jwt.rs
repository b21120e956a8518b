//! JWT access tokens: this server's own HS256 secret, a JWKS URL, or an OIDC issuer.

use crate::ConfigError;
use crate::authenticators::jwt::{Algorithm, JwtAuthenticator, JwtBuilder, JwtKey};
use crate::env::EnvReader;
use crate::oauth::ReqwestFetcher;

use super::list;

/// JWT settings; `None` when no JWT variable is set.
pub(super) fn load_jwt(
    env: &mut EnvReader,
    audiences: &[String],
    fetcher: &ReqwestFetcher,
) -> Option<JwtBuilder> {
    // `MCP_JWT_SECRET`, or the file named by `MCP_JWT_SECRET_FILE`.
    let secret = env.optional_secret("MCP_JWT_SECRET", |name, v, _| {
        JwtKey::hmac(v.trim(), Algorithm::HS256).map_err(|e| {
            let message = e.problems().first().map_or_else(
                || "is not a usable HS256 secret".to_owned(),
                |p| p.message().to_owned(),
            );
            ConfigError::new(name, message)
        })
    });
    let jwks_url = env.raw("MCP_JWKS_URL").map(|v| v.trim().to_owned());
    let oidc_issuer = env.raw("MCP_OIDC_ISSUER").map(|v| v.trim().to_owned());
    let issuers = env
        .raw("MCP_JWT_ISSUER")
        .map(|v| list(&v))
        .unwrap_or_default();
    if secret.is_none() && jwks_url.is_none() && oidc_issuer.is_none() {
        return None;
    }
    check_key_sources(env, jwks_url.is_some(), oidc_issuer.is_some(), &issuers);
    let remote = jwks_url.is_some() || oidc_issuer.is_some();
    let mut b = JwtAuthenticator::builder()
        .verified_token_cache(10_000)
        .fetcher(fetcher.clone());
    if let Some(key) = secret {
        // MCP_JWT_SECRET tokens are this server's own: beside an identity provider they must
        // carry `iss` = this server's resource URI (the first audience, MCP_PUBLIC_URL by
        // default), so whoever holds the secret cannot mint tokens in the provider's name.
        // Alone, they carry MCP_JWT_ISSUER, or any `iss` when that is not set.
        b = match (remote, audiences.first()) {
            (true, Some(own)) => b.key(key.issuer(own.clone())),
            (false, _) if issuers.is_empty() => b.key(key).allow_any_issuer(),
            _ => b.key(key),
        };
    }
    if let Some(url) = jwks_url {
        b = b.jwks_url(url);
    }
    if let Some(issuer) = oidc_issuer {
        b = b.oidc_issuer(issuer);
    }
    for i in issuers {
        b = b.issuer(i);
    }
    for a in audiences {
        b = b.audience(a);
    }
    Some(b)
}

/// One remote key source at most, and each bound to an issuer.
fn check_key_sources(env: &mut EnvReader, jwks_url: bool, oidc_issuer: bool, issuers: &[String]) {
    if jwks_url && oidc_issuer {
        env.problem(
            "MCP_JWKS_URL",
            "set either MCP_JWKS_URL or MCP_OIDC_ISSUER, not both",
        );
    }
    // Every key source is bound to an issuer: the keys at MCP_JWKS_URL to MCP_JWT_ISSUER
    // (a JWKS shared by many tenants would otherwise vouch for all of them).
    if jwks_url && !oidc_issuer && issuers.is_empty() {
        env.problem(
            "MCP_JWKS_URL",
            "needs MCP_JWT_ISSUER (the `iss` of the tokens its keys sign), or set \
             MCP_OIDC_ISSUER instead to discover the keys and the issuer",
        );
    }
}
