//! Verification keys: loading, validation and algorithm pinning.
//!
//! Every key is validated when loaded, from any source, and carries exactly the algorithms it
//! may verify (RFC 8725 §3.1): from configuration, from the JWK's own `alg`, or from its key
//! type. A token's header `alg` only selects among keys; it never widens what a key accepts.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};

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

/// Builds and validates the keys of a JWK set. Bad keys are skipped with a logged reason;
/// the returned list holds the good ones (at most [`MAX_KEYS_PER_SET`]).
pub(crate) fn keys_from_jwk_set(set: &JwkSet, origin: Origin) -> (Vec<VerifyKey>, Vec<String>) {
    let mut keys = Vec::new();
    let mut skipped = Vec::new();
    for (i, jwk) in set.keys.iter().enumerate() {
        if keys.len() >= MAX_KEYS_PER_SET {
            skipped.push(format!(
                "key {i}: more than {MAX_KEYS_PER_SET} keys in the set"
            ));
            continue;
        }
        match key_from_jwk(jwk, origin) {
            Ok(k) => keys.push(k),
            Err(reason) => {
                tracing::warn!(target: crate::telemetry::JWT_TARGET, index = i, kid = ?jwk.common.key_id, %reason, "JWK skipped");
                skipped.push(format!("key {i}: {reason}"));
            }
        }
    }
    (keys, skipped)
}

/// Parses a JWKS document key by key, so one malformed or unknown key does not spoil the set.
pub(crate) fn keys_from_json(
    body: &[u8],
    origin: Origin,
) -> Result<(Vec<VerifyKey>, Vec<String>), String> {
    #[derive(serde::Deserialize)]
    struct Doc {
        keys: Vec<serde_json::Value>,
    }
    let doc: Doc = serde_json::from_slice(body).map_err(|_| "not a JWK set".to_owned())?;
    let mut parsed = Vec::new();
    let mut skipped = Vec::new();
    for (i, v) in doc.keys.into_iter().enumerate() {
        match serde_json::from_value::<Jwk>(v) {
            Ok(jwk) => parsed.push(jwk),
            Err(_) => skipped.push(format!("key {i}: not a supported JWK")),
        }
    }
    let (keys, more) = keys_from_jwk_set(&JwkSet { keys: parsed }, origin);
    skipped.extend(more);
    Ok((keys, skipped))
}

fn b64(field: &str, value: &str) -> Result<Vec<u8>, String> {
    URL_SAFE_NO_PAD
        .decode(value)
        .map_err(|_| format!("`{field}` is not base64url"))
}

/// The algorithms a key may verify: the JWK's `alg` if present (checked against the key type),
/// else the one algorithm its type implies.
fn pinned_algs(jwk: &Jwk) -> Result<Vec<Algorithm>, String> {
    let implied: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => &[Algorithm::ES256],
            EllipticCurve::P384 => &[Algorithm::ES384],
            _ => return Err("unsupported elliptic curve".into()),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => &[Algorithm::EdDSA],
            _ => return Err("unsupported OKP curve".into()),
        },
        AlgorithmParameters::OctetKey(_) => &[Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
        _ => return Err("unsupported key type".into()),
    };
    match jwk.common.key_algorithm {
        Some(ka) => {
            let alg =
                key_algorithm(ka).ok_or_else(|| "`alg` is not a signature algorithm".to_owned())?;
            if implied.contains(&alg) {
                Ok(vec![alg])
            } else {
                Err("`alg` does not match the key type".into())
            }
        }
        // Without `alg`, one algorithm per key type (RFC 8725 §3.1): RSA → RS256, oct → HS256.
        None => implied
            .first()
            .map(|a| vec![*a])
            .ok_or_else(|| "unsupported key type".to_owned()),
    }
}

