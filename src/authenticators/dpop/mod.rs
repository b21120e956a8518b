//! [`DpopAuthenticator`]: sender-constrained access tokens with DPoP proofs (RFC 9449, and the
//! MCP DPoP extension), around any [`TokenVerifier`] (feature `dpop`).
//!
//! A stolen bearer token works for whoever holds it; a DPoP-bound token works only with a
//! fresh proof signed by the client's private key. For `Authorization: DPoP <token>` with
//! exactly one `DPoP` header, the proof must:
//!
//! - be a compact JWS with `typ: dpop+jwt`, an asymmetric `alg` from the allow-list (never
//!   HMAC or `none`) and a public `jwk` of the matching type (no private members; RSA 2048 to
//!   4096 bits with a small exponent), signed by that key;
//! - carry `htm` = the request method, `htu` = the request's public URI (query and fragment
//!   ignored, both normalised; from configuration, never from `Host`), `iat` within the
//!   window (default ±5 minutes), a `jti` never seen in that window ([`ReplayCache`]:
//!   memory, or Redis for several instances), and `ath` = base64url(SHA-256(token));
//! - carry the server's nonce, when nonces are on (a stateless HMAC nonce; a missing or stale
//!   one gets 401 `use_dpop_nonce` with a fresh `DPoP-Nonce`).
//!
//! The token is verified by the inner verifier (JWT or introspection, including the audience)
//! and its `cnf.jkt` must be the proof key's RFC 7638 thumbprint; only then is the proof's
//! signature checked, so the public-key work of a proof is spent only for a valid token bound
//! to its key.
//!
//! With `Authorization: Bearer`, an unbound token passes to the inner verifier as before
//! ([`DpopMode::Optional`], the default), but a DPoP-bound one is refused (the "downgrade",
//! §7.2); [`DpopMode::Required`] refuses every bearer token. Failures answer 401 with a
//! `DPoP algs="…"` challenge (beside `Bearer` in optional mode) and
//! `error="invalid_dpop_proof"` where the proof is at fault. Advertise the same settings in
//! the protected resource metadata with
//! [`ProtectedResourceBuilder::dpop`](crate::oauth::ProtectedResourceBuilder::dpop).
//!
//! # Example
//!
//! ```
//! use mcp_auth::authenticators::dpop::{DpopAuthenticator, DpopMode};
//! use mcp_auth::authenticators::jwt::{Algorithm, JwtAuthenticator, JwtKey};
//! use mcp_auth::AuthLayer;
//!
//! let jwt = JwtAuthenticator::builder()
//!     .key(JwtKey::hmac("0123456789abcdef0123456789abcdef", Algorithm::HS256).unwrap())
//!     .issuer("https://as.example.com")
//!     .audience("https://mcp.example.com/mcp")
//!     .build()
//!     .unwrap();
//! let dpop = DpopAuthenticator::builder(jwt)
//!     .resource_url("https://mcp.example.com/mcp") // the htu every proof must name
//!     .mode(DpopMode::Required)
//!     .build()
//!     .unwrap();
//! let names: Vec<_> = mcp_auth::Authenticator::schemes(&dpop).iter().map(|s| s.name().to_owned()).collect();
//! assert_eq!(names, ["DPoP"]);
//! let _layer = AuthLayer::new(dpop);
//! ```

mod htu;
mod nonce;
mod proof;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderName;
use http::request::Parts;
pub use jsonwebtoken::Algorithm;
use zeroize::Zeroizing;

use self::htu::Htu;
use self::nonce::Nonces;
use crate::auth_layer::{AuthLayer, Authenticator, TokenVerifier};
use crate::authenticators::binding::refuse_dpop_bound;
use crate::authenticators::header::{TokenScheme, access_token};
use crate::context::AuthContext;
use crate::error::{AuthError, ConfigError, Problems};
use crate::rejection::Scheme;
use crate::store::{MemoryReplayCache, ReplayCache};

