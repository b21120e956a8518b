//! Opaque access tokens checked by OAuth 2.0 token introspection (RFC 7662).
//!
//! [`IntrospectionAuthenticator`] sends each bearer token to the authorization server's
//! introspection endpoint, authenticated as a confidential client (`client_secret_basic` or
//! `client_secret_post`), and accepts it only when the answer says `"active": true`, the token
//! is unexpired (`exp`, `nbf`) and its audience (`aud`) names this resource (RFC 8707; the
//! MCP spec requires audience binding). `sub`, `scope`, `client_id`, `exp`, `aud` and `iss`
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
//!   is keyed by the SHA-256 of the token.
//! - A short negative cache (on by default: [`DEFAULT_NEGATIVE_CACHE_TTL`], at most
//!   [`DEFAULT_NEGATIVE_CACHE_ENTRIES`] tokens, keyed by SHA-256) answers a refused token again
//!   without asking the authorization server, so replaying garbage does not spend this
//!   server's quota there.
//! - `sub` is required: a token without one is refused unless
//!   [`client_id_as_subject`](IntrospectionBuilder::client_id_as_subject) lets the
//!   `client_id` stand in (client-credentials tokens).
//! - The HTTP client is an [`HttpFetcher`]: pass the same one to the JWT builder to share one
//!   connection pool with the JWKS cache.
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

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Default lifetime of a negative-cache entry (a refused token answered again from memory).
pub const DEFAULT_NEGATIVE_CACHE_TTL: Duration = Duration::from_secs(30);
/// Default size of the negative cache.
pub const DEFAULT_NEGATIVE_CACHE_ENTRIES: usize = 10_000;
/// Default time before a failed endpoint discovery is tried again.
pub const DEFAULT_DISCOVERY_COOLDOWN: Duration = Duration::from_secs(10);
/// Shortest introspection timeout accepted.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);

/// `now + d`, saturating far in the future instead of overflowing `Instant`.
fn instant_after(now: Instant, d: Duration) -> Instant {
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    now.checked_add(d)
        .or_else(|| now.checked_add(FAR))
        .unwrap_or(now)
}

use http::request::Parts;
use sha2::{Digest, Sha256};

use crate::auth_layer::Authenticator;
use crate::authenticators::header::bearer_token;
use crate::context::{AuthContext, AuthMethod};
use crate::error::{AuthError, ConfigError};
use crate::oauth::canonical_resource;
use crate::oauth::{DynFetcher, HttpFetcher, check_url, default_fetcher, discover_metadata};
use crate::rejection::Scheme;
use crate::secret::Secret;

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

/// Builds an [`IntrospectionAuthenticator`].
#[must_use]
pub struct IntrospectionBuilder {
    endpoint: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<Secret>,
    client_auth: ClientAuth,
    audiences: Vec<String>,
    issuers: Vec<String>,
    timeout: Duration,
    leeway: Duration,
    max_body_bytes: usize,
    cache: Option<(usize, Duration)>,
    negative_cache: Option<(usize, Duration)>,
    discovery_cooldown: Duration,
    client_id_as_subject: bool,
    fetcher: Option<Arc<dyn DynFetcher>>,
}

