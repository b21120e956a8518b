//! The attack list of RFC 9449 §4.3 and the MCP DPoP extension, one test each, against a
//! JWT verifier with tokens bound (or not) to the proof key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::EncodingKey;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use super::*;
use crate::AuthErrorKind;
use crate::authenticators::jwt::{JwtAuthenticator, JwtKey, JwtMinter};

const SECRET: &str = "0123456789abcdef0123456789abcdef";
const ISS: &str = "https://as.example.com";
const URL: &str = "https://mcp.example.com/mcp";

struct Key {
    enc: EncodingKey,
    alg: Algorithm,
    jwk: Map<String, Value>,
}

fn key(alg: Algorithm) -> Key {
    let rc = match alg {
        Algorithm::ES256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        Algorithm::ES384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        Algorithm::EdDSA => &rcgen::PKCS_ED25519,
        _ => unreachable!("test keys: ES256, ES384, EdDSA"),
    };
    let pair = rcgen::KeyPair::generate_for(rc).unwrap();
    let pem = pair.serialize_pem();
    let enc = match alg {
        Algorithm::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()).unwrap(),
        _ => EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
    };
    let raw = pair.public_key_raw();
    let jwk = match alg {
        Algorithm::EdDSA => {
            json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(raw)})
        }
        _ => {
            let (x, y) = raw[1..].split_at((raw.len() - 1) / 2);
            let crv = if alg == Algorithm::ES256 {
                "P-256"
            } else {
                "P-384"
            };
            json!({"kty": "EC", "crv": crv, "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)})
        }
    };
    let Value::Object(jwk) = jwk else {
        unreachable!()
    };
    Key { enc, alg, jwk }
}

