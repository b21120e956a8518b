//! JWT validation: every algorithm with committed fixtures, the attack catalogue, and the
//! JWKS cache against a JWKS server on loopback.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, Response, StatusCode};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::Jwk;
use mcp_auth::authenticators::jwt::jwks::JwksPolicy;
use mcp_auth::authenticators::jwt::{
    Algorithm, JwkSet, JwtAuthenticator, JwtKey, JwtLayer, JwtMinter,
};
use mcp_auth::{AuthContext, AuthError, AuthErrorKind};
use serde_json::{Value, json};
use tower::{Layer, ServiceExt, service_fn};

const AUD: &str = "https://mcp.example.com/mcp";
const ISS: &str = "https://as.example.com";
const SECRET: &str = "0123456789abcdef0123456789abcdef-hmac";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> serde_json::Map<String, Value> {
    serde_json::from_value(json!({
        "sub": "alice", "iss": ISS, "aud": AUD, "exp": now() + 600, "iat": now(), "scope": "data:read"
    }))
    .unwrap()
}

fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// Assembles a token from raw header and claims JSON, signed with `key` under `alg`.
fn raw_token(header: &str, claims: &str, key: &EncodingKey, alg: Algorithm) -> String {
    let message = format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()));
    let sig = jsonwebtoken::crypto::sign(message.as_bytes(), key, alg).unwrap();
    format!("{message}.{sig}")
}

fn hmac_auth() -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap()
}

fn hmac_minter() -> JwtMinter {
    JwtMinter::hmac(SECRET, Algorithm::HS256)
        .unwrap()
        .issuer(ISS)
        .audience(AUD)
}

fn rsa_auth() -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .key(JwtKey::pem(fixture("rsa_public.pem"), Algorithm::RS256).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap()
}

fn kind_and_detail(r: Result<AuthContext, AuthError>) -> (AuthErrorKind, Option<&'static str>) {
    let e = r.expect_err("token must be refused");
    (e.kind(), e.detail())
}

#[test]
fn every_algorithm_verifies_with_its_fixture_key() {
    let cases = [
        (Algorithm::RS256, "rsa"),
        (Algorithm::RS384, "rsa"),
        (Algorithm::RS512, "rsa"),
        (Algorithm::PS256, "rsa"),
        (Algorithm::PS384, "rsa"),
        (Algorithm::PS512, "rsa"),
        (Algorithm::ES256, "ec256"),
        (Algorithm::ES384, "ec384"),
        (Algorithm::EdDSA, "ed25519"),
    ];
    for (alg, name) in cases {
        let minter = JwtMinter::pem(fixture(&format!("{name}_private.pem")), alg)
            .unwrap()
            .issuer(ISS)
            .audience(AUD);
        let token = minter.mint("alice", ["data:read"]).unwrap();
        let auth = JwtAuthenticator::builder()
            .key(JwtKey::pem(fixture(&format!("{name}_public.pem")), alg).unwrap())
            .issuer(ISS)
            .audience(AUD)
            .build()
            .unwrap();
        let ctx = auth
            .verify(&token)
            .unwrap_or_else(|e| panic!("{alg:?}: {e:?}"));
        assert_eq!(ctx.subject(), "alice");
        assert_eq!(ctx.method().as_str(), "jwt");
        assert!(ctx.has_scope("data:read"));
    }
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let token = JwtMinter::hmac(SECRET, alg)
            .unwrap()
            .issuer(ISS)
            .audience(AUD)
            .mint("bob", ["x"])
            .unwrap();
        let auth = JwtAuthenticator::builder()
            .key(JwtKey::hmac(SECRET, alg).unwrap())
            .issuer(ISS)
            .audience(AUD)
            .build()
            .unwrap();
        assert_eq!(auth.verify(&token).unwrap().subject(), "bob", "{alg:?}");
    }
}

#[test]
fn a_key_only_verifies_the_algorithm_it_is_pinned_to() {
    // RS256-pinned key; a PS256 token from the same key pair is refused.
    let token = JwtMinter::pem(fixture("rsa_private.pem"), Algorithm::PS256)
        .unwrap()
        .issuer(ISS)
        .audience(AUD)
        .mint("alice", ["x"])
        .unwrap();
    assert_eq!(
        kind_and_detail(rsa_auth().verify(&token)).1,
        Some("no_matching_key")
    );
}

#[test]
fn rsa_keys_below_2048_bits_are_refused_at_load() {
    let err = JwtKey::pem(fixture("rsa1024_public.pem"), Algorithm::RS256).unwrap_err();
    assert!(err.to_string().contains("1024 bits"), "{err}");
}