impl fmt::Debug for IntrospectionBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionBuilder")
            .field("endpoint", &self.endpoint)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_auth", &self.client_auth)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl IntrospectionBuilder {
    /// The introspection endpoint URL (https, or http to a loopback host).
    pub fn endpoint(mut self, url: impl Into<String>) -> Self {
        self.endpoint = Some(url.into());
        self
    }

    /// The authorization server's issuer: the endpoint is read from its metadata (on first
    /// use) unless [`endpoint`](Self::endpoint) is set. Also accepted as `iss`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.issuers.push(issuer.clone());
        self.issuer = Some(issuer);
        self
    }

    /// This server's client credentials at the authorization server.
    pub fn client_credentials(mut self, id: impl Into<String>, secret: impl Into<Secret>) -> Self {
        self.client_id = Some(id.into());
        self.client_secret = Some(secret.into());
        self
    }

    /// `client_secret_basic` (default) or `client_secret_post`.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.client_auth = auth;
        self
    }

    /// An accepted audience: this server's resource URI (compared canonically: scheme and
    /// host case-insensitive, trailing slash tolerated). At least one is required.
    pub fn audience(mut self, aud: impl AsRef<str>) -> Self {
        self.audiences.push(canonical_resource(aud.as_ref()));
        self
    }

    /// An accepted `iss` in introspection answers (when the answer carries one).
    pub fn accept_issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuers.push(iss.into());
        self
    }

    /// Timeout of one introspection call, discovery included (default 5 s, at least
    /// [`MIN_TIMEOUT`]).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Clock skew tolerated on `exp` and `nbf` (default 30 s, at most 5 min).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway.min(Duration::from_secs(300));
        self
    }

    /// Caches active answers: at most `max_entries`, each for at most `ttl` and never past
    /// the token's `exp`. Off by default (a revoked token stays usable until its entry
    /// expires).
    pub fn cache(mut self, max_entries: usize, ttl: Duration) -> Self {
        self.cache = (max_entries > 0 && !ttl.is_zero()).then_some((max_entries, ttl));
        self
    }

    /// Remembers refused tokens (inactive, expired, for another audience, or answered with
    /// 400): at most `max_entries`, each for `ttl`, keyed by the token's SHA-256, so the same
    /// bad token is not sent to the authorization server again meanwhile. On by default
    /// ([`DEFAULT_NEGATIVE_CACHE_ENTRIES`], [`DEFAULT_NEGATIVE_CACHE_TTL`]); `max_entries` 0
    /// or a zero `ttl` turns it off. A token activated at the authorization server within
    /// `ttl` of being refused stays refused until its entry expires.
    pub fn negative_cache(mut self, max_entries: usize, ttl: Duration) -> Self {
        self.negative_cache = (max_entries > 0 && !ttl.is_zero()).then_some((max_entries, ttl));
        self
    }

    /// How long a failed endpoint discovery is not retried (default
    /// [`DEFAULT_DISCOVERY_COOLDOWN`]); requests get 503 with `Retry-After` meanwhile.
    pub fn discovery_cooldown(mut self, cooldown: Duration) -> Self {
        self.discovery_cooldown = cooldown;
        self
    }

    /// Lets `client_id` stand in for a missing `sub` (client-credentials tokens, whose
    /// subject is the client). Off by default: a token without `sub` is refused, because a
    /// client whose id equals some user's `sub` would otherwise get that user's
    /// [`subject`](AuthContext::subject) (its [`principal`](AuthContext::principal) still
    /// differs, as it includes the `client_id`). Turn it on when client ids and user subjects
    /// cannot collide at your authorization server, or when your tools key on `principal()`.
    pub fn client_id_as_subject(mut self) -> Self {
        self.client_id_as_subject = true;
        self
    }

    /// The HTTP client (default: [`ReqwestFetcher`](crate::oauth::ReqwestFetcher) with feature
    /// `reqwest`). Pass a clone of the one given to the JWT builder to share it.
    pub fn fetcher(mut self, fetcher: impl HttpFetcher) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// Every problem at once: no endpoint or issuer, a URL that is not https (or loopback
    /// http), no client credentials, no audience, a timeout under [`MIN_TIMEOUT`], no HTTP
    /// client.
    pub fn build(self) -> Result<IntrospectionAuthenticator, ConfigError> {
        let mut problems: Vec<ConfigError> = Vec::new();
        match (&self.endpoint, &self.issuer) {
            (None, None) => problems.push(ConfigError::new(
                "introspection endpoint",
                "set an endpoint URL or an issuer to discover it from",
            )),
            (endpoint, issuer) => {
                for (name, url) in [("introspection endpoint", endpoint), ("issuer", issuer)] {
                    if let Some(url) = url
                        && let Err(e) = check_url(name, url)
                    {
                        problems.push(e);
                    }
                }
            }
        }
        if self.client_id.as_deref().is_none_or(str::is_empty) {
            problems.push(ConfigError::new(
                "introspection client",
                "client credentials are required (RFC 7662 §2.1)",
            ));
        }
        if self.audiences.is_empty() {
            problems.push(ConfigError::new(
                "audience",
                "at least one audience (this server's resource URI) is required",
            ));
        }
        if self.timeout < MIN_TIMEOUT {
            problems.push(ConfigError::new(
                "introspection timeout",
                "must be at least 100 ms",
            ));
        }
        let fetcher = match self.fetcher {
            Some(f) => Some(f),
            None => match default_fetcher("http client", "IntrospectionBuilder::fetcher") {
                Ok(f) => Some(f),
                Err(e) => {
                    problems.push(e);
                    None
                }
            },
        };
        let mut iter = problems.into_iter();
        if let Some(mut first) = iter.next() {
            for p in iter {
                first.merge(p);
            }
            return Err(first);
        }
        let (Some(fetcher), Some(client_id), Some(client_secret)) =
            (fetcher, self.client_id, self.client_secret)
        else {
            return Err(ConfigError::new(
                "introspection",
                "incomplete configuration",
            ));
        };
        Ok(IntrospectionAuthenticator {
            inner: Arc::new(Inner {
                endpoint: Endpoint {
                    configured: self.endpoint,
                    found: std::sync::RwLock::new(None),
                    failed_at: Mutex::new(None),
                    discovering: tokio::sync::Mutex::new(()),
                    cooldown: self.discovery_cooldown,
                },
                issuer: self.issuer,
                client_id,
                client_secret,
                client_auth: self.client_auth,
                audiences: self.audiences,
                issuers: self.issuers,
                timeout: self.timeout,
                leeway: self.leeway,
                max_body_bytes: self.max_body_bytes,
                cache: self.cache.map(|(max, ttl)| Cache {
                    max,
                    ttl,
                    entries: Mutex::new(HashMap::new()),
                }),
                negative: self.negative_cache.map(|(max, ttl)| Cache {
                    max,
                    ttl,
                    entries: Mutex::new(HashMap::new()),
                }),
                client_id_as_subject: self.client_id_as_subject,
                fetcher,
            }),
        })
    }
}