fn key_algorithm(ka: KeyAlgorithm) -> Option<Algorithm> {
    Some(match ka {
        KeyAlgorithm::HS256 => Algorithm::HS256,
        KeyAlgorithm::HS384 => Algorithm::HS384,
        KeyAlgorithm::HS512 => Algorithm::HS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// Validates one JWK and builds its verification key.
pub(crate) fn key_from_jwk(jwk: &Jwk, origin: Origin) -> Result<VerifyKey, String> {
    if let Some(kid) = &jwk.common.key_id
        && (kid.is_empty() || kid.len() > MAX_KID_LEN)
    {
        return Err("`kid` is empty or too long".into());
    }
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("`use` is `enc`".into());
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops
            .iter()
            .any(|op| matches!(op, jsonwebtoken::jwk::KeyOperations::Verify))
    {
        return Err("`key_ops` does not allow `verify`".into());
    }
    let algs = pinned_algs(jwk)?;
    match &jwk.algorithm {
        AlgorithmParameters::RSA(rsa) => {
            let n = b64("n", &rsa.n)?;
            let e = b64("e", &rsa.e)?;
            check_rsa(&n, &e)?;
        }
        AlgorithmParameters::EllipticCurve(ec) => {
            let (x, y) = (b64("x", &ec.x)?, b64("y", &ec.y)?);
            let len = if ec.curve == EllipticCurve::P256 {
                32
            } else {
                48
            };
            if x.len() != len || y.len() != len {
                return Err("EC coordinates have the wrong length for the curve".into());
            }
            if x.iter().all(|&b| b == 0) && y.iter().all(|&b| b == 0) {
                return Err("EC point is not on the curve".into());
            }
        }
        AlgorithmParameters::OctetKeyPair(okp) => check_ed25519(&b64("x", &okp.x)?)?,
        AlgorithmParameters::OctetKey(oct) => {
            if let Origin::Fetched {
                allow_symmetric: false,
            } = origin
            {
                return Err("symmetric (`oct`) keys are not accepted from a fetched JWKS".into());
            }
            // The decoded secret is wiped when dropped; jsonwebtoken keeps its own copy
            // inside the `DecodingKey`, which cannot be zeroized from here.
            if zeroize::Zeroizing::new(b64("k", &oct.value)?).len() < MIN_HMAC_SECRET_LEN {
                return Err(format!(
                    "symmetric key shorter than {MIN_HMAC_SECRET_LEN} bytes"
                ));
            }
        }
        _ => return Err("unsupported key type".into()),
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|_| "key material is invalid".to_owned())?;
    let id = serde_json::to_vec(jwk)
        .map(|v| digest(&zeroize::Zeroizing::new(v)))
        .map_err(|_| "key material is invalid".to_owned())?;
    Ok(VerifyKey {
        kid: jwk.common.key_id.clone(),
        algs,
        key,
        id,
        issuers: Issuers::Any,
    })
}

/// RSA: modulus of at least 2048 bits, odd public exponent between 3 and 2^32.
fn check_rsa(n: &[u8], e: &[u8]) -> Result<(), String> {
    let n = strip_zeros(n);
    let bits = n
        .first()
        .map_or(0, |&b| (n.len() - 1) * 8 + (8 - b.leading_zeros() as usize));
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA key of {bits} bits (at least {MIN_RSA_BITS} required)"
        ));
    }
    let e = strip_zeros(e);
    let odd = e.last().is_some_and(|b| b & 1 == 1);
    let too_small = matches!(e, [b] if *b < 3);
    if e.len() > 4 || !odd || too_small {
        return Err("RSA public exponent is invalid".into());
    }
    Ok(())
}

fn strip_zeros(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
    b.get(start..).unwrap_or_default()
}

/// Encodings of the Ed25519 points of small order (libsodium's blocklist), compared with the
/// sign bit cleared.
const ED25519_SMALL_ORDER: [[u8; 32]; 7] = [
    [0; 32],
    [
        1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0,
    ],
    [
        0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98,
        0xf0, 0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53,
        0xfc, 0x05,
    ],
    [
        0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67,
        0x0f, 0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac,
        0x03, 0x7a,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x7f,
    ],
];

