//! Several issuers on one JWT authenticator (`TrustedIssuer`): routing by the token's `iss`,
//! per-issuer keys and rules, issuer templates with tenants, unknown issuers refused without
//! a fetch, and one issuer's key source being down affecting its own tokens only (JWKS
//! servers on loopback).

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{Request, Response, StatusCode};
use jsonwebtoken::EncodingKey;
use jsonwebtoken::jwk::Jwk;
use mcp_auth::authenticators::jwt::jwks::JwksPolicy;
use mcp_auth::authenticators::jwt::{
    Algorithm, JwtAuthenticator, JwtKey, JwtLayer, JwtMinter, MAX_TENANTS, MAX_TRUSTED_ISSUERS,
    TrustedIssuer,
};
use mcp_auth::{AuthContext, AuthError, AuthErrorKind};
use serde_json::{Map, Value, json};
use tower::{Layer, ServiceExt, service_fn};

const AUD: &str = "https://mcp.example.com/mcp";
const A: &str = "https://idp-a.example.com";
const B: &str = "https://idp-b.example.com";
const C: &str = "https://idp-c.example.com";
const TEMPLATE: &str = "https://idp.test/{tenant}/v2.0";
const SECRET: &str = "0123456789abcdef0123456789abcdef-hmac";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn rsa_key(public: &str, kid: &str) -> JwtKey {
    JwtKey::pem(fixture(public), Algorithm::RS256)
        .unwrap()
        .kid(kid)
}

fn rsa_minter(private: &str, kid: &str, iss: &str) -> JwtMinter {
    JwtMinter::pem(fixture(private), Algorithm::RS256)
        .unwrap()
        .kid(kid)
        .issuer(iss)
        .audience(AUD)
}

fn detail(r: Result<AuthContext, AuthError>) -> (AuthErrorKind, Option<&'static str>) {
    let e = r.expect_err("refused");
    (e.kind(), e.detail())
}

fn claims(pairs: Value) -> Map<String, Value> {
    serde_json::from_value(pairs).unwrap()
}

/// A token with this payload text, signed with HS256 under `SECRET` (for payloads a minter
/// cannot produce: duplicate members, huge or odd `iss`).
fn raw_hs256(payload: &str) -> String {
    let h = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let p = URL_SAFE_NO_PAD.encode(payload);
    let signed = format!("{h}.{p}");
    let key = EncodingKey::from_secret(SECRET.as_bytes());
    let sig = jsonwebtoken::crypto::sign(signed.as_bytes(), &key, Algorithm::HS256).unwrap();
    format!("{signed}.{sig}")
}

fn exp() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600
}

/// A, B and C with their own static keys and rules: A (RS256, the default audience, Keycloak
/// roles), B (a second RSA key under the same `kid` as A's, its own audience,
/// `permissions` as scopes), C (HS256).
fn three_issuers() -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .audience(AUD)
        .trusted_issuer(
            TrustedIssuer::new(A)
                .key(rsa_key("rsa_public.pem", "k1"))
                .roles_claims(["realm_access.roles"]),
        )
        .trusted_issuer(
            TrustedIssuer::new(B)
                .key(rsa_key("rsa2_public.pem", "k1"))
                .audience("https://b-only.example.com/mcp")
                .permissions_as_scopes(),
        )
        .trusted_issuer(TrustedIssuer::new(C).key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap()))
        .build()
        .unwrap()
}

