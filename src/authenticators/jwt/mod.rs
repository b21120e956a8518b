//! [`JwtLayer`]: JWT access tokens, validated to RFC 7519 / RFC 8725 and the MCP
//! authorization spec (feature `jwt`, on by default through `aws-lc-rs`).
//!
//! Keys come from configuration ([`JwtKey`]: an HMAC secret or a PEM public key; a static
//! [`JwkSet`]) or from the network (a JWKS URL, or discovery from an issuer), through the
//! [cache](jwks) that never blocks requests whose keys are known. Every key is pinned to its
//! algorithms; the token's `alg` only selects among keys, `none` never verifies.
//!
//! Checks, in order: size (at most [`MAX_TOKEN_LEN`]), compact form and canonical base64url,
//! header (no `crit`, no nested `cty: JWT`, optional `typ: at+jwt`), signature, then claims:
//! `exp` required, `nbf`, `iat` not in the future (all with leeway, default 60 s, at most
//! 300 s), `iss` an exact string match with the issuers bound to the key that verified the
//! signature (every key source must have one unless `allow_any_issuer()`), `aud` (string or
//! array) naming one of
//! the configured audiences after canonicalisation, `sub` a string, required claims, and your
//! own check. Duplicate member names in the header or claims invalidate the token.
//!
//! # Example
//!
//! ```
//! use mcp_auth::authenticators::jwt::{Algorithm, JwtAuthenticator, JwtKey, JwtLayer, JwtMinter};
//! use mcp_auth::AuthContext;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let secret = "0123456789abcdef0123456789abcdef";
//! let auth = JwtAuthenticator::builder()
//!     .key(JwtKey::hmac(secret, Algorithm::HS256).unwrap())
//!     .issuer("https://tools.internal") // required (or `allow_any_issuer()`)
//!     .audience("https://mcp.example.com/mcp")
//!     .build()
//!     .unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(JwtLayer::new(auth))
//!     .service(service_fn(|req: http::Request<String>| async move {
//!         let ctx = req.extensions().get::<AuthContext>().unwrap();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(ctx.subject().to_owned()))
//!     }));
//!
//! let minter = JwtMinter::hmac(secret, Algorithm::HS256).unwrap().issuer("https://tools.internal");
//! let good = minter.clone().audience("https://mcp.example.com/mcp").mint("alice", ["data:read"]).unwrap();
//! let other = minter.audience("https://other.example.com/mcp").mint("alice", ["data:read"]).unwrap();
//! let call = |t: &str| {
//!     let req = http::Request::builder().header("authorization", format!("Bearer {t}")).body(String::new());
//!     svc.clone().oneshot(req.unwrap())
//! };
//! assert_eq!(call(&good).await.unwrap().status(), 200);
//! let res = call(&other).await.unwrap();
//! assert_eq!(res.status(), 401);
//! assert_eq!(res.headers()["www-authenticate"], "Bearer error=\"invalid_token\", error_description=\"invalid access token\"");
//! # }
//! ```

mod claims;
pub mod jwks;
mod keys;
mod mint;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::JwkSet;
use serde_json::{Map, Value};

use self::claims::{
    ClaimError, ClaimMapping, ClaimRules, Header, Issuers, check_and_map, parse_claims,
};
use self::jwks::{JwksCache, JwksPolicy, KeySource, Refreshed, Snapshot};
pub use self::keys::{JwtKey, MAX_KEYS_PER_SET, MAX_KID_LEN, MIN_HMAC_SECRET_LEN, MIN_RSA_BITS};
use self::keys::{KeySet, Origin, keys_from_jwk_set};
pub use self::mint::{DEFAULT_TTL, JwtMinter};
use crate::auth_layer::AuthLayer;
use crate::auth_layer::Authenticator;
use crate::authenticators::header::bearer_token;
use crate::context::AuthContext;
use crate::error::{AuthError, ConfigError};
use crate::oauth::{DynFetcher, HttpFetcher, check_url, default_fetcher};
use crate::secret::digest;

