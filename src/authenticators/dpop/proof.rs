//! Checking one DPoP proof (RFC 9449 §4.3) in two steps. [`check`] does the cheap checks: size
//! and compact form, header (`typ: dpop+jwt`, an allowed asymmetric `alg`, a public `jwk` of
//! the matching type and size, no `crit`), claims (`jti`, `htm`, `htu`, `iat` within the
//! window, `ath`, the server nonce when nonces are on) and the key's thumbprint.
//! [`Checked::verify_signature`] checks the signature with the header's key: the authenticator
//! calls it only after the access token verified and named that thumbprint, so a caller
//! without a valid bound token cannot make the server spend a public-key verification on a
//! proof. Duplicate members in the header or claims invalidate the proof.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value};
use sha2::{Digest as _, Sha256};

use super::htu::Htu;
use super::nonce::Nonces;
use crate::error::AuthError;
use crate::strict_json::numeric_date;

/// Longest proof accepted (an RSA-8192 key in the header fits well inside).
pub(super) const MAX_PROOF_LEN: usize = 8 * 1024;
/// Longest `jti` accepted.
const MAX_JTI_LEN: usize = 256;
/// JWK members that only a private (or symmetric) key has.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];
/// RSA modulus sizes accepted, in bytes: 2048 to 4096 bits (the top bound caps the cost of a
/// verification).
const RSA_MODULUS_BYTES: std::ops::RangeInclusive<usize> = 256..=512;
/// Longest RSA public exponent accepted, in bytes (65537 is 3): a huge exponent would make
/// verification arbitrarily slow.
const RSA_MAX_EXPONENT_BYTES: usize = 4;

/// A proof whose cheap checks passed, its signature not yet verified.
#[derive(Debug)]
pub(super) struct Checked<'p> {
    /// RFC 7638 thumbprint of the proof key.
    pub(super) jkt: String,
    /// Digest of the key thumbprint and `jti`: the replay cache's key.
    pub(super) replay_id: [u8; 32],
    /// The proof's `iat`.
    pub(super) iat: u64,
    jwk: Map<String, Value>,
    alg: Algorithm,
    /// The first two segments, and the signature segment.
    signed: &'p str,
    signature: &'p str,
}

impl Checked<'_> {
    /// The signature, with the header's key (the key map is moved into the JWK, not copied;
    /// it is not needed after).
    pub(super) fn verify_signature(&mut self) -> Result<(), AuthError> {
        let bad = || {
            invalid(
                "the DPoP proof's signature is invalid",
                "dpop_bad_signature",
            )
        };
        let jwk: Jwk = serde_json::from_value(Value::Object(std::mem::take(&mut self.jwk)))
            .map_err(|_| malformed("dpop_bad_jwk"))?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|_| malformed("dpop_bad_jwk"))?;
        match jsonwebtoken::crypto::verify(self.signature, self.signed.as_bytes(), &key, self.alg) {
            Ok(true) => Ok(()),
            _ => Err(bad()),
        }
    }
}

/// What a proof must match.
pub(super) struct Expect<'a> {
    pub(super) algs: &'a [Algorithm],
    pub(super) window: u64,
    pub(super) now: SystemTime,
    pub(super) method: &'a str,
    pub(super) htu: &'a Htu,
    pub(super) parts: &'a http::request::Parts,
    pub(super) token: &'a str,
    pub(super) nonces: Option<&'a Nonces>,
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    jwk: Option<Map<String, Value>>,
    #[serde(default)]
    crit: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    jti: Option<Value>,
    #[serde(default)]
    htm: Option<Value>,
    #[serde(default)]
    htu: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
    #[serde(default)]
    ath: Option<Value>,
    #[serde(default)]
    nonce: Option<Value>,
}

fn invalid(description: &'static str, detail: &'static str) -> AuthError {
    AuthError::invalid_dpop_proof(description).with_detail(detail)
}

fn malformed(detail: &'static str) -> AuthError {
    invalid("malformed DPoP proof", detail)
}

