//! The test kit (`mcp_auth::testing`, feature `testing`) against this crate's own layers: a
//! server on loopback with `JwtLayer` (keys by OIDC discovery from the mock authorization
//! server) and an introspection layer (the mock's introspection endpoint), called with
//! reqwest; every refusal's challenges read with the kit's parser.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use mcp_auth::authenticators::introspection::IntrospectionAuthenticator;
use mcp_auth::authenticators::jwt::jwks::JwksPolicy;
use mcp_auth::authenticators::jwt::{Algorithm, JwtAuthenticator};
use mcp_auth::oauth::ProtectedResource;
use mcp_auth::testing::{
    DpopKey, JWKS_PATH, MockAuthServer, OPENID_CONFIGURATION_PATH, assert_challenge,
    assert_no_challenge, challenges,
};
use mcp_auth::{AuthContext, AuthLayer};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// The MCP-like endpoint: who called, with which scopes.
async fn whoami(ctx: AuthContext) -> axum::Json<Value> {
    axum::Json(json!({
        "subject": ctx.subject(),
        "method": ctx.method().to_string(),
        "scopes": ctx.scopes().iter().collect::<Vec<_>>(),
    }))
}

/// A resource server on loopback: `/mcp` behind `JwtLayer` (OIDC discovery from `mock`),
/// `/opaque/mcp` behind the introspection layer (the mock's endpoint, found by discovery
/// too), both for the audience `<base>/mcp`, and the protected resource metadata.
struct App {
    base: String,
    resource: String,
    metadata_url: String,
    stop: CancellationToken,
}

