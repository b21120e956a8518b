//! The proxy in front of the official SDK servers, driven by rmcp's client with static
//! bearer tokens: the Python SDK (`mcp` from PyPI, `tests/e2e/upstream-py`) and the
//! TypeScript SDK (`@modelcontextprotocol/sdk` from npm, `tests/e2e/upstream-ts`), each
//! stateful over streamable HTTP and recording the headers of every request it receives.
//!
//! Needs the virtualenv `tests/e2e/py-sdk/.venv` (with `tests/e2e/py-sdk/requirements.txt`)
//! and `npm ci --prefix tests/e2e/ts-sdk`; ignored in a plain `cargo test`.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::ClientHandler;
use rmcp::model::{
    CallToolRequestParams, NumberOrString, ProgressNotificationParam, ProgressToken,
    RequestMetaObject,
};
use rmcp::service::{NotificationContext, RoleClient};
use serde_json::{Value, json};
use support::{Child, connect, connect_with, pairs, start_proxy};

const ADMIN: &str = "tok-admin-0123456789abcdef";
const READER: &str = "tok-reader-0123456789abcdef";
const TOKENS: &str =
    "tok-admin-0123456789abcdef;sub=alice, tok-reader-0123456789abcdef;sub=reader;scopes=data:read";

/// Records when each progress notification arrived.
#[derive(Clone, Default)]
struct Progress(Arc<Mutex<Vec<(Instant, f64)>>>);

impl ClientHandler for Progress {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _: NotificationContext<RoleClient>,
    ) {
        self.0
            .lock()
            .unwrap()
            .push((Instant::now(), params.progress));
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// The text of a tool result's first content, as JSON.
fn json_text(result: &rmcp::model::CallToolResult) -> Value {
    let text = &result.content[0].as_text().expect("text content").text;
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

/// Everything the tests check, against one upstream.
async fn through_the_proxy(upstream: Child) {
    let up_url = upstream.url.clone();
    let proxy =
        start_proxy(move |_| pairs(&[("MCP_AUTH_TOKENS", TOKENS), ("MCP_UPSTREAM_URL", &up_url)]))
            .await;

    // whoami sees the proxy's identity headers, never the spoofed one.
    let admin_auth = bearer(ADMIN);
    let admin = connect(
        proxy.url(),
        &[("authorization", &admin_auth), ("x-mcp-subject", "mallory")],
    )
    .await
    .expect("connects through the proxy");
    let who = admin
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .unwrap();
    let who = json_text(&who);
    assert_eq!(who["identity"]["x-mcp-subject"], "alice", "{who:#}");
    assert_eq!(
        who["identity"]["x-mcp-scopes"], "data:admin data:read data:write",
        "{who:#}"
    );
    assert_eq!(who["identity"]["x-mcp-auth-method"], "bearer", "{who:#}");
    assert_eq!(who["authorization"], Value::Null, "{who:#}");
    assert_eq!(who["x_api_key"], Value::Null, "{who:#}");

    // Progress notifications arrive as they are sent, not all at the end.
    let progress = Progress::default();
    let streaming = connect_with(
        proxy.url(),
        &[("authorization", &admin_auth)],
        progress.clone(),
    )
    .await
    .unwrap();
    let mut call = CallToolRequestParams::new("slow_progress");
    call.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
        NumberOrString::Number(7),
    )));
    let started = Instant::now();
    let done = streaming.call_tool(call).await.unwrap();
    let finished = Instant::now();
    let seen = progress.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 10, "{seen:?} {done:?}");
    let spread = seen[9].0 - seen[0].0;
    assert!(
        spread >= Duration::from_millis(500),
        "progress arrived together: spread {spread:?}"
    );
    assert!(
        finished - seen[0].0 >= Duration::from_millis(500),
        "the first notification arrived only near the end ({:?} after the call started)",
        seen[0].0 - started
    );
    let _ = streaming.cancel().await;

    // A read-only caller sees only what it may call, and is refused the rest with 403.
    let reader_auth = bearer(READER);
    let reader = connect(proxy.url(), &[("authorization", &reader_auth)])
        .await
        .unwrap();
    let mut names: Vec<String> = reader
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["read_data", "slow_progress", "whoami"]);
    let refused = reader
        .call_tool(
            CallToolRequestParams::new("delete_data")
                .with_arguments(json!({"key": "k"}).as_object().unwrap().clone()),
        )
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let _ = reader.cancel().await;
    let raw = reqwest::Client::new()
        .post(proxy.url())
        .bearer_auth(READER)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_data","arguments":{"key":"k"}}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 403);
    let challenge = raw.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains("data:admin"),
        "{challenge}"
    );

    // A session ends with DELETE through the proxy.
    let http = reqwest::Client::new();
    let init = http
        .post(proxy.url())
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion":"2025-06-18","capabilities":{},
                "clientInfo":{"name":"raw","version":"1"}}})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), 200);
    let session = init.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = init.text().await;
    let deleted = http
        .delete(proxy.url())
        .bearer_auth(ADMIN)
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let after = http
        .post(proxy.url())
        .bearer_auth(ADMIN)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", "2025-06-18")
        .body(json!({"jsonrpc":"2.0","id":1,"method":"ping"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 404, "the session is gone");
    let _ = admin.cancel().await;

    // What the upstream received: never a client credential or a spoofed identity.
    let requests = upstream.requests().await;
    assert!(requests.len() >= 8, "{requests:#?}");
    assert!(upstream.header_values("authorization").await.is_empty());
    assert!(upstream.header_values("x-api-key").await.is_empty());
    let subjects = upstream.header_values("x-mcp-subject").await;
    assert_eq!(subjects.len(), requests.len(), "{requests:#?}");
    assert!(
        subjects.iter().all(|s| s == "alice" || s == "reader"),
        "{subjects:?}"
    );
    assert!(
        requests.iter().any(|r| r["method"] == "DELETE"),
        "{requests:#?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs PyPI packages: run scripts/test.sh"]
async fn python_sdk_upstream_through_the_proxy() {
    through_the_proxy(support::py_upstream()).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages: run scripts/test.sh"]
async fn typescript_sdk_upstream_through_the_proxy() {
    through_the_proxy(support::ts_upstream()).await;
}