/// A bounded map from token digests to answers (active contexts, or refusals).
struct Cache<V> {
    max: usize,
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Instant, V)>>,
}

impl<V: Clone> Cache<V> {
    fn get(&self, key: &[u8; 32], now: Instant) -> Option<V> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(until, _)| *until > now)
            .map(|(_, v)| v.clone())
    }

    /// Stores `value` for the cache's ttl, or less when `expires` comes sooner (nothing is
    /// stored for an already expired answer).
    fn put(&self, key: [u8; 32], value: &V, expires: Option<SystemTime>, now: Instant) {
        let mut ttl = self.ttl;
        if let Some(exp) = expires {
            match exp.duration_since(SystemTime::now()) {
                Ok(left) => ttl = ttl.min(left),
                Err(_) => return,
            }
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.max {
            entries.retain(|_, (until, _)| *until > now);
        }
        if entries.len() >= self.max {
            // Still full of live entries: drop one arbitrary entry (bounded memory wins).
            if let Some(k) = entries.keys().next().copied() {
                entries.remove(&k);
            }
        }
        entries.insert(key, (instant_after(now, ttl), value.clone()));
    }
}

/// The introspection endpoint: configured, or discovered (once; a failure is retried only
/// after the cooldown).
struct Endpoint {
    configured: Option<String>,
    found: std::sync::RwLock<Option<String>>,
    failed_at: Mutex<Option<Instant>>,
    discovering: tokio::sync::Mutex<()>,
    cooldown: Duration,
}

impl Endpoint {
    fn known(&self) -> Option<String> {
        if let Some(e) = &self.configured {
            return Some(e.clone());
        }
        self.found.read().ok().and_then(|f| f.clone())
    }

    /// Time left before discovery may be tried again.
    fn cooling(&self, now: Instant) -> Option<Duration> {
        let failed = (*self.failed_at.lock().ok()?)?;
        let since = now.saturating_duration_since(failed);
        (since < self.cooldown).then(|| self.cooldown.saturating_sub(since))
    }
}

struct Inner {
    endpoint: Endpoint,
    issuer: Option<String>,
    client_id: String,
    client_secret: Secret,
    client_auth: ClientAuth,
    audiences: Vec<String>,
    issuers: Vec<String>,
    timeout: Duration,
    leeway: Duration,
    max_body_bytes: usize,
    cache: Option<Cache<AuthContext>>,
    negative: Option<Cache<AuthError>>,
    client_id_as_subject: bool,
    fetcher: Arc<dyn DynFetcher>,
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
            .field("audiences", &self.inner.audiences)
            .field("cache", &self.inner.cache.as_ref().map(|c| (c.max, c.ttl)))
            .field(
                "negative_cache",
                &self.inner.negative.as_ref().map(|c| (c.max, c.ttl)),
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
            AuthError::invalid_token("invalid access token").with_detail("introspection_400")
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

/// A NumericDate from an introspection answer: a non-negative number of seconds up to 2^53
/// (as for JWTs: larger JSON numbers are not exact), so adding the leeway never overflows.
fn seconds(v: &serde_json::Value) -> Option<SystemTime> {
    const MAX: u64 = 1 << 53;
    let secs = v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0 && *f <= MAX as f64)
            .map(|f| f as u64)
    })?;
    if secs > MAX {
        return None;
    }
    UNIX_EPOCH.checked_add(Duration::from_secs(secs))
}