/// The `DPoP` request header.
pub const DPOP: HeaderName = HeaderName::from_static("dpop");
/// Default `iat` window: ±5 minutes (the MCP DPoP extension's bound).
pub const DEFAULT_IAT_WINDOW: Duration = Duration::from_secs(300);
/// Largest `iat` window accepted.
pub const MAX_IAT_WINDOW: Duration = Duration::from_secs(600);
/// Default lifetime of a server nonce.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Shortest nonce key accepted.
pub const MIN_NONCE_KEY_LEN: usize = 32;
/// Default proof algorithms: ECDSA P-256 and P-384, Ed25519, RSA (PKCS#1 v1.5 and PSS, SHA-256).
pub const DEFAULT_ALGORITHMS: [Algorithm; 5] = [
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::PS256,
    Algorithm::RS256,
];

/// Whether plain bearer tokens are still accepted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DpopMode {
    /// Unbound tokens may come as `Bearer`; DPoP-bound tokens must come with a proof.
    #[default]
    Optional,
    /// Every token must be DPoP-bound and come with a proof.
    Required,
}

/// [`AuthLayer`] with a [`DpopAuthenticator`].
pub type DpopLayer<V, R = MemoryReplayCache, Rej = crate::rejection::DefaultRejection> =
    AuthLayer<DpopAuthenticator<V, R>, Rej>;

struct Settings {
    mode: DpopMode,
    algs: Vec<Algorithm>,
    window: Duration,
    htu: Htu,
    nonces: Option<Nonces>,
}

/// DPoP around a token verifier: see the [module docs](self). Cheap to clone.
pub struct DpopAuthenticator<V, R = MemoryReplayCache> {
    verifier: Arc<V>,
    replay: R,
    settings: Arc<Settings>,
}

impl<V, R: Clone> Clone for DpopAuthenticator<V, R> {
    fn clone(&self) -> Self {
        Self {
            verifier: self.verifier.clone(),
            replay: self.replay.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl<V, R: fmt::Debug> fmt::Debug for DpopAuthenticator<V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &*self.settings;
        f.debug_struct("DpopAuthenticator")
            .field("mode", &s.mode)
            .field("algs", &s.algs)
            .field("window", &s.window)
            .field("htu", &s.htu)
            .field("nonces", &s.nonces)
            .field("replay", &self.replay)
            .finish_non_exhaustive()
    }
}

/// Builds a [`DpopAuthenticator`]; see [`DpopAuthenticator::builder`].
#[must_use]
pub struct DpopBuilder<V, R = MemoryReplayCache> {
    verifier: V,
    replay: R,
    mode: DpopMode,
    algs: Vec<Algorithm>,
    window: Duration,
    urls: Vec<String>,
    origin: Option<String>,
    nonce_key: Option<Zeroizing<Vec<u8>>>,
    nonce_lifetime: Duration,
}

impl<V, R> fmt::Debug for DpopBuilder<V, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DpopBuilder")
            .field("mode", &self.mode)
            .field("algs", &self.algs)
            .field("urls", &self.urls)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl<V: TokenVerifier> DpopAuthenticator<V> {
    /// Starts configuring DPoP around `verifier` (a JWT or introspection authenticator, or a
    /// chain of them), with an in-memory replay cache.
    pub fn builder(verifier: V) -> DpopBuilder<V> {
        DpopBuilder {
            verifier,
            replay: MemoryReplayCache::default(),
            mode: DpopMode::Optional,
            algs: DEFAULT_ALGORITHMS.to_vec(),
            window: DEFAULT_IAT_WINDOW,
            urls: Vec::new(),
            origin: None,
            nonce_key: None,
            nonce_lifetime: DEFAULT_NONCE_LIFETIME,
        }
    }
}

impl<V, R> DpopBuilder<V, R> {
    /// Optional (default) or required.
    pub fn mode(mut self, mode: DpopMode) -> Self {
        self.mode = mode;
        self
    }

    /// The proof algorithms accepted (default [`DEFAULT_ALGORITHMS`]). HMAC algorithms are
    /// refused by [`build`](Self::build).
    pub fn algorithms<I: IntoIterator<Item = Algorithm>>(mut self, algs: I) -> Self {
        self.algs = algs.into_iter().collect();
        self
    }

