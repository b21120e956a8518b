//! Opaque access tokens checked by OAuth 2.0 token introspection (RFC 7662).
//!
//! [`IntrospectionAuthenticator`] sends each bearer token to the authorization server's
//! introspection endpoint, authenticated as a confidential client (`client_secret_basic` or
//! `client_secret_post`), and accepts it only when the answer says `"active": true`, the token
//! is unexpired (`exp`, `nbf`) and its audience (`aud`) names this resource (RFC 8707; the
//! MCP spec requires audience binding). `exp` and `nbf` are read as for JWTs (non-negative
//! seconds up to 2^53), and so is `aud` (a string or an array of strings; any other type is
//! refused as malformed). `sub`, `scope`, `client_id`, `exp`, `aud` and `iss`
//! become the [`AuthContext`].
//!
//! - The endpoint is configured, or found in the authorization server's metadata
//!   (`introspection_endpoint`, OpenID configuration then RFC 8414).
//! - An unreachable, slow (timeout, default 5 s) or failing authorization server is a 503
//!   with `Retry-After`, never a 401: the token may well be valid. So is an authorization
//!   server that refuses our client credentials (401/403). A 400 answer to the introspection
//!   request is about the token: it is refused as inactive (401 `invalid_token`).
//! - A failed discovery of the endpoint is not retried for [`DEFAULT_DISCOVERY_COOLDOWN`]
//!   (requests get 503 meanwhile), so a down authorization server is not asked for its
//!   metadata on every request.
//! - An optional cache of active results (off by default: a revoked token then stays usable
//!   until its entry expires) is bounded in entries and lifetime, never outlives `exp`, and
//!   is keyed by the SHA-256 of the token. When full, expired entries make room first, then
//!   the oldest (as in the negative cache).
//! - A short negative cache (on by default: [`DEFAULT_NEGATIVE_CACHE_TTL`], at most
//!   [`DEFAULT_NEGATIVE_CACHE_ENTRIES`] tokens, keyed by SHA-256) answers a refused token again
//!   without asking the authorization server, so replaying garbage does not spend this
//!   server's quota there.
//! - `sub` is required: a token without one is refused unless
//!   [`client_id_as_subject`](IntrospectionBuilder::client_id_as_subject) lets the
//!   `client_id` stand in (client-credentials tokens).
//! - The HTTP client is an [`HttpFetcher`](crate::oauth::HttpFetcher): pass the same one to
//!   the JWT builder to share one connection pool with the JWKS cache.
//!
//! # Example
//!
//! ```no_run
//! use mcp_auth::authenticators::introspection::{ClientAuth, IntrospectionAuthenticator};
//! use mcp_auth::AuthLayer;
//!
//! # fn main() -> Result<(), mcp_auth::ConfigError> {
//! let auth = IntrospectionAuthenticator::builder()
//!     .issuer("https://auth.example.com")          // endpoint from its metadata
//!     .client_credentials("mcp-server", "client-secret")
//!     .client_auth(ClientAuth::Basic)
//!     .audience("https://mcp.example.com/mcp")
//!     .cache(10_000, std::time::Duration::from_secs(30))
//!     .build()?;
//! let layer = AuthLayer::new(auth);
//! # let _ = layer; Ok(()) }
//! ```

mod builder;
mod cache;
mod endpoint;
mod judge;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::request::Parts;

pub use self::builder::IntrospectionBuilder;
use self::cache::AnswerCache;
use self::endpoint::Endpoint;
use crate::auth_layer::{Authenticator, TokenVerifier};
use crate::authenticators::binding::{check_bearer_use, check_certificate};
use crate::authenticators::header::bearer_token;
use crate::context::AuthContext;
use crate::error::AuthError;
use crate::oauth::DynFetcher;
use crate::rejection::Scheme;
use crate::secret::Secret;

/// Default lifetime of a negative-cache entry (a refused token answered again from memory).
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(30);
/// Default size of the negative cache.
pub const DEFAULT_NEGATIVE_CACHE_ENTRIES: usize = 10_000;
/// Default time before a failed endpoint discovery is tried again.
pub const DEFAULT_DISCOVERY_COOLDOWN: Duration = Duration::from_secs(10);
/// Shortest introspection timeout accepted.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);

/// How this server authenticates to the introspection endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic (`client_secret_basic`, the default).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body (`client_secret_post`).
    Post,
}

struct Inner {
    endpoint: Endpoint,
    issuer: Option<String>,
    client_id: String,
    client_secret: Secret,
    settings: Settings,
    cache: Option<AnswerCache<AuthContext>>,
    negative: Option<AnswerCache<AuthError>>,
    fetcher: Arc<dyn DynFetcher>,
}

/// The plain settings, kept as configured.
struct Settings {
    client_auth: ClientAuth,
    /// Canonical forms.
    audiences: Vec<String>,
    /// Accepted `iss` values (any when empty).
    issuers: Vec<String>,
    timeout: Duration,
    leeway: Duration,
    max_body_bytes: usize,
    client_id_as_subject: bool,
}

impl Default for Settings {
    /// `client_secret_basic`, 5 s timeout, 30 s leeway, 64 KiB answer limit.
    fn default() -> Self {
        Self {
            client_auth: ClientAuth::Basic,
            audiences: Vec::new(),
            issuers: Vec::new(),
            timeout: Duration::from_secs(5),
            leeway: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
            client_id_as_subject: false,
        }
    }
}

/// [`AuthLayer`](crate::AuthLayer) with an [`IntrospectionAuthenticator`].
pub type IntrospectionLayer<R = crate::DefaultRejection> =
    crate::AuthLayer<IntrospectionAuthenticator, R>;

