//! [`JwtBuilder`]: configuring a [`JwtAuthenticator`], and checking that configuration.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use jsonwebtoken::AlgorithmFamily;
use serde_json::{Map, Value};

use super::cache::VerifiedCache;
use super::claims::{ClaimMapping, ClaimRules, Issuers};
use super::issuers::{BuildContext, Routes, TrustedIssuer};
use super::jwks::{JwksCache, JwksPolicy, KeySource};
use super::keys::{KeySet, Origin, VerifyKey, keys_from_jwk_set};
use super::{
    Algorithm, ClaimsHook, DEFAULT_LEEWAY, Domain, Inner, JwkSet, JwtAuthenticator, JwtKey,
    MAX_LEEWAY, SourceId,
};
use crate::error::{ConfigError, Problems};
use crate::oauth::{DynFetcher, HttpFetcher, check_url, default_fetcher};

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
    trusted: Vec<TrustedIssuer>,
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
            trusted: Vec::new(),
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
            .field("trusted", &self.trusted)
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

    /// Trusts another issuer, with its own key source, audiences, leeway and claim mapping
    /// (at most [`MAX_TRUSTED_ISSUERS`](super::MAX_TRUSTED_ISSUERS)); see [`TrustedIssuer`].
    ///
    /// With trusted issuers, the token's `iss` (read before its signature is checked, only to
    /// choose the key source) routes it: a trusted issuer's token is verified with that
    /// issuer's keys alone; any other `iss` goes to the builder's own key sources only if
    /// they are bound to it, and is otherwise refused (`unknown_issuer`) without a fetch.
    /// A key source that is down answers 503 for its own issuer's tokens only.
    pub fn trusted_issuer(mut self, issuer: TrustedIssuer) -> Self {
        self.trusted.push(issuer);
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
    /// verification while unexpired (never past its own `exp`). When full, expired entries
    /// make room first, then the oldest.
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
    /// non-https key URL, no crypto backend; for trusted issuers (named `trusted issuer <i>
    /// <field>`, `i` from 0 in the order added), a template without tenants or with an
    /// invalid one, two issuers that could match one `iss`, an issuer both trusted and bound
    /// to the builder's own keys, more than the caps allow.
    pub fn build(mut self) -> Result<JwtAuthenticator, ConfigError> {
        crypto_self_test()?;
        let mut problems = Problems::default();
        let binding = Binding::of(&self);
        let has_own = !self.keys.is_empty() || !self.jwk_sets.is_empty() || self.remote.is_some();
        let mut keys = self.configured_keys(&binding, &mut problems);
        keys.extend(self.jwk_set_keys(&binding, &mut problems));
        self.check_remote(&binding, &mut problems);
        self.check_rules(has_own, &mut problems);
        let fetcher = self.resolve_fetcher(&mut problems);
        let mut remotes = Vec::new();
        let own_remote = self.remote_cache(fetcher.as_ref(), &mut remotes);
        let own_issuers = own_issuers(&keys, binding.remote.as_ref());
        let bound: &[String] = match &own_issuers {
            Issuers::OneOf(list) => list,
            Issuers::Any => &[],
        };
        let ctx = BuildContext {
            audiences: &self.audiences,
            leeway: self.leeway,
            required: &self.required,
            mapping: &self.mapping,
            fetcher: fetcher.as_ref(),
            policy: &self.policy,
            allow_symmetric: self.allow_symmetric_jwks,
        };
        let trusted = std::mem::take(&mut self.trusted);
        let routes = Routes::build(trusted, &ctx, bound, &mut remotes, &mut problems);
        let own = has_own.then(|| Domain {
            static_keys: KeySet::new(keys),
            remote: own_remote,
            remote_issuers: binding.remote.unwrap_or(Issuers::OneOf(Vec::new())),
            rules: ClaimRules {
                audiences: self.audiences,
                leeway: self.leeway,
                required: self.required,
            },
            mapping: self.mapping,
        });
        problems.finish(|| JwtAuthenticator {
            inner: Arc::new(Inner {
                own,
                own_issuers,
                routes,
                remotes,
                require_at_jwt: self.require_at_jwt,
                hook: self.hook,
                defer_opaque: self.defer_opaque,
                cache: self.cache_capacity.map(VerifiedCache::new),
            }),
        })
    }

    /// The configured keys, each bound to its issuers.
    fn configured_keys(&self, binding: &Binding, problems: &mut Problems) -> Vec<VerifyKey> {
        let mut keys = Vec::new();
        for k in &self.keys {
            let bound = if k.issuers().is_empty() {
                binding.default.clone()
            } else {
                Some(Issuers::OneOf(k.issuers().to_vec()))
            };
            let Some(bound) = bound else {
                problems.push(no_issuer("a configured key"));
                continue;
            };
            // A shared secret that verifies the identity provider's issuer lets anyone holding
            // it mint tokens in the provider's name, indistinguishable from its users'.
            if k.is_symmetric() && binding.overlaps(&bound) {
                problems.push(shared_secret_clash());
                continue;
            }
            if let Some(mut v) = problems.check(k.build()) {
                v.issuers = bound;
                keys.push(v);
            }
        }
        keys
    }

    /// The keys of the configured JWK sets, bound to the builder's issuers.
    fn jwk_set_keys(&self, binding: &Binding, problems: &mut Problems) -> Vec<VerifyKey> {
        let mut keys = Vec::new();
        for set in &self.jwk_sets {
            let Some(bound) = binding.default.clone() else {
                problems.push(no_issuer("a JWK set"));
                continue;
            };
            let (good, skipped) = keys_from_jwk_set(set, Origin::Configured);
            for s in skipped {
                problems.add("jwk set", s);
            }
            let symmetric = good
                .iter()
                .any(|k| k.algs.iter().any(|a| a.family() == AlgorithmFamily::Hmac));
            if symmetric && binding.overlaps(&bound) {
                problems.push(shared_secret_clash());
                continue;
            }
            keys.extend(good.into_iter().map(|mut k| {
                k.issuers = bound.clone();
                k
            }));
        }
        keys
    }

    /// The JWKS URL (or issuer) and its issuer binding, the JWKS policy, and that some key
    /// source exists.
    fn check_remote(&self, binding: &Binding, problems: &mut Problems) {
        if let Some((setting, source)) = &self.remote {
            let url = match source {
                KeySource::Url(u) | KeySource::Issuer(u) => u,
            };
            problems.check(check_url(setting, url));
            if binding.remote.is_none() {
                problems.push(no_issuer("the JWKS URL"));
            }
        }
        for p in self.policy.problems() {
            problems.push(p);
        }
        if self.keys.is_empty()
            && self.jwk_sets.is_empty()
            && self.remote.is_none()
            && self.trusted.is_empty()
        {
            problems.add(
                "jwt keys",
                "no key source (secret, PEM key, JWK set, JWKS URL, issuer or trusted issuer)",
            );
        }
    }

    /// At least one audience for the builder's own key sources (trusted issuers check theirs),
    /// and a leeway of at most [`MAX_LEEWAY`].
    fn check_rules(&self, has_own: bool, problems: &mut Problems) {
        if self.audiences.is_empty() && (has_own || self.trusted.is_empty()) {
            problems.add(
                "jwt audience",
                "no audience configured: MCP servers must refuse tokens not issued for them",
            );
        }
        if self.leeway > MAX_LEEWAY {
            problems.add("jwt leeway", "must be at most 300 s");
        }
    }

    /// The HTTP client of every key source, when one fetches keys: the configured one or
    /// the default.
    fn resolve_fetcher(&mut self, problems: &mut Problems) -> Option<Arc<dyn DynFetcher>> {
        let needed = self.remote.is_some() || self.trusted.iter().any(TrustedIssuer::fetches);
        if !needed {
            return None;
        }
        match self.fetcher.take() {
            Some(f) => Some(f),
            None => problems.check(default_fetcher("jwks fetcher", "JwtBuilder::fetcher")),
        }
    }

    /// The JWKS cache of the builder's own remote key source, added to `remotes`.
    fn remote_cache(
        &mut self,
        fetcher: Option<&Arc<dyn DynFetcher>>,
        remotes: &mut Vec<Arc<JwksCache>>,
    ) -> Option<SourceId> {
        let (_, source) = self.remote.take()?;
        remotes.push(Arc::new(JwksCache::new(
            source,
            fetcher?.clone(),
            self.policy.clone(),
            self.allow_symmetric_jwks,
        )));
        Some(remotes.len() - 1)
    }
}