    /// How far a proof's `iat` may be from now, either way (default ±5 minutes, at most
    /// [`MAX_IAT_WINDOW`]). Replayed `jti`s are remembered this long.
    pub fn iat_window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// A URL proofs may name in `htu`: the public URL of the protected endpoint (several
    /// calls add several). Behind a proxy, the URL clients use, not the one the server sees.
    pub fn resource_url(mut self, url: impl Into<String>) -> Self {
        self.urls.push(url.into());
        self
    }

    /// Accept proofs for any path under this public origin (`https://host[:port]`): `htu`
    /// must be the origin followed by the request's path (the original path, before a
    /// router stripped a prefix). For layers that guard several endpoints.
    pub fn public_origin(mut self, origin: impl Into<String>) -> Self {
        self.origin = Some(origin.into());
        self
    }

    /// Turns server nonces on, made and checked with `key` (at least
    /// [`MIN_NONCE_KEY_LEN`] bytes; give every instance the same key) and valid for
    /// `lifetime`. Proofs without a valid nonce get 401 `use_dpop_nonce`.
    pub fn nonces(mut self, key: impl Into<Vec<u8>>, lifetime: Duration) -> Self {
        self.nonce_key = Some(Zeroizing::new(key.into()));
        self.nonce_lifetime = lifetime;
        self
    }