/// The cheap checks of `proof` for this request and access token (everything but the
/// signature).
pub(super) fn check<'p>(proof: &'p str, want: &Expect<'_>) -> Result<Checked<'p>, AuthError> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(malformed("dpop_proof_too_long"));
    }
    let mut segments = proof.split('.');
    let (Some(h64), Some(p64), Some(sig), None) = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    ) else {
        return Err(malformed("dpop_not_compact_jws"));
    };
    let header: Header = decode_json(h64).ok_or_else(|| malformed("dpop_bad_header"))?;
    let alg = check_header_rules(&header, want.algs)?;
    let jwk = header.jwk.ok_or_else(|| malformed("dpop_no_jwk"))?;
    check_key(&jwk, alg)?;
    let claims: Claims = decode_json(p64).ok_or_else(|| malformed("dpop_bad_claims"))?;
    let (jti, iat) = check_claims(&claims, want)?;
    let jkt = thumbprint(&jwk).ok_or_else(|| malformed("dpop_bad_jwk"))?;
    let mut h = Sha256::new();
    h.update(jkt.as_bytes());
    h.update([0]);
    h.update(jti.as_bytes());
    let signed = proof
        .get(..h64.len() + 1 + p64.len())
        .ok_or_else(|| malformed("dpop_not_compact_jws"))?;
    Ok(Checked {
        jkt,
        replay_id: h.finalize().into(),
        iat,
        jwk,
        alg,
        signed,
        signature: sig,
    })
}

/// A base64url segment (canonical, unpadded) holding one JSON object.
fn decode_json<T: for<'de> Deserialize<'de>>(segment: &str) -> Option<T> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// `typ`, no `crit`, and an allowed `alg`.
fn check_header_rules(header: &Header, algs: &[Algorithm]) -> Result<Algorithm, AuthError> {
    if !header
        .typ
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("dpop+jwt"))
    {
        return Err(invalid(
            "the DPoP proof's typ must be dpop+jwt",
            "dpop_bad_typ",
        ));
    }
    if header.crit.is_some() {
        return Err(malformed("dpop_crit"));
    }
    header
        .alg
        .as_deref()
        .and_then(|a| a.parse::<Algorithm>().ok())
        .filter(|a| algs.contains(a))
        .ok_or_else(|| {
            invalid(
                "the DPoP proof's algorithm is not accepted",
                "dpop_alg_not_allowed",
            )
        })
}

fn member<'j>(jwk: &'j Map<String, Value>, name: &str) -> Option<&'j str> {
    jwk.get(name).and_then(Value::as_str)
}

/// A public key (no private members) whose type, curve and size suit `alg`.
fn check_key(jwk: &Map<String, Value>, alg: Algorithm) -> Result<(), AuthError> {
    if PRIVATE_MEMBERS.iter().any(|m| jwk.contains_key(*m)) {
        return Err(invalid(
            "the DPoP proof's jwk must be a public key",
            "dpop_private_key_in_jwk",
        ));
    }
    let fits = match (member(jwk, "kty"), alg) {
        (Some("EC"), Algorithm::ES256) => member(jwk, "crv") == Some("P-256"),
        (Some("EC"), Algorithm::ES384) => member(jwk, "crv") == Some("P-384"),
        (Some("OKP"), Algorithm::EdDSA) => member(jwk, "crv") == Some("Ed25519"),
        (
            Some("RSA"),
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512,
        ) => {
            let significant = |name: &str| {
                member(jwk, name)
                    .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                    .map(|v| v.iter().skip_while(|b| **b == 0).count())
            };
            significant("n").is_some_and(|n| RSA_MODULUS_BYTES.contains(&n))
                && significant("e").is_some_and(|e| (1..=RSA_MAX_EXPONENT_BYTES).contains(&e))
        }
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(malformed("dpop_jwk_does_not_fit_alg"))
    }
}

