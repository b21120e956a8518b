//! Keys from JWKs: per-key validation (`kid`, `use`, `key_ops`, sizes, curves, small-order
//! points) and algorithm pinning, for configured JWK sets, fetched JWKS documents and PEM
//! keys (checked through their JWK form).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, EllipticCurveKeyParameters, Jwk, JwkSet, KeyAlgorithm,
    OctetKeyParameters, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::{MAX_KEYS_PER_SET, MAX_KID_LEN, MIN_HMAC_SECRET_LEN, MIN_RSA_BITS, Origin, VerifyKey};
use crate::authenticators::jwt::claims::Issuers;
use crate::secret::digest;

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
        AlgorithmParameters::RSA(rsa) => check_rsa(&b64("n", &rsa.n)?, &b64("e", &rsa.e)?)?,
        AlgorithmParameters::EllipticCurve(ec) => check_ec(ec)?,
        AlgorithmParameters::OctetKeyPair(okp) => check_ed25519(&b64("x", &okp.x)?)?,
        AlgorithmParameters::OctetKey(oct) => check_oct(oct, origin)?,
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

/// EC: coordinates of the curve's length, not the all-zero point.
fn check_ec(ec: &EllipticCurveKeyParameters) -> Result<(), String> {
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
    Ok(())
}

/// `oct`: only from configuration (or a fetched set explicitly allowed to hold them), and at
/// least [`MIN_HMAC_SECRET_LEN`] bytes.
fn check_oct(oct: &OctetKeyParameters, origin: Origin) -> Result<(), String> {
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
    Ok(())
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

/// `first`, thirty `0xff` bytes and `0x7f`: little-endian p - 1, p and p + 1 (p = 2^255 - 19)
/// for `first` = `0xec`, `0xed`, `0xee`.
const fn near_p(first: u8) -> [u8; 32] {
    let mut point = [0xff; 32];
    point[0] = first;
    point[31] = 0x7f;
    point
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
    near_p(0xec),
    near_p(0xed),
    near_p(0xee),
];

/// Ed25519 public key: exactly 32 bytes (a short one panics a verifier), canonical (y < p),
/// and not of small order (which would accept forged signatures).
pub(super) fn check_ed25519(x: &[u8]) -> Result<(), String> {
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

/// The RFC 7638 thumbprint of a JWK (SHA-256, base64url): its required members in
/// lexicographic order, without whitespace; `None` for a key type without a thumbprint rule
/// or a missing or non-string member. The one implementation behind DPoP's `cnf.jkt` check
/// and the test kit's proof keys.
#[cfg(any(feature = "dpop", feature = "testing"))]
pub(crate) fn jwk_thumbprint(jwk: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    use sha2::Digest as _;
    let member = |name: &str| jwk.get(name).and_then(serde_json::Value::as_str);
    let names: &[&str] = match member("kty")? {
        "EC" => &["crv", "kty", "x", "y"],
        "OKP" => &["crv", "kty", "x"],
        "RSA" => &["e", "kty", "n"],
        "oct" => &["k", "kty"],
        _ => return None,
    };
    let mut canonical = String::from("{");
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            canonical.push(',');
        }
        canonical.push_str(&serde_json::to_string(name).ok()?);
        canonical.push(':');
        canonical.push_str(&serde_json::to_string(member(name)?).ok()?);
    }
    canonical.push('}');
    Some(URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes())))
}