impl Drop for App {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn fast_policy() -> JwksPolicy {
    let mut policy = JwksPolicy::default();
    policy.min_refresh_gap = Duration::from_millis(100);
    policy.fetch_timeout = Duration::from_secs(2);
    policy
}

async fn start_app(mock: &MockAuthServer) -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let resource = format!("{base}/mcp");
    let pr = ProtectedResource::builder(&resource)
        .authorization_server(mock.issuer())
        .scopes_supported(["data:read", "data:write"])
        .build()
        .unwrap();
    let jwt = JwtAuthenticator::builder()
        .oidc_issuer(mock.issuer())
        .audience(&resource)
        .jwks_policy(fast_policy())
        .build()
        .unwrap();
    let (id, secret) = mock.introspection_client();
    let introspection = IntrospectionAuthenticator::builder()
        .issuer(mock.issuer())
        .client_credentials(id, secret)
        .audience(&resource)
        .negative_cache(100, Duration::from_millis(1))
        .build()
        .unwrap();
    let [path_form, root_form] = pr.well_known_paths();
    let app = Router::new()
        .route_service(path_form, pr.service())
        .route_service(root_form, pr.service())
        .route(
            "/mcp",
            post(whoami).layer(AuthLayer::new(jwt).protected_resource(&pr)),
        )
        .route(
            "/opaque/mcp",
            post(whoami).layer(AuthLayer::new(introspection).protected_resource(&pr)),
        );
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await
            .unwrap();
    });
    App {
        base,
        resource,
        metadata_url: pr.metadata_url().to_owned(),
        stop,
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn call(url: &str, authorization: Option<&str>) -> reqwest::Response {
    let mut req = client().post(url);
    if let Some(a) = authorization {
        req = req.header("authorization", a);
    }
    req.send().await.unwrap()
}

async fn bearer(url: &str, token: &str) -> reqwest::Response {
    call(url, Some(&format!("Bearer {token}"))).await
}

#[tokio::test]
async fn jwt_layer_accepts_mock_tokens_and_refuses_with_the_right_challenges() {
    let mock = MockAuthServer::start().await;
    let app = start_app(&mock).await;
    let url = format!("{}/mcp", app.base);

    let good = mock
        .token()
        .subject("alice")
        .audience(app.resource.as_str())
        .scopes(["data:read"])
        .jwt();
    let res = bearer(&url, &good).await;
    assert_eq!(res.status(), 200);
    assert_no_challenge(res.headers());
    let who: Value = res.json().await.unwrap();
    assert_eq!(who["subject"], "alice");
    assert_eq!(who["scopes"], json!(["data:read"]));
    // Discovery, then the keys: one fetch each.
    assert_eq!(mock.requests(OPENID_CONFIGURATION_PATH), 1);
    assert_eq!(mock.requests(JWKS_PATH), 1);

    // RS256 and `typ: at+jwt`, audience in a list.
    let rs = mock
        .token()
        .audience(vec![app.resource.as_str(), "https://other.example/mcp"])
        .algorithm(Algorithm::RS256)
        .typ_at_jwt()
        .jwt();
    assert_eq!(bearer(&url, &rs).await.status(), 200);

    // No credentials: a bare Bearer challenge pointing at the metadata.
    let res = call(&url, None).await;
    assert_eq!(res.status(), 401);
    assert_challenge(res.headers(), "Bearer")
        .first()
        .no_error()
        .param("resource_metadata", &app.metadata_url)
        .scope_contains("data:read");

    let refused = [
        (
            "expired",
            mock.token().audience(app.resource.as_str()).expired().jwt(),
        ),
        (
            "wrong audience",
            mock.token().audience("https://other.example/mcp").jwt(),
        ),
        ("no audience", mock.token().jwt()),
        (
            "not yet valid",
            mock.token()
                .audience(app.resource.as_str())
                .not_before(std::time::SystemTime::now() + Duration::from_secs(600))
                .jwt(),
        ),
        (
            "unpublished kid",
            mock.token()
                .audience(app.resource.as_str())
                .kid("nobody")
                .jwt(),
        ),
        (
            "no exp",
            mock.token()
                .audience(app.resource.as_str())
                .without("exp")
                .jwt(),
        ),
        (
            "DPoP-bound, sent as Bearer",
            mock.token()
                .audience(app.resource.as_str())
                .dpop_bound(&DpopKey::es256())
                .jwt(),
        ),
    ];
    for (what, token) in &refused {
        let res = bearer(&url, token).await;
        assert_eq!(res.status(), 401, "{what}");
        let all = challenges(res.headers()).unwrap();
        assert!(!all.is_empty(), "{what}: a 401 carries a challenge");
        assert_challenge(res.headers(), "Bearer")
            .first()
            .error("invalid_token")
            .has_param("error_description")
            .param("resource_metadata", &app.metadata_url);
    }
}

#[tokio::test]
async fn introspection_layer_follows_the_mock_revocations_and_expiry() {
    let mock = MockAuthServer::start().await;
    let app = start_app(&mock).await;
    let url = format!("{}/opaque/mcp", app.base);

    let token = mock
        .token()
        .subject("bob")
        .audience(app.resource.as_str())
        .scopes(["data:write"])
        .opaque();
    let res = bearer(&url, &token).await;
    assert_eq!(res.status(), 200);
    let who: Value = res.json().await.unwrap();
    assert_eq!(who["subject"], "bob");
    assert_eq!(who["method"], "introspection");
    assert_eq!(mock.requests("/introspect"), 1);

    mock.revoke(&token);
    let res = bearer(&url, &token).await;
    assert_eq!(res.status(), 401);
    assert_challenge(res.headers(), "Bearer")
        .first()
        .error("invalid_token")
        .param("resource_metadata", &app.metadata_url);
    assert_eq!(mock.requests("/introspect"), 2);

    for (what, token) in [
        (
            "expired",
            mock.token()
                .audience(app.resource.as_str())
                .expired()
                .opaque(),
        ),
        (
            "wrong audience",
            mock.token().audience("https://other.example/mcp").opaque(),
        ),
        ("unknown", "mock_never-minted".to_owned()),
    ] {
        let res = bearer(&url, &token).await;
        assert_eq!(res.status(), 401, "{what}");
        assert_challenge(res.headers(), "Bearer")
            .first()
            .error("invalid_token");
    }
}

#[tokio::test]
async fn key_rotation_is_picked_up_and_old_keys_keep_working() {
    let mock = MockAuthServer::start().await;
    let app = start_app(&mock).await;
    let url = format!("{}/mcp", app.base);
    let old = mock.token().audience(app.resource.as_str()).jwt();
    assert_eq!(bearer(&url, &old).await.status(), 200);
    assert_eq!(mock.requests(JWKS_PATH), 1);

    let new_kids = mock.rotate_keys();
    let new = mock.token().audience(app.resource.as_str()).jwt();
    let header = jsonwebtoken::decode_header(&new).unwrap();
    assert!(new_kids.contains(&header.kid.unwrap()));
    // The unknown kid makes the cache fetch again, at most once per `min_refresh_gap` (100 ms).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let status = bearer(&url, &new).await.status();
        if status == 200 {
            break;
        }
        assert_eq!(
            status, 401,
            "an unknown kid is refused until the keys are fetched"
        );
        assert!(
            Instant::now() < deadline,
            "the rotated key was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(mock.requests(JWKS_PATH) >= 2);
    assert_eq!(
        bearer(&url, &old).await.status(),
        200,
        "old key still published"
    );
}

#[tokio::test]
async fn an_outage_is_503_without_a_challenge_and_known_keys_keep_serving() {
    let mock = MockAuthServer::start().await;
    let app = start_app(&mock).await;
    let jwt_url = format!("{}/mcp", app.base);
    let opaque_url = format!("{}/opaque/mcp", app.base);
    let jwt = mock.token().audience(app.resource.as_str()).jwt();
    let opaque = mock.token().audience(app.resource.as_str()).opaque();
    // Warm: keys fetched, introspection endpoint discovered.
    assert_eq!(bearer(&jwt_url, &jwt).await.status(), 200);
    assert_eq!(bearer(&opaque_url, &opaque).await.status(), 200);

    mock.set_down(true);
    // Introspection needs the authorization server for every token: 503, no challenge.
    let res = bearer(&opaque_url, &opaque).await;
    assert_eq!(res.status(), 503);
    assert!(res.headers().contains_key("retry-after"));
    assert_no_challenge(res.headers());
    // Cached keys verify JWTs without the authorization server.
    assert_eq!(bearer(&jwt_url, &jwt).await.status(), 200);

    // A server that never had the keys answers 503 while the authorization server is down.
    let cold = start_app(&mock).await;
    let res = bearer(&format!("{}/mcp", cold.base), &jwt).await;
    assert_eq!(res.status(), 503);
    assert_no_challenge(res.headers());

    mock.set_down(false);
    assert_eq!(bearer(&opaque_url, &opaque).await.status(), 200);
}

#[tokio::test]
async fn a_client_finds_its_way_from_the_challenge_to_a_token() {
    // What an MCP client does: 401 → resource_metadata → authorization server metadata →
    // token endpoint (client_credentials, RFC 8707 resource) → the call succeeds.
    let mock = MockAuthServer::start().await;
    mock.register_client("agent", "agent-secret");
    let app = start_app(&mock).await;
    let url = format!("{}/mcp", app.base);

    let res = call(&url, None).await;
    let checked = assert_challenge(res.headers(), "Bearer").has_param("resource_metadata");
    let metadata_url = checked.challenge().param("resource_metadata").unwrap();
    let prm: Value = client()
        .get(metadata_url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], app.resource);
    let issuer = prm["authorization_servers"][0].as_str().unwrap();
    assert_eq!(issuer, mock.issuer());
    let asm: Value = client()
        .get(format!("{issuer}/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token_endpoint = asm["token_endpoint"].as_str().unwrap();
    let answer: Value = client()
        .post(token_endpoint)
        .basic_auth("agent", Some("agent-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "data:read"),
            ("resource", app.resource.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["token_type"], "Bearer");
    let token = answer["access_token"].as_str().unwrap();
    let res = bearer(&url, token).await;
    assert_eq!(res.status(), 200);
    let who: Value = res.json().await.unwrap();
    assert_eq!(who["subject"], "agent");
    assert_eq!(who["scopes"], json!(["data:read"]));

    // A token for another resource is refused.
    let answer: Value = client()
        .post(token_endpoint)
        .basic_auth("agent", Some("agent-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("resource", "https://elsewhere.example/mcp"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = bearer(&url, answer["access_token"].as_str().unwrap()).await;
    assert_eq!(res.status(), 401);
    assert_challenge(res.headers(), "Bearer").error("invalid_token");
}