    /// Replaces the replay cache (e.g. `Redis::replay_cache()` for several instances).
    pub fn replay_cache<R2: ReplayCache>(self, replay: R2) -> DpopBuilder<V, R2> {
        DpopBuilder {
            verifier: self.verifier,
            replay,
            mode: self.mode,
            algs: self.algs,
            window: self.window,
            urls: self.urls,
            origin: self.origin,
            nonce_key: self.nonce_key,
            nonce_lifetime: self.nonce_lifetime,
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    ///
    /// Every problem at once: no `htu` source (neither a resource URL nor an origin) or both,
    /// a URL that is not an absolute `http(s)` URL, no algorithm or an HMAC one, a window of
    /// zero or above [`MAX_IAT_WINDOW`], a short nonce key or a zero nonce lifetime.
    pub fn build(self) -> Result<DpopAuthenticator<V, R>, ConfigError> {
        let mut p = Problems::default();
        let htu = match (&self.origin, self.urls.is_empty()) {
            (None, true) => {
                p.add(
                    "dpop_htu",
                    "set the public resource URL (or origin) proofs must name",
                );
                None
            }
            (Some(_), false) => {
                p.add("dpop_htu", "set a resource URL or an origin, not both");
                None
            }
            (Some(o), true) => htu::origin(o).map(Htu::Origin).or_else(|| {
                p.add("dpop_htu", "the origin is not an absolute http(s) URL");
                None
            }),
            (None, false) => {
                let urls: Option<Vec<String>> =
                    self.urls.iter().map(|u| htu::normalize(u)).collect();
                urls.map(Htu::Exact).or_else(|| {
                    p.add("dpop_htu", "a resource URL is not an absolute http(s) URL");
                    None
                })
            }
        };
        if self.algs.is_empty() {
            p.add("dpop_algs", "at least one algorithm is needed");
        }
        if self
            .algs
            .iter()
            .any(|a| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
        {
            p.add(
                "dpop_algs",
                "DPoP proofs must use asymmetric algorithms (no HMAC)",
            );
        }
        if self.window.is_zero() || self.window > MAX_IAT_WINDOW {
            p.add("dpop_iat_window", "must be between 1 s and 600 s");
        }
        let nonces = match self.nonce_key {
            Some(key) if key.len() < MIN_NONCE_KEY_LEN => {
                p.add("dpop_nonce_key", "must be at least 32 bytes");
                None
            }
            Some(_) if self.nonce_lifetime.is_zero() => {
                p.add("dpop_nonce_lifetime", "must not be zero");
                None
            }
            Some(key) => Some(Nonces::new(key, self.nonce_lifetime)),
            None => None,
        };
        p.finish(|| ())?;
        let Some(htu) = htu else {
            return Err(ConfigError::new("dpop_htu", "no htu source"));
        };
        Ok(DpopAuthenticator {
            verifier: Arc::new(self.verifier),
            replay: self.replay,
            settings: Arc::new(Settings {
                mode: self.mode,
                algs: self.algs,
                window: self.window,
                htu,
                nonces,
            }),
        })
    }
}

impl<V, R> DpopAuthenticator<V, R> {
    /// The mode.
    #[must_use]
    pub fn mode(&self) -> DpopMode {
        self.settings.mode
    }

    /// The accepted proof algorithms' names, for the protected resource metadata.
    #[must_use]
    pub fn algorithm_names(&self) -> Vec<String> {
        self.settings
            .algs
            .iter()
            .map(|a| format!("{a:?}"))
            .collect()
    }

    /// The inner token verifier.
    #[must_use]
    pub fn verifier(&self) -> &V {
        &self.verifier
    }
}

/// The one `DPoP` header of the request.
fn proof_header(parts: &Parts) -> Result<&str, AuthError> {
    let mut values = parts.headers.get_all(&DPOP).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(
            AuthError::invalid_dpop_proof("exactly one DPoP proof header is required")
                .with_detail("dpop_proof_count"),
        );
    };
    value.to_str().map_err(|_| {
        AuthError::invalid_dpop_proof("malformed DPoP proof").with_detail("dpop_not_ascii")
    })
}

impl<V: TokenVerifier, R: ReplayCache> DpopAuthenticator<V, R> {
    async fn with_proof(&self, token: &str, parts: &Parts) -> Result<AuthContext, AuthError> {
        let s = &*self.settings;
        let proof = proof_header(parts)?;
        let mut checked = proof::check(
            proof,
            &proof::Expect {
                algs: &s.algs,
                window: s.window.as_secs(),
                now: SystemTime::now(),
                method: parts.method.as_str(),
                htu: &s.htu,
                parts,
                token,
                nonces: s.nonces.as_ref(),
            },
        )?;
        // The token first: only a valid token bound to this proof's key earns the proof a
        // signature check (public-key work nobody else can make the server do).
        let ctx = self.verifier.verify_token(token, parts).await?;
        match ctx.confirmation().jkt() {
            Some(jkt) if jkt == checked.jkt => checked.verify_signature()?,
            Some(_) => {
                return Err(AuthError::invalid_dpop_proof(
                    "the DPoP proof is signed by another key than the token is bound to",
                )
                .with_detail("dpop_key_mismatch"));
            }
            None => {
                return Err(
                    AuthError::invalid_token("the access token is not DPoP-bound")
                        .with_detail("dpop_unbound_token"),
                );
            }
        }
        let until = SystemTime::UNIX_EPOCH
            + Duration::from_secs(
                checked
                    .iat
                    .saturating_add(s.window.as_secs())
                    .saturating_add(1),
            );
        match self.replay.first_use(&checked.replay_id, until).await {
            Ok(true) => Ok(ctx),
            Ok(false) => Err(
                AuthError::invalid_dpop_proof("the DPoP proof was used before")
                    .with_detail("dpop_replay"),
            ),
            Err(e) => Err(AuthError::unavailable(e)),
        }
    }

    async fn as_bearer(&self, token: &str, parts: &Parts) -> Result<AuthContext, AuthError> {
        if self.settings.mode == DpopMode::Required {
            return Err(AuthError::invalid_token(
                "this server accepts only DPoP-bound access tokens with a DPoP proof",
            )
            .with_detail("dpop_required"));
        }
        let ctx = self.verifier.verify_token(token, parts).await?;
        refuse_dpop_bound(&ctx)?;
        Ok(ctx)
    }
}

impl<V: TokenVerifier, R: ReplayCache> Authenticator for DpopAuthenticator<V, R> {
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        match access_token(parts)? {
            (TokenScheme::Dpop, token) => self.with_proof(token, parts).await,
            (TokenScheme::Bearer, token) => self.as_bearer(token, parts).await,
        }
    }

    fn schemes(&self) -> Vec<Scheme> {
        let dpop = Scheme::dpop(self.algorithm_names());
        match self.settings.mode {
            DpopMode::Optional => vec![Scheme::bearer(), dpop],
            DpopMode::Required => vec![dpop],
        }
    }
}

#[cfg(test)]
mod tests;