#[test]
fn unsigned_tokens_are_refused_in_every_spelling() {
    let auth = hmac_auth();
    let payload = b64(serde_json::to_string(&claims()).unwrap().as_bytes());
    for alg in ["none", "None", "NONE", "nOnE", "", "hs256", "HS256 "] {
        let header = b64(format!(r#"{{"alg":"{alg}","typ":"JWT"}}"#).as_bytes());
        for sig in ["", "AAAA"] {
            let token = format!("{header}.{payload}.{sig}");
            assert_eq!(
                kind_and_detail(auth.verify(&token)).0,
                AuthErrorKind::InvalidToken,
                "{alg:?}"
            );
        }
    }
    let no_alg = format!("{}.{payload}.", b64(br#"{"typ":"JWT"}"#));
    assert_eq!(kind_and_detail(auth.verify(&no_alg)).1, Some("bad_header"));
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let pem = fixture("rsa_public.pem");
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let body = serde_json::to_string(&claims()).unwrap();
    let token = raw_token(
        header,
        &body,
        &EncodingKey::from_secret(&pem),
        Algorithm::HS256,
    );
    assert_eq!(
        kind_and_detail(rsa_auth().verify(&token)).1,
        Some("no_matching_key")
    );
}

#[test]
fn unknown_or_hostile_kids_select_no_key() {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let body = serde_json::to_string(&claims()).unwrap();
    let auth = JwtAuthenticator::builder()
        .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap().kid("k1"))
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap();
    let long = "k".repeat(5000);
    for kid in [
        "k2",
        "../../../../dev/null",
        "x' UNION SELECT 'k",
        "k1\n",
        &long,
    ] {
        let header = json!({"alg": "HS256", "kid": kid}).to_string();
        let token = raw_token(&header, &body, &key, Algorithm::HS256);
        assert_eq!(
            kind_and_detail(auth.verify(&token)).0,
            AuthErrorKind::InvalidToken,
            "{kid:?}"
        );
    }
    let header = json!({"alg": "HS256", "kid": "k1"}).to_string();
    assert!(
        auth.verify(&raw_token(&header, &body, &key, Algorithm::HS256))
            .is_ok()
    );
}

#[test]
fn embedded_key_headers_are_ignored() {
    let body = serde_json::to_string(&claims()).unwrap();
    // Attacker signs with their own key and ships it in `jwk`; `jku`/`x5u` point elsewhere.
    let attacker = EncodingKey::from_rsa_pem(&fixture("rsa2_private.pem")).unwrap();
    let attacker_jwk = Jwk::from_encoding_key(&attacker, Algorithm::RS256).unwrap();
    let header = json!({"alg": "RS256", "jwk": attacker_jwk, "jku": "https://evil.example/jwks", "x5u": "https://evil.example/x"});
    let forged = raw_token(&header.to_string(), &body, &attacker, Algorithm::RS256);
    assert_eq!(
        kind_and_detail(rsa_auth().verify(&forged)).1,
        Some("bad_signature")
    );
    // The same headers on a token signed with the real key change nothing.
    let real = EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).unwrap();
    let ok = raw_token(&header.to_string(), &body, &real, Algorithm::RS256);
    assert!(rsa_auth().verify(&ok).is_ok());
}

#[test]
fn any_crit_header_is_refused_and_nested_jwts_too() {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let body = serde_json::to_string(&claims()).unwrap();
    for header in [
        json!({"alg": "HS256", "crit": ["x-unknown"], "x-unknown": 1}),
        json!({"alg": "HS256", "crit": ["b64"], "b64": false}),
        json!({"alg": "HS256", "crit": []}),
        json!({"alg": "HS256", "cty": "jwt"}),
    ] {
        let token = raw_token(&header.to_string(), &body, &key, Algorithm::HS256);
        assert_eq!(
            kind_and_detail(hmac_auth().verify(&token)).0,
            AuthErrorKind::InvalidToken,
            "{header}"
        );
    }
}

#[test]
fn ecdsa_signature_of_zeros_is_refused() {
    let auth = JwtAuthenticator::builder()
        .key(JwtKey::pem(fixture("ec256_public.pem"), Algorithm::ES256).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap();
    let header = b64(br#"{"alg":"ES256"}"#);
    let payload = b64(serde_json::to_string(&claims()).unwrap().as_bytes());
    let token = format!("{header}.{payload}.{}", b64(&[0u8; 64]));
    assert_eq!(
        kind_and_detail(auth.verify(&token)).1,
        Some("bad_signature")
    );
}

#[test]
fn claim_failures_are_invalid_token_and_expiry_says_so() {
    let auth = hmac_auth();
    let m = hmac_minter();
    let mint = |edit: &dyn Fn(&mut serde_json::Map<String, Value>)| {
        let mut c = claims();
        edit(&mut c);
        m.mint_claims(c).unwrap()
    };
    let expired = mint(&|c| {
        c.insert("exp".into(), (now() - 120).into());
    });
    let err = auth.verify(&expired).unwrap_err();
    assert_eq!(
        (err.kind(), err.description()),
        (AuthErrorKind::Expired, Some("the access token expired"))
    );
    type Edit = Box<dyn Fn(&mut serde_json::Map<String, Value>)>;
    let cases: Vec<(&str, Edit)> = vec![
        (
            "audience_mismatch",
            Box::new(|c| {
                c.insert("aud".into(), "https://other.example.com/mcp".into());
            }),
        ),
        (
            "issuer_mismatch",
            Box::new(|c| {
                c.insert("iss".into(), "https://evil.example.com".into());
            }),
        ),
        (
            "not_yet_valid",
            Box::new(|c| {
                c.insert("nbf".into(), (now() + 3600).into());
            }),
        ),
        (
            "iat_in_future",
            Box::new(|c| {
                c.insert("iat".into(), (now() + 86_400).into());
            }),
        ),
    ];
    for (detail, edit) in cases {
        let (kind, d) = kind_and_detail(auth.verify(&mint(&*edit)));
        assert_eq!((kind, d), (AuthErrorKind::InvalidToken, Some(detail)));
    }
}

#[test]
fn tampered_payload_fails_the_signature() {
    let token = hmac_minter().mint("alice", ["data:read"]).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut c = claims();
    c.insert("scope".into(), "data:admin".into());
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(serde_json::to_string(&c).unwrap().as_bytes()),
        parts[2]
    );
    assert_eq!(
        kind_and_detail(hmac_auth().verify(&forged)).1,
        Some("bad_signature")
    );
}

#[test]
fn non_canonical_base64_and_odd_shapes_are_refused() {
    let token = hmac_minter().mint("alice", ["data:read"]).unwrap();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *token.as_bytes().last().unwrap();
    let idx = alphabet.iter().position(|&c| c == last).unwrap();
    let variant = alphabet[idx ^ 1] as char; // same decoded bytes, different unused bits
    let non_canonical = format!("{}{variant}", &token[..token.len() - 1]);
    assert!(hmac_auth().verify(&non_canonical).is_err());
    let parts: Vec<&str> = token.split('.').collect();
    for odd in [
        format!("{}.{}", parts[0], parts[1]),
        format!("{}.{}.", parts[0], parts[1]),
        format!("{token}.x"),
        format!("{token}="),
        format!(" {token}"),
        token.replace('-', "+"),
    ] {
        if odd != token {
            assert!(hmac_auth().verify(&odd).is_err(), "{odd}");
        }
    }
}

#[test]
fn oversized_token_is_refused_before_decoding() {
    let mut c = claims();
    c.insert("pad".into(), "x".repeat(20 * 1024).into());
    let token = hmac_minter().mint_claims(c).unwrap();
    assert_eq!(
        kind_and_detail(hmac_auth().verify(&token)).1,
        Some("token_too_long")
    );
}

#[test]
fn duplicate_claims_or_header_members_are_refused() {
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let body = format!(
        r#"{{"sub":"alice","iss":"{ISS}","aud":"{AUD}","exp":{},"scope":"read","scope":"read admin"}}"#,
        now() + 600
    );
    let token = raw_token(r#"{"alg":"HS256"}"#, &body, &key, Algorithm::HS256);
    assert_eq!(
        kind_and_detail(hmac_auth().verify(&token)).1,
        Some("bad_claims")
    );
    let body = serde_json::to_string(&claims()).unwrap();
    let token = raw_token(
        r#"{"alg":"HS256","kid":"a","kid":"b"}"#,
        &body,
        &key,
        Algorithm::HS256,
    );
    assert_eq!(
        kind_and_detail(hmac_auth().verify(&token)).1,
        Some("bad_header")
    );
}

#[test]
fn typ_at_jwt_is_enforced_when_configured() {
    let auth = JwtAuthenticator::builder()
        .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .require_at_jwt()
        .build()
        .unwrap();
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let body = serde_json::to_string(&claims()).unwrap();
    for (typ, ok) in [
        ("at+jwt", true),
        ("application/AT+JWT", true),
        ("JWT", false),
    ] {
        let token = raw_token(
            &json!({"alg": "HS256", "typ": typ}).to_string(),
            &body,
            &key,
            Algorithm::HS256,
        );
        assert_eq!(auth.verify(&token).is_ok(), ok, "{typ}");
    }
}

#[test]
fn required_claims_and_the_claims_hook_apply() {
    let auth = JwtAuthenticator::builder()
        .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .require_claims(["tenant"])
        .validate_claims(|c| match c.get("tenant").and_then(Value::as_str) {
            Some("acme") => Ok(()),
            _ => Err("wrong tenant".into()),
        })
        .build()
        .unwrap();
    let m = hmac_minter();
    assert!(auth.verify(&m.mint("a", ["x"]).unwrap()).is_err());
    let mut c = claims();
    c.insert("tenant".into(), "acme".into());
    assert!(auth.verify(&m.mint_claims(c.clone()).unwrap()).is_ok());
    c.insert("tenant".into(), "other".into());
    assert_eq!(
        kind_and_detail(auth.verify(&m.mint_claims(c).unwrap())).1,
        Some("claims_check_failed")
    );
}

#[test]
fn typed_claims_are_available_to_handlers() {
    #[derive(serde::Deserialize)]
    struct Mine {
        sub: String,
        scope: String,
    }
    let ctx = hmac_auth()
        .verify(&hmac_minter().mint("alice", ["a", "b"]).unwrap())
        .unwrap();
    let mine: Mine = ctx.claims_as().unwrap().unwrap();
    assert_eq!((mine.sub.as_str(), mine.scope.as_str()), ("alice", "a b"));
}

#[test]
fn configuration_problems_are_reported_together() {
    let err = JwtAuthenticator::builder()
        .jwks_url("http://idp.example.com/jwks")
        .leeway(Duration::from_secs(3600))
        .build()
        .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.problems().len(), 4, "{text}");
    assert!(
        text.contains("https")
            && text.contains("audience")
            && text.contains("300")
            && text.contains("no expected issuer"),
        "{text}"
    );
    assert!(
        JwtAuthenticator::builder().audience(AUD).build().is_err(),
        "no key source"
    );
}

#[test]
fn verified_cache_never_extends_validity() {
    let auth = JwtAuthenticator::builder()
        .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
        .issuer(ISS)
        .audience(AUD)
        .leeway(Duration::ZERO)
        .verified_token_cache(16)
        .build()
        .unwrap();
    let mut c = claims();
    c.insert("exp".into(), (now() + 2).into());
    let token = hmac_minter().mint_claims(c).unwrap();
    assert!(auth.verify(&token).is_ok());
    assert!(auth.verify(&token).is_ok(), "served from the cache");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(
        auth.verify(&token).unwrap_err().kind(),
        AuthErrorKind::Expired
    );
}

// --- through the layer -----------------------------------------------------------------

async fn status_of(auth: JwtAuthenticator, token: Option<&str>) -> Response<()> {
    let svc = JwtLayer::new(auth).layer(service_fn(|req: Request<()>| async move {
        assert!(req.extensions().get::<AuthContext>().is_some());
        Ok::<_, Infallible>(Response::new(()))
    }));
    let mut req = Request::builder();
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    svc.oneshot(req.body(()).unwrap())
        .await
        .unwrap()
        .map(|_| ())
}

#[tokio::test]
async fn layer_answers_401_with_challenges_and_200_for_good_tokens() {
    let good = hmac_minter().mint("alice", ["data:read"]).unwrap();
    assert_eq!(
        status_of(hmac_auth(), Some(&good)).await.status(),
        StatusCode::OK
    );
    let res = status_of(hmac_auth(), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let expired = {
        let mut c = claims();
        c.insert("exp".into(), (now() - 600).into());
        hmac_minter().mint_claims(c).unwrap()
    };
    let res = status_of(hmac_auth(), Some(&expired)).await;
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer error=\"invalid_token\", error_description=\"the access token expired\""
    );
}

// --- JWKS over loopback ----------------------------------------------------------------

#[derive(Default)]
struct Idp {
    jwks: Mutex<Value>,
    fail: Mutex<bool>,
    delay: Mutex<Duration>,
    fetches: AtomicUsize,
    discoveries: AtomicUsize,
    issuer: Mutex<String>,
    cache_control: Mutex<Option<String>>,
}

async fn start_idp() -> (Arc<Idp>, String) {
    let idp = Arc::new(Idp::default());
    let state = idp.clone();
    let app = axum::Router::new()
        .route(
            "/jwks",
            axum::routing::get(move || {
                let s = state.clone();
                async move {
                    s.fetches.fetch_add(1, Ordering::SeqCst);
                    let delay = *s.delay.lock().unwrap();
                    tokio::time::sleep(delay).await;
                    let mut headers = http::HeaderMap::new();
                    if let Some(cc) = s.cache_control.lock().unwrap().clone() {
                        headers.insert("cache-control", cc.parse().unwrap());
                    }
                    if *s.fail.lock().unwrap() {
                        return (StatusCode::INTERNAL_SERVER_ERROR, headers, String::new());
                    }
                    (StatusCode::OK, headers, s.jwks.lock().unwrap().to_string())
                }
            }),
        )
        .route(
            "/.well-known/openid-configuration",
            axum::routing::get({
                let s = idp.clone();
                move || {
                    let s = s.clone();
                    async move {
                        s.discoveries.fetch_add(1, Ordering::SeqCst);
                        let iss = s.issuer.lock().unwrap().clone();
                        json!({"issuer": iss, "jwks_uri": format!("{iss}/jwks")}).to_string()
                    }
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *idp.issuer.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (idp, base)
}

fn jwk_for(private: &str, alg: Algorithm, kid: &str) -> Value {
    let key = EncodingKey::from_rsa_pem(&fixture(private)).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    serde_json::to_value(jwk).unwrap()
}

fn rsa_minter(private: &str, kid: &str) -> JwtMinter {
    JwtMinter::pem(fixture(private), Algorithm::RS256)
        .unwrap()
        .kid(kid)
        .issuer(ISS)
        .audience(AUD)
}

fn fast_policy() -> JwksPolicy {
    let mut p = JwksPolicy::default();
    p.min_refresh_gap = Duration::from_millis(300);
    p.fetch_timeout = Duration::from_millis(500);
    p
}

fn remote_auth(url: String, policy: JwksPolicy) -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .jwks_url(url)
        .issuer(ISS)
        .audience(AUD)
        .jwks_policy(policy)
        .build()
        .unwrap()
}

#[tokio::test]
async fn cold_cache_fetches_once_for_many_concurrent_requests() {
    let (idp, base) = start_idp().await;
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]});
    *idp.delay.lock().unwrap() = Duration::from_millis(100);
    let auth = remote_auth(format!("{base}/jwks"), JwksPolicy::default());
    let token = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (a, t) = (auth.clone(), token.clone());
            tokio::spawn(async move { a.verify_async(&t).await })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().subject(), "alice");
    }
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn rotated_key_is_picked_up_and_unknown_kid_floods_are_rate_limited() {
    let (idp, base) = start_idp().await;
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]});
    let auth = remote_auth(format!("{base}/jwks"), fast_policy());
    let a = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    assert!(auth.verify_async(&a).await.is_ok());
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);

    // A flood of random kids: at most one fetch per gap.
    let start = Instant::now();
    let mut refused = 0;
    for i in 0..200 {
        let t = rsa_minter("rsa_private.pem", &format!("random-{i}"))
            .mint("x", ["x"])
            .unwrap();
        if auth.verify_async(&t).await.is_err() {
            refused += 1;
        }
    }
    let elapsed = start.elapsed();
    assert_eq!(refused, 200);
    let allowed = 1 + 1 + (elapsed.as_millis() / 300) as usize;
    let fetches = idp.fetches.load(Ordering::SeqCst);
    assert!(fetches <= allowed, "{fetches} fetches in {elapsed:?}");
    // Known kids still verify without a fetch.
    let before = idp.fetches.load(Ordering::SeqCst);
    assert!(auth.verify_async(&a).await.is_ok());
    assert_eq!(idp.fetches.load(Ordering::SeqCst), before);

    // Rotation: the IdP adds key "b"; after the gap, its first use fetches and succeeds.
    *idp.jwks.lock().unwrap() = json!({"keys": [
        jwk_for("rsa_private.pem", Algorithm::RS256, "a"),
        jwk_for("rsa2_private.pem", Algorithm::RS256, "b"),
    ]});
    tokio::time::sleep(Duration::from_millis(350)).await;
    let b = rsa_minter("rsa2_private.pem", "b")
        .mint("bob", ["x"])
        .unwrap();
    assert_eq!(auth.verify_async(&b).await.unwrap().subject(), "bob");
}

