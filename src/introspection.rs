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
//!   with `Retry-After`, never a 401: the token may well be valid.
//! - An optional cache of active results (off by default: a revoked token then stays usable
//!   until its entry expires) is bounded in entries and lifetime, never outlives `exp`, and
//!   is keyed by the SHA-256 of the token; inactive answers are never cached.
//! - The HTTP client is an [`HttpFetcher`]: pass the same one to the JWT builder to share one
//!   connection pool with the JWKS cache.
//!
//! # Example
//!
//! ```no_run
//! use mcp_auth::introspection::{ClientAuth, IntrospectionAuthenticator};
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

use http::request::Parts;
use sha2::{Digest, Sha256};

use crate::authenticator::Authenticator;
use crate::context::{AuthContext, AuthMethod};
use crate::error::{AuthError, ConfigError};
use crate::header::bearer_token;
use crate::http::{DynFetcher, HttpFetcher, check_url, discover_metadata};
use crate::resource::canonical_resource;
use crate::response::Scheme;
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

    /// Timeout of one introspection call, discovery included (default 5 s).
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

    /// The HTTP client (default: [`ReqwestFetcher`](crate::http::ReqwestFetcher) with feature
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
    /// http), no client credentials, no audience, no HTTP client.
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
        let fetcher = match self.fetcher {
            Some(f) => Some(f),
            None => match default_fetcher() {
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
                endpoint: tokio::sync::OnceCell::new_with(self.endpoint),
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
                fetcher,
            }),
        })
    }
}

#[cfg(feature = "reqwest")]
fn default_fetcher() -> Result<Arc<dyn DynFetcher>, ConfigError> {
    Ok(Arc::new(crate::http::ReqwestFetcher::new()?))
}

#[cfg(not(feature = "reqwest"))]
fn default_fetcher() -> Result<Arc<dyn DynFetcher>, ConfigError> {
    Err(ConfigError::new(
        "http client",
        "no HTTP client: enable the `reqwest` feature or call `fetcher(...)`",
    ))
}

struct Cache {
    max: usize,
    ttl: Duration,
    entries: Mutex<HashMap<[u8; 32], (Instant, AuthContext)>>,
}

impl Cache {
    fn get(&self, key: &[u8; 32], now: Instant) -> Option<AuthContext> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(key)
            .filter(|(until, _)| *until > now)
            .map(|(_, ctx)| ctx.clone())
    }

    fn put(&self, key: [u8; 32], ctx: &AuthContext, now: Instant) {
        let mut ttl = self.ttl;
        if let Some(exp) = ctx.expires_at() {
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
        entries.insert(key, (now + ttl, ctx.clone()));
    }
}

struct Inner {
    endpoint: tokio::sync::OnceCell<String>,
    issuer: Option<String>,
    client_id: String,
    client_secret: Secret,
    client_auth: ClientAuth,
    audiences: Vec<String>,
    issuers: Vec<String>,
    timeout: Duration,
    leeway: Duration,
    max_body_bytes: usize,
    cache: Option<Cache>,
    fetcher: Arc<dyn DynFetcher>,
}

/// Authenticates opaque bearer tokens by RFC 7662 introspection. Cheap to clone.
#[derive(Clone)]
pub struct IntrospectionAuthenticator {
    inner: Arc<Inner>,
}

impl fmt::Debug for IntrospectionAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionAuthenticator")
            .field("endpoint", &self.inner.endpoint.get())
            .field("issuer", &self.inner.issuer)
            .field("client_id", &self.inner.client_id)
            .field("client_secret", &"<redacted>")
            .field("audiences", &self.inner.audiences)
            .field("cache", &self.inner.cache.as_ref().map(|c| (c.max, c.ttl)))
            .finish_non_exhaustive()
    }
}

fn unavailable(why: String) -> AuthError {
    AuthError::unavailable(why).with_retry_after(Duration::from_secs(5))
}

fn seconds(v: &serde_json::Value) -> Option<SystemTime> {
    let secs = v.as_u64().or_else(|| {
        v.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f as u64)
    })?;
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
            fetcher: None,
        }
    }

    async fn endpoint(&self) -> Result<&str, AuthError> {
        let inner = &self.inner;
        inner
            .endpoint
            .get_or_try_init(|| async {
                let issuer = inner.issuer.as_deref().unwrap_or_default();
                let (url, meta) =
                    discover_metadata(inner.fetcher.as_ref(), issuer, inner.max_body_bytes)
                        .await?;
                let endpoint = meta
                    .get("introspection_endpoint")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| format!("{url}: no `introspection_endpoint`"))?;
                check_url("introspection_endpoint", endpoint).map_err(|e| e.to_string())?;
                Ok::<_, String>(endpoint.to_owned())
            })
            .await
            .map(String::as_str)
            .map_err(|e| {
                tracing::warn!(target: crate::service::REJECTION_TARGET, error = %e, "introspection endpoint discovery failed");
                unavailable(e)
            })
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
                .post_form_boxed(endpoint, &form, basic, inner.max_body_bytes)
                .await
                .map_err(|e| unavailable(format!("introspection failed: {e}")))
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
        if exp.is_some_and(|exp| exp + inner.leeway <= now) {
            return Err(AuthError::expired("the access token has expired").with_detail("expired"));
        }
        if let Some(v) = answer.get("nbf") {
            let nbf = seconds(v).ok_or_else(|| invalid("bad_nbf"))?;
            if nbf > now + inner.leeway {
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
        // Client-credentials tokens may have no `sub`: the client is the subject then.
        let subject = answer
            .get("sub")
            .and_then(|v| v.as_str())
            .or(client_id)
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
        let Some(cache) = &self.inner.cache else {
            return self.introspect(token).await;
        };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some(ctx) = cache.get(&key, now) {
            return Ok(ctx);
        }
        let ctx = self.introspect(token).await?;
        cache.put(key, &ctx, now);
        Ok(ctx)
    }

    fn schemes(&self) -> Vec<Scheme> {
        vec![Scheme::bearer()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{FetchError, Fetched};
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
        let answer = serde_json::json!({"active": true, "client_id": "svc", "aud": AUD});
        let (a, _, seen) = auth(Some(answer), false, ClientAuth::Post);
        let ctx = a.authenticate(&parts()).await.unwrap();
        assert_eq!(
            ctx.subject(),
            "svc",
            "client-credentials tokens: the client is the subject"
        );
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
}