#[cfg(not(any(feature = "aws-lc-rs", feature = "rust-crypto")))]
compile_error!(
    "mcp-auth: the `jwt` feature needs a crypto backend: enable `aws-lc-rs` (the default) or `rust-crypto`"
);

/// Longest token accepted; longer ones are refused before any decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
/// Largest leeway accepted (RFC 7519: "no more than a few minutes").
pub const MAX_LEEWAY: Duration = Duration::from_secs(300);
/// Default leeway for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(60);

const INVALID: &str = "invalid access token";

/// [`AuthLayer`] with a [`JwtAuthenticator`].
pub type JwtLayer<R = crate::rejection::DefaultRejection> = AuthLayer<JwtAuthenticator, R>;

type ClaimsHook = dyn Fn(&Map<String, Value>) -> Result<(), String> + Send + Sync;

/// Checks once per process that jsonwebtoken has exactly one usable crypto backend, so a
/// misconfiguration is a startup error rather than a panic on the first request.
fn crypto_self_test() -> Result<(), ConfigError> {
    static RESULT: OnceLock<Result<(), String>> = OnceLock::new();
    RESULT
        .get_or_init(|| {
            let key = jsonwebtoken::EncodingKey::from_secret(&[7u8; 32]);
            let dkey = jsonwebtoken::DecodingKey::from_secret(&[7u8; 32]);
            std::panic::catch_unwind(|| {
                let sig = jsonwebtoken::crypto::sign(b"self-test", &key, Algorithm::HS256).map_err(|e| e.to_string())?;
                match jsonwebtoken::crypto::verify(&sig, b"self-test", &dkey, Algorithm::HS256) {
                    Ok(true) => Ok(()),
                    _ => Err("self-test signature did not verify".to_owned()),
                }
            })
            .unwrap_or_else(|_| {
                Err("jsonwebtoken has no single crypto backend (both or neither of its `aws_lc_rs` and \
                     `rust_crypto` features are enabled in this build); enable exactly one of mcp-auth's \
                     `aws-lc-rs` / `rust-crypto` features, or call \
                     `jsonwebtoken::crypto::CryptoProvider::install_default` before building the authenticator"
                    .to_owned())
            })
        })
        .clone()
        .map_err(|m| ConfigError::new("jwt crypto backend", m))
}

/// One verified token: its context, when it stops being served (`exp` + leeway), and the id
/// of the fetched key that verified it (`None` for a configured key).
struct Verified {
    ctx: AuthContext,
    until: u64,
    fetched_key: Option<[u8; 32]>,
}

/// A bounded cache of verified tokens, keyed by the token's SHA-256. Entries never outlive
/// the token's own `exp` (plus leeway), and an entry verified by a fetched key is served only
/// while that key is still in the current, usable JWKS (a key the provider removed stops
/// vouching for cached tokens at the next refresh).
struct VerifiedCache {
    map: RwLock<HashMap<[u8; 32], Verified>>,
    capacity: usize,
}

impl VerifiedCache {
    fn get(&self, key: &[u8; 32], now: u64, live: Option<&Snapshot>) -> Option<AuthContext> {
        let map = self.map.read().ok()?;
        let v = map.get(key)?;
        if now >= v.until {
            return None;
        }
        match &v.fetched_key {
            None => Some(v.ctx.clone()),
            Some(id) => live
                .filter(|s| s.keys.contains_id(id))
                .map(|_| v.ctx.clone()),
        }
    }

    fn insert(&self, key: [u8; 32], entry: Verified, now: u64) {
        let Ok(mut map) = self.map.write() else {
            return;
        };
        if map.len() >= self.capacity {
            map.retain(|_, v| now < v.until);
            if map.len() >= self.capacity {
                map.clear();
            }
        }
        map.insert(key, entry);
    }
}