#[tokio::test]
async fn provider_down_at_start_gives_503_then_recovers() {
    let (idp, base) = start_idp().await;
    *idp.fail.lock().unwrap() = true;
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]});
    let auth = remote_auth(format!("{base}/jwks"), fast_policy());
    let token = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    let res = status_of(auth.clone(), Some(&token)).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    assert!(!res.headers().contains_key("www-authenticate"));
    *idp.fail.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(status_of(auth, Some(&token)).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn slow_provider_is_bounded_by_the_fetch_timeout() {
    let (idp, base) = start_idp().await;
    *idp.delay.lock().unwrap() = Duration::from_secs(5);
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]});
    let auth = remote_auth(format!("{base}/jwks"), fast_policy());
    let token = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    let start = Instant::now();
    let err = auth.verify_async(&token).await.unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Unavailable);
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn discovery_finds_the_jwks_and_checks_the_issuer() {
    let (idp, base) = start_idp().await;
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]});
    let auth = JwtAuthenticator::builder()
        .oidc_issuer(&base)
        .audience(AUD)
        .build()
        .unwrap();
    let token = JwtMinter::pem(fixture("rsa_private.pem"), Algorithm::RS256)
        .unwrap()
        .kid("a")
        .issuer(&base)
        .audience(AUD)
        .mint("alice", ["x"])
        .unwrap();
    assert_eq!(
        auth.verify_async(&token).await.unwrap().issuer(),
        Some(base.as_str())
    );
    // A token from another issuer is refused even though the key verifies it.
    let other = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    assert_eq!(
        auth.verify_async(&other).await.unwrap_err().detail(),
        Some("issuer_mismatch")
    );

    // Metadata naming another issuer is not trusted: no keys, 503.
    *idp.issuer.lock().unwrap() = "https://evil.example.com".into();
    let auth = JwtAuthenticator::builder()
        .oidc_issuer(&base)
        .audience(AUD)
        .build()
        .unwrap();
    assert_eq!(
        auth.verify_async(&token).await.unwrap_err().kind(),
        AuthErrorKind::Unavailable
    );
}