impl Key {
    fn jkt(&self) -> String {
        proof::thumbprint(&self.jwk).unwrap()
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn sign_with(header: &Value, claims: &Value, key: &Key) -> String {
    let signed = format!("{}.{}", b64(header), b64(claims));
    let sig = jsonwebtoken::crypto::sign(signed.as_bytes(), &key.enc, key.alg).unwrap();
    format!("{signed}.{sig}")
}

fn ath(token: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

fn header(key: &Key) -> Value {
    json!({"typ": "dpop+jwt", "alg": format!("{:?}", key.alg), "jwk": key.jwk})
}

fn claims(token: &str, method: &str, url: &str) -> Value {
    let jti = crate::secret::random_urlsafe::<16>("").unwrap();
    json!({"jti": jti, "htm": method, "htu": url, "iat": now(), "ath": ath(token)})
}

fn proof(key: &Key, token: &str) -> String {
    sign_with(&header(key), &claims(token, "POST", URL), key)
}

fn jwt() -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .key(JwtKey::hmac(SECRET, jsonwebtoken::Algorithm::HS256).unwrap())
        .issuer(ISS)
        .audience(URL)
        .build()
        .unwrap()
}

fn token(jkt: Option<&str>) -> String {
    let mut c = Map::new();
    c.insert("sub".into(), "alice".into());
    c.insert("scope".into(), "data:read".into());
    if let Some(jkt) = jkt {
        c.insert("cnf".into(), json!({"jkt": jkt}));
    }
    JwtMinter::hmac(SECRET, jsonwebtoken::Algorithm::HS256)
        .unwrap()
        .issuer(ISS)
        .audience(URL)
        .mint_claims(c)
        .unwrap()
}

fn dpop(mode: DpopMode) -> DpopAuthenticator<JwtAuthenticator> {
    DpopAuthenticator::builder(jwt())
        .resource_url(URL)
        .mode(mode)
        .build()
        .unwrap()
}

fn request(scheme: &str, token: &str, proofs: &[&str]) -> Parts {
    let mut b = http::Request::post("/mcp").header("authorization", format!("{scheme} {token}"));
    for p in proofs {
        b = b.header("dpop", *p);
    }
    b.body(()).unwrap().into_parts().0
}

async fn refused(auth: &DpopAuthenticator<JwtAuthenticator>, parts: &Parts) -> AuthError {
    auth.authenticate(parts).await.unwrap_err()
}

#[tokio::test]
async fn a_valid_proof_with_its_bound_token_is_accepted_once() {
    let auth = dpop(DpopMode::Optional);
    let k = key(Algorithm::ES256);
    let t = token(Some(&k.jkt()));
    let p = proof(&k, &t);
    let ctx = auth
        .authenticate(&request("DPoP", &t, &[&p]))
        .await
        .unwrap();
    assert_eq!(ctx.subject(), "alice");
    assert_eq!(ctx.confirmation().jkt(), Some(k.jkt().as_str()));
    // The same proof again: a replay.
    let err = refused(&auth, &request("DPoP", &t, &[&p])).await;
    assert_eq!(err.detail(), Some("dpop_replay"));
    assert_eq!(err.kind(), AuthErrorKind::InvalidDpopProof);
    // A fresh proof works.
    let p2 = proof(&k, &t);
    assert!(
        auth.authenticate(&request("dpop", &t, &[&p2]))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn every_proof_algorithm_of_the_default_list_that_tests_can_make_works() {
    let auth = dpop(DpopMode::Required);
    for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
        let k = key(alg);
        let t = token(Some(&k.jkt()));
        let ctx = auth
            .authenticate(&request("DPoP", &t, &[&proof(&k, &t)]))
            .await;
        assert!(ctx.is_ok(), "{alg:?}: {ctx:?}");
    }
}

#[tokio::test]
async fn a_missing_or_repeated_proof_is_refused() {
    let auth = dpop(DpopMode::Optional);
    let k = key(Algorithm::ES256);
    let t = token(Some(&k.jkt()));
    for proofs in [vec![], vec![proof(&k, &t), proof(&k, &t)]] {
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let err = refused(&auth, &request("DPoP", &t, &refs)).await;
        assert_eq!(err.detail(), Some("dpop_proof_count"), "{}", proofs.len());
    }
}

/// Each case changes one thing in an otherwise valid proof.
#[tokio::test]
async fn each_broken_claim_or_header_is_refused_with_its_reason() {
    let auth = dpop(DpopMode::Optional);
    let k = key(Algorithm::ES256);
    let other = key(Algorithm::ES256);
    let t = token(Some(&k.jkt()));
    let with = |f: &dyn Fn(&mut Value, &mut Value)| {
        let (mut h, mut c) = (header(&k), claims(&t, "POST", URL));
        f(&mut h, &mut c);
        sign_with(&h, &c, &k)
    };
    let cases: Vec<(&str, String)> = vec![
        ("dpop_htm_mismatch", with(&|_, c| c["htm"] = "GET".into())),
        ("dpop_htm_mismatch", with(&|_, c| c["htm"] = "post".into())),
        (
            "dpop_htu_mismatch",
            with(&|_, c| c["htu"] = "https://other.example.com/mcp".into()),
        ),
        (
            "dpop_htu_mismatch",
            with(&|_, c| c["htu"] = "https://mcp.example.com/mcp/other".into()),
        ),
        (
            "dpop_htu_mismatch",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("htu");
            }),
        ),
        (
            "dpop_iat_out_of_window",
            with(&|_, c| c["iat"] = (now() - 303).into()),
        ),
        (
            "dpop_iat_out_of_window",
            with(&|_, c| c["iat"] = (now() + 303).into()),
        ),
        ("dpop_bad_iat", with(&|_, c| c["iat"] = "yesterday".into())),
        (
            "dpop_bad_iat",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("iat");
            }),
        ),
        (
            "dpop_bad_jti",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("jti");
            }),
        ),
        ("dpop_bad_jti", with(&|_, c| c["jti"] = "".into())),
        (
            "dpop_ath_mismatch",
            with(&|_, c| c["ath"] = ath("another-token").into()),
        ),
        (
            "dpop_ath_mismatch",
            with(&|_, c| {
                c.as_object_mut().unwrap().remove("ath");
            }),
        ),
        ("dpop_bad_typ", with(&|h, _| h["typ"] = "JWT".into())),
        (
            "dpop_bad_typ",
            with(&|h, _| {
                h.as_object_mut().unwrap().remove("typ");
            }),
        ),
        (
            "dpop_no_jwk",
            with(&|h, _| {
                h.as_object_mut().unwrap().remove("jwk");
            }),
        ),
        (
            "dpop_private_key_in_jwk",
            with(&|h, _| h["jwk"]["d"] = "c2VjcmV0".into()),
        ),
        ("dpop_crit", with(&|h, _| h["crit"] = json!(["exp"]))),
        (
            "dpop_alg_not_allowed",
            with(&|h, _| h["alg"] = "RS512".into()),
        ),
        (
            "dpop_jwk_does_not_fit_alg",
            with(&|h, _| h["alg"] = "ES384".into()),
        ),
        // Signed by `k`, but the header names another key: the token is bound to `k`.
        (
            "dpop_key_mismatch",
            with(&|h, _| h["jwk"] = Value::Object(other.jwk.clone())),
        ),
        ("dpop_not_compact_jws", "a.b".into()),
        ("dpop_not_compact_jws", "a.b.c.d".into()),
        ("dpop_bad_header", "!!!.e30.sig".into()),
        ("dpop_proof_too_long", "a".repeat(proof::MAX_PROOF_LEN + 1)),
    ];
    for (detail, p) in cases {
        let err = refused(&auth, &request("DPoP", &t, &[&p])).await;
        assert_eq!(err.detail(), Some(detail), "{detail}");
        assert_eq!(err.kind(), AuthErrorKind::InvalidDpopProof, "{detail}");
    }
    // The header names the key the token is bound to, but `k` signed: a bad signature.
    let t_other = token(Some(&other.jkt()));
    let (mut h, c) = (header(&k), claims(&t_other, "POST", URL));
    h["jwk"] = Value::Object(other.jwk.clone());
    let forged = sign_with(&h, &c, &k);
    let err = refused(&auth, &request("DPoP", &t_other, &[&forged])).await;
    assert_eq!(err.detail(), Some("dpop_bad_signature"));
    // A tampered signature.
    let good = proof(&k, &t);
    let (signed, sig) = good.rsplit_once('.').unwrap();
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[3] ^= 1;
    let tampered = format!("{signed}.{}", URL_SAFE_NO_PAD.encode(raw));
    let err = refused(&auth, &request("DPoP", &t, &[&tampered])).await;
    assert_eq!(err.detail(), Some("dpop_bad_signature"));
}