struct Inner {
    static_keys: KeySet,
    remote: Option<Arc<JwksCache>>,
    /// The issuers whose tokens the fetched keys may verify.
    remote_issuers: Issuers,
    rules: ClaimRules,
    mapping: ClaimMapping,
    require_at_jwt: bool,
    hook: Option<Box<ClaimsHook>>,
    cache: Option<VerifiedCache>,
    defer_opaque: bool,
}

/// Verifies JWT bearer tokens. Cheap to clone. Build it with [`JwtAuthenticator::builder`].
#[derive(Clone)]
pub struct JwtAuthenticator {
    inner: Arc<Inner>,
}

impl fmt::Debug for JwtAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuthenticator")
            .field("static_keys", &self.inner.static_keys.len())
            .field("remote", &self.inner.remote)
            .field("remote_issuers", &self.inner.remote_issuers)
            .field("audiences", &self.inner.rules.audiences)
            .field("leeway", &self.inner.rules.leeway)
            .finish_non_exhaustive()
    }
}

/// One verification attempt with the keys at hand.
enum Step {
    Done(Result<AuthContext, AuthError>),
    /// No usable key for this token yet: fetch keys (the `kid` is unknown or none are loaded).
    NeedKeys,
}

fn invalid(detail: &'static str) -> AuthError {
    AuthError::invalid_token(INVALID).with_detail(detail)
}

impl JwtAuthenticator {
    /// Starts configuring an authenticator.
    pub fn builder() -> JwtBuilder {
        JwtBuilder::default()
    }

    /// Verifies a token with the keys available now (static keys and the current JWKS
    /// snapshot; no fetch). Returns 503-kind errors when remote keys are needed but absent.
    ///
    /// # Errors
    ///
    /// Why the token is refused.
    pub fn verify(&self, token: &str) -> Result<AuthContext, AuthError> {
        let snap = self.inner.remote.as_ref().map(|r| r.current());
        match self.step(token, snap.as_deref()) {
            Step::Done(r) => r,
            Step::NeedKeys => Err(self.no_keys_error(snap.as_deref(), None)),
        }
    }

    /// Verifies a token, fetching keys when its `kid` is unknown (rate-limited) or none are
    /// loaded yet.
    ///
    /// # Errors
    ///
    /// Why the token is refused; [`AuthErrorKind::Unavailable`](crate::AuthErrorKind) when
    /// no keys could be loaded.
    pub async fn verify_async(&self, token: &str) -> Result<AuthContext, AuthError> {
        let Some(remote) = &self.inner.remote else {
            return self.verify(token);
        };
        let snap = remote.current();
        if let Step::Done(r) = self.step(token, Some(&snap)) {
            return r;
        }
        let (snap, retry) = match remote.refresh(snap.generation).await {
            Refreshed::New(s) => (s, None),
            Refreshed::Unchanged(s, retry) => (s, Some(retry)),
        };
        match self.step(token, Some(&snap)) {
            Step::Done(r) => r,
            Step::NeedKeys => Err(self.no_keys_error(Some(&snap), retry)),
        }
    }

    fn no_keys_error(&self, snap: Option<&Snapshot>, retry: Option<Duration>) -> AuthError {
        match snap {
            Some(s) if !s.usable(std::time::Instant::now()) => {
                let retry = retry
                    .unwrap_or(Duration::from_secs(5))
                    .max(Duration::from_secs(1));
                AuthError::unavailable("no JWKS keys loaded").with_retry_after(retry)
            }
            _ => invalid("unknown_kid"),
        }
    }

    /// Starts fetching remote keys in the background (needs a Tokio runtime), so the first
    /// request does not wait. Startup never fails because the identity provider is down.
    pub fn prefetch(&self) {
        if let (Some(remote), Ok(handle)) =
            (&self.inner.remote, tokio::runtime::Handle::try_current())
        {
            let remote = remote.clone();
            handle.spawn(async move {
                let seen = remote.current().generation;
                let _ = remote.refresh(seen).await;
            });
        }
    }