#[tokio::test]
async fn bad_keys_in_a_fetched_set_are_skipped_not_fatal() {
    let (idp, base) = start_idp().await;
    *idp.jwks.lock().unwrap() = json!({"keys": [
        {"kty": "oct", "k": b64(SECRET.as_bytes()), "kid": "sym"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"},
        {"kty": "weird", "kid": "w"},
        jwk_for("rsa_private.pem", Algorithm::RS256, "a"),
    ]});
    let auth = remote_auth(format!("{base}/jwks"), fast_policy());
    let token = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    assert!(auth.verify_async(&token).await.is_ok());
    // The published symmetric key must not verify an HS256 token.
    let header = r#"{"alg":"HS256","kid":"sym"}"#;
    let body = serde_json::to_string(&claims()).unwrap();
    let forged = raw_token(
        header,
        &body,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        Algorithm::HS256,
    );
    assert_eq!(
        auth.verify_async(&forged).await.unwrap_err().kind(),
        AuthErrorKind::InvalidToken
    );
}

#[test]
fn static_jwk_sets_are_accepted_from_configuration() {
    let set: JwkSet = serde_json::from_value(
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]}),
    )
    .unwrap();
    let auth = JwtAuthenticator::builder()
        .jwk_set(set)
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap();
    let token = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    assert!(auth.verify(&token).is_ok());
}