#[test]
fn each_issuers_tokens_are_verified_with_its_own_keys_and_rules() {
    let auth = three_issuers();
    let a = rsa_minter("rsa_private.pem", "k1", A)
        .mint_claims(claims(json!({
            "sub": "alice", "scope": "data:read", "realm_access": {"roles": ["editor"]},
            "roles": ["not-a-role-at-a"], "permissions": ["not-a-scope-at-a"]
        })))
        .unwrap();
    let ctx = auth.verify(&a).unwrap();
    assert_eq!(
        (ctx.issuer(), ctx.subject(), ctx.tenant()),
        (Some(A), "alice", None)
    );
    assert!(ctx.has_role("editor") && !ctx.has_role("not-a-role-at-a"));
    assert_eq!(ctx.scopes().to_space_separated(), "data:read");
    assert_eq!(ctx.principal(), format!("{A}|alice|"));

    let b = JwtMinter::pem(fixture("rsa2_private.pem"), Algorithm::RS256)
        .unwrap()
        .kid("k1")
        .issuer(B)
        .audience("https://b-only.example.com/mcp")
        .mint_claims(claims(
            json!({"sub": "alice", "permissions": ["data:write"], "roles": ["x"]}),
        ))
        .unwrap();
    let ctx = auth.verify(&b).unwrap();
    assert_eq!(ctx.issuer(), Some(B));
    assert_eq!(ctx.scopes().to_space_separated(), "data:write");
    // B keeps the builder's role claim (`roles`); A's mapping is A's alone.
    assert!(ctx.has_role("x"));
    // Same subject, another issuer: another principal.
    assert_ne!(ctx.principal(), format!("{A}|alice|"));

    // B's audience is B's alone: a B token for the builder's audience is refused.
    let b_default_aud = JwtMinter::pem(fixture("rsa2_private.pem"), Algorithm::RS256)
        .unwrap()
        .kid("k1")
        .issuer(B)
        .audience(AUD)
        .mint("alice", ["x"])
        .unwrap();
    assert_eq!(
        detail(auth.verify(&b_default_aud)),
        (AuthErrorKind::InvalidToken, Some("audience_mismatch"))
    );

    let c = JwtMinter::hmac(SECRET, Algorithm::HS256)
        .unwrap()
        .issuer(C)
        .audience(AUD)
        .mint("carol", ["x"])
        .unwrap();
    assert_eq!(auth.verify(&c).unwrap().issuer(), Some(C));
}

#[test]
fn a_token_signed_with_one_issuers_key_but_claiming_another_is_refused() {
    let auth = three_issuers();
    // A's key, `kid` shared with B's key, claiming B: tried against B's key only.
    let forged = rsa_minter("rsa_private.pem", "k1", B)
        .audience("https://b-only.example.com/mcp")
        .mint("mallory", ["x"])
        .unwrap();
    assert_eq!(
        detail(auth.verify(&forged)),
        (AuthErrorKind::InvalidToken, Some("bad_signature"))
    );
    // Without a `kid` too.
    let forged = JwtMinter::pem(fixture("rsa_private.pem"), Algorithm::RS256)
        .unwrap()
        .issuer(B)
        .audience("https://b-only.example.com/mcp")
        .mint("mallory", ["x"])
        .unwrap();
    assert_eq!(
        detail(auth.verify(&forged)),
        (AuthErrorKind::InvalidToken, Some("bad_signature"))
    );
    // C's shared secret claiming A: A has no HMAC key.
    let forged = JwtMinter::hmac(SECRET, Algorithm::HS256)
        .unwrap()
        .issuer(A)
        .audience(AUD)
        .mint("mallory", ["x"])
        .unwrap();
    assert_eq!(
        detail(auth.verify(&forged)),
        (AuthErrorKind::InvalidToken, Some("no_matching_key"))
    );
}

#[test]
fn each_issuer_has_its_own_clock_leeway() {
    // A's tokens get 120 s of leeway, C's the builder's 5 s: a token that expired 60 s ago is
    // still good from A and too old from C.
    let auth = JwtAuthenticator::builder()
        .audience(AUD)
        .leeway(Duration::from_secs(5))
        .trusted_issuer(
            TrustedIssuer::new(A)
                .key(rsa_key("rsa_public.pem", "k1"))
                .leeway(Duration::from_secs(120)),
        )
        .trusted_issuer(TrustedIssuer::new(C).key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap()))
        .build()
        .unwrap();
    let expired_a_minute_ago = exp() - 600 - 60;
    let a = rsa_minter("rsa_private.pem", "k1", A)
        .mint_claims(claims(json!({"sub": "alice", "exp": expired_a_minute_ago})))
        .unwrap();
    assert_eq!(auth.verify(&a).unwrap().issuer(), Some(A));
    let c = raw_hs256(
        &json!({"iss": C, "aud": AUD, "sub": "carol", "exp": expired_a_minute_ago}).to_string(),
    );
    assert_eq!(detail(auth.verify(&c)).0, AuthErrorKind::Expired);
    // Within C's own 5 s it passes: the refusal above is the leeway, not the token.
    let c = raw_hs256(&json!({"iss": C, "aud": AUD, "sub": "carol", "exp": exp()}).to_string());
    assert_eq!(auth.verify(&c).unwrap().issuer(), Some(C));
}

