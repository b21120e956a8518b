//! Verification keys: loading, validation and algorithm pinning.
//!
//! Every key is validated when loaded, from any source, and carries exactly the algorithms it
//! may verify (RFC 8725 §3.1): from configuration, from the JWK's own `alg`, or from its key
//! type. A token's header `alg` only selects among keys; it never widens what a key accepts.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

mod jwk;

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey};

#[cfg(any(feature = "dpop", feature = "testing"))]
pub(crate) use self::jwk::jwk_thumbprint;
pub(crate) use self::jwk::{key_from_jwk, keys_from_json, keys_from_jwk_set};
use super::claims::Issuers;
use crate::error::ConfigError;
use crate::secret::Secret;
use crate::secret::digest;

/// Shortest HMAC secret accepted: 32 bytes (RFC 7518 §3.2 for HS256).
pub const MIN_HMAC_SECRET_LEN: usize = 32;
/// Smallest RSA modulus accepted, in bits (RFC 7518 §3.3).
pub const MIN_RSA_BITS: usize = 2048;
/// Most keys taken from one JWK set; the rest are skipped.
pub const MAX_KEYS_PER_SET: usize = 100;
/// Longest `kid` accepted in a key set or a token header.
pub const MAX_KID_LEN: usize = 256;

/// One key able to verify signatures, with the algorithms it is pinned to.
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    pub(crate) algs: Vec<Algorithm>,
    pub(crate) key: DecodingKey,
    /// Identity of the key material (SHA-256 of its JWK form), so a cache can tell whether a
    /// fetched key is still published.
    pub(crate) id: [u8; 32],
    /// The issuers whose tokens this key may verify. Configured keys are bound when the
    /// authenticator is built; fetched keys are bound by their source instead.
    pub(crate) issuers: Issuers,
}

impl fmt::Debug for VerifyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyKey")
            .field("kid", &self.kid)
            .field("algs", &self.algs)
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

/// A validated set of verification keys. Clones share the keys.
#[derive(Debug, Default, Clone)]
pub(crate) struct KeySet {
    keys: Vec<Arc<VerifyKey>>,
    by_kid: HashMap<String, Vec<usize>>,
    ids: HashSet<[u8; 32]>,
}

impl KeySet {
    pub(crate) fn new(keys: Vec<VerifyKey>) -> Self {
        let mut by_kid: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            if let Some(kid) = &k.kid {
                by_kid.entry(kid.clone()).or_default().push(i);
            }
        }
        for (kid, idx) in &by_kid {
            if idx.len() > 1 {
                tracing::warn!(
                    target: crate::telemetry::JWT_TARGET,
                    kid = ?kid,
                    "several keys share one kid; tokens naming it are refused"
                );
            }
        }
        Self {
            ids: keys.iter().map(|k| k.id).collect(),
            keys: keys.into_iter().map(Arc::new).collect(),
            by_kid,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether this key material (by [`VerifyKey::id`]) is in the set.
    pub(crate) fn contains_id(&self, id: &[u8; 32]) -> bool {
        self.ids.contains(id)
    }

    /// Whether a key with this `kid` exists (ambiguous or not).
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.by_kid.contains_key(kid)
    }

    /// The keys that may verify a token with this header `kid` and `alg`.
    ///
    /// With a `kid`: the one key of that id, if it is pinned to `alg` (an id shared by two keys
    /// selects none). Without: every key pinned to `alg`, at most `MAX_CANDIDATES`.
    pub(crate) fn candidates<'s>(
        &'s self,
        kid: Option<&'s str>,
        alg: Algorithm,
    ) -> impl Iterator<Item = &'s VerifyKey> + 's {
        const MAX_CANDIDATES: usize = 8;
        let by_id = kid.and_then(|kid| match self.by_kid.get(kid).map(Vec::as_slice) {
            Some([i]) => self
                .keys
                .get(*i)
                .filter(|k| k.algs.contains(&alg))
                .map(|k| &**k),
            _ => None,
        });
        let without_id = self
            .keys
            .iter()
            .filter(move |k| kid.is_none() && k.algs.contains(&alg))
            .take(MAX_CANDIDATES)
            .map(|k| &**k);
        by_id.into_iter().chain(without_id)
    }
}

/// Where a JWK came from: symmetric keys are only accepted from trusted configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Configured by the operator (code, environment, a local file).
    Configured,
    /// Fetched from a JWKS URL.
    Fetched { allow_symmetric: bool },
}

/// Checks an HMAC key and returns its secret: `alg` must be HS256, HS384 or HS512, the secret
/// at least [`MIN_HMAC_SECRET_LEN`] bytes long. Problems name `setting`.
pub(crate) fn check_hmac(
    setting: &str,
    secret: impl Into<Secret>,
    alg: Algorithm,
) -> Result<Secret, ConfigError> {
    let secret = secret.into();
    if alg.family() != AlgorithmFamily::Hmac {
        return Err(ConfigError::new(
            setting,
            "an HMAC secret needs HS256, HS384 or HS512",
        ));
    }
    if secret.len() < MIN_HMAC_SECRET_LEN {
        return Err(ConfigError::new(
            setting,
            format!("the HMAC secret is shorter than {MIN_HMAC_SECRET_LEN} bytes"),
        ));
    }
    Ok(secret)
}