#[tokio::test]
async fn cache_control_max_age_schedules_a_background_refresh() {
    let (idp, base) = start_idp().await;
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]});
    *idp.cache_control.lock().unwrap() = Some("public, max-age=1".into());
    let mut policy = fast_policy();
    policy.min_ttl = Duration::from_millis(500);
    let auth = remote_auth(format!("{base}/jwks"), policy);
    let token = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    assert!(auth.verify_async(&token).await.is_ok());
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
    // Within max-age: no fetch.
    assert!(auth.verify_async(&token).await.is_ok());
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
    // Past max-age: the request is served from the current keys and a refresh runs behind it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(auth.verify_async(&token).await.is_ok());
    for _ in 0..50 {
        if idp.fetches.load(Ordering::SeqCst) == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn last_good_keys_serve_through_failures_for_a_bounded_time() {
    let (idp, base) = start_idp().await;
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]});
    *idp.cache_control.lock().unwrap() = Some("max-age=0".into());
    let mut policy = fast_policy();
    policy.min_ttl = Duration::from_millis(200);
    policy.max_stale = Duration::from_millis(1000);
    let auth = remote_auth(format!("{base}/jwks"), policy);
    let token = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    assert!(auth.verify_async(&token).await.is_ok());
    *idp.fail.lock().unwrap() = true;
    // Past the lifetime, refreshes fail, the last good keys keep serving.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(auth.verify_async(&token).await.is_ok());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(auth.verify_async(&token).await.is_ok());
    assert!(
        idp.fetches.load(Ordering::SeqCst) >= 2,
        "refreshes were attempted"
    );
    // Past lifetime + max_stale: the keys are no longer used; 503, not 401.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let err = auth.verify_async(&token).await.unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Unavailable);
    assert!(err.retry_after().is_some());
}

