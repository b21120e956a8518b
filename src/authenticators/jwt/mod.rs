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
//!
//! # Several issuers and tenants
//!
//! [`JwtBuilder::trusted_issuer`] adds issuers with their own key source (JWKS URL, OIDC
//! discovery, configured keys), audiences, leeway and claim mapping ([`TrustedIssuer`]). The
//! token's `iss` is read before its signature is checked, only to choose the key source: a
//! trusted issuer's token is verified with that issuer's keys alone and must carry exactly
//! that `iss`; an `iss` no trusted issuer names goes to the builder's own key sources only if
//! they are bound to it, and is otherwise refused (`unknown_issuer`) without a fetch. Each
//! issuer has its own JWKS cache, refresh and rate limit, so one provider being down answers
//! 503 for its own tokens only. An issuer template (`https://login.microsoftonline.com/{tenant}/v2.0`,
//! [`TrustedIssuer::entra`]) takes an allow-list of tenants (or an explicit `any_tenant`),
//! can require a claim (`tid`) to name the tenant, and puts it in [`AuthContext::tenant`].
//!
//! ```
//! use mcp_auth::authenticators::jwt::{Algorithm, JwtAuthenticator, JwtKey, JwtMinter, TrustedIssuer};
//!
//! let (a_secret, t_secret) = ("secret-of-a-0123456789abcdef0123", "secret-of-tenants-0123456789abcdef");
//! let auth = JwtAuthenticator::builder()
//!     .audience("https://mcp.example.com/mcp")
//!     .trusted_issuer(TrustedIssuer::new("https://a.example.com").key(JwtKey::hmac(a_secret, Algorithm::HS256).unwrap()))
//!     .trusted_issuer(
//!         TrustedIssuer::new("https://idp.test/{tenant}/v2.0")
//!             .key(JwtKey::hmac(t_secret, Algorithm::HS256).unwrap())
//!             .tenants(["contoso", "fabrikam"])
//!             .tenant_claim("tid"),
//!     )
//!     .build()
//!     .unwrap();
//! let mint = |secret: &str, iss: &str, tid: &str| {
//!     let claims = serde_json::json!({"sub": "alice", "tid": tid});
//!     JwtMinter::hmac(secret, Algorithm::HS256).unwrap()
//!         .issuer(iss)
//!         .audience("https://mcp.example.com/mcp")
//!         .mint_claims(claims.as_object().unwrap().clone())
//!         .unwrap()
//! };
//! let ctx = auth.verify(&mint(a_secret, "https://a.example.com", "")).unwrap();
//! assert_eq!((ctx.issuer(), ctx.tenant()), (Some("https://a.example.com"), None));
//! let ctx = auth.verify(&mint(t_secret, "https://idp.test/contoso/v2.0", "contoso")).unwrap();
//! assert_eq!(ctx.tenant(), Some("contoso"));
//!
//! let refused = |token: String| auth.verify(&token).unwrap_err().detail();
//! // A's key, claiming the template's issuer: only the template's keys are tried.
//! assert_eq!(refused(mint(a_secret, "https://idp.test/contoso/v2.0", "contoso")), Some("bad_signature"));
//! assert_eq!(refused(mint(t_secret, "https://idp.test/northwind/v2.0", "northwind")), Some("tenant_not_allowed"));
//! assert_eq!(refused(mint(t_secret, "https://idp.test/contoso/v2.0", "fabrikam")), Some("tenant_mismatch"));
//! assert_eq!(refused(mint(a_secret, "https://b.example.com", "")), Some("unknown_issuer"));
//! ```

mod builder;
mod cache;
mod claims;
mod issuers;
pub mod jwks;
mod keys;
mod mint;
mod verify;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
pub use jsonwebtoken::Algorithm;
pub use jsonwebtoken::jwk::JwkSet;
use serde_json::{Map, Value};

