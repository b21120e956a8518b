use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;

use super::jwk::check_ed25519;
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