#[tokio::test]
async fn oversized_jwks_responses_are_refused() {
    let (idp, base) = start_idp().await;
    let big = "x".repeat(300 * 1024);
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")], "pad": big});
    let auth = remote_auth(format!("{base}/jwks"), fast_policy());
    let token = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    assert_eq!(
        auth.verify_async(&token).await.unwrap_err().kind(),
        AuthErrorKind::Unavailable
    );
    // Under the default 256 KiB cap the same keys load.
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]});
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(auth.verify_async(&token).await.is_ok());
}

// --- issuers bound to key sources (review M2) ------------------------------------------

const TOOLS_ISS: &str = "https://tools.internal";

#[test]
fn a_key_source_without_an_expected_issuer_is_a_config_error() {
    let problems = |b: mcp_auth::authenticators::jwt::JwtBuilder| -> Vec<String> {
        b.audience(AUD)
            .build()
            .unwrap_err()
            .problems()
            .iter()
            .map(|p| format!("{}: {}", p.setting(), p.message()))
            .collect()
    };
    let hmac = || JwtKey::hmac(SECRET, Algorithm::HS256).unwrap();
    for (what, b) in [
        ("hmac key", JwtAuthenticator::builder().key(hmac())),
        (
            "pem key",
            JwtAuthenticator::builder()
                .key(JwtKey::pem(fixture("rsa_public.pem"), Algorithm::RS256).unwrap()),
        ),
        (
            "jwk set",
            JwtAuthenticator::builder().jwk_set(
                serde_json::from_value(
                    json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]}),
                )
                .unwrap(),
            ),
        ),
        (
            "jwks url",
            JwtAuthenticator::builder().jwks_url("https://idp.example.com/jwks"),
        ),
        (
            "static key beside discovery",
            JwtAuthenticator::builder()
                .oidc_issuer("https://idp.example.com")
                .key(hmac()),
        ),
    ] {
        let p = problems(b);
        assert_eq!(p.len(), 1, "{what}: {p:?}");
        assert!(
            p[0].starts_with("jwt issuer:") && p[0].contains("allow_any_issuer"),
            "{what}: {p:?}"
        );
    }
    // Discovery binds its keys to the discovered issuer; a per-key issuer binds a key.
    assert!(
        JwtAuthenticator::builder()
            .oidc_issuer("https://idp.example.com")
            .key(hmac().issuer(TOOLS_ISS))
            .audience(AUD)
            .build()
            .is_ok()
    );
}