/// Authenticates opaque bearer tokens by RFC 7662 introspection. Cheap to clone.
#[derive(Clone)]
pub struct IntrospectionAuthenticator {
    inner: Arc<Inner>,
}

impl fmt::Debug for IntrospectionAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionAuthenticator")
            .field("endpoint", &self.inner.endpoint.known())
            .field("issuer", &self.inner.issuer)
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &"<redacted>")
            .field("audiences", &self.inner.settings.audiences)
            .field(
                "cache",
                &self.inner.cache.as_ref().map(AnswerCache::settings),
            )
            .field(
                "negative_cache",
                &self.inner.negative.as_ref().map(AnswerCache::settings),
            )
            .finish_non_exhaustive()
    }
}

fn unavailable(why: String) -> AuthError {
    AuthError::unavailable(why).with_retry_after(Duration::from_secs(5))
}

/// What a failed introspection request means. RFC 7662 §2.3 answers an unknown or malformed
/// token with `active: false`, but some servers answer 400 instead (oidc-provider does for a
/// JWT-shaped token it cannot read): that is about the token, so it is refused (401). 401 and
/// 403 mean our client credentials are wrong, anything else an outage: 503 either way, since
/// the token may well be valid.
fn answer_error(e: crate::oauth::FetchError) -> AuthError {
    match e.http_status() {
        Some(400) => {
            tracing::warn!(
                target: crate::telemetry::REJECTION_TARGET,
                "the authorization server answered 400 to an introspection request; the token is treated as inactive"
            );
            judge::invalid("introspection_400")
        }
        Some(status @ (401 | 403)) => {
            tracing::warn!(
                target: crate::telemetry::REJECTION_TARGET,
                status,
                "the authorization server refused this server's client credentials for introspection"
            );
            unavailable(format!(
                "introspection failed: the authorization server refused our client credentials (status {status})"
            ))
        }
        _ => unavailable(format!("introspection failed: {e}")),
    }
}

impl IntrospectionAuthenticator {
    /// Starts a configuration (defaults: `client_secret_basic`, 5 s timeout, 30 s leeway,
    /// no cache, 64 KiB answer limit).
    pub fn builder() -> IntrospectionBuilder {
        IntrospectionBuilder::new()
    }

    /// Introspects `token` (no cache): the caller's context, or why not.
    ///
    /// # Errors
    ///
    /// 401 `invalid_token` for an inactive, expired, not-yet-valid or other-audience token;
    /// 503 when the authorization server cannot answer.
    pub async fn introspect(&self, token: &str) -> Result<AuthContext, AuthError> {
        let inner = &self.inner;
        let call = async {
            let endpoint = self.endpoint().await?;
            let secret = inner.client_secret.expose();
            let mut form: Vec<(&str, &str)> =
                vec![("token", token), ("token_type_hint", "access_token")];
            let basic = match inner.settings.client_auth {
                ClientAuth::Basic => Some((inner.client_id.as_str(), secret)),
                ClientAuth::Post => {
                    form.push(("client_id", &inner.client_id));
                    form.push(("client_secret", secret));
                    None
                }
            };
            inner
                .fetcher
                .post_form_boxed(&endpoint, &form, basic, inner.settings.max_body_bytes)
                .await
                .map_err(answer_error)
        };
        let fetched = tokio::time::timeout(inner.settings.timeout, call)
            .await
            .map_err(|_| unavailable("introspection timed out".into()))??;
        let answer: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&fetched.body)
                .map_err(|_| unavailable("introspection answer is not a JSON object".into()))?;
        self.judge(answer, SystemTime::now())
    }
}

/// Reads `Authorization: Bearer`, verifies the token, and refuses a DPoP-bound token (sent
/// without its proof) and a certificate-bound one without its certificate.
impl Authenticator for IntrospectionAuthenticator {
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        let token = bearer_token(parts)?;
        let ctx = self.judged(token).await?;
        check_bearer_use(&ctx, &parts.extensions)?;
        Ok(ctx)
    }

    fn schemes(&self) -> Vec<Scheme> {
        vec![Scheme::bearer()]
    }
}

/// Verifies a token from any scheme (the DPoP authenticator's inner step): everything but
/// the DPoP key binding, which the caller checks against the proof.
impl TokenVerifier for IntrospectionAuthenticator {
    async fn verify_token(&self, token: &str, parts: &Parts) -> Result<AuthContext, AuthError> {
        let ctx = self.judged(token).await?;
        check_certificate(&ctx, &parts.extensions)?;
        Ok(ctx)
    }
}

impl IntrospectionAuthenticator {
    /// The token's context from the caches or the authorization server.
    async fn judged(&self, token: &str) -> Result<AuthContext, AuthError> {
        let inner = &self.inner;
        if inner.cache.is_none() && inner.negative.is_none() {
            return self.introspect(token).await;
        }
        let key = crate::secret::digest(token.as_bytes());
        let now = Instant::now();
        if let Some(err) = inner.negative.as_ref().and_then(|c| c.get(&key, now)) {
            return Err(err);
        }
        if let Some(ctx) = inner.cache.as_ref().and_then(|c| c.get(&key, now)) {
            return Ok(ctx);
        }
        match self.introspect(token).await {
            Ok(ctx) => {
                if let Some(cache) = &inner.cache {
                    cache.put(key, &ctx, ctx.expires_at(), now);
                }
                Ok(ctx)
            }
            Err(err) => {
                // Refusals that stay true are remembered; a not-yet-valid token may become
                // valid, and failures (503) say nothing about the token.
                if let Some(negative) = &inner.negative
                    && err.is_rejection()
                    && err.detail()
                        != Some(crate::authenticators::claims::ClaimError::NotYetValid.detail())
                {
                    negative.put(key, &err, None, now);
                }
                Err(err)
            }
        }
    }
}

#[cfg(test)]
mod tests;