impl IntrospectionAuthenticator {
    /// Starts a configuration (defaults: `client_secret_basic`, 5 s timeout, 30 s leeway,
    /// no cache, 64 KiB answer limit).
    pub fn builder() -> IntrospectionBuilder {
        IntrospectionBuilder {
            endpoint: None,
            issuer: None,
            client_id: None,
            client_secret: None,
            client_auth: ClientAuth::Basic,
            audiences: Vec::new(),
            issuers: Vec::new(),
            timeout: Duration::from_secs(5),
            leeway: Duration::from_secs(30),
            max_body_bytes: 64 * 1024,
            cache: None,
            negative_cache: Some((DEFAULT_NEGATIVE_CACHE_ENTRIES, DEFAULT_NEGATIVE_CACHE_TTL)),
            discovery_cooldown: DEFAULT_DISCOVERY_COOLDOWN,
            client_id_as_subject: false,
            fetcher: None,
        }
    }

    async fn endpoint(&self) -> Result<String, AuthError> {
        let inner = &self.inner;
        let ep = &inner.endpoint;
        if let Some(e) = ep.known() {
            return Ok(e);
        }
        let cooling = |left: Duration| {
            AuthError::unavailable("introspection endpoint discovery failed recently")
                .with_retry_after(left.max(Duration::from_secs(1)))
        };
        if let Some(left) = ep.cooling(Instant::now()) {
            return Err(cooling(left));
        }
        // Single-flight: one discovery at a time; the others find its result.
        let _guard = ep.discovering.lock().await;
        if let Some(e) = ep.known() {
            return Ok(e);
        }
        if let Some(left) = ep.cooling(Instant::now()) {
            return Err(cooling(left));
        }
        let found = async {
            let issuer = inner.issuer.as_deref().unwrap_or_default();
            let (url, meta) =
                discover_metadata(inner.fetcher.as_ref(), issuer, inner.max_body_bytes).await?;
            let endpoint = meta
                .get("introspection_endpoint")
                .and_then(|v| v.as_str())
                .ok_or_else(|| format!("{url}: no `introspection_endpoint`"))?;
            check_url("introspection_endpoint", endpoint).map_err(|e| e.to_string())?;
            Ok::<_, String>(endpoint.to_owned())
        }
        .await;
        match found {
            Ok(e) => {
                if let Ok(mut f) = ep.found.write() {
                    *f = Some(e.clone());
                }
                Ok(e)
            }
            Err(e) => {
                if let Ok(mut at) = ep.failed_at.lock() {
                    *at = Some(Instant::now());
                }
                tracing::warn!(target: crate::telemetry::REJECTION_TARGET, error = %e, "introspection endpoint discovery failed");
                Err(unavailable(e).with_retry_after(ep.cooldown.max(Duration::from_secs(1))))
            }
        }
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
            let basic = match inner.client_auth {
                ClientAuth::Basic => Some((inner.client_id.as_str(), secret)),
                ClientAuth::Post => {
                    form.push(("client_id", &inner.client_id));
                    form.push(("client_secret", secret));
                    None
                }
            };
            inner
                .fetcher
                .post_form_boxed(&endpoint, &form, basic, inner.max_body_bytes)
                .await
                .map_err(answer_error)
        };
        let fetched = tokio::time::timeout(inner.timeout, call)
            .await
            .map_err(|_| unavailable("introspection timed out".into()))??;
        let answer: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&fetched.body)
                .map_err(|_| unavailable("introspection answer is not a JSON object".into()))?;
        self.judge(answer, SystemTime::now())
    }

    fn judge(
        &self,
        answer: serde_json::Map<String, serde_json::Value>,
        now: SystemTime,
    ) -> Result<AuthContext, AuthError> {
        let inner = &self.inner;
        let invalid = |detail: &'static str| {
            AuthError::invalid_token("invalid access token").with_detail(detail)
        };
        if answer.get("active") != Some(&serde_json::Value::Bool(true)) {
            return Err(invalid("inactive"));
        }
        if answer
            .get("token_type")
            .and_then(|v| v.as_str())
            .is_some_and(|t| t.eq_ignore_ascii_case("refresh_token"))
        {
            return Err(invalid("refresh_token"));
        }
        let exp = match answer.get("exp") {
            Some(v) => Some(seconds(v).ok_or_else(|| invalid("bad_exp"))?),
            None => None,
        };
        // `exp` may be anything up to i64::MAX seconds: never add past the end of time.
        if exp.is_some_and(|exp| exp.checked_add(inner.leeway).is_some_and(|t| t <= now)) {
            return Err(AuthError::expired("the access token has expired").with_detail("expired"));
        }
        if let Some(v) = answer.get("nbf") {
            let nbf = seconds(v).ok_or_else(|| invalid("bad_nbf"))?;
            if now.checked_add(inner.leeway).is_none_or(|t| nbf > t) {
                return Err(invalid("not_yet_valid"));
            }
        }
        let auds: Vec<String> = match answer.get("aud") {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        };
        let bound = auds
            .iter()
            .any(|a| inner.audiences.contains(&canonical_resource(a)));
        if !bound {
            return Err(invalid("audience_mismatch"));
        }
        let iss = answer.get("iss").and_then(|v| v.as_str());
        if let Some(iss) = iss
            && !inner.issuers.is_empty()
            && !inner.issuers.iter().any(|i| i == iss)
        {
            return Err(invalid("issuer_mismatch"));
        }
        let client_id = answer.get("client_id").and_then(|v| v.as_str());
        // Client-credentials tokens may have no `sub`: the client is the subject then, but
        // only when configured (client ids and user subjects may collide).
        let subject = answer
            .get("sub")
            .and_then(|v| v.as_str())
            .or(client_id.filter(|_| inner.client_id_as_subject))
            .ok_or_else(|| invalid("no_subject"))?;
        let mut b = AuthContext::builder(subject, AuthMethod::Introspection)
            .scopes(
                answer
                    .get("scope")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .split_ascii_whitespace(),
            )
            .audience(auds);
        if let Some(c) = client_id {
            b = b.client_id(c);
        }
        if let Some(i) = iss {
            b = b.issuer(i);
        }
        if let Some(exp) = exp {
            b = b.expires_at(exp);
        }
        Ok(b.claims(answer).build())
    }
}