#[test]
fn allow_any_issuer_is_an_explicit_opt_out() {
    let auth = JwtAuthenticator::builder()
        .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
        .allow_any_issuer()
        .audience(AUD)
        .build()
        .unwrap();
    let m = JwtMinter::hmac(SECRET, Algorithm::HS256)
        .unwrap()
        .audience(AUD);
    for iss in [Some(ISS), Some("https://elsewhere.example"), None] {
        let m = match iss {
            Some(i) => m.clone().issuer(i),
            None => m.clone(),
        };
        let ctx = auth.verify(&m.mint("alice", ["x"]).unwrap()).unwrap();
        assert_eq!(ctx.issuer(), iss);
    }
    // Without the opt-out, the builder's issuer binds: a token without `iss` is refused.
    assert_eq!(
        kind_and_detail(
            hmac_auth().verify(
                &JwtMinter::hmac(SECRET, Algorithm::HS256)
                    .unwrap()
                    .audience(AUD)
                    .mint("alice", ["x"])
                    .unwrap()
            )
        )
        .1,
        Some("issuer_mismatch")
    );
}

#[test]
fn an_hmac_key_may_not_share_the_identity_providers_issuer() {
    for b in [
        // Bound through the builder's issuer, which is also the JWKS's.
        JwtAuthenticator::builder()
            .jwks_url("https://idp.example.com/jwks")
            .issuer("https://idp.example.com")
            .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap()),
        // Bound explicitly to the discovered issuer.
        JwtAuthenticator::builder()
            .oidc_issuer("https://idp.example.com")
            .key(
                JwtKey::hmac(SECRET, Algorithm::HS256)
                    .unwrap()
                    .issuer("https://idp.example.com"),
            ),
        // A symmetric key in a configured JWK set, bound to the JWKS's issuer.
        JwtAuthenticator::builder()
            .oidc_issuer("https://idp.example.com")
            .issuer("https://idp.example.com")
            .jwk_set(
                serde_json::from_value(
                    json!({"keys": [{"kty": "oct", "k": b64(SECRET.as_bytes()), "alg": "HS256"}]}),
                )
                .unwrap(),
            ),
        // Unbound (any issuer) beside a JWKS.
        JwtAuthenticator::builder()
            .oidc_issuer("https://idp.example.com")
            .allow_any_issuer()
            .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap()),
    ] {
        let err = b.audience(AUD).build().unwrap_err();
        assert!(err.to_string().contains("HMAC key"), "{err}");
    }
}

/// Review M2: with a shared secret and an identity provider in one authenticator, each key
/// vouches only for its own issuer.
#[tokio::test]
async fn static_and_jwks_keys_only_verify_their_own_issuers_tokens() {
    let (idp, base) = start_idp().await;
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]});
    let auth = JwtAuthenticator::builder()
        .oidc_issuer(&base)
        .key(
            JwtKey::hmac(SECRET, Algorithm::HS256)
                .unwrap()
                .issuer(TOOLS_ISS),
        )
        .audience(AUD)
        .build()
        .unwrap();
    let hmac = |iss: &str| {
        JwtMinter::hmac(SECRET, Algorithm::HS256)
            .unwrap()
            .issuer(iss)
            .audience(AUD)
            .mint("alice", ["x"])
            .unwrap()
    };
    let rsa = |iss: &str| {
        JwtMinter::pem(fixture("rsa_private.pem"), Algorithm::RS256)
            .unwrap()
            .kid("a")
            .issuer(iss)
            .audience(AUD)
            .mint("alice", ["x"])
            .unwrap()
    };
    let ctx = auth.verify_async(&hmac(TOOLS_ISS)).await.unwrap();
    assert_eq!(ctx.issuer(), Some(TOOLS_ISS));
    let ctx = auth.verify_async(&rsa(&base)).await.unwrap();
    assert_eq!(ctx.issuer(), Some(base.as_str()));
    // The secret's holder cannot mint the identity provider's tokens...
    let err = auth.verify_async(&hmac(&base)).await.unwrap_err();
    assert_eq!(err.detail(), Some("issuer_mismatch"));
    // ...nor the identity provider the secret's.
    let err = auth.verify_async(&rsa(TOOLS_ISS)).await.unwrap_err();
    assert_eq!(err.detail(), Some("issuer_mismatch"));
}

// --- the verified-token cache and key removal (review L4) -------------------------------

#[tokio::test]
async fn a_cached_token_is_refused_once_its_key_leaves_the_jwks() {
    let (idp, base) = start_idp().await;
    *idp.jwks.lock().unwrap() = json!({"keys": [
        jwk_for("rsa_private.pem", Algorithm::RS256, "a"),
        jwk_for("rsa2_private.pem", Algorithm::RS256, "b"),
    ]});
    let auth = JwtAuthenticator::builder()
        .jwks_url(format!("{base}/jwks"))
        .issuer(ISS)
        .audience(AUD)
        .jwks_policy(fast_policy())
        .verified_token_cache(100)
        .build()
        .unwrap();
    let a = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    let b = rsa_minter("rsa2_private.pem", "b")
        .mint("bob", ["x"])
        .unwrap();
    assert!(auth.verify_async(&a).await.is_ok());
    assert!(auth.verify_async(&b).await.is_ok());
    assert!(auth.verify(&a).is_ok(), "served from the cache");
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);

    // The provider withdraws key "a"; a refresh (here forced by an unknown kid) loads the set.
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa2_private.pem", Algorithm::RS256, "b")]});
    tokio::time::sleep(Duration::from_millis(350)).await;
    let unknown = rsa_minter("rsa2_private.pem", "c")
        .mint("x", ["x"])
        .unwrap();
    assert!(auth.verify_async(&unknown).await.is_err());
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 2);

    let err = auth.verify_async(&a).await.unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::InvalidToken, "{err:?}");
    assert!(auth.verify(&a).is_err());
    // Tokens of the keys still published stay cached and valid.
    assert_eq!(auth.verify(&b).unwrap().subject(), "bob");
}