pub use self::builder::JwtBuilder;
use self::cache::VerifiedCache;
use self::claims::{ClaimMapping, ClaimRules, Issuers};
use self::issuers::Routes;
pub use self::issuers::{
    MAX_ISSUER_LEN, MAX_TENANT_LEN, MAX_TENANTS, MAX_TRUSTED_ISSUERS, TENANT_PLACEHOLDER,
    TrustedIssuer,
};
use self::jwks::{JwksCache, Refreshed, Snapshot};
use self::keys::KeySet;
#[cfg(any(feature = "dpop", feature = "testing"))]
pub(crate) use self::keys::jwk_thumbprint;
pub use self::keys::{JwtKey, MAX_KEYS_PER_SET, MAX_KID_LEN, MIN_HMAC_SECRET_LEN, MIN_RSA_BITS};
pub use self::mint::{DEFAULT_TTL, JwtMinter};
use crate::auth_layer::AuthLayer;
use crate::auth_layer::{Authenticator, TokenVerifier};
use crate::authenticators::binding::{check_bearer_use, check_certificate};
use crate::authenticators::header::bearer_token;
use crate::context::AuthContext;
use crate::error::AuthError;

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

/// Index of a JWKS cache in [`Inner::remotes`].
type SourceId = usize;

/// One set of keys and the rules for the tokens they verify: the builder's own key sources,
/// or one trusted issuer's.
struct Domain {
    static_keys: KeySet,
    /// The JWKS cache of this domain's fetched keys (a template discovering keys per tenant
    /// has one per tenant instead: see [`issuers::Route::source`]).
    remote: Option<SourceId>,
    /// The issuers whose tokens the fetched keys may verify.
    remote_issuers: Issuers,
    rules: ClaimRules,
    mapping: ClaimMapping,
}

struct Inner {
    /// The builder's own key sources (`key`, `jwk_set`, `jwks_url`, `oidc_issuer`), each bound
    /// to its issuers; `None` when only trusted issuers are configured.
    own: Option<Domain>,
    /// Every issuer the builder's own key sources may verify tokens of: with trusted issuers
    /// configured, a token of any other issuer is refused before any key is tried.
    own_issuers: Issuers,
    /// The trusted issuers, chosen by the token's `iss`.
    routes: Routes,
    /// Every JWKS cache, by [`SourceId`].
    remotes: Vec<Arc<JwksCache>>,
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
        let own = self.inner.own.as_ref();
        f.debug_struct("JwtAuthenticator")
            .field("static_keys", &own.map_or(0, |d| d.static_keys.len()))
            .field("remotes", &self.inner.remotes)
            .field("own_issuers", &self.inner.own_issuers)
            .field("audiences", &own.map(|d| &d.rules.audiences))
            .field("leeway", &own.map(|d| d.rules.leeway))
            .field("trusted_issuers", &self.inner.routes)
            .finish_non_exhaustive()
    }
}

/// One verification attempt with the keys at hand.
enum Step {
    Done(Result<AuthContext, AuthError>),
    /// No usable key for this token yet: fetch keys from this source (the `kid` is unknown or
    /// none are loaded), whose snapshot of this generation was tried.
    NeedKeys {
        source: SourceId,
        generation: u64,
    },
}