#[tokio::test]
async fn a_configured_iat_window_replaces_the_default() {
    let narrow = DpopAuthenticator::builder(jwt())
        .resource_url(URL)
        .iat_window(Duration::from_secs(30))
        .build()
        .unwrap();
    let wide = DpopAuthenticator::builder(jwt())
        .resource_url(URL)
        .iat_window(Duration::from_secs(600))
        .build()
        .unwrap();
    let k = key(Algorithm::ES256);
    let t = token(Some(&k.jkt()));
    let aged = |age: i64| {
        let mut c = claims(&t, "POST", URL);
        c["iat"] = (now() as i64 - age).into();
        sign_with(&header(&k), &c, &k)
    };
    // 60 s old (or ahead): within the default 300 s, outside a 30 s window.
    for age in [60, -60] {
        let err = refused(&narrow, &request("DPoP", &t, &[&aged(age)])).await;
        assert_eq!(err.detail(), Some("dpop_iat_out_of_window"), "age {age}");
        assert!(
            dpop(DpopMode::Optional)
                .authenticate(&request("DPoP", &t, &[&aged(age)]))
                .await
                .is_ok(),
            "age {age} under the default window"
        );
    }
    // 400 s old: outside the default, within a 600 s window.
    assert!(
        wide.authenticate(&request("DPoP", &t, &[&aged(400)]))
            .await
            .is_ok()
    );
    let err = refused(
        &dpop(DpopMode::Optional),
        &request("DPoP", &t, &[&aged(400)]),
    )
    .await;
    assert_eq!(err.detail(), Some("dpop_iat_out_of_window"));
}

