//! The official MCP TypeScript SDK client (`@modelcontextprotocol/sdk`, tests/e2e/ts-sdk)
//! against the example server over loopback: the 403 step-up challenge it receives with a
//! static API key, the full OAuth flow from a cold start against oidc-provider, a step-up
//! re-authorization on 403, and client_credentials.
//!
//! Needs `npm ci --prefix tests/e2e/ts-sdk` and `npm ci --prefix tests/e2e/idp` (scripts/test.sh
//! does both and runs these tests with `--ignored`).

mod support;

use serde_json::{Value, json};
use support::idp::start_idp;
use support::sdk::{observed, saw};
use support::{connect, start_with};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/ts-sdk");

/// Runs `node client.mjs <args>` (killed after 90 s) and parses its JSON line.
async fn node(args: Vec<String>) -> Value {
    assert!(
        std::path::Path::new(DIR)
            .join("node_modules/@modelcontextprotocol/sdk")
            .exists(),
        "the TypeScript SDK is not installed: run `npm ci --prefix tests/e2e/ts-sdk` (scripts/test.sh does)"
    );
    support::sdk::run_client(
        "TypeScript",
        "node",
        "client.mjs",
        args,
        DIR,
        "node and coreutils' timeout are installed",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages: run scripts/test.sh"]
async fn typescript_sdk_receives_the_403_step_up_challenge() {
    let srv = start_with(|_| {
        vec![(
            "MCP_API_KEYS".into(),
            "key-reader-0123456789abcdef;sub=reader;scopes=data:read, key-admin-0123456789abcdef;sub=admin"
                .into(),
        )]
    })
    .await;
    let v = node(vec![
        "api-key".into(),
        srv.url(),
        "key-reader-0123456789abcdef".into(),
    ])
    .await;
    assert_eq!(v["tools"], json!(["read_data", "whoami"]), "{v:#}");
    assert_eq!(v["read"]["ok"], true);
    let write = &v["write"];
    assert_eq!(write["ok"], false, "{v:#}");
    assert_eq!(write["name"], "StreamableHTTPError", "{v:#}");
    assert_eq!(write["code"], 403, "{v:#}");
    assert!(
        write["message"]
            .as_str()
            .unwrap()
            .contains(r#""scope":"data:write""#),
        "{v:#}"
    );
    let challenge = observed(&v)
        .into_iter()
        .find(|o| o["status"] == 403)
        .expect("the 403 the SDK received")["challenge"]
        .clone();
    assert_eq!(
        challenge,
        "Bearer error=\"insufficient_scope\", error_description=\"this operation needs more scope\", scope=\"data:write\""
    );
    // The refused write did not run.
    let admin = connect(srv.url(), &[("x-api-key", "key-admin-0123456789abcdef")])
        .await
        .unwrap();
    let mut args = serde_json::Map::new();
    args.insert("key".into(), "k".into());
    let read = admin
        .call_tool(rmcp::model::CallToolRequestParams::new("read_data").with_arguments(args))
        .await
        .unwrap();
    assert_eq!(
        read.content[0].as_text().unwrap().text,
        "no value for key \"k\""
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages: run scripts/test.sh"]
async fn typescript_sdk_completes_the_oauth_flow_from_a_cold_start() {
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let srv = start_with(|_| vec![("MCP_OIDC_ISSUER".into(), issuer)]).await;
    let url = srv.url();
    let v = node(vec!["auth-code".into(), url.clone()]).await;
    assert_eq!(v["whoami"]["subject"], "alice", "{v:#}");
    assert_eq!(v["whoami"]["method"], "jwt");
    assert!(
        v["whoami"]["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("data:read"))
    );
    // The whole discovery chain, in the SDK's own requests.
    assert!(saw(&v, "POST", "/mcp", 401), "{v:#}");
    assert!(
        saw(&v, "GET", "/.well-known/oauth-protected-resource/mcp", 200),
        "{v:#}"
    );
    assert!(
        observed(&v).iter().any(|o| o["status"] == 200
            && (o["path"] == "/.well-known/oauth-authorization-server"
                || o["path"] == "/.well-known/openid-configuration")),
        "{v:#}"
    );
    assert!(saw(&v, "POST", "/reg", 201), "{v:#}");
    let authorize = observed(&v)
        .into_iter()
        .find(|o| o["path"] == "/auth")
        .expect("an authorization request");
    assert_eq!(
        authorize["resource"],
        url.as_str(),
        "RFC 8707 resource, exact"
    );
    assert_eq!(authorize["codeChallengeMethod"], "S256");
    assert!(saw(&v, "POST", "/token", 200), "{v:#}");
    assert_eq!(v["authorizations"], 1);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages: run scripts/test.sh"]
async fn typescript_sdk_steps_up_on_403_and_the_retry_succeeds() {
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let srv = start_with(|_| vec![("MCP_OIDC_ISSUER".into(), issuer)]).await;
    let v = node(vec!["step-up".into(), srv.url()]).await;
    assert_eq!(v["whoami"]["scopes"], json!(["data:read"]), "{v:#}");
    let challenges: Vec<Value> = observed(&v)
        .into_iter()
        .filter(|o| o["status"] == 403)
        .collect();
    assert_eq!(challenges.len(), 1, "{v:#}");
    let challenge = challenges[0]["challenge"].as_str().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\"")
            && challenge.contains("scope=\"data:write\"")
            && challenge.contains("resource_metadata=\""),
        "{challenge}"
    );
    let scopes: Vec<Value> = observed(&v)
        .into_iter()
        .filter(|o| o["path"] == "/auth")
        .map(|o| o["scope"].clone())
        .collect();
    assert_eq!(scopes.len(), 2, "{v:#}");
    assert!(
        scopes[1]
            .as_str()
            .unwrap()
            .split(' ')
            .any(|s| s == "data:write"),
        "{v:#}"
    );
    assert_eq!(v["authorizations"], 2);
    assert_eq!(v["retry"]["text"], "stored \"k\"");
    assert!(
        v["whoamiAfter"]["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("data:write")),
        "{v:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages: run scripts/test.sh"]
async fn typescript_sdk_client_credentials() {
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let srv = start_with(|_| vec![("MCP_OIDC_ISSUER".into(), issuer)]).await;
    let v = node(vec![
        "client-credentials".into(),
        srv.url(),
        "cc-client".into(),
        "cc-secret".into(),
    ])
    .await;
    assert_eq!(v["whoami"]["subject"], "cc-client", "{v:#}");
    assert_eq!(v["whoami"]["method"], "jwt");
    assert!(saw(&v, "POST", "/mcp", 401), "{v:#}");
    assert!(saw(&v, "POST", "/token", 200), "{v:#}");
}