    fn step(&self, token: &str, remote: Option<&Snapshot>) -> Step {
        let inner = &*self.inner;
        if token.len() > MAX_TOKEN_LEN {
            return Step::Done(Err(invalid("token_too_long")));
        }
        let now_time = SystemTime::now();
        let now = now_time
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let live = remote.filter(|s| s.usable(std::time::Instant::now()));
        let cache_key = inner.cache.as_ref().map(|_| digest(token.as_bytes()));
        if let (Some(cache), Some(key)) = (&inner.cache, &cache_key)
            && let Some(ctx) = cache.get(key, now, live)
        {
            return Step::Done(Ok(ctx));
        }

        // Compact serialization: exactly three segments.
        let mut segments = token.split('.');
        let (Some(h64), Some(p64), Some(sig), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Step::Done(Err(invalid("not_compact_jws")));
        };
        // Headers are small: decode on the stack, on the heap only when large.
        let mut stack = [0u8; 512];
        let heap;
        let header_json: &[u8] = match URL_SAFE_NO_PAD.decode_slice(h64, &mut stack) {
            Ok(n) => stack.get(..n).unwrap_or_default(),
            Err(base64::DecodeSliceError::OutputSliceTooSmall) => match URL_SAFE_NO_PAD.decode(h64)
            {
                Ok(v) => {
                    heap = v;
                    &heap
                }
                Err(_) => return Step::Done(Err(invalid("bad_header_encoding"))),
            },
            Err(_) => return Step::Done(Err(invalid("bad_header_encoding"))),
        };
        let Ok(header) = serde_json::from_slice::<Header<'_>>(header_json) else {
            return Step::Done(Err(invalid("bad_header")));
        };
        let Ok(alg) = header.alg.parse::<Algorithm>() else {
            return Step::Done(Err(invalid("unsupported_alg")));
        };
        if header.crit.is_some() {
            return Step::Done(Err(invalid("crit_not_understood")));
        }
        if header
            .cty
            .as_deref()
            .is_some_and(|c| c.eq_ignore_ascii_case("jwt"))
        {
            return Step::Done(Err(invalid("nested_jwt")));
        }
        if inner.require_at_jwt {
            let ok = header.typ.as_deref().is_some_and(|t| {
                t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
            });
            if !ok {
                return Step::Done(Err(invalid("typ_not_at_jwt")));
            }
        }
        let kid = header.kid.as_deref();
        if kid.is_some_and(|k| k.is_empty() || k.len() > MAX_KID_LEN) {
            return Step::Done(Err(invalid("bad_kid")));
        }

        // The signed part: both segments and the dot between them (all ASCII, in bounds).
        let Some(message) = token.as_bytes().get(..h64.len() + 1 + p64.len()) else {
            return Step::Done(Err(invalid("not_compact_jws")));
        };
        let mut candidates = inner
            .static_keys
            .candidates(kid, alg)
            .map(|k| (k, false))
            .chain(
                live.into_iter()
                    .flat_map(|s| s.keys.candidates(kid, alg))
                    .map(|k| (k, true)),
            )
            .peekable();
        if candidates.peek().is_none() {
            let static_has_kid = kid.is_some_and(|k| inner.static_keys.has_kid(k));
            return match (remote, live) {
                (Some(_), None) if !static_has_kid => Step::NeedKeys,
                (Some(_), Some(s))
                    if kid.is_some_and(|k| !s.keys.has_kid(k)) && !static_has_kid =>
                {
                    Step::NeedKeys
                }
                _ => Step::Done(Err(invalid("no_matching_key"))),
            };
        }
        // The key that verifies the signature decides which issuers the token may claim.
        let verified = candidates.find(|(k, _)| {
            matches!(
                jsonwebtoken::crypto::verify(sig, message, &k.key, alg),
                Ok(true)
            )
        });
        let Some((key, fetched)) = verified else {
            return Step::Done(Err(invalid("bad_signature")));
        };
        let (issuers, fetched_key) = if fetched {
            (&inner.remote_issuers, Some(key.id))
        } else {
            (&key.issuers, None)
        };

