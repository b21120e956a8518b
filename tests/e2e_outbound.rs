//! Outbound credentials end to end: the official TypeScript SDK client completes its OAuth
//! flow against oidc-provider, then calls the example server's `call_upstream` tool; the
//! server exchanges the caller's token (RFC 8693, oidc-provider's token-exchange grant) for a
//! token for an upstream API (axum + this crate's `JwtLayer`), which sees the caller as `sub`
//! and the MCP server as `act` — and would refuse the caller's original token.
//!
//! Needs the npm packages of tests/e2e/idp and tests/e2e/ts-sdk (scripts/test.sh installs
//! them and runs these tests with `--ignored`).

mod support;

use std::net::SocketAddr;

use mcp_auth::AuthContext;
use mcp_auth::authenticators::jwt::{JwtAuthenticator, JwtLayer};
use serde_json::{Value, json};
use support::idp::Idp;

const TS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/ts-sdk");

/// The upstream API: `GET /whoami` behind `JwtLayer` (keys by discovery from `issuer`,
/// audience = its own URL), answering the `sub`, `aud` and `act` it saw.
async fn upstream(issuer: &str) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let url = format!("http://{addr}/whoami");
    let jwt = JwtAuthenticator::builder()
        .oidc_issuer(issuer)
        .issuer(issuer)
        .audience(&url)
        .build()
        .unwrap();
    let app = axum::Router::new()
        .route(
            "/whoami",
            axum::routing::get(|ctx: AuthContext| async move {
                let claims = ctx.claims().cloned().unwrap_or_default();
                axum::Json(json!({
                    "sub": ctx.subject(),
                    "aud": claims.get("aud"),
                    "act": claims.get("act"),
                }))
            }),
        )
        .layer(JwtLayer::new(jwt));
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

#[tokio::test]
#[ignore = "needs oidc-provider and the TypeScript SDK: run scripts/test.sh (it installs them)"]
async fn the_typescript_client_calls_the_upstream_through_token_exchange_as_itself() {
    assert!(
        std::path::Path::new(TS)
            .join("node_modules/@modelcontextprotocol/sdk")
            .exists(),
        "run `npm ci --prefix tests/e2e/ts-sdk` (scripts/test.sh does)"
    );
    let mut idp: Option<Idp> = None;
    // The authorization server must know the MCP server's URL (the audience of the tokens it
    // will exchange), and the MCP server the upstream's: the upstream starts against an
    // issuer chosen inside the MCP server's environment below, so both are started there.
    let port = support::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let (api_url, _api) = upstream(&issuer).await;
    let srv = support::start_with(|public_url| {
        let started = support::idp::start_idp_on(port, &[("IDP_MCP_RESOURCE", public_url)]);
        let issuer = started.issuer.clone();
        idp = Some(started);
        vec![
            ("MCP_OIDC_ISSUER".into(), issuer.clone()),
            ("MCP_OUTBOUND_MODE".into(), "exchange".into()),
            ("MCP_UPSTREAM_API_URL".into(), api_url.clone()),
            ("MCP_UPSTREAM_SCOPES".into(), "data:read".into()),
            ("MCP_OUTBOUND_CLIENT_ID".into(), "mcp-server".into()),
            (
                "MCP_OUTBOUND_CLIENT_SECRET".into(),
                "mcp-server-secret".into(),
            ),
            ("MCP_OUTBOUND_TOKEN_URL".into(), format!("{issuer}/token")),
        ]
    })
    .await;
    let idp = idp.expect("started");
    let url = srv.url();

    let out = support::sdk::run_client(
        "TypeScript",
        "node",
        "client.mjs",
        vec!["call-upstream".into(), url.clone()],
        TS,
        "node is installed",
    )
    .await;
    assert_eq!(out["whoami"]["subject"], "alice", "{out:#}");
    assert!(
        out["tools"]
            .as_array()
            .unwrap()
            .contains(&json!("call_upstream")),
        "{out:#}"
    );
    assert_eq!(out["upstream"]["isError"], false, "{out:#}");
    let seen: Value = serde_json::from_str(out["upstream"]["text"].as_str().unwrap()).unwrap();
    // The caller is the subject, the MCP server the actor, the upstream the audience.
    assert_eq!(seen["sub"], "alice", "{seen}");
    assert_eq!(seen["act"]["sub"], "mcp-server", "{seen}");
    assert_eq!(seen["aud"], api_url.as_str(), "{seen}");
    let exchanges: Value = reqwest::get(format!("{}/test/exchanges", idp.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(exchanges["exchanges"], 1, "one exchange for one call");

    // The caller's own token is refused by the upstream (it was issued for the MCP server).
    let own = support::idp::authorization_code_token(&idp.issuer, &url, "data:read", &[]).await;
    let res = reqwest::Client::new()
        .get(&api_url)
        .bearer_auth(&own)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
#[ignore = "needs oidc-provider: run scripts/test.sh (it installs it)"]
async fn an_exchange_refused_or_an_outage_is_a_clear_tool_error_not_a_hang() {
    let port = support::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let (api_url, _api) = upstream(&issuer).await;
    let mut idp: Option<Idp> = None;
    let srv = support::start_with(|public_url| {
        let started = support::idp::start_idp_on(port, &[("IDP_MCP_RESOURCE", public_url)]);
        idp = Some(started);
        vec![
            ("MCP_OIDC_ISSUER".into(), issuer.clone()),
            ("MCP_OUTBOUND_MODE".into(), "exchange".into()),
            ("MCP_UPSTREAM_API_URL".into(), api_url.clone()),
            ("MCP_OUTBOUND_CLIENT_ID".into(), "mcp-server".into()),
            // A wrong secret: the authorization server refuses the exchange.
            ("MCP_OUTBOUND_CLIENT_SECRET".into(), "wrong-secret".into()),
            ("MCP_OUTBOUND_TOKEN_URL".into(), format!("{issuer}/token")),
            ("MCP_OUTBOUND_TIMEOUT_SECS".into(), "2".into()),
        ]
    })
    .await;
    let mut idp = idp.expect("started");
    let url = srv.url();
    let token = support::idp::authorization_code_token(&idp.issuer, &url, "data:read", &[]).await;
    let auth = format!("Bearer {token}");
    let res = support::raw::call_tool(&url, &[("authorization", &auth)], "call_upstream").await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(
        res.body.contains("\"isError\":true") && res.body.contains("could not be called"),
        "{}",
        res.body
    );
    assert!(
        !res.body.contains(&token),
        "the tool's error never carries the token"
    );
    // The authorization server down: an error within the timeout, not a hang.
    idp.stop();
    let started = std::time::Instant::now();
    let res = support::raw::call_tool(&url, &[("authorization", &auth)], "call_upstream").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(res.body.contains("\"isError\":true"), "{}", res.body);
}
