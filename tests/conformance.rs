//! The official conformance suite's pending server-authorization scenarios, reproduced against
//! the example server (the scenario names and checks as the conformance repository's branches
//! and PRs define them): `auth-token-audience-validation`, `sep-2350-server-scope-challenge`
//! and `auth/dpop-server-validation`. The suite's mock authorization server is played by
//! `mcp_auth::testing::MockAuthServer`; where the example server has other tools than the
//! suite's fixture server, the same rule is applied to one of its own tools (noted per test).

mod support;

use mcp_auth::authenticators::jwt::Algorithm;
use mcp_auth::testing::{DpopKey, MockAuthServer, assert_challenge, challenges};
use serde_json::json;
use support::raw::{call_tool, post_json};

fn initialize() -> serde_json::Value {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"conformance","version":"1"}}})
}

async fn status_with(url: &str, headers: &[(&str, &str)]) -> u16 {
    post_json(url, headers, None, &initialize()).await.status
}

/// `auth-token-audience-validation`: RS256 `at+jwt` tokens with a `client_id` claim from a
/// mock authorization server that runs only during the scenario, so the server must find its
/// keys lazily (it starts while the authorization server is down).
#[tokio::test]
async fn auth_token_audience_validation() {
    let mock = MockAuthServer::start().await;
    mock.set_down(true);
    let issuer = mock.issuer().to_owned();
    let srv = support::start_with(|_| vec![("MCP_OIDC_ISSUER".into(), issuer)]).await;
    let url = srv.url();
    mock.set_down(false);
    let token = |aud: Option<&str>| {
        let t = mock
            .token()
            .subject("conformance-user")
            .client_id("conformance-client")
            .typ_at_jwt()
            .algorithm(Algorithm::RS256);
        match aud {
            Some(a) => t.audience(a),
            None => t,
        }
    };
    // auth-unauthenticated-request-rejected
    let res = post_json(&url, &[], None, &initialize()).await;
    assert_eq!(res.status, 401);
    assert_challenge(&res.headers, "Bearer").has_param("resource_metadata");
    // auth-valid-audience-token-accepted
    let valid = format!("Bearer {}", token(Some(&url)).jwt());
    assert_eq!(status_with(&url, &[("authorization", &valid)]).await, 200);
    // auth-wrong-audience-token-rejected, -missing-audience-, -expired-, -untrusted-
    let other = MockAuthServer::start().await;
    let untrusted = other
        .token()
        .subject("conformance-user")
        .audience(url.as_str())
        .claim("iss", json!(mock.issuer()))
        .typ_at_jwt()
        .algorithm(Algorithm::RS256)
        .kid(&mock.current_kid(Algorithm::RS256).unwrap())
        .jwt();
    for (check, t) in [
        (
            "wrong audience",
            token(Some("http://127.0.0.1:9/other")).jwt(),
        ),
        ("missing audience", token(None).jwt()),
        ("expired", token(Some(&url)).expired().jwt()),
        ("untrusted", untrusted),
    ] {
        let res = post_json(
            &url,
            &[("authorization", &format!("Bearer {t}"))],
            None,
            &initialize(),
        )
        .await;
        assert_eq!(res.status, 401, "{check}");
        assert_challenge(&res.headers, "Bearer").error("invalid_token");
    }
}

/// `sep-2350-server-scope-challenge` with opaque tokens (introspection): a low token holding
/// only the baseline scope, a full one holding every pair. The suite's fixture tool
/// `test_simple_text` is the example server's `read_data` here, with the same rule (the
/// generic `tools:call` scope plus the tool's own).
#[tokio::test]
async fn sep_2350_server_scope_challenge() {
    let mock = MockAuthServer::start().await;
    let (client, secret) = mock.introspection_client();
    let issuer = mock.issuer().to_owned();
    let introspect = mock.introspection_endpoint();
    let srv = support::start_with(|_| {
        vec![
            ("MCP_AUTHORIZATION_SERVERS".into(), issuer),
            ("MCP_INTROSPECTION_URL".into(), introspect),
            ("MCP_INTROSPECTION_CLIENT_ID".into(), client),
            ("MCP_INTROSPECTION_CLIENT_SECRET".into(), secret),
            (
                "MCP_TOOL_SCOPES".into(),
                "whoami=mcp:conformance:baseline;\
                 read_data=mcp:conformance:tools:call mcp:conformance:tools:read_data"
                    .into(),
            ),
        ]
    })
    .await;
    let url = srv.url();
    let opaque = |scopes: &[&str]| {
        mock.token()
            .subject("conformance-user")
            .audience(url.as_str())
            .scopes(scopes.iter().copied())
            .opaque()
    };
    let low = format!("Bearer {}", opaque(&["mcp:conformance:baseline"]));
    let full = format!(
        "Bearer {}",
        opaque(&[
            "mcp:conformance:baseline",
            "mcp:conformance:tools:call",
            "mcp:conformance:tools:read_data"
        ])
    );

    let res = call_tool(&url, &[("authorization", &low)], "read_data").await;
    // server-scope-challenge-http-403
    assert_eq!(res.status, 403, "{}", res.body);
    // server-scope-challenge-www-authenticate: insufficient_scope and an absolute
    // resource_metadata (same-origin http here, no user info, no fragment)
    let parsed = challenges(&res.headers).unwrap();
    let bearer = parsed
        .iter()
        .find(|c| c.scheme().eq_ignore_ascii_case("bearer"))
        .unwrap();
    assert_eq!(bearer.param("error"), Some("insufficient_scope"));
    let metadata = reqwest::Url::parse(bearer.param("resource_metadata").unwrap()).unwrap();
    let server = reqwest::Url::parse(&url).unwrap();
    assert_eq!(metadata.origin(), server.origin());
    assert!(
        metadata.username().is_empty()
            && metadata.password().is_none()
            && metadata.fragment().is_none()
    );
    // sep-2350-server-single-challenge: both scopes, one challenge
    let scope: Vec<&str> = bearer.param("scope").unwrap().split(' ').collect();
    assert!(
        scope.contains(&"mcp:conformance:tools:call")
            && scope.contains(&"mcp:conformance:tools:read_data"),
        "{scope:?}"
    );
    assert_eq!(
        parsed
            .iter()
            .filter(|c| c.param("error") == Some("insufficient_scope"))
            .count(),
        1,
        "one challenge names every scope the call needs: {parsed:?}"
    );
    // server-scope-challenge-upgraded-retry
    let res = call_tool(&url, &[("authorization", &full)], "read_data").await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body.contains("\"result\""), "{}", res.body);
}