        let Ok(payload) = URL_SAFE_NO_PAD.decode(p64) else {
            return Step::Done(Err(invalid("bad_payload_encoding")));
        };
        let Some(claims) = parse_claims(&payload, &inner.mapping, &inner.rules.required) else {
            return Step::Done(Err(invalid("bad_claims")));
        };
        // Valid JSON is valid UTF-8; the text is kept for `AuthContext::claims`.
        let Ok(raw) = String::from_utf8(payload) else {
            return Step::Done(Err(invalid("bad_claims")));
        };
        if let Some(hook) = &inner.hook {
            let map: Map<String, Value> = serde_json::from_str(&raw).unwrap_or_default();
            if hook(&map).is_err() {
                return Step::Done(Err(invalid(ClaimError::Rejected.detail())));
            }
        }
        let checked = check_and_map(claims, raw, &inner.rules, issuers, &inner.mapping, now_time);
        let (ctx, exp) = match checked {
            Ok(v) => v,
            Err(e) => {
                let err = match e {
                    ClaimError::Expired => AuthError::expired("the access token expired"),
                    ClaimError::NotYetValid => {
                        AuthError::invalid_token("the access token is not yet valid")
                    }
                    _ => AuthError::invalid_token(INVALID),
                };
                return Step::Done(Err(err.with_detail(e.detail())));
            }
        };
        if let (Some(cache), Some(key)) = (&inner.cache, cache_key) {
            cache.insert(
                key,
                Verified {
                    ctx: ctx.clone(),
                    until: exp.saturating_add(inner.rules.leeway.as_secs()),
                    fetched_key,
                },
                now,
            );
        }
        Step::Done(Ok(ctx))
    }
}

impl JwtAuthenticator {
    /// The request's bearer token, or "no credentials" for an opaque token when those are
    /// deferred to the next authenticator.
    fn token<'a>(&self, parts: &'a Parts) -> Result<&'a str, AuthError> {
        let token = bearer_token(parts)?;
        if self.inner.defer_opaque && token.bytes().filter(|b| *b == b'.').count() != 2 {
            return Err(AuthError::missing_credentials());
        }
        Ok(token)
    }
}

impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        let token = self.token(parts)?;
        self.verify_async(token).await
    }

    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        let token = match self.token(parts) {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        let snap = self.inner.remote.as_ref().map(|r| r.current());
        match self.step(token, snap.as_deref()) {
            Step::Done(r) => Some(r),
            Step::NeedKeys => None,
        }
    }
}

/// Configures a [`JwtAuthenticator`]. Nothing here touches the network.
#[must_use]
pub struct JwtBuilder {
    keys: Vec<JwtKey>,
    jwk_sets: Vec<JwkSet>,
    remote: Option<(String, KeySource)>,
    fetcher: Option<Arc<dyn DynFetcher>>,
    policy: JwksPolicy,
    allow_symmetric_jwks: bool,
    issuers: Vec<String>,
    allow_any_issuer: bool,
    audiences: Vec<String>,
    leeway: Duration,
    require_at_jwt: bool,
    required: Vec<String>,
    hook: Option<Box<ClaimsHook>>,
    mapping: ClaimMapping,
    cache_capacity: Option<usize>,
    defer_opaque: bool,
}

impl Default for JwtBuilder {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            jwk_sets: Vec::new(),
            remote: None,
            fetcher: None,
            policy: JwksPolicy::default(),
            allow_symmetric_jwks: false,
            issuers: Vec::new(),
            allow_any_issuer: false,
            audiences: Vec::new(),
            leeway: DEFAULT_LEEWAY,
            require_at_jwt: false,
            required: Vec::new(),
            hook: None,
            mapping: ClaimMapping::default(),
            cache_capacity: None,
            defer_opaque: false,
        }
    }
}