/// Ed25519 public key: exactly 32 bytes (a short one panics a verifier), canonical (y < p),
/// and not of small order (which would accept forged signatures).
pub(crate) fn check_ed25519(x: &[u8]) -> Result<(), String> {
    let x: &[u8; 32] = x
        .try_into()
        .map_err(|_| format!("Ed25519 key of {} bytes (32 required)", x.len()))?;
    let mut masked = *x;
    masked[31] &= 0x7f;
    if ED25519_SMALL_ORDER.contains(&masked) {
        return Err("Ed25519 key of small order".into());
    }
    // y >= p = 2^255 - 19 is a non-canonical encoding.
    if masked[0] >= 0xed && masked[1..31].iter().all(|&b| b == 0xff) && masked[31] == 0x7f {
        return Err("Ed25519 key is not canonically encoded".into());
    }
    Ok(())
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
        let secret = secret.into();
        if !matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            return Err(ConfigError::new(
                "jwt key",
                "an HMAC secret needs HS256, HS384 or HS512",
            ));
        }
        if secret.len() < MIN_HMAC_SECRET_LEN {
            return Err(ConfigError::new(
                "jwt key",
                format!("the HMAC secret is shorter than {MIN_HMAC_SECRET_LEN} bytes"),
            ));
        }
        Ok(Self {
            inner: KeyMaterial::Hmac(secret),
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
                let key = match self.alg {
                    Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512 => DecodingKey::from_rsa_pem(pem),
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem),
                    Algorithm::EdDSA => DecodingKey::from_ed_pem(pem),
                    _ => return Err(bad("a PEM key needs an RSA, EC or EdDSA algorithm")),
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
mod tests {
    use super::*;

    fn jwk(json: serde_json::Value) -> Jwk {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn ed25519_small_order_and_short_keys_are_refused() {
        assert!(check_ed25519(&[0u8; 31]).is_err());
        assert!(check_ed25519(&[0u8; 33]).is_err());
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(
            check_ed25519(&identity)
                .unwrap_err()
                .contains("small order")
        );
        identity[31] = 0x80; // sign bit set: same point
        assert!(
            check_ed25519(&identity)
                .unwrap_err()
                .contains("small order")
        );
        let mut non_canonical = [0xffu8; 32];
        non_canonical[0] = 0xf0;
        non_canonical[31] = 0x7f;
        assert!(
            check_ed25519(&non_canonical)
                .unwrap_err()
                .contains("canonical")
        );
        let mut fine = [7u8; 32];
        fine[31] = 0x12;
        assert!(check_ed25519(&fine).is_ok());
    }

    #[test]
    fn short_okp_jwk_is_skipped_not_fatal() {
        let set: JwkSet = serde_json::from_value(serde_json::json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"},
            {"kty": "OKP", "crv": "Ed25519", "kid": "good",
             "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
        ]}))
        .unwrap();
        let (keys, skipped) = keys_from_jwk_set(
            &set,
            Origin::Fetched {
                allow_symmetric: false,
            },
        );
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("good"));
        assert_eq!(keys[0].algs, [Algorithm::EdDSA]);
        assert!(skipped[0].contains("32 required"), "{skipped:?}");
    }

    #[test]
    fn fetched_symmetric_keys_are_refused_unless_allowed() {
        let k = jwk(serde_json::json!({"kty": "oct", "k": URL_SAFE_NO_PAD.encode([7u8; 32])}));
        assert!(
            key_from_jwk(
                &k,
                Origin::Fetched {
                    allow_symmetric: false
                }
            )
            .is_err()
        );
        let key = key_from_jwk(
            &k,
            Origin::Fetched {
                allow_symmetric: true,
            },
        )
        .unwrap();
        assert_eq!(key.algs, [Algorithm::HS256]);
    }

    #[test]
    fn small_rsa_keys_are_refused() {
        let n = URL_SAFE_NO_PAD.encode([0xc5u8; 128]); // 1024 bits
        let k = jwk(serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB"}));
        assert!(
            key_from_jwk(&k, Origin::Configured)
                .unwrap_err()
                .contains("1024 bits")
        );
    }

    #[test]
    fn jwk_alg_pins_the_key_and_must_match_its_type() {
        let n = URL_SAFE_NO_PAD.encode([0xc5u8; 256]);
        let k = jwk(serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "PS384"}));
        assert_eq!(
            key_from_jwk(&k, Origin::Configured).unwrap().algs,
            [Algorithm::PS384]
        );
        let k = jwk(serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB"}));
        assert_eq!(
            key_from_jwk(&k, Origin::Configured).unwrap().algs,
            [Algorithm::RS256]
        );
        let k = jwk(serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB", "alg": "ES256"}));
        assert!(key_from_jwk(&k, Origin::Configured).is_err());
    }

    #[test]
    fn encryption_keys_are_skipped() {
        let n = URL_SAFE_NO_PAD.encode([0xc5u8; 256]);
        let k = jwk(serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB", "use": "enc"}));
        assert!(key_from_jwk(&k, Origin::Configured).is_err());
    }

    #[test]
    fn shared_kid_selects_no_key() {
        let mk = |kid: &str| VerifyKey {
            kid: Some(kid.into()),
            algs: vec![Algorithm::HS256],
            key: DecodingKey::from_secret(&[1; 32]),
            id: [0; 32],
            issuers: Issuers::Any,
        };
        let set = KeySet::new(vec![mk("a"), mk("a"), mk("b")]);
        assert_eq!(set.candidates(Some("a"), Algorithm::HS256).count(), 0);
        assert_eq!(set.candidates(Some("b"), Algorithm::HS256).count(), 1);
        assert_eq!(set.candidates(Some("b"), Algorithm::HS384).count(), 0);
        assert_eq!(set.candidates(None, Algorithm::HS256).count(), 3);
    }

    #[test]
    fn short_hmac_secret_is_a_config_error() {
        assert!(JwtKey::hmac("too-short", Algorithm::HS256).is_err());
        assert!(JwtKey::hmac("x".repeat(32), Algorithm::RS256).is_err());
        assert!(JwtKey::hmac("x".repeat(32), Algorithm::HS256).is_ok());
    }
}