/// `auth/dpop-server-validation` (SEP-1932): the issuer's DPoP-bound tokens (`cnf.jkt`,
/// `aud` = the server URL) with proofs made here.
#[tokio::test]
async fn auth_dpop_server_validation() {
    let mock = MockAuthServer::start().await;
    let issuer = mock.issuer().to_owned();
    let srv = support::start_with(|_| vec![("MCP_OIDC_ISSUER".into(), issuer)]).await;
    let url = srv.url();
    let key = DpopKey::es256();
    let token = mock
        .token()
        .subject("conformance-user")
        .audience(url.as_str())
        .dpop_bound(&key)
        .jwt();
    let auth = format!("DPoP {token}");
    fn with<'a>(auth: &'a str, proofs: &'a [String]) -> Vec<(&'a str, &'a str)> {
        let mut h: Vec<(&str, &str)> = vec![("authorization", auth)];
        h.extend(proofs.iter().map(|p| ("dpop", p.as_str())));
        h
    }
    let fresh = || key.proof("POST", &url).access_token(&token);
    // sep-1932-server-validate-proof: a valid proof is accepted
    assert_eq!(
        status_with(&url, &with(&auth, &[fresh().sign()])).await,
        200
    );
    let other = DpopKey::es256();
    let refused = [
        ("tampered signature", vec![fresh().sign_tampered()]),
        ("missing jti", vec![fresh().without("jti").sign()]),
        ("missing htm", vec![fresh().without("htm").sign()]),
        ("missing htu", vec![fresh().without("htu").sign()]),
        ("missing iat", vec![fresh().without("iat").sign()]),
        ("missing jwk", vec![fresh().without_header("jwk").sign()]),
        ("wrong typ", vec![fresh().typ("JWT").sign()]),
        (
            "htm mismatch",
            vec![key.proof("GET", &url).access_token(&token).sign()],
        ),
        (
            "htu mismatch",
            vec![
                key.proof("POST", "http://127.0.0.1:9/mcp")
                    .access_token(&token)
                    .sign(),
            ],
        ),
        (
            "private key in jwk",
            vec![fresh().with_private_jwk().sign()],
        ),
        (
            "wrong ath",
            vec![key.proof("POST", &url).access_token("another-token").sign()],
        ),
        ("absent ath", vec![key.proof("POST", &url).sign()]),
        (
            "duplicate DPoP header",
            vec![fresh().sign(), fresh().sign()],
        ),
        ("non-JWT proof", vec!["not-a-jwt".to_owned()]),
        (
            "cnf.jkt mismatch",
            vec![other.proof("POST", &url).access_token(&token).sign()],
        ),
        // sep-1932-server-iat-window: ±303 s
        ("iat 303 s old", vec![fresh().iat_offset(-303).sign()]),
        ("iat 303 s ahead", vec![fresh().iat_offset(303).sign()]),
        // sep-1932-asymmetric-alg-only
        ("alg none", vec![fresh().sign_alg_none()]),
        (
            "HMAC",
            vec![fresh().sign_hmac(b"0123456789abcdef0123456789abcdef")],
        ),
    ];
    for (check, proofs) in refused {
        let res = post_json(&url, &with(&auth, &proofs), None, &initialize()).await;
        assert_eq!(res.status, 401, "{check}");
        assert_challenge(&res.headers, "DPoP");
    }
    // sep-1932-server-reject-bearer-downgrade
    let res = post_json(
        &url,
        &[("authorization", &format!("Bearer {token}"))],
        None,
        &initialize(),
    )
    .await;
    assert_eq!(res.status, 401);
    let names: Vec<String> = challenges(&res.headers)
        .unwrap()
        .iter()
        .map(|c| c.scheme().to_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "Bearer" || n == "DPoP"),
        "{names:?}"
    );
    // sep-1932-server-audience-validation: a bound token for another audience
    let foreign = mock
        .token()
        .subject("conformance-user")
        .audience("http://127.0.0.1:9/mcp")
        .dpop_bound(&key)
        .jwt();
    let proof = key.proof("POST", &url).access_token(&foreign).sign();
    let res = post_json(
        &url,
        &[
            ("authorization", &format!("DPoP {foreign}")),
            ("dpop", &proof),
        ],
        None,
        &initialize(),
    )
    .await;
    assert_eq!(res.status, 401);
    // sep-1932-server-reject-401: no credentials
    assert_eq!(post_json(&url, &[], None, &initialize()).await.status, 401);
}