impl fmt::Debug for JwtBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtBuilder")
            .field("keys", &self.keys)
            .field("jwk_sets", &self.jwk_sets.len())
            .field("remote", &self.remote.as_ref().map(|r| &r.1))
            .field("issuers", &self.issuers)
            .field("allow_any_issuer", &self.allow_any_issuer)
            .field("audiences", &self.audiences)
            .field("leeway", &self.leeway)
            .finish_non_exhaustive()
    }
}

impl JwtBuilder {
    /// Adds a configured key (HMAC secret or PEM public key).
    pub fn key(mut self, key: JwtKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds a static JWK set (trusted configuration: `oct` keys are allowed here).
    pub fn jwk_set(mut self, set: JwkSet) -> Self {
        self.jwk_sets.push(set);
        self
    }

    /// Fetches keys from this JWKS URL (https, or http to a loopback host).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        let url = url.into();
        self.remote = Some(("jwks url".into(), KeySource::Url(url)));
        self
    }

    /// Finds the JWKS by discovery from `issuer` (OpenID configuration, then OAuth
    /// authorization-server metadata, whose `issuer` must match exactly), and expects `iss` to
    /// be this issuer unless issuers are set explicitly.
    pub fn oidc_issuer(mut self, issuer: impl Into<String>) -> Self {
        let issuer = issuer.into();
        self.remote = Some(("oidc issuer".into(), KeySource::Issuer(issuer)));
        self
    }

    /// Uses your fetcher for JWKS and discovery documents.
    pub fn fetcher(mut self, fetcher: impl HttpFetcher) -> Self {
        self.fetcher = Some(Arc::new(fetcher));
        self
    }