/// Every issuer the builder's own key sources may verify tokens of: the union of the
/// configured keys' bindings and the fetched keys'.
fn own_issuers(keys: &[VerifyKey], remote: Option<&Issuers>) -> Issuers {
    let mut all: Vec<String> = Vec::new();
    for bound in keys.iter().map(|k| &k.issuers).chain(remote) {
        match bound {
            Issuers::Any => return Issuers::Any,
            Issuers::OneOf(list) => {
                for i in list {
                    if !all.contains(i) {
                        all.push(i.clone());
                    }
                }
            }
        }
    }
    Issuers::OneOf(all)
}

/// Which issuers the key sources are bound to.
struct Binding {
    /// Configured keys without their own issuers, and JWK sets: the builder's issuers, any
    /// (after `allow_any_issuer()`), or `None` (an error for each such key source).
    default: Option<Issuers>,
    /// Fetched keys: like `default`, except that discovery from an issuer binds to it when
    /// no issuer is set. `None`: no remote source, or one without an expected issuer.
    remote: Option<Issuers>,
}

impl Binding {
    fn of(b: &JwtBuilder) -> Self {
        let default = if !b.issuers.is_empty() {
            Some(Issuers::OneOf(b.issuers.clone()))
        } else if b.allow_any_issuer {
            Some(Issuers::Any)
        } else {
            None
        };
        let remote = match &b.remote {
            None => None,
            Some((_, KeySource::Issuer(i))) if b.issuers.is_empty() => {
                Some(Issuers::OneOf(vec![i.clone()]))
            }
            Some(_) => default.clone(),
        };
        Self { default, remote }
    }

    /// Whether a configured key bound to `bound` could verify the JWKS issuer's tokens, or the
    /// JWKS keys its tokens.
    fn overlaps(&self, bound: &Issuers) -> bool {
        match (bound, &self.remote) {
            (_, None) => false,
            (Issuers::Any, Some(_)) | (_, Some(Issuers::Any)) => true,
            (Issuers::OneOf(ours), Some(Issuers::OneOf(theirs))) => {
                ours.iter().any(|i| theirs.contains(i))
            }
        }
    }
}

fn no_issuer(what: &str) -> ConfigError {
    ConfigError::new(
        "jwt issuer",
        format!(
            "{what} has no expected issuer: set `issuer(...)` (or `JwtKey::issuer` for a \
             configured key), or call `allow_any_issuer()` to accept any `iss`"
        ),
    )
}

fn shared_secret_clash() -> ConfigError {
    ConfigError::new(
        "jwt issuer",
        "an HMAC key could verify tokens of the JWKS keys' issuer (or they its tokens): \
         bind both to distinct issuers (`JwtKey::issuer` for the key)",
    )
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