/// A key configured in code or the environment.
#[derive(Clone)]
pub struct JwtKey {
    inner: KeyMaterial,
    alg: Algorithm,
    kid: Option<String>,
    issuers: Vec<String>,
}

#[derive(Clone)]
enum KeyMaterial {
    Hmac(Secret),
    Pem(Vec<u8>),
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.inner {
            KeyMaterial::Hmac(_) => "hmac",
            KeyMaterial::Pem(_) => "pem",
        };
        f.debug_struct("JwtKey")
            .field("kind", &kind)
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .field("issuers", &self.issuers)
            .finish()
    }
}

impl JwtKey {
    /// An HMAC secret for `alg` (HS256, HS384 or HS512).
    ///
    /// # Errors
    ///
    /// When `alg` is not an HMAC algorithm or the secret is shorter than 32 bytes.
    pub fn hmac(secret: impl Into<Secret>, alg: Algorithm) -> Result<Self, ConfigError> {
        Ok(Self {
            inner: KeyMaterial::Hmac(check_hmac("jwt key", secret, alg)?),
            alg,
            kid: None,
            issuers: Vec::new(),
        })
    }

    /// A PEM public key (RSA, EC or Ed25519) pinned to `alg`.
    ///
    /// # Errors
    ///
    /// When the PEM does not parse as a key of `alg`'s family, or fails validation (RSA below
    /// 2048 bits, a bad Ed25519 point, a curve that does not match `alg`).
    pub fn pem(pem: impl AsRef<[u8]>, alg: Algorithm) -> Result<Self, ConfigError> {
        let key = Self {
            inner: KeyMaterial::Pem(pem.as_ref().to_vec()),
            alg,
            kid: None,
            issuers: Vec::new(),
        };
        key.build()?;
        Ok(key)
    }

    /// Names the key: a token whose header carries a `kid` is matched against it.
    #[must_use]
    pub fn kid(mut self, kid: impl Into<String>) -> Self {
        self.kid = Some(kid.into());
        self
    }

    /// Binds the key to an issuer: it verifies only tokens whose `iss` is exactly this (may be
    /// called several times: any one matches). Without it, the key is bound to the builder's
    /// [`issuer`](super::JwtBuilder::issuer)s. Give a shared secret its own issuer when the
    /// same authenticator also trusts an identity provider, so a holder of the secret cannot
    /// mint tokens in the provider's name.
    #[must_use]
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuers.push(issuer.into());
        self
    }

    /// The issuers this key is bound to by [`issuer`](Self::issuer).
    pub(crate) fn issuers(&self) -> &[String] {
        &self.issuers
    }

    /// Whether this is a shared (HMAC) secret.
    pub(crate) fn is_symmetric(&self) -> bool {
        matches!(self.inner, KeyMaterial::Hmac(_))
    }

    pub(crate) fn build(&self) -> Result<VerifyKey, ConfigError> {
        let bad = |msg: &str| ConfigError::new("jwt key", msg.to_owned());
        let key = match &self.inner {
            // jsonwebtoken copies the secret into the `DecodingKey` (a plain `Vec<u8>` that it
            // does not zeroize); our `Secret` is zeroized on drop, that copy is not.
            KeyMaterial::Hmac(s) => DecodingKey::from_secret(s.expose().as_bytes()),
            KeyMaterial::Pem(pem) => {
                let key = match self.alg.family() {
                    AlgorithmFamily::Rsa => DecodingKey::from_rsa_pem(pem),
                    AlgorithmFamily::Ec => DecodingKey::from_ec_pem(pem),
                    AlgorithmFamily::Ed => DecodingKey::from_ed_pem(pem),
                    AlgorithmFamily::Hmac => {
                        return Err(bad("a PEM key needs an RSA, EC or EdDSA algorithm"));
                    }
                }
                .map_err(|_| bad("the PEM is not a public key of the algorithm's family"))?;
                let jwk = Jwk::from_decoding_key(&key, Some(self.alg))
                    .map_err(|_| bad("the PEM key could not be read"))?;
                // Validate through the same checks as a JWK (size, curve, small order), and
                // verify with the key rebuilt from those checked components.
                key_from_jwk(&jwk, Origin::Configured)
                    .map_err(|m| bad(&m))?
                    .key
            }
        };
        // Configured keys never leave the set; the id only tells fetched keys apart.
        let id = match &self.inner {
            KeyMaterial::Hmac(_) => [0; 32],
            KeyMaterial::Pem(pem) => digest(pem),
        };
        Ok(VerifyKey {
            kid: self.kid.clone(),
            algs: vec![self.alg],
            key,
            id,
            issuers: Issuers::OneOf(self.issuers.clone()),
        })
    }
}

#[cfg(test)]
mod tests;