/// A snapshot to use instead of its cache's current one (the one a refresh just returned).
type Pinned = Option<(SourceId, Arc<Snapshot>)>;

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
    /// This judges the token alone: a binding (`cnf`) is read into
    /// [`AuthContext::confirmation`] but not enforced, since the request is not at hand. The
    /// layer ([`Authenticator`]) and [`TokenVerifier::verify_token`] enforce it.
    ///
    /// # Errors
    ///
    /// Why the token is refused.
    pub fn verify(&self, token: &str) -> Result<AuthContext, AuthError> {
        match self.verify_with(token, None) {
            Step::Done(r) => r,
            Step::NeedKeys { source, .. } => {
                let snap = self.inner.remotes.get(source).map(|r| r.current());
                Err(self.no_keys_error(snap.as_deref(), None))
            }
        }
    }

    /// Verifies a token, fetching keys when its `kid` is unknown (rate-limited) or none are
    /// loaded yet.
    ///
    /// # Errors
    ///
    /// Why the token is refused; [`AuthErrorKind::Unavailable`](crate::AuthErrorKind) when
    /// no keys could be loaded.
    ///
    /// With several issuers, only the key source of the token's issuer is refreshed: another
    /// issuer's provider being down never delays or refuses this one's tokens.
    pub async fn verify_async(&self, token: &str) -> Result<AuthContext, AuthError> {
        let (source, generation) = match self.verify_with(token, None) {
            Step::Done(r) => return r,
            Step::NeedKeys { source, generation } => (source, generation),
        };
        let Some(remote) = self.inner.remotes.get(source) else {
            return Err(invalid("no_matching_key"));
        };
        let (snap, retry) = match remote.refresh(generation).await {
            Refreshed::New(s) => (s, None),
            Refreshed::Unchanged(s, retry) => (s, Some(retry)),
        };
        match self.verify_with(token, Some((source, snap.clone()))) {
            Step::Done(r) => r,
            Step::NeedKeys { .. } => Err(self.no_keys_error(Some(&snap), retry)),
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
    /// request does not wait: every key source's, each trusted issuer's (and each allowed
    /// tenant's) too. Startup never fails because an identity provider is down.
    pub fn prefetch(&self) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for remote in &self.inner.remotes {
            let remote = remote.clone();
            handle.spawn(async move {
                let seen = remote.current().generation;
                let _ = remote.refresh(seen).await;
            });
        }
    }
}

impl JwtAuthenticator {
    /// The request's bearer token, or "no credentials" for an opaque token when those are
    /// deferred to the next authenticator.
    fn token<'a>(&self, parts: &'a Parts) -> Result<&'a str, AuthError> {
        let token = bearer_token(parts)?;
        self.defer(token)?;
        Ok(token)
    }

    /// "No credentials" for an opaque token when those are deferred to the next verifier.
    fn defer(&self, token: &str) -> Result<(), AuthError> {
        if self.inner.defer_opaque && token.bytes().filter(|b| *b == b'.').count() != 2 {
            return Err(AuthError::missing_credentials());
        }
        Ok(())
    }
}

/// Reads `Authorization: Bearer`, verifies the token, and refuses a DPoP-bound token (sent
/// without its proof) and a certificate-bound one without its certificate.
impl Authenticator for JwtAuthenticator {
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        let token = self.token(parts)?;
        let ctx = self.verify_async(token).await?;
        check_bearer_use(&ctx, &parts.extensions)?;
        Ok(ctx)
    }

    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        let token = match self.token(parts) {
            Ok(t) => t,
            Err(e) => return Some(Err(e)),
        };
        match self.verify_with(token, None) {
            Step::Done(r) => {
                Some(r.and_then(|ctx| check_bearer_use(&ctx, &parts.extensions).map(|()| ctx)))
            }
            Step::NeedKeys { .. } => None,
        }
    }
}

/// Verifies a token from any scheme (the DPoP authenticator's inner step): everything but
/// the DPoP key binding, which the caller checks against the proof.
impl TokenVerifier for JwtAuthenticator {
    async fn verify_token(&self, token: &str, parts: &Parts) -> Result<AuthContext, AuthError> {
        self.defer(token)?;
        let ctx = self.verify_async(token).await?;
        check_certificate(&ctx, &parts.extensions)?;
        Ok(ctx)
    }

    fn verify_token_now(
        &self,
        token: &str,
        parts: &Parts,
    ) -> Option<Result<AuthContext, AuthError>> {
        if let Err(e) = self.defer(token) {
            return Some(Err(e));
        }
        match self.verify_with(token, None) {
            Step::Done(r) => {
                Some(r.and_then(|ctx| check_certificate(&ctx, &parts.extensions).map(|()| ctx)))
            }
            Step::NeedKeys { .. } => None,
        }
    }
}