#[tokio::test]
async fn hmac_and_none_proofs_are_refused() {
    let auth = dpop(DpopMode::Optional);
    let k = key(Algorithm::ES256);
    let t = token(Some(&k.jkt()));
    let c = claims(&t, "POST", URL);
    let none = format!(
        "{}.{}.",
        b64(&json!({"typ": "dpop+jwt", "alg": "none", "jwk": k.jwk})),
        b64(&c)
    );
    let hmac_key = EncodingKey::from_secret(SECRET.as_bytes());
    let h = json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": {"kty": "oct", "k": URL_SAFE_NO_PAD.encode(SECRET)}});
    let signed = format!("{}.{}", b64(&h), b64(&c));
    let sig = jsonwebtoken::crypto::sign(signed.as_bytes(), &hmac_key, Algorithm::HS256).unwrap();
    let hmac = format!("{signed}.{sig}");
    for p in [none, hmac] {
        let err = refused(&auth, &request("DPoP", &t, &[&p])).await;
        assert_eq!(err.detail(), Some("dpop_alg_not_allowed"));
    }
    // Nor can HMAC be configured.
    let err = DpopAuthenticator::builder(jwt())
        .resource_url(URL)
        .algorithms([Algorithm::ES256, Algorithm::HS256])
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("asymmetric"));
}

#[tokio::test]
async fn the_token_must_be_bound_to_the_proof_key() {
    let auth = dpop(DpopMode::Optional);
    let k = key(Algorithm::ES256);
    let other = key(Algorithm::ES256);
    // Bound to another key.
    let t = token(Some(&other.jkt()));
    let err = refused(&auth, &request("DPoP", &t, &[&proof(&k, &t)])).await;
    assert_eq!(err.detail(), Some("dpop_key_mismatch"));
    // Not bound at all.
    let t = token(None);
    let err = refused(&auth, &request("DPoP", &t, &[&proof(&k, &t)])).await;
    assert_eq!(err.detail(), Some("dpop_unbound_token"));
    assert_eq!(err.kind(), AuthErrorKind::InvalidToken);
}

#[tokio::test]
async fn a_bound_token_sent_as_bearer_is_a_downgrade_and_refused() {
    let k = key(Algorithm::ES256);
    let bound = token(Some(&k.jkt()));
    for mode in [DpopMode::Optional, DpopMode::Required] {
        let auth = dpop(mode);
        // With or without the proof header next to it.
        for proofs in [vec![], vec![proof(&k, &bound)]] {
            let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
            let err = refused(&auth, &request("Bearer", &bound, &refs)).await;
            assert_eq!(err.kind(), AuthErrorKind::InvalidToken);
            let want = if mode == DpopMode::Required {
                "dpop_required"
            } else {
                "dpop_bound_token_as_bearer"
            };
            assert_eq!(err.detail(), Some(want));
        }
    }
    // The plain JWT layer, without DPoP configured, refuses it too.
    let parts = request("Bearer", &bound, &[]);
    let err = jwt().authenticate(&parts).await.unwrap_err();
    assert_eq!(err.detail(), Some("dpop_bound_token_as_bearer"));
}

#[tokio::test]
async fn optional_mode_accepts_unbound_bearer_tokens_and_required_mode_does_not() {
    let t = token(None);
    assert!(
        dpop(DpopMode::Optional)
            .authenticate(&request("Bearer", &t, &[]))
            .await
            .is_ok()
    );
    let err = refused(&dpop(DpopMode::Required), &request("Bearer", &t, &[])).await;
    assert_eq!(err.detail(), Some("dpop_required"));
    // No Authorization at all: no credentials (a chain moves on).
    let parts = http::Request::post("/mcp").body(()).unwrap().into_parts().0;
    let err = dpop(DpopMode::Required)
        .authenticate(&parts)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::MissingCredentials);
}