impl Authenticator for IntrospectionAuthenticator {
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        let token = bearer_token(parts)?;
        let inner = &self.inner;
        if inner.cache.is_none() && inner.negative.is_none() {
            return self.introspect(token).await;
        }
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
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
                    && err.detail() != Some("not_yet_valid")
                {
                    negative.put(key, &err, None, now);
                }
                Err(err)
            }
        }
    }

    fn schemes(&self) -> Vec<Scheme> {
        vec![Scheme::bearer()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::{FetchError, Fetched};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Answers introspection with a fixed JSON document and counts calls; `None` = down.
    struct Fake {
        answer: Option<serde_json::Value>,
        calls: Arc<AtomicUsize>,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl HttpFetcher for Fake {
        async fn get(&self, _url: &str, _max: usize) -> Result<Fetched, FetchError> {
            Err(FetchError("no GET here".into()))
        }
        async fn post_form(
            &self,
            url: &str,
            form: &[(&str, &str)],
            basic: Option<(&str, &str)>,
            _max: usize,
        ) -> Result<Fetched, FetchError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let mut seen = format!("{url} basic={basic:?}");
            for (k, v) in form {
                if *k != "token" {
                    seen.push_str(&format!(" {k}={v}"));
                }
            }
            self.seen.lock().unwrap().push(seen);
            match &self.answer {
                Some(a) => Ok(Fetched {
                    body: a.to_string().into(),
                    max_age: None,
                }),
                None => Err(FetchError("connection refused".into())),
            }
        }
    }

    const AUD: &str = "https://mcp.example.com/mcp";

    fn auth(
        answer: Option<serde_json::Value>,
        cache: bool,
        client_auth: ClientAuth,
    ) -> (
        IntrospectionAuthenticator,
        Arc<AtomicUsize>,
        Arc<Mutex<Vec<String>>>,
    ) {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut b = IntrospectionAuthenticator::builder()
            .endpoint("https://as.example.com/introspect")
            .client_credentials("rs", "rs-secret")
            .client_auth(client_auth)
            .audience("HTTPS://MCP.example.com/mcp/")
            .fetcher(Fake {
                answer,
                calls: calls.clone(),
                seen: seen.clone(),
            });
        if cache {
            b = b.cache(100, Duration::from_secs(60));
        }
        (b.build().unwrap(), calls, seen)
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn parts() -> Parts {
        http::Request::get("/mcp")
            .header("authorization", "Bearer opaque-token-123")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[tokio::test]
    async fn an_active_token_for_this_audience_maps_into_the_context() {
        let answer = serde_json::json!({"active": true, "sub": "alice", "scope": "data:read data:write",
            "client_id": "app", "exp": now() + 300, "aud": [AUD, "https://other"], "iss": "https://as.example.com"});
        let (a, _, seen) = auth(Some(answer), false, ClientAuth::Basic);
        let ctx = a.authenticate(&parts()).await.unwrap();
        assert_eq!(ctx.subject(), "alice");
        assert_eq!(ctx.method(), &AuthMethod::Introspection);
        assert!(ctx.has_scope("data:write"));
        assert_eq!(ctx.client_id(), Some("app"));
        assert_eq!(ctx.issuer(), Some("https://as.example.com"));
        assert!(ctx.expires_at().is_some());
        assert_eq!(
            seen.lock().unwrap()[0],
            "https://as.example.com/introspect basic=Some((\"rs\", \"rs-secret\")) token_type_hint=access_token"
        );
    }

    #[tokio::test]
    async fn post_client_auth_sends_credentials_in_the_form() {
        let answer = serde_json::json!({"active": true, "sub": "svc", "aud": AUD});
        let (a, _, seen) = auth(Some(answer), false, ClientAuth::Post);
        let ctx = a.authenticate(&parts()).await.unwrap();
        assert_eq!(ctx.subject(), "svc");
        assert!(seen.lock().unwrap()[0].ends_with(
            "basic=None token_type_hint=access_token client_id=rs client_secret=rs-secret"
        ));
    }

    #[tokio::test]
    async fn inactive_expired_and_foreign_tokens_are_401() {
        let cases = [
            (serde_json::json!({"active": false}), "inactive"),
            (
                serde_json::json!({"active": "true", "sub": "a", "aud": AUD}),
                "inactive",
            ),
            (
                serde_json::json!({"active": true, "sub": "a", "aud": "https://other.example.com/mcp"}),
                "audience_mismatch",
            ),
            (
                serde_json::json!({"active": true, "sub": "a"}),
                "audience_mismatch",
            ),
            (
                serde_json::json!({"active": true, "sub": "a", "aud": AUD, "exp": now() - 3600}),
                "expired",
            ),
            (
                serde_json::json!({"active": true, "sub": "a", "aud": AUD, "nbf": now() + 3600}),
                "not_yet_valid",
            ),
            (
                serde_json::json!({"active": true, "sub": "a", "aud": AUD, "token_type": "refresh_token"}),
                "refresh_token",
            ),
            (
                serde_json::json!({"active": true, "aud": AUD}),
                "no_subject",
            ),
        ];
        for (answer, detail) in cases {
            let (a, _, _) = auth(Some(answer.clone()), false, ClientAuth::Basic);
            let err = a.authenticate(&parts()).await.unwrap_err();
            assert_eq!(err.detail(), Some(detail), "{answer}");
            assert!(err.is_rejection(), "{answer}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_503_not_401() {
        let (a, _, _) = auth(None, false, ClientAuth::Basic);
        let err = a.authenticate(&parts()).await.unwrap_err();
        assert_eq!(err.kind(), crate::error::AuthErrorKind::Unavailable);
        assert!(err.retry_after().is_some());
    }

    #[tokio::test]
    async fn the_cache_is_off_by_default_and_never_outlives_exp() {
        let answer =
            serde_json::json!({"active": true, "sub": "a", "aud": AUD, "exp": now() + 300});
        let (a, calls, _) = auth(Some(answer.clone()), false, ClientAuth::Basic);
        a.authenticate(&parts()).await.unwrap();
        a.authenticate(&parts()).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 2, "no cache by default");

        let (a, calls, _) = auth(Some(answer), true, ClientAuth::Basic);
        a.authenticate(&parts()).await.unwrap();
        a.authenticate(&parts()).await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "cached");

        // An answer expiring within the leeway is accepted but not cached past exp.
        let soon = serde_json::json!({"active": true, "sub": "a", "aud": AUD, "exp": now() - 1});
        let (a, calls, _) = auth(Some(soon), true, ClientAuth::Basic);
        a.authenticate(&parts()).await.unwrap();
        a.authenticate(&parts()).await.unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "an expired token is never served from the cache"
        );
    }

    #[test]
    fn configuration_problems_are_reported_together() {
        let err = IntrospectionAuthenticator::builder()
            .endpoint("http://as.example.com/introspect")
            .fetcher(Fake {
                answer: None,
                calls: Arc::default(),
                seen: Arc::default(),
            })
            .build()
            .unwrap_err();
        let settings: Vec<&str> = err.problems().iter().map(|p| p.setting()).collect();
        assert_eq!(
            settings,
            ["introspection endpoint", "introspection client", "audience"]
        );
    }

    fn builder_with(fetcher: impl HttpFetcher) -> IntrospectionBuilder {
        IntrospectionAuthenticator::builder()
            .endpoint("https://as.example.com/introspect")
            .client_credentials("rs", "rs-secret")
            .audience(AUD)
            .fetcher(fetcher)
    }

    fn fake(answer: serde_json::Value, calls: &Arc<AtomicUsize>) -> Fake {
        Fake {
            answer: Some(answer),
            calls: calls.clone(),
            seen: Arc::default(),
        }
    }

    /// Review L2: an `exp` near i64::MAX from the authorization server used to overflow
    /// `SystemTime + Duration` and panic the request task.
    #[tokio::test]
    async fn an_exp_near_i64_max_is_refused_without_a_panic() {
        for exp in [
            serde_json::json!(i64::MAX - 1),
            serde_json::json!(u64::MAX),
            serde_json::json!(9.2e18),
            serde_json::json!((1u64 << 53) + 1),
        ] {
            let answer = serde_json::json!({"active": true, "sub": "a", "aud": AUD, "exp": exp});
            let (a, _, _) = auth(Some(answer), true, ClientAuth::Basic);
            let err = a.authenticate(&parts()).await.unwrap_err();
            assert_eq!(err.detail(), Some("bad_exp"), "{exp}");
            assert!(err.is_rejection());
        }
        // The largest accepted `exp` works, cached or not.
        let answer = serde_json::json!({"active": true, "sub": "a", "aud": AUD, "exp": 1u64 << 53});
        let (a, _, _) = auth(Some(answer), true, ClientAuth::Basic);
        assert!(a.authenticate(&parts()).await.is_ok());
        assert!(a.authenticate(&parts()).await.is_ok());
    }

    /// Review L2: `.cache(n, Duration::MAX)` used to overflow `Instant` for an answer without
    /// `exp`.
    #[tokio::test]
    async fn a_cache_ttl_of_duration_max_does_not_overflow() {
        let calls = Arc::new(AtomicUsize::new(0));
        let a = builder_with(fake(
            serde_json::json!({"active": true, "sub": "a", "aud": AUD}),
            &calls,
        ))
        .cache(10, Duration::MAX)
        .negative_cache(10, Duration::MAX)
        .build()
        .unwrap();
        for _ in 0..3 {
            assert_eq!(a.authenticate(&parts()).await.unwrap().subject(), "a");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// Review L12: a refused token is answered from memory for a short while instead of being
    /// sent to the authorization server on every request.
    #[tokio::test]
    async fn refused_tokens_are_remembered_for_a_short_while() {
        let calls = Arc::new(AtomicUsize::new(0));
        let a = builder_with(fake(serde_json::json!({"active": false}), &calls))
            .negative_cache(100, Duration::from_millis(300))
            .build()
            .unwrap();
        for _ in 0..5 {
            let err = a.authenticate(&parts()).await.unwrap_err();
            assert_eq!(err.detail(), Some("inactive"));
            assert_eq!(err.kind(), crate::error::AuthErrorKind::InvalidToken);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "asked once");
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(a.authenticate(&parts()).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2, "asked again after the ttl");

        // On by default; off with a zero size.
        let calls = Arc::new(AtomicUsize::new(0));
        let a = builder_with(fake(serde_json::json!({"active": false}), &calls))
            .build()
            .unwrap();
        assert!(a.authenticate(&parts()).await.is_err());
        assert!(a.authenticate(&parts()).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1, "on by default");
        let calls = Arc::new(AtomicUsize::new(0));
        let a = builder_with(fake(serde_json::json!({"active": false}), &calls))
            .negative_cache(0, DEFAULT_NEGATIVE_CACHE_TTL)
            .build()
            .unwrap();
        assert!(a.authenticate(&parts()).await.is_err());
        assert!(a.authenticate(&parts()).await.is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 2, "off");
    }

    /// Outages are never remembered as refusals.
    #[tokio::test]
    async fn failures_are_not_negatively_cached() {
        let (a, calls, _) = auth(None, false, ClientAuth::Basic);
        for _ in 0..2 {
            let err = a.authenticate(&parts()).await.unwrap_err();
            assert_eq!(err.kind(), crate::error::AuthErrorKind::Unavailable);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    /// Answers every introspection request with an HTTP status error.
    struct Status(u16);

    impl HttpFetcher for Status {
        async fn get(&self, _url: &str, _max: usize) -> Result<Fetched, FetchError> {
            Err(FetchError("no GET here".into()))
        }
        async fn post_form(
            &self,
            _url: &str,
            _form: &[(&str, &str)],
            _basic: Option<(&str, &str)>,
            _max: usize,
        ) -> Result<Fetched, FetchError> {
            Err(FetchError::status(self.0))
        }
    }

    /// Issue 10: an authorization server that answers 400 to an introspection request is
    /// talking about the token (401); 401/403 (our credentials) and 5xx stay 503.
    #[tokio::test]
    async fn a_400_answer_is_an_inactive_token_and_credential_or_server_errors_are_503() {
        let a = builder_with(Status(400)).build().unwrap();
        let err = a.authenticate(&parts()).await.unwrap_err();
        assert_eq!(err.kind(), crate::error::AuthErrorKind::InvalidToken);
        assert_eq!(err.detail(), Some("introspection_400"));
        for status in [401, 403, 404, 429, 500, 502, 503] {
            let a = builder_with(Status(status)).build().unwrap();
            let err = a.authenticate(&parts()).await.unwrap_err();
            assert_eq!(
                err.kind(),
                crate::error::AuthErrorKind::Unavailable,
                "{status}"
            );
            assert!(err.retry_after().is_some(), "{status}");
        }
    }

    #[test]
    fn fetch_error_statuses_round_trip() {
        assert_eq!(FetchError::status(400).http_status(), Some(400));
        assert_eq!(FetchError("status 4000".into()).http_status(), None);
        assert_eq!(FetchError("status abc".into()).http_status(), None);
        assert_eq!(FetchError("connection refused".into()).http_status(), None);
    }

    /// The same through the real HTTP client against a server on loopback answering 400.
    #[cfg(feature = "reqwest")]
    #[tokio::test]
    async fn a_400_over_http_on_loopback_is_a_401_not_a_503() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let counter = served.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = r#"{"error":"invalid_request"}"#;
                let res = format!(
                    "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(res.as_bytes()).await;
            }
        });
        let a = IntrospectionAuthenticator::builder()
            .endpoint(format!("http://{addr}/introspect"))
            .client_credentials("rs", "rs-secret")
            .audience(AUD)
            .build()
            .unwrap();
        let err = a.authenticate(&parts()).await.unwrap_err();
        assert_eq!(err.kind(), crate::error::AuthErrorKind::InvalidToken);
        assert_eq!(err.detail(), Some("introspection_400"));
        // Remembered: the same token is not sent again.
        assert!(a.authenticate(&parts()).await.is_err());
        assert_eq!(served.load(Ordering::SeqCst), 1);
    }

    /// Counts GETs (discovery) and fails them all.
    struct DownMetadata(Arc<AtomicUsize>);

    impl HttpFetcher for DownMetadata {
        async fn get(&self, _url: &str, _max: usize) -> Result<Fetched, FetchError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Err(FetchError("connection refused".into()))
        }
    }

    /// Review L12: a failed discovery is not retried on every request.
    #[tokio::test]
    async fn a_failed_discovery_is_not_retried_during_the_cooldown() {
        let gets = Arc::new(AtomicUsize::new(0));
        let a = IntrospectionAuthenticator::builder()
            .issuer("https://as.example.com")
            .client_credentials("rs", "rs-secret")
            .audience(AUD)
            .discovery_cooldown(Duration::from_millis(300))
            .fetcher(DownMetadata(gets.clone()))
            .build()
            .unwrap();
        let err = a.authenticate(&parts()).await.unwrap_err();
        assert_eq!(err.kind(), crate::error::AuthErrorKind::Unavailable);
        let first = gets.load(Ordering::SeqCst);
        assert!(first >= 1);
        for _ in 0..10 {
            let err = a.authenticate(&parts()).await.unwrap_err();
            assert_eq!(err.kind(), crate::error::AuthErrorKind::Unavailable);
            assert!(err.retry_after().is_some());
        }
        assert_eq!(
            gets.load(Ordering::SeqCst),
            first,
            "no discovery during the cooldown"
        );
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(a.authenticate(&parts()).await.is_err());
        assert_eq!(
            gets.load(Ordering::SeqCst),
            2 * first,
            "tried again after it"
        );
    }

    /// Review L12: `client_id` stands in for a missing `sub` only when configured.
    #[tokio::test]
    async fn client_id_stands_in_for_sub_only_when_configured() {
        let answer = serde_json::json!({"active": true, "client_id": "svc", "aud": AUD});
        let calls = Arc::new(AtomicUsize::new(0));
        let a = builder_with(fake(answer.clone(), &calls)).build().unwrap();
        assert_eq!(
            a.authenticate(&parts()).await.unwrap_err().detail(),
            Some("no_subject")
        );
        let a = builder_with(fake(answer, &calls))
            .client_id_as_subject()
            .build()
            .unwrap();
        let ctx = a.authenticate(&parts()).await.unwrap();
        assert_eq!(ctx.subject(), "svc");
        assert_eq!(ctx.client_id(), Some("svc"));
    }

    #[test]
    fn a_timeout_under_the_minimum_is_a_config_error() {
        let calls = Arc::new(AtomicUsize::new(0));
        let err = builder_with(fake(serde_json::json!({}), &calls))
            .timeout(Duration::ZERO)
            .build()
            .unwrap_err();
        assert_eq!(err.problems()[0].setting(), "introspection timeout");
        assert!(
            builder_with(fake(serde_json::json!({}), &calls))
                .timeout(Duration::MAX)
                .build()
                .is_ok()
        );
    }
}