/// The claims, against the request. Returns `jti` and `iat`.
fn check_claims<'c>(claims: &'c Claims, want: &Expect<'_>) -> Result<(&'c str, u64), AuthError> {
    let text = |v: &'c Option<Value>| v.as_ref().and_then(Value::as_str);
    let jti = text(&claims.jti)
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or_else(|| malformed("dpop_bad_jti"))?;
    if text(&claims.htm) != Some(want.method) {
        return Err(invalid(
            "the DPoP proof was made for another method",
            "dpop_htm_mismatch",
        ));
    }
    if !text(&claims.htu).is_some_and(|u| want.htu.matches(u, want.parts)) {
        return Err(invalid(
            "the DPoP proof was made for another URI",
            "dpop_htu_mismatch",
        ));
    }
    let iat = claims
        .iat
        .as_ref()
        .and_then(numeric_date)
        .ok_or_else(|| malformed("dpop_bad_iat"))?;
    let now = want
        .now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if iat.abs_diff(now) > want.window {
        return Err(invalid(
            "the DPoP proof is too old or too far in the future",
            "dpop_iat_out_of_window",
        ));
    }
    let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(want.token.as_bytes()));
    if text(&claims.ath) != Some(ath.as_str()) {
        return Err(invalid(
            "the DPoP proof is not bound to this access token",
            "dpop_ath_mismatch",
        ));
    }
    if let Some(nonces) = want.nonces
        && !text(&claims.nonce).is_some_and(|n| nonces.valid(n, want.now))
    {
        return Err(AuthError::use_dpop_nonce(nonces.issue(want.now)).with_detail("dpop_nonce"));
    }
    Ok((jti, iat))
}

/// RFC 7638 thumbprint of the proof key (the crate's one implementation), for the key types
/// a proof may use (EC, RSA, OKP; never a symmetric `oct` key).
pub(super) fn thumbprint(jwk: &Map<String, Value>) -> Option<String> {
    if member(jwk, "kty") == Some("oct") {
        return None;
    }
    crate::authenticators::jwt::jwk_thumbprint(jwk)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// RFC 7638 §3.1's example key and thumbprint.
    #[test]
    fn thumbprint_matches_rfc_7638() {
        let jwk = json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        assert_eq!(
            thumbprint(jwk.as_object().unwrap()).as_deref(),
            Some("NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")
        );
        assert_eq!(
            thumbprint(json!({"kty": "oct", "k": "x"}).as_object().unwrap()),
            None
        );
        assert_eq!(
            thumbprint(json!({"kty": "EC", "crv": "P-256"}).as_object().unwrap()),
            None
        );
    }

    #[test]
    fn keys_must_be_public_and_fit_the_algorithm() {
        let ec = json!({"kty": "EC", "crv": "P-256", "x": "a", "y": "b"});
        let ec = ec.as_object().unwrap();
        assert!(check_key(ec, Algorithm::ES256).is_ok());
        assert!(check_key(ec, Algorithm::ES384).is_err());
        assert!(check_key(ec, Algorithm::RS256).is_err());
        let mut private = ec.clone();
        private.insert("d".into(), json!("secret"));
        assert_eq!(
            check_key(&private, Algorithm::ES256).unwrap_err().detail(),
            Some("dpop_private_key_in_jwk")
        );
        let small_rsa = json!({"kty": "RSA", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode([1u8; 128])});
        assert!(check_key(small_rsa.as_object().unwrap(), Algorithm::RS256).is_err());
        let huge_rsa = json!({"kty": "RSA", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode([1u8; 513])});
        assert!(check_key(huge_rsa.as_object().unwrap(), Algorithm::RS256).is_err());
        // A huge public exponent would make verification arbitrarily slow.
        let huge_e = json!({"kty": "RSA", "e": URL_SAFE_NO_PAD.encode([3u8; 512]), "n": URL_SAFE_NO_PAD.encode([1u8; 256])});
        assert!(check_key(huge_e.as_object().unwrap(), Algorithm::RS256).is_err());
        let ok_rsa = json!({"kty": "RSA", "e": "AQAB", "n": URL_SAFE_NO_PAD.encode([1u8; 256])});
        assert!(check_key(ok_rsa.as_object().unwrap(), Algorithm::PS256).is_ok());
    }
}
