//! Outbound credentials through the example server, at load: 1,000 concurrent `call_upstream`
//! tool calls from 10 users (10 MCP sessions) cost exactly 10 token exchanges at the
//! authorization server (the exchanged tokens are cached per caller), and every call reaches
//! the upstream with its caller's own exchanged token. The authorization server is the test
//! kit's mock (it counts requests per grant); loopback only, bounded in count and time.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_auth::testing::MockAuthServer;
use serde_json::json;
use support::raw::{post_json, session_with};

const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";

/// An upstream that answers the `sub` of the bearer token it got (unverified: the mock
/// signed it; the end-to-end test with oidc-provider verifies with `JwtLayer`).
async fn upstream() -> String {
    use base64::Engine as _;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().route(
        "/whoami",
        axum::routing::get(|headers: http::HeaderMap| async move {
            let auth = headers["authorization"].to_str().unwrap();
            let jwt = auth.strip_prefix("Bearer ").unwrap();
            let payload = jwt.split('.').nth(1).unwrap();
            let claims: serde_json::Value = serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(payload)
                    .unwrap(),
            )
            .unwrap();
            axum::Json(json!({"sub": claims["sub"], "act": claims["act"]}))
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/whoami")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_tool_calls_from_ten_users_cost_ten_exchanges() {
    let mock = MockAuthServer::start().await;
    mock.register_client("mcp-server", "mcp-server-secret-0123");
    let api = upstream().await;
    let issuer = mock.issuer().to_owned();
    let token_url = mock.token_endpoint();
    let srv = support::start_with(|_| {
        vec![
            ("MCP_OIDC_ISSUER".into(), issuer),
            ("MCP_OUTBOUND_MODE".into(), "exchange".into()),
            ("MCP_UPSTREAM_API_URL".into(), api),
            ("MCP_OUTBOUND_CLIENT_ID".into(), "mcp-server".into()),
            (
                "MCP_OUTBOUND_CLIENT_SECRET".into(),
                "mcp-server-secret-0123".into(),
            ),
            ("MCP_OUTBOUND_TOKEN_URL".into(), token_url),
        ]
    })
    .await;
    let url = srv.url();
    // Ten users, each with a token for this server and a session.
    let mut users = Vec::new();
    for i in 0..10 {
        let sub = format!("user-{i}");
        let token = mock
            .token()
            .subject(&sub)
            .audience(url.as_str())
            .scopes(["data:read"])
            .jwt();
        let auth = format!("Bearer {token}");
        let session = session_with(&url, &[("authorization", &auth)]).await;
        users.push((sub, auth, session));
    }
    let users = Arc::new(users);
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..1_000u32 {
        let (users, url) = (users.clone(), url.clone());
        calls.spawn(async move {
            let (sub, auth, session) = &users[(n % 10) as usize];
            let body = json!({"jsonrpc":"2.0","id":n,"method":"tools/call",
                "params":{"name":"call_upstream","arguments":{}}});
            let res = post_json(&url, &[("authorization", auth)], Some(session), &body).await;
            assert_eq!(res.status, 200, "{}", res.body);
            // The upstream saw this caller, acting through the MCP server.
            assert!(
                res.body.contains(&format!("\\\"sub\\\":\\\"{sub}\\\"")),
                "{}",
                res.body
            );
            assert!(res.body.contains("mcp-server"), "{}", res.body);
        });
    }
    while let Some(done) = tokio::time::timeout(Duration::from_secs(120), calls.join_next())
        .await
        .expect("1,000 calls within two minutes")
    {
        done.unwrap();
    }
    eprintln!("1,000 tool calls in {:?}", started.elapsed());
    assert_eq!(mock.grant_requests(EXCHANGE), 10, "one exchange per user");
}