// --- JWKS policy and lifetimes: no panics, no disabled limits (review L2, I11) ----------

#[test]
fn jwks_policies_that_would_panic_or_disable_limits_are_config_errors() {
    type Edit = fn(&mut JwksPolicy);
    let cases: [(&str, Edit); 4] = [
        ("jwks min_ttl", |p| {
            p.min_ttl = Duration::from_secs(600);
            p.max_ttl = Duration::from_secs(60);
        }),
        ("jwks min_refresh_gap", |p| {
            p.min_refresh_gap = Duration::ZERO
        }),
        ("jwks fetch_timeout", |p| p.fetch_timeout = Duration::ZERO),
        ("jwks max_body_bytes", |p| p.max_body_bytes = 0),
    ];
    for (setting, edit) in cases {
        let mut policy = JwksPolicy::default();
        edit(&mut policy);
        let err = JwtAuthenticator::builder()
            .jwks_url("https://idp.example.com/jwks")
            .issuer(ISS)
            .audience(AUD)
            .jwks_policy(policy)
            .build()
            .unwrap_err();
        let settings: Vec<&str> = err.problems().iter().map(|p| p.setting()).collect();
        assert_eq!(settings, [setting]);
    }
}

#[tokio::test]
async fn huge_ttls_and_max_age_do_not_overflow() {
    let (idp, base) = start_idp().await;
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]});
    *idp.cache_control.lock().unwrap() = Some(format!("max-age={}", u64::MAX));
    let mut policy = fast_policy();
    policy.min_ttl = Duration::MAX;
    policy.max_ttl = Duration::MAX;
    policy.max_stale = Duration::MAX;
    policy.default_ttl = Duration::MAX;
    policy.fetch_timeout = Duration::MAX;
    let auth = remote_auth(format!("{base}/jwks"), policy);
    let token = rsa_minter("rsa_private.pem", "a")
        .mint("alice", ["x"])
        .unwrap();
    assert!(auth.verify_async(&token).await.is_ok());
    assert!(auth.verify_async(&token).await.is_ok());
    assert_eq!(idp.fetches.load(Ordering::SeqCst), 1);
}

#[test]
fn minting_with_a_huge_ttl_is_an_error_not_a_panic() {
    for ttl in [
        Duration::MAX,
        Duration::from_secs(u64::MAX / 2),
        Duration::from_secs(1 << 53),
    ] {
        let err = hmac_minter().ttl(ttl).mint("alice", ["x"]).unwrap_err();
        assert!(err.to_string().contains("ttl"), "{err}");
    }
    let long = hmac_minter()
        .ttl(Duration::from_secs(100 * 365 * 24 * 3600))
        .mint("alice", ["x"])
        .unwrap();
    assert!(hmac_auth().verify(&long).is_ok());
}

// --- discovery (review I7) ----------------------------------------------------------------

#[tokio::test]
async fn a_discovered_jwks_uri_is_discovered_again_after_a_failed_fetch() {
    let (idp, base) = start_idp().await;
    *idp.jwks.lock().unwrap() =
        json!({"keys": [jwk_for("rsa_private.pem", Algorithm::RS256, "a")]});
    let auth = JwtAuthenticator::builder()
        .oidc_issuer(&base)
        .audience(AUD)
        .jwks_policy(fast_policy())
        .build()
        .unwrap();
    let mint = |kid: &str| {
        JwtMinter::pem(fixture("rsa_private.pem"), Algorithm::RS256)
            .unwrap()
            .kid(kid)
            .issuer(&base)
            .audience(AUD)
            .mint("alice", ["x"])
            .unwrap()
    };
    assert!(auth.verify_async(&mint("a")).await.is_ok());
    assert_eq!(idp.discoveries.load(Ordering::SeqCst), 1);
    // A refresh while the JWKS fails forgets the discovered URI...
    *idp.fail.lock().unwrap() = true;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(auth.verify_async(&mint("new-1")).await.is_err());
    assert_eq!(idp.discoveries.load(Ordering::SeqCst), 1);
    // ...so the next refresh asks the metadata again.
    *idp.fail.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(auth.verify_async(&mint("new-2")).await.is_err());
    assert_eq!(idp.discoveries.load(Ordering::SeqCst), 2);
    assert!(auth.verify_async(&mint("a")).await.is_ok());
}