#[tokio::test]
async fn nonces_are_asked_for_then_accepted() {
    let auth = DpopAuthenticator::builder(jwt())
        .resource_url(URL)
        .nonces(vec![7u8; 32], Duration::from_secs(60))
        .build()
        .unwrap();
    let k = key(Algorithm::ES256);
    let t = token(Some(&k.jkt()));
    let err = refused(&auth, &request("DPoP", &t, &[&proof(&k, &t)])).await;
    assert_eq!(err.kind(), AuthErrorKind::UseDpopNonce);
    let nonce = err.dpop_nonce().unwrap().to_owned();
    let mut c = claims(&t, "POST", URL);
    c["nonce"] = nonce.clone().into();
    let p = sign_with(&header(&k), &c, &k);
    assert!(auth.authenticate(&request("DPoP", &t, &[&p])).await.is_ok());
    // A made-up nonce is refused with a fresh one.
    c["nonce"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    c["jti"] = "another".into();
    let p = sign_with(&header(&k), &c, &k);
    let err = refused(&auth, &request("DPoP", &t, &[&p])).await;
    assert_eq!(err.kind(), AuthErrorKind::UseDpopNonce);
}

#[tokio::test]
async fn htu_follows_the_public_url_not_the_request_host() {
    let auth = dpop(DpopMode::Optional);
    let k = key(Algorithm::ES256);
    let t = token(Some(&k.jkt()));
    // The proof names the Host the attacker sent: refused, whatever Host says.
    let c = claims(&t, "POST", "http://127.0.0.1:8080/mcp");
    let p = sign_with(&header(&k), &c, &k);
    let mut parts = request("DPoP", &t, &[&p]);
    parts
        .headers
        .insert("host", "127.0.0.1:8080".parse().unwrap());
    assert_eq!(
        refused(&auth, &parts).await.detail(),
        Some("dpop_htu_mismatch")
    );
    // Normalised forms of the public URL pass.
    let c = claims(&t, "POST", "HTTPS://MCP.EXAMPLE.COM:443/mcp?x=1#f");
    let p = sign_with(&header(&k), &c, &k);
    assert!(auth.authenticate(&request("DPoP", &t, &[&p])).await.is_ok());
}

#[tokio::test]
async fn challenges_offer_dpop_with_its_algorithms_and_put_proof_errors_there() {
    use crate::rejection::{Challenge, Rejection};
    let auth = dpop(DpopMode::Optional);
    let ch = Challenge::with_schemes(auth.schemes());
    let err = AuthError::invalid_dpop_proof("bad proof");
    let values: Vec<String> = Rejection::new(&err, &ch)
        .www_authenticate()
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        values,
        [
            "Bearer".to_owned(),
            "DPoP algs=\"ES256 ES384 EdDSA PS256 RS256\", error=\"invalid_dpop_proof\", error_description=\"bad proof\"".to_owned()
        ]
    );
    let res = Rejection::new(&AuthError::use_dpop_nonce("n-1"), &ch).default_response();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["dpop-nonce"], "n-1");
}

#[test]
fn configuration_problems_are_reported_together() {
    let err = DpopAuthenticator::builder(jwt())
        .algorithms([])
        .iat_window(Duration::from_secs(3600))
        .nonces(vec![1u8; 8], Duration::from_secs(60))
        .build()
        .unwrap_err()
        .to_string();
    for setting in ["dpop_htu", "dpop_algs", "dpop_iat_window", "dpop_nonce_key"] {
        assert!(err.contains(setting), "{setting}: {err}");
    }
    assert!(
        DpopAuthenticator::builder(jwt())
            .resource_url("/mcp")
            .build()
            .is_err()
    );
    assert!(
        DpopAuthenticator::builder(jwt())
            .resource_url(URL)
            .public_origin("https://mcp.example.com")
            .build()
            .is_err()
    );
}

/// The proof's signature is checked only for a valid token bound to its key: a forged
/// token next to any proof is refused for the token, before public-key work on the proof.
#[tokio::test]
async fn the_proof_signature_is_only_checked_for_a_valid_bound_token() {
    let auth = dpop(DpopMode::Optional);
    let k = key(Algorithm::ES256);
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJldmUifQ.AAAA";
    let good = proof(&k, forged);
    let (signed, _) = good.rsplit_once('.').unwrap();
    let bad_signature = format!("{signed}.AAAA");
    let err = refused(&auth, &request("DPoP", forged, &[&bad_signature])).await;
    assert_eq!(err.kind(), AuthErrorKind::InvalidToken);
    assert_ne!(err.detail(), Some("dpop_bad_signature"));
}