#[test]
fn unknown_missing_huge_or_ambiguous_issuers_are_refused_before_any_key() {
    let auth = three_issuers();
    let refused = |payload: String| detail(auth.verify(&raw_hs256(&payload)));
    let e = exp();
    for iss in [
        json!("https://idp-d.example.com"),
        json!(format!("{A}/")),
        json!("https://IDP-A.example.com"),
        json!("x".repeat(11 * 1024)),
    ] {
        assert_eq!(
            refused(format!(
                r#"{{"iss":{iss},"sub":"m","aud":"{AUD}","exp":{e}}}"#
            )),
            (AuthErrorKind::InvalidToken, Some("unknown_issuer")),
            "{}",
            &iss.to_string()[..40.min(iss.to_string().len())]
        );
    }
    assert_eq!(
        refused(format!(r#"{{"sub":"m","aud":"{AUD}","exp":{e}}}"#)),
        (AuthErrorKind::InvalidToken, Some("unknown_issuer"))
    );
    assert_eq!(
        refused(format!(r#"{{"iss":["{C}"],"sub":"m","exp":{e}}}"#)),
        (AuthErrorKind::InvalidToken, Some("bad_iss"))
    );
    // Two `iss` (also one escaped): which one would choose the keys? Neither.
    assert_eq!(
        refused(format!(
            r#"{{"iss":"{C}","iss":"{A}","sub":"m","exp":{e}}}"#
        )),
        (AuthErrorKind::InvalidToken, Some("bad_claims"))
    );
    assert_eq!(
        refused(format!(
            r#"{{"i\u0073s":"{C}","iss":"{A}","sub":"m","exp":{e}}}"#
        )),
        (AuthErrorKind::InvalidToken, Some("bad_claims"))
    );
    // Another duplicate member is refused after the signature check, as without routing.
    assert_eq!(
        refused(format!(
            r#"{{"iss":"{C}","sub":"m","sub":"n","aud":"{AUD}","exp":{e}}}"#
        )),
        (AuthErrorKind::InvalidToken, Some("bad_claims"))
    );
    // The same payload, well formed, is accepted: the refusals above are the payloads'.
    assert!(
        auth.verify(&raw_hs256(&format!(
            r#"{{"iss":"{C}","sub":"m","aud":"{AUD}","exp":{e}}}"#
        )))
        .is_ok()
    );
}

fn tenants_auth(edit: impl FnOnce(TrustedIssuer) -> TrustedIssuer) -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .audience(AUD)
        .trusted_issuer(edit(
            TrustedIssuer::new(TEMPLATE).key(rsa_key("rsa_public.pem", "k1")),
        ))
        .build()
        .unwrap()
}

fn tenant_token(tenant: &str, tid: Option<&str>) -> String {
    let mut c = json!({"sub": "alice", "scope": "data:read"});
    if let Some(t) = tid {
        c["tid"] = t.into();
    }
    rsa_minter(
        "rsa_private.pem",
        "k1",
        &TEMPLATE.replace("{tenant}", tenant),
    )
    .mint_claims(claims(c))
    .unwrap()
}

#[test]
fn a_template_accepts_its_allowed_tenants_and_puts_the_tenant_in_the_context() {
    let auth = tenants_auth(|t| t.tenants(["t-1", "t-2"]).tenant_claim("tid"));
    let ctx = auth.verify(&tenant_token("t-1", Some("t-1"))).unwrap();
    assert_eq!(ctx.tenant(), Some("t-1"));
    assert_eq!(ctx.issuer(), Some("https://idp.test/t-1/v2.0"));
    // The issuer names the tenant: two tenants' `alice` are two principals.
    assert_eq!(ctx.principal(), "https://idp.test/t-1/v2.0|alice|");
    let other = auth.verify(&tenant_token("t-2", Some("t-2"))).unwrap();
    assert_ne!(ctx.principal(), other.principal());

    // A tenant outside the allow-list: refused without trying a key.
    assert_eq!(
        detail(auth.verify(&tenant_token("t-3", Some("t-3")))),
        (AuthErrorKind::InvalidToken, Some("tenant_not_allowed"))
    );
    // `tid` must name the tenant of `iss`.
    for tid in [Some("t-2"), Some("T-1"), None] {
        assert_eq!(
            detail(auth.verify(&tenant_token("t-1", tid))),
            (AuthErrorKind::InvalidToken, Some("tenant_mismatch")),
            "{tid:?}"
        );
    }
    // Something that is not a tenant in the tenant's place is no issuer of ours.
    for odd in ["t-1/x", "", "t 1", "t-1%2F", &"t".repeat(200)] {
        assert_eq!(
            detail(auth.verify(&tenant_token(odd, Some(odd)))),
            (AuthErrorKind::InvalidToken, Some("unknown_issuer")),
            "{odd:?}"
        );
    }
}

#[test]
fn any_tenant_is_an_explicit_opt_in_and_still_checks_the_tenant_claim() {
    let auth = tenants_auth(|t| t.any_tenant().tenant_claim("tid"));
    for tenant in ["t-1", "t-3", "5f3c0a4e-0000-4000-8000-00000000aaaa"] {
        let ctx = auth.verify(&tenant_token(tenant, Some(tenant))).unwrap();
        assert_eq!(ctx.tenant(), Some(tenant));
    }
    assert_eq!(
        detail(auth.verify(&tenant_token("t-1", Some("t-3")))),
        (AuthErrorKind::InvalidToken, Some("tenant_mismatch"))
    );
    // Without a tenant claim configured the tenant comes from `iss` alone.
    let auth = tenants_auth(|t| t.any_tenant());
    assert_eq!(
        auth.verify(&tenant_token("t-9", None)).unwrap().tenant(),
        Some("t-9")
    );
}

#[test]
fn the_builders_own_keys_serve_only_the_issuers_they_are_bound_to() {
    const OWN: &str = "https://mcp.example.com/mcp";
    let hs = |iss: &str| {
        JwtMinter::hmac(SECRET, Algorithm::HS256)
            .unwrap()
            .issuer(iss)
            .audience(AUD)
            .mint("svc", ["x"])
            .unwrap()
    };
    let auth = JwtAuthenticator::builder()
        .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap().issuer(OWN))
        .audience(AUD)
        .trusted_issuer(TrustedIssuer::new(A).key(rsa_key("rsa_public.pem", "k1")))
        .build()
        .unwrap();
    assert_eq!(auth.verify(&hs(OWN)).unwrap().issuer(), Some(OWN));
    // The secret cannot speak for the trusted issuer, nor for an issuer nobody trusts.
    assert_eq!(detail(auth.verify(&hs(A))).1, Some("no_matching_key"));
    assert_eq!(detail(auth.verify(&hs(B))).1, Some("unknown_issuer"));
    let a = rsa_minter("rsa_private.pem", "k1", A)
        .mint("alice", ["x"])
        .unwrap();
    assert_eq!(auth.verify(&a).unwrap().issuer(), Some(A));

    // With `allow_any_issuer`, the own keys take every issuer no trusted issuer names.
    let any = JwtAuthenticator::builder()
        .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
        .allow_any_issuer()
        .audience(AUD)
        .trusted_issuer(TrustedIssuer::new(A).key(rsa_key("rsa_public.pem", "k1")))
        .build()
        .unwrap();
    assert_eq!(any.verify(&hs(B)).unwrap().issuer(), Some(B));
    assert_eq!(detail(any.verify(&hs(A))).1, Some("no_matching_key"));
}

#[test]
fn trusted_issuer_configuration_problems_are_reported_together_by_setting() {
    let rsa = || rsa_key("rsa_public.pem", "k1");
    let err = JwtAuthenticator::builder()
        .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap().issuer(A))
        // 0: A is already the own key's issuer.
        .trusted_issuer(TrustedIssuer::new(A).key(rsa()).audience(AUD))
        // 1: a template with neither tenants nor any_tenant.
        .trusted_issuer(TrustedIssuer::new(TEMPLATE).key(rsa()).audience(AUD))
        // 2: both; an invalid tenant; a registered claim as tenant claim.
        .trusted_issuer(
            TrustedIssuer::new("https://t2.example/{tenant}")
                .key(rsa())
                .audience(AUD)
                .tenants(["ok", "not/ok"])
                .any_tenant()
                .tenant_claim("sub"),
        )
        // 3: no key source, no audience (the builder has none either).
        .trusted_issuer(TrustedIssuer::new(B))
        // 4: two remote key sources; a plain-http non-loopback JWKS URL.
        .trusted_issuer(
            TrustedIssuer::new(C)
                .discovery()
                .jwks_url("http://jwks.example.com/keys")
                .audience(AUD),
        )
        // 5: an exact issuer with tenants; an HMAC secret beside a JWKS.
        .trusted_issuer(
            TrustedIssuer::new("https://e.example")
                .jwks_url("https://e.example/jwks")
                .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
                .tenants(["x"])
                .audience(AUD),
        )
        // 6: any tenant with per-tenant discovery (unbounded caches).
        .trusted_issuer(
            TrustedIssuer::new("https://d.example/{tenant}")
                .discovery()
                .any_tenant()
                .audience(AUD),
        )
        .build()
        .unwrap_err();
    let settings: Vec<&str> = err.problems().iter().map(|p| p.setting()).collect();
    for want in [
        "jwt audience",
        "trusted issuer 1 tenants",
        "trusted issuer 2 tenants",
        "trusted issuer 2 tenant_claim",
        "trusted issuer 3 jwks_url",
        "trusted issuer 3 audience",
        "trusted issuer 4 jwks_url",
        "trusted issuer 5 tenants",
        "trusted issuer 5 keys",
        "trusted issuer 6 any_tenant",
        "trusted issuers",
    ] {
        assert!(settings.contains(&want), "{want}: {err}");
    }
    // The messages name settings, never the configured values.
    let text = err.to_string();
    assert!(!text.contains("not/ok") && !text.contains(SECRET), "{text}");
}

#[test]
fn issuers_that_could_match_one_iss_and_the_caps_are_refused() {
    let rsa = || rsa_key("rsa_public.pem", "k1");
    let build = |issuers: Vec<TrustedIssuer>| {
        let mut b = JwtAuthenticator::builder().audience(AUD);
        for i in issuers {
            b = b.trusted_issuer(i);
        }
        b.build()
    };
    let tmpl = |t: &str| TrustedIssuer::new(t).key(rsa()).any_tenant();
    for (first, second) in [
        (
            TrustedIssuer::new(A).key(rsa()),
            TrustedIssuer::new(A).key(rsa()),
        ),
        (
            tmpl("https://idp.test/{tenant}/v2.0"),
            TrustedIssuer::new("https://idp.test/x/v2.0").key(rsa()),
        ),
        (
            TrustedIssuer::new("https://idp.test/x/v2.0").key(rsa()),
            tmpl("https://idp.test/{tenant}/v2.0"),
        ),
        (
            tmpl("https://idp.test/{tenant}/v2.0"),
            tmpl("https://idp.test/a{tenant}/v2.0"),
        ),
        (
            tmpl("https://idp.test/{tenant}"),
            tmpl("https://idp.test/{tenant}/v2.0"),
        ),
    ] {
        let err = build(vec![first, second]).unwrap_err();
        assert_eq!(
            err.problems()[0].setting(),
            "trusted issuer 1 issuer",
            "{err}"
        );
    }
    // Distinct templates of one provider are fine.
    assert!(
        build(vec![
            tmpl("https://idp.test/{tenant}/v2.0"),
            tmpl("https://idp.test/{tenant}/v1.0"),
        ])
        .is_ok()
    );

    let many: Vec<TrustedIssuer> = (0..=MAX_TRUSTED_ISSUERS)
        .map(|i| TrustedIssuer::new(format!("https://idp-{i}.example")).key(rsa()))
        .collect();
    let err = build(many).unwrap_err();
    assert_eq!(err.problems()[0].setting(), "trusted issuers");
    let tenants: Vec<String> = (0..=MAX_TENANTS).map(|i| format!("t{i}")).collect();
    let err = build(vec![tmpl(TEMPLATE).tenants(tenants)]).unwrap_err();
    assert!(
        err.problems()
            .iter()
            .any(|p| p.setting() == "trusted issuer 0 tenants"),
        "{err}"
    );
}

// --- key sources over loopback ----------------------------------------------------------

/// A JWKS server on loopback that counts fetches and can fail.
#[derive(Default)]
struct Jwks {
    keys: Mutex<Value>,
    fail: Mutex<bool>,
    fetches: AtomicUsize,
    discoveries: AtomicUsize,
    issuer: Mutex<String>,
}

async fn start_jwks() -> (Arc<Jwks>, String) {
    let state = Arc::new(Jwks::default());
    let s = state.clone();
    let d = state.clone();
    let app = axum::Router::new()
        .route(
            "/jwks",
            axum::routing::get(move || {
                let s = s.clone();
                async move {
                    s.fetches.fetch_add(1, Ordering::SeqCst);
                    if *s.fail.lock().unwrap() {
                        return (StatusCode::INTERNAL_SERVER_ERROR, String::new());
                    }
                    (StatusCode::OK, s.keys.lock().unwrap().to_string())
                }
            }),
        )
        .route(
            "/{tenant}/.well-known/openid-configuration",
            axum::routing::get(move |axum::extract::Path(tenant): axum::extract::Path<String>| {
                let d = d.clone();
                async move {
                    d.discoveries.fetch_add(1, Ordering::SeqCst);
                    let base = d.issuer.lock().unwrap().clone();
                    json!({"issuer": format!("{base}/{tenant}"), "jwks_uri": format!("{base}/jwks")})
                        .to_string()
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *state.issuer.lock().unwrap() = base.clone();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, base)
}

fn jwk_for(private: &str, kid: &str) -> Value {
    let key = EncodingKey::from_rsa_pem(&fixture(private)).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some(kid.into());
    serde_json::to_value(jwk).unwrap()
}

fn fast_policy() -> JwksPolicy {
    let mut p = JwksPolicy::default();
    p.min_refresh_gap = Duration::from_millis(300);
    p.fetch_timeout = Duration::from_millis(500);
    p
}

#[tokio::test]
async fn an_unknown_issuer_never_causes_a_fetch() {
    let (jwks, base) = start_jwks().await;
    *jwks.keys.lock().unwrap() = json!({"keys": [jwk_for("rsa_private.pem", "a")]});
    let auth = JwtAuthenticator::builder()
        .audience(AUD)
        .jwks_policy(fast_policy())
        .trusted_issuer(TrustedIssuer::new(A).jwks_url(format!("{base}/jwks")))
        .build()
        .unwrap();
    for iss in [B, "https://idp-a.example.com.evil", ""] {
        for kid in ["a", "unknown"] {
            let t = rsa_minter("rsa_private.pem", kid, iss)
                .mint("m", ["x"])
                .unwrap();
            let (kind, d) = detail(auth.verify_async(&t).await);
            assert_eq!(
                (kind, d),
                (AuthErrorKind::InvalidToken, Some("unknown_issuer"))
            );
        }
    }
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 0);
    let good = rsa_minter("rsa_private.pem", "a", A)
        .mint("alice", ["x"])
        .unwrap();
    assert_eq!(auth.verify_async(&good).await.unwrap().issuer(), Some(A));
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn one_issuers_key_source_down_answers_503_for_its_tokens_only() {
    let (ja, base_a) = start_jwks().await;
    let (jb, base_b) = start_jwks().await;
    *ja.keys.lock().unwrap() = json!({"keys": [jwk_for("rsa_private.pem", "a")]});
    *jb.keys.lock().unwrap() = json!({"keys": [jwk_for("rsa2_private.pem", "b")]});
    *ja.fail.lock().unwrap() = true;
    let auth = JwtAuthenticator::builder()
        .audience(AUD)
        .jwks_policy(fast_policy())
        .verified_token_cache(100)
        .trusted_issuer(TrustedIssuer::new(A).jwks_url(format!("{base_a}/jwks")))
        .trusted_issuer(TrustedIssuer::new(B).jwks_url(format!("{base_b}/jwks")))
        .build()
        .unwrap();
    let a = rsa_minter("rsa_private.pem", "a", A)
        .mint("alice", ["x"])
        .unwrap();
    let b = rsa_minter("rsa2_private.pem", "b", B)
        .mint("bob", ["x"])
        .unwrap();

    let err = auth.verify_async(&a).await.unwrap_err();
    assert_eq!(err.kind(), AuthErrorKind::Unavailable, "{err:?}");
    assert!(err.retry_after().is_some());
    assert_eq!(auth.verify_async(&b).await.unwrap().subject(), "bob");
    // A's refusals do not spend B's refresh budget, nor the reverse: a flood of unknown
    // `kid`s at B is one fetch at B and none at A. (Minted first: RSA signing in a debug
    // build can take longer than the refresh gap.)
    let flood: Vec<String> = (0..20)
        .map(|i| {
            rsa_minter("rsa2_private.pem", &format!("x{i}"), B)
                .mint("m", ["x"])
                .unwrap()
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(350)).await;
    for t in &flood {
        assert!(auth.verify_async(t).await.is_err());
    }
    assert_eq!(ja.fetches.load(Ordering::SeqCst), 1);
    assert_eq!(jb.fetches.load(Ordering::SeqCst), 2);

    // Through the layer: 503 with Retry-After for A, 200 for B.
    let svc = JwtLayer::new(auth.clone()).layer(service_fn(|_req: Request<()>| async {
        Ok::<_, Infallible>(Response::new(()))
    }));
    let status = |t: &str| {
        let req = Request::builder()
            .header("authorization", format!("Bearer {t}"))
            .body(())
            .unwrap();
        let svc = svc.clone();
        async move { svc.oneshot(req).await.unwrap() }
    };
    let res = status(&a).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(status(&b).await.status(), StatusCode::OK);

    // A's provider is back: after its refresh gap, A's tokens pass.
    *ja.fail.lock().unwrap() = false;
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(auth.verify_async(&a).await.unwrap().subject(), "alice");

    // The verified-token cache checks each cached token's key against its own issuer's
    // keys: B withdrawing its key ends B's cached tokens, not A's.
    assert!(auth.verify(&a).is_ok() && auth.verify(&b).is_ok());
    *jb.keys.lock().unwrap() = json!({"keys": [jwk_for("rsa_private.pem", "b2")]});
    tokio::time::sleep(Duration::from_millis(350)).await;
    let unknown = rsa_minter("rsa2_private.pem", "y", B)
        .mint("m", ["x"])
        .unwrap();
    assert!(auth.verify_async(&unknown).await.is_err());
    assert!(auth.verify(&b).is_err());
    assert_eq!(auth.verify(&a).unwrap().subject(), "alice");
}

#[tokio::test]
async fn a_template_discovers_keys_per_allowed_tenant_and_never_for_others() {
    let (jwks, base) = start_jwks().await;
    *jwks.keys.lock().unwrap() = json!({"keys": [jwk_for("rsa_private.pem", "a")]});
    let template = format!("{base}/{{tenant}}");
    let auth = JwtAuthenticator::builder()
        .audience(AUD)
        .jwks_policy(fast_policy())
        .trusted_issuer(
            TrustedIssuer::new(&template)
                .discovery()
                .tenants(["t-1", "t-2"]),
        )
        .build()
        .unwrap();
    let token = |tenant: &str| {
        rsa_minter("rsa_private.pem", "a", &format!("{base}/{tenant}"))
            .mint("alice", ["x"])
            .unwrap()
    };
    assert_eq!(
        auth.verify_async(&token("t-1")).await.unwrap().tenant(),
        Some("t-1")
    );
    assert_eq!(
        auth.verify_async(&token("t-2")).await.unwrap().tenant(),
        Some("t-2")
    );
    // One discovery per tenant, each with its own issuer check.
    assert_eq!(jwks.discoveries.load(Ordering::SeqCst), 2);
    assert_eq!(
        detail(auth.verify_async(&token("t-3")).await).1,
        Some("tenant_not_allowed")
    );
    assert_eq!(jwks.discoveries.load(Ordering::SeqCst), 2);
}