    /// Changes the JWKS cache's timing and size limits.
    pub fn jwks_policy(mut self, policy: JwksPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Accepts symmetric (`oct`) keys from a fetched JWKS. Off by default: a published JWKS
    /// must never yield an HMAC secret.
    pub fn allow_symmetric_jwks(mut self) -> Self {
        self.allow_symmetric_jwks = true;
        self
    }

    /// Requires `iss` to equal this issuer (may be called several times: any one matches).
    ///
    /// Binds the JWKS URL's keys, and every configured key without its own
    /// [`JwtKey::issuer`], to these issuers. With [`oidc_issuer`](Self::oidc_issuer) the
    /// fetched keys default to the discovered issuer instead.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// Accepts tokens from any issuer (or none) for key sources without an issuer of their
    /// own. [`build`](Self::build) otherwise refuses a key source that is not bound to an
    /// issuer: the `iss` check is what tells one tenant's or provider's tokens from another's
    /// when they share keys (multi-tenant identity providers publish one key set for all).
    pub fn allow_any_issuer(mut self) -> Self {
        self.allow_any_issuer = true;
        self
    }

    /// Accepts tokens whose `aud` names this audience (canonicalised: lowercase scheme and
    /// host, no trailing slash). At least one is required: MCP servers must refuse tokens
    /// issued for someone else.
    pub fn audience(mut self, audience: impl AsRef<str>) -> Self {
        self.audiences
            .push(crate::oauth::canonical_resource(audience.as_ref()));
        self
    }

    /// Clock leeway for `exp`, `nbf` and `iat` (default 60 s, at most 300 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Requires the header `typ` to be `at+jwt` (RFC 9068).
    pub fn require_at_jwt(mut self) -> Self {
        self.require_at_jwt = true;
        self
    }

    /// Requires these claims to be present.
    pub fn require_claims<I: IntoIterator<Item = S>, S: Into<String>>(mut self, claims: I) -> Self {
        self.required.extend(claims.into_iter().map(Into::into));
        self
    }

    /// Your own check on the claims (after the signature is verified); an `Err` refuses the
    /// token with 401 `invalid_token` (its message is logged nowhere and sent nowhere).
    pub fn validate_claims(
        mut self,
        check: impl Fn(&Map<String, Value>) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        self.hook = Some(Box::new(check));
        self
    }

    /// Claim paths holding roles (dot-separated, e.g. `realm_access.roles`); replaces the
    /// default `roles`.
    pub fn roles_claims<I: IntoIterator<Item = S>, S: Into<String>>(mut self, paths: I) -> Self {
        self.mapping.role_paths = paths.into_iter().map(Into::into).collect();
        self
    }

    /// Also reads scopes from a `permissions` array (Auth0 RBAC).
    pub fn permissions_as_scopes(mut self) -> Self {
        self.mapping.permissions_as_scopes = true;
        self
    }

    /// Leaves bearer tokens that are not shaped like a JWT (three dot-separated parts) to the
    /// next authenticator of a chain (they count as "no credentials" here), so JWTs and
    /// opaque tokens (introspection, issued tokens) can share the `Authorization` header.
    pub fn defer_opaque_tokens(mut self) -> Self {
        self.defer_opaque = true;
        self
    }

    /// Caches up to `capacity` verified tokens so a repeated token skips signature
    /// verification while unexpired (never past its own `exp`).
    pub fn verified_token_cache(mut self, capacity: usize) -> Self {
        self.cache_capacity = Some(capacity.max(1));
        self
    }

    /// Builds the authenticator. No network I/O.
    ///
    /// # Errors
    ///
    /// Every problem at once: no key source, no audience, a key source without an expected
    /// issuer (unless [`allow_any_issuer`](Self::allow_any_issuer)), a shared secret bound to
    /// the identity provider's issuer, a leeway over 300 s, an invalid key or JWKS policy, a
    /// non-https key URL, no crypto backend.
    pub fn build(self) -> Result<JwtAuthenticator, ConfigError> {
        let mut problems = Vec::new();
        let mut push = |e: ConfigError| problems.extend(e.problems().iter().cloned());
        crypto_self_test()?;
        let default_issuers = if !self.issuers.is_empty() {
            Some(Issuers::OneOf(self.issuers.clone()))
        } else if self.allow_any_issuer {
            Some(Issuers::Any)
        } else {
            None
        };
        // `None`: no remote source, or one without an expected issuer (an error below).
        let remote_issuers = match &self.remote {
            None => None,
            Some((_, KeySource::Issuer(i))) if self.issuers.is_empty() => {
                Some(Issuers::OneOf(vec![i.clone()]))
            }
            Some(_) => default_issuers.clone(),
        };
        let no_issuer = |what: &str| {
            ConfigError::new(
                "jwt issuer",
                format!(
                    "{what} has no expected issuer: set `issuer(...)` (or `JwtKey::issuer` for a \
                     configured key), or call `allow_any_issuer()` to accept any `iss`"
                ),
            )
        };
        // Whether a configured key bound to `bound` could verify the JWKS issuer's tokens, or
        // the JWKS keys its tokens.
        let overlaps = |bound: &Issuers| match (bound, &remote_issuers) {
            (_, None) => false,
            (Issuers::Any, Some(_)) | (_, Some(Issuers::Any)) => true,
            (Issuers::OneOf(ours), Some(Issuers::OneOf(theirs))) => {
                ours.iter().any(|i| theirs.contains(i))
            }
        };
        let shared_secret_clash = || {
            ConfigError::new(
                "jwt issuer",
                "an HMAC key could verify tokens of the JWKS keys' issuer (or they its tokens): \
                 bind both to distinct issuers (`JwtKey::issuer` for the key)",
            )
        };
        let mut keys = Vec::new();
        for k in &self.keys {
            let bound = if k.issuers().is_empty() {
                default_issuers.clone()
            } else {
                Some(Issuers::OneOf(k.issuers().to_vec()))
            };
            let Some(bound) = bound else {
                push(no_issuer("a configured key"));
                continue;
            };
            // A shared secret that verifies the identity provider's issuer lets anyone holding
            // it mint tokens in the provider's name, indistinguishable from its users'.
            if k.is_symmetric() && overlaps(&bound) {
                push(shared_secret_clash());
                continue;
            }
            match k.build() {
                Ok(mut v) => {
                    v.issuers = bound;
                    keys.push(v);
                }
                Err(e) => push(e),
            }
        }
        for set in &self.jwk_sets {
            let Some(bound) = default_issuers.clone() else {
                push(no_issuer("a JWK set"));
                continue;
            };
            let (good, skipped) = keys_from_jwk_set(set, Origin::Configured);
            for s in skipped {
                push(ConfigError::new("jwk set", s));
            }
            let symmetric = good.iter().any(|k| {
                k.algs
                    .iter()
                    .any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
            });
            if symmetric && overlaps(&bound) {
                push(shared_secret_clash());
                continue;
            }
            keys.extend(good.into_iter().map(|mut k| {
                k.issuers = bound.clone();
                k
            }));
        }
        if let Some((setting, source)) = &self.remote {
            let url = match source {
                KeySource::Url(u) | KeySource::Issuer(u) => u,
            };
            if let Err(e) = check_url(setting, url) {
                push(e);
            }
            if remote_issuers.is_none() {
                push(no_issuer("the JWKS URL"));
            }
        }
        for p in self.policy.problems() {
            push(p);
        }
        let configured = !self.keys.is_empty() || !self.jwk_sets.is_empty();
        if keys.is_empty() && self.remote.is_none() && !configured {
            push(ConfigError::new(
                "jwt keys",
                "no key source (secret, PEM key, JWK set, JWKS URL or issuer)",
            ));
        }
        if self.audiences.is_empty() {
            push(ConfigError::new(
                "jwt audience",
                "no audience configured: MCP servers must refuse tokens not issued for them",
            ));
        }
        if self.leeway > MAX_LEEWAY {
            push(ConfigError::new("jwt leeway", "must be at most 300 s"));
        }
        let remote = match self.remote {
            None => None,
            Some((_, source)) => {
                let fetcher = match self.fetcher {
                    Some(f) => Some(f),
                    None => default_fetcher("jwks fetcher", "JwtBuilder::fetcher")
                        .map_err(&mut push)
                        .ok(),
                };
                fetcher.map(|f| {
                    Arc::new(JwksCache::new(
                        source,
                        f,
                        self.policy,
                        self.allow_symmetric_jwks,
                    ))
                })
            }
        };
        if let Some(e) = ConfigError::from_problems(problems) {
            return Err(e);
        }
        Ok(JwtAuthenticator {
            inner: Arc::new(Inner {
                static_keys: KeySet::new(keys),
                remote,
                remote_issuers: remote_issuers.unwrap_or(Issuers::OneOf(Vec::new())),
                rules: ClaimRules {
                    audiences: self.audiences,
                    leeway: self.leeway,
                    required: self.required,
                },
                mapping: self.mapping,
                require_at_jwt: self.require_at_jwt,
                hook: self.hook,
                defer_opaque: self.defer_opaque,
                cache: self.cache_capacity.map(|capacity| VerifiedCache {
                    map: RwLock::new(HashMap::new()),
                    capacity,
                }),
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// With both backends compiled in, jsonwebtoken cannot choose: building must fail with a
    /// clear error instead of panicking on the first request.
    #[cfg(all(feature = "aws-lc-rs", feature = "rust-crypto"))]
    #[test]
    fn both_backends_is_a_startup_error_not_a_panic() {
        let err = JwtAuthenticator::builder()
            .key(JwtKey::hmac("0123456789abcdef0123456789abcdef", Algorithm::HS256).unwrap())
            .audience("https://mcp.example.com/mcp")
            .build()
            .unwrap_err();
        assert!(err.to_string().contains("crypto backend"), "{err}");
    }

    #[cfg(not(all(feature = "aws-lc-rs", feature = "rust-crypto")))]
    #[test]
    fn exactly_one_backend_passes_the_self_test() {
        assert!(crypto_self_test().is_ok());
    }
}
