//! Per-tool scopes through the example server: `ScopeLayer` (HTTP 403 step-up challenges) and
//! `ScopedServer` (filtered `tools/list`, in-handler checks), driven by rmcp's real MCP client
//! and by raw HTTP on a loopback port.
//!
//! A counter between the scope layer and rmcp proves that refused requests never reach the
//! MCP service.

mod support;

use std::time::{Duration, Instant};

use mcp_auth::testing::assert_challenge;
use rmcp::model::{CallToolRequestParams, CallToolResult};
use rmcp::service::{RoleClient, RunningService};
use serde_json::{Value, json};
use support::{Server, connect, example, start};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const READER: &str = "key-reader-0123456789abcdef";
const WRITER: &str = "key-writer-0123456789abcdef";
const ADMIN: &str = "key-admin-0123456789abcdef";
const NOBODY: &str = "key-nobody-0123456789abcdef";
const EXPIRED: &str = "key-expired-0123456789abcdef";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![(
        "MCP_API_KEYS",
        "key-reader-0123456789abcdef;sub=reader;scopes=data:read, \
         key-writer-0123456789abcdef;sub=writer;scopes=data:write, \
         key-admin-0123456789abcdef;sub=admin, \
         key-nobody-0123456789abcdef;sub=nobody;scopes=, \
         key-expired-0123456789abcdef;sub=old;scopes=data:read;exp=1700000000",
    )]
}

fn challenge(scope: &str) -> String {
    format!(
        "Bearer error=\"insufficient_scope\", error_description=\"this operation needs more scope\", scope=\"{scope}\""
    )
}

type Client = RunningService<RoleClient, rmcp::model::ClientConfig>;

async fn client(srv: &Server, key: &str) -> Client {
    connect(srv.url(), &[("x-api-key", key)])
        .await
        .expect("connects")
}

async fn call(client: &Client, tool: &str, args: Value) -> Result<CallToolResult, String> {
    let Value::Object(args) = args else {
        panic!("arguments must be an object")
    };
    client
        .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
        .await
        .map_err(|e| match &e {
            // The transport's error (its 403 challenge) is not linked as a source.
            rmcp::ServiceError::TransportSend(t) => format!("{e} / {}", chain(t.error.as_ref())),
            _ => chain(&e),
        })
}

/// An error and all its sources, so the transport's 403 challenge text is visible.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(" / ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn text(result: &CallToolResult) -> &str {
    &result.content[0].as_text().expect("text content").text
}

async fn tool_names(client: &Client) -> Vec<String> {
    let mut names: Vec<String> = client
        .list_all_tools()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name.into_owned())
        .collect();
    names.sort();
    names
}

// --- raw HTTP -------------------------------------------------------------------------------

struct Reply {
    status: u16,
    challenge: Option<String>,
    headers: http::HeaderMap,
    body: String,
}

/// Initializes a session with `key` over raw HTTP; returns the `Mcp-Session-Id`.
async fn session(srv: &Server, key: &str) -> String {
    support::raw::raw_session(&srv.url(), key).await
}

async fn post(
    srv: &Server,
    key: &str,
    session: &str,
    extra: &[(&str, &str)],
    body: impl Into<reqwest::Body>,
) -> Reply {
    let mut req = reqwest::Client::new()
        .post(srv.url())
        .header("x-api-key", key)
        .header("mcp-session-id", session)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = req.body(body).send().await.unwrap();
    Reply {
        status: res.status().as_u16(),
        challenge: res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned()),
        headers: res.headers().clone(),
        body: res.text().await.unwrap(),
    }
}

fn tool_call(id: u64, tool: &str, args: Value) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args}})
}

/// Sends a raw HTTP/1.1 request head and `body_chunks` (chunked transfer encoding) on a
/// fresh connection, writing concurrently with reading; returns the status and the text
/// received within 10 s.
async fn raw_chunked(srv: &Server, head: String, body_chunks: Vec<Vec<u8>>) -> (u16, String) {
    let stream = TcpStream::connect(srv.addr).await.unwrap();
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        wr.write_all(head.as_bytes()).await?;
        for chunk in body_chunks {
            wr.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            wr.write_all(&chunk).await?;
            wr.write_all(b"\r\n").await?;
        }
        wr.write_all(b"0\r\n\r\n").await?;
        wr.flush().await?;
        Ok::<_, std::io::Error>(wr)
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rd.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                got.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&got);
                // Enough once a complete SSE event or a non-streamed body has arrived.
                if text.contains("\r\n\r\n")
                    && (!text.contains("text/event-stream") || text.contains("\n\n"))
                    && (text.contains("\"result\"")
                        || text.contains("\"error\"")
                        || !text.starts_with("HTTP/1.1 200"))
                {
                    break;
                }
            }
        }
    }
    writer.abort();
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    (status, text)
}

fn chunked_head(srv: &Server, key: &str, session: &str) -> String {
    format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nx-api-key: {key}\r\nmcp-session-id: {session}\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         transfer-encoding: chunked\r\n\r\n",
        srv.addr
    )
}

// --- tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn each_tool_is_allowed_or_refused_by_scope_with_a_real_client() {
    let srv = start(&env()).await;
    let args = |tool: &str| match tool {
        "whoami" => json!({}),
        "write_data" => json!({"key": "k", "value": "v"}),
        _ => json!({"key": "k"}),
    };
    // (key, tool, the scope a refusal names; None = allowed)
    let cases = [
        (READER, "whoami", None),
        (READER, "read_data", None),
        (READER, "write_data", Some("data:write")),
        (READER, "delete_data", Some("data:admin")),
        (WRITER, "read_data", None), // data:write implies data:read
        (WRITER, "write_data", None),
        (WRITER, "delete_data", Some("data:admin")),
        (ADMIN, "read_data", None),
        (ADMIN, "write_data", None),
        (ADMIN, "delete_data", None),
        (NOBODY, "whoami", None),
        (NOBODY, "read_data", Some("data:read")),
    ];
    for (key, tool, refused) in cases {
        let c = client(&srv, key).await;
        let before = srv.posts();
        let result = call(&c, tool, args(tool)).await;
        match refused {
            None => {
                let result = result.unwrap_or_else(|e| panic!("{key} {tool}: {e}"));
                assert!(!text(&result).is_empty());
                assert_eq!(srv.posts(), before + 1, "{key} {tool} reached rmcp");
            }
            Some(scope) => {
                let err = result.expect_err(tool);
                assert!(
                    err.contains(&format!("insufficient scope: {}", challenge(scope))),
                    "{key} {tool}: {err}"
                );
                assert_eq!(srv.posts(), before, "{key} {tool} must not reach rmcp");
            }
        }
        let _ = c.cancel().await;
    }
}

#[tokio::test]
async fn tools_list_shows_each_caller_only_what_it_may_call() {
    let srv = start(&env()).await;
    for (key, expected) in [
        (READER, &["read_data", "whoami"][..]),
        (WRITER, &["read_data", "whoami", "write_data"]),
        (ADMIN, &["delete_data", "read_data", "whoami", "write_data"]),
        (NOBODY, &["whoami"]),
    ] {
        let c = client(&srv, key).await;
        assert_eq!(tool_names(&c).await, expected, "{key}");
        // A listing that varies per caller is never to be shared (MCP caching).
        let page = c.list_tools(None).await.unwrap();
        assert_eq!(
            page.cache_scope,
            Some(rmcp::model::CacheScope::Private),
            "{key}"
        );
        let _ = c.cancel().await;
    }
}

#[tokio::test]
async fn refusal_is_a_403_challenge_with_a_json_body_and_the_call_is_not_executed() {
    let srv = start(&env()).await;
    let admin = client(&srv, ADMIN).await;
    call(&admin, "write_data", json!({"key": "keep", "value": "1"}))
        .await
        .unwrap();

    let sid = session(&srv, WRITER).await;
    let before = srv.posts();
    let res = post(
        &srv,
        WRITER,
        &sid,
        &[],
        tool_call(7, "delete_data", json!({"key": "keep"})).to_string(),
    )
    .await;
    assert_eq!(res.status, 403);
    assert_eq!(
        res.challenge.as_deref(),
        Some(challenge("data:admin").as_str())
    );
    let body: Value = serde_json::from_str(&res.body).unwrap();
    assert_eq!(
        body,
        json!({"error":"insufficient_scope","error_description":"this operation needs more scope","scope":"data:admin"})
    );
    assert_eq!(srv.posts(), before);
    let kept = call(&admin, "read_data", json!({"key": "keep"}))
        .await
        .unwrap();
    assert_eq!(text(&kept), "1", "the refused delete did not run");
}

#[tokio::test]
async fn expired_credentials_get_401_before_any_scope_decision() {
    let srv = start(&env()).await;
    let sid = session(&srv, READER).await;
    let res = post(
        &srv,
        EXPIRED,
        &sid,
        &[],
        tool_call(1, "delete_data", json!({"key": "k"})).to_string(),
    )
    .await;
    assert_eq!(res.status, 401, "an invalid credential is a 401, not a 403");
    assert_challenge(&res.headers, "ApiKey")
        .first()
        .error("invalid_token");
    // No credentials and an 8 MiB declared body: 401, and nothing is read.
    let res = reqwest::Client::new()
        .post(srv.url())
        .header("content-type", "application/json")
        .body(vec![b' '; 8 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn a_batch_hiding_a_refused_call_is_refused_whole_and_nothing_runs() {
    let srv = start(&env()).await;
    let admin = client(&srv, ADMIN).await;
    call(
        &admin,
        "write_data",
        json!({"key": "victim", "value": "safe"}),
    )
    .await
    .unwrap();
    let sid = session(&srv, READER).await;
    let before = srv.posts();
    let batch = json!([
        tool_call(1, "read_data", json!({"key": "victim"})),
        tool_call(2, "delete_data", json!({"key": "victim"})),
        tool_call(3, "read_data", json!({"key": "victim"})),
    ]);
    let res = post(&srv, READER, &sid, &[], batch.to_string()).await;
    assert_eq!(res.status, 403);
    assert_eq!(
        res.challenge.as_deref(),
        Some(challenge("data:read data:admin").as_str())
    );
    assert_eq!(srv.posts(), before);
    let still = call(&admin, "read_data", json!({"key": "victim"}))
        .await
        .unwrap();
    assert_eq!(text(&still), "safe");
}

#[tokio::test]
async fn ambiguous_requests_are_bad_requests_that_never_reach_rmcp() {
    let srv = start(&env()).await;
    let sid = session(&srv, ADMIN).await;
    let before = srv.posts();
    let dup_name = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_data","name":"delete_data","arguments":{"key":"k"}}}"#;
    let dup_method = r#"{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call","params":{"name":"delete_data","arguments":{"key":"k"}}}"#;
    let no_name = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":null}}"#;
    let not_string =
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":["delete_data"]}}"#;
    for body in [dup_name, dup_method, no_name, not_string, "{", "[]"] {
        let res = post(&srv, ADMIN, &sid, &[], body).await;
        assert_eq!(res.status, 400, "{body}");
        assert_eq!(
            serde_json::from_str::<Value>(&res.body).unwrap()["error"],
            "invalid_request"
        );
    }
    // Mcp-Method / Mcp-Name headers that disagree with the body.
    let body = tool_call(1, "delete_data", json!({"key": "k"})).to_string();
    for headers in [
        &[("mcp-method", "tools/call"), ("mcp-name", "read_data")][..],
        &[("mcp-method", "tools/list")],
    ] {
        let res = post(&srv, ADMIN, &sid, headers, body.clone()).await;
        assert_eq!(res.status, 400, "{headers:?}");
        // A JSON-RPC error for the request's id: -32020, header mismatch (MCP 2026-07-28).
        let err: Value = serde_json::from_str(&res.body).unwrap();
        assert_eq!(err["error"]["code"], -32020, "{}", res.body);
        assert_eq!(err["id"], 1);
    }
    assert_eq!(srv.posts(), before);
    // Headers that agree pass.
    let body = tool_call(2, "read_data", json!({"key": "k"})).to_string();
    let res = post(
        &srv,
        ADMIN,
        &sid,
        &[("mcp-method", "tools/call"), ("mcp-name", "read_data")],
        body,
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(srv.posts(), before + 1);
}

#[tokio::test]
async fn an_8_mib_body_gets_413_quickly_declared_or_chunked() {
    let srv = start(&env()).await;
    let sid = session(&srv, ADMIN).await;
    let before = srv.posts();

    // Declared: refused on the Content-Length alone, before any body byte is sent.
    let started = Instant::now();
    let head = format!(
        "POST /mcp HTTP/1.1\r\nHost: {}\r\nx-api-key: {ADMIN}\r\nmcp-session-id: {sid}\r\n\
         content-type: application/json\r\naccept: application/json, text/event-stream\r\n\
         content-length: {}\r\n\r\n",
        srv.addr,
        8 * 1024 * 1024
    );
    let mut stream = TcpStream::connect(srv.addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 413"), "{answer}");
    // The body is left unread: the answer says the connection closes.
    assert!(answer.contains("\r\nconnection: close\r\n"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // Chunked, no length: refused once the 4 MiB limit is passed.
    let started = Instant::now();
    let chunks = vec![vec![b' '; 256 * 1024]; 32];
    let (status, _) = raw_chunked(&srv, chunked_head(&srv, ADMIN, &sid), chunks).await;
    assert_eq!(status, 413);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(srv.posts(), before);
}

#[tokio::test]
async fn chunked_bodies_and_unicode_values_reach_the_tool_byte_for_byte() {
    let srv = start(&env()).await;
    let value = "ünïcødé ✓ 🦀 עברית e\u{301} \"quoted\" back\\slash\nline \u{0}\u{7f} \u{fffd}";
    let sid = session(&srv, WRITER).await;
    let body = tool_call(1, "write_data", json!({"key": "uni", "value": value})).to_string();
    // Split into small chunks, cutting through multi-byte characters.
    let chunks: Vec<Vec<u8>> = body.as_bytes().chunks(7).map(<[u8]>::to_vec).collect();
    let (status, text_seen) = raw_chunked(&srv, chunked_head(&srv, WRITER, &sid), chunks).await;
    assert_eq!(status, 200, "{text_seen}");
    assert!(text_seen.contains("stored \\\"uni\\\""), "{text_seen}");

    let reader = client(&srv, READER).await;
    let read = call(&reader, "read_data", json!({"key": "uni"}))
        .await
        .unwrap();
    assert_eq!(text(&read), value);

    // The same round trip through rmcp's client.
    let writer = client(&srv, WRITER).await;
    call(
        &writer,
        "write_data",
        json!({"key": "uni2", "value": value}),
    )
    .await
    .unwrap();
    let read = call(&reader, "read_data", json!({"key": "uni2"}))
        .await
        .unwrap();
    assert_eq!(text(&read), value);
}

#[tokio::test]
async fn get_and_delete_carry_no_operation_and_pass_the_scope_layer() {
    let srv = start(&env()).await;
    let sid = session(&srv, NOBODY).await;
    let http = reqwest::Client::new();
    let before = srv.reached.load(std::sync::atomic::Ordering::SeqCst);
    let get = http
        .get(srv.url())
        .header("x-api-key", NOBODY)
        .header("mcp-session-id", &sid)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200, "the SSE stream opens");
    assert_eq!(
        get.headers()["content-type"],
        "text/event-stream",
        "rmcp's stream, not a refusal"
    );
    drop(get);
    let delete = http
        .delete(srv.url())
        .header("x-api-key", NOBODY)
        .header("mcp-session-id", &sid)
        .send()
        .await
        .unwrap();
    assert!(delete.status().is_success(), "{}", delete.status());
    assert_eq!(
        srv.reached.load(std::sync::atomic::Ordering::SeqCst),
        before + 2
    );
}

#[tokio::test]
async fn argument_dependent_checks_in_the_handler_return_an_rmcp_error() {
    let srv = start(&env()).await;
    let writer = client(&srv, WRITER).await;
    let err = call(
        &writer,
        "write_data",
        json!({"key": "admin/x", "value": "v"}),
    )
    .await
    .unwrap_err();
    assert!(err.contains("data:admin"), "{err}");
    call(
        &writer,
        "write_data",
        json!({"key": "user/x", "value": "v"}),
    )
    .await
    .unwrap();
    let admin = client(&srv, ADMIN).await;
    call(
        &admin,
        "write_data",
        json!({"key": "admin/x", "value": "v"}),
    )
    .await
    .unwrap();
    // The refused write did not happen before the admin's.
    let read = call(&admin, "read_data", json!({"key": "admin/x"}))
        .await
        .unwrap();
    assert_eq!(text(&read), "v");
}

#[tokio::test]
async fn the_tool_table_can_be_replaced_from_the_environment() {
    let mut env = env();
    env.push((
        "MCP_TOOL_SCOPES",
        "whoami=; read_data=data:read|data:write; delete_data=data:admin role:admin",
    ));
    env.push((
        "MCP_AUTH_TOKENS",
        "token-root-0123456789abcdef;sub=root;roles=admin",
    ));
    let srv = start(&env).await;
    // write_data is no longer listed: refused for everyone, hidden from every list.
    let admin = client(&srv, ADMIN).await;
    assert_eq!(tool_names(&admin).await, ["read_data", "whoami"]);
    let err = call(&admin, "write_data", json!({"key": "k", "value": "v"}))
        .await
        .unwrap_err();
    assert!(err.contains("insufficient_scope"), "{err}");
    // delete_data needs the admin role too.
    let err = call(&admin, "delete_data", json!({"key": "k"}))
        .await
        .unwrap_err();
    assert!(err.contains("a role the caller does not have"), "{err}");
    let root = connect(
        srv.url(),
        &[("authorization", "Bearer token-root-0123456789abcdef")],
    )
    .await
    .unwrap();
    call(&root, "delete_data", json!({"key": "k"}))
        .await
        .unwrap();
    // data:write alone satisfies the any-of set.
    let writer = client(&srv, WRITER).await;
    call(&writer, "read_data", json!({"key": "k"}))
        .await
        .unwrap();

    let bad = example::load_config(mcp_auth::env::EnvReader::from_pairs([(
        "MCP_TOOL_SCOPES",
        "read_data=a|b c|d",
    )]))
    .expect_err("a bad table is a configuration error");
    assert!(bad.to_string().contains("MCP_TOOL_SCOPES"), "{bad}");
}

/// `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"0":0,"1":0,…}}` with `n` distinct keys.
fn many_keys_ping(n: usize) -> String {
    let mut body = String::from(r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"#);
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("\"{i:x}\":0"));
    }
    body.push_str("}}");
    body
}

#[tokio::test]
async fn a_body_of_200k_distinct_keys_is_answered_in_seconds_not_minutes() {
    // Quadratic duplicate-key detection (security review H1) spent minutes of CPU on this
    // (2·10¹⁰ key comparisons). Linear reading takes well under a second in a release build;
    // the bound is loose because this debug build also runs rmcp's own parse of the body, on a
    // shared machine. The cost itself is measured in `benches/scope.rs` (`adversarial`).
    let srv = start(&env()).await;
    let sid = session(&srv, NOBODY).await;
    let body = many_keys_ping(200_000);
    assert!(body.len() < 4 * 1024 * 1024);
    let started = Instant::now();
    let reply = post(&srv, NOBODY, &sid, &[], body).await;
    let took = started.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert!(took < Duration::from_secs(20), "{took:?}");
}

#[tokio::test]
async fn other_methods_get_405_and_bodies_on_get_or_delete_get_400_without_reaching_rmcp() {
    use std::sync::atomic::Ordering::SeqCst;
    let srv = start(&env()).await;
    let sid = session(&srv, ADMIN).await;
    let http = reqwest::Client::new();
    let before = srv.reached.load(SeqCst);
    let call = tool_call(9, "delete_data", json!({"key": "k"})).to_string();
    for method in [reqwest::Method::PUT, reqwest::Method::PATCH] {
        let res = http
            .request(method.clone(), srv.url())
            .header("x-api-key", ADMIN)
            .header("mcp-session-id", &sid)
            .header("content-type", "application/json")
            .header("mcp-method", "tools/list")
            .body(call.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 405, "{method}");
        assert_eq!(res.headers()["allow"], "GET, HEAD, POST, DELETE, OPTIONS");
    }
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let res = http
            .request(method.clone(), srv.url())
            .header("x-api-key", ADMIN)
            .header("mcp-session-id", &sid)
            .header("content-type", "application/json")
            .body(call.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{method}");
    }
    assert_eq!(srv.reached.load(SeqCst), before);
}

#[tokio::test]
async fn a_batch_over_100_messages_is_refused_before_rmcp() {
    let srv = start(&env()).await;
    let sid = session(&srv, ADMIN).await;
    let before = srv.posts();
    let one = json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string();
    let batch = format!("[{}]", vec![one.as_str(); 10_000].join(","));
    let reply = post(&srv, ADMIN, &sid, &[], batch).await;
    assert_eq!(reply.status, 400);
    assert!(
        reply
            .body
            .contains("more messages than this server accepts"),
        "{}",
        reply.body
    );
    assert_eq!(srv.posts(), before);
}

/// The header-routing bypass (`Mcp-Name: read_data` with `delete_data` in the body) never
/// works, at any protocol version, plain or in the Base64 sentinel form; from 2026-07-28 on
/// missing headers are refused too; before it they are optional. The body always decides.
#[tokio::test]
async fn the_header_routing_bypass_fails_at_every_protocol_version() {
    let srv = start(&env()).await;
    let sid = session(&srv, READER).await;
    let delete = tool_call(7, "delete_data", json!({"key": "k"})).to_string();
    let read = tool_call(8, "read_data", json!({"key": "k"})).to_string();
    let mismatch = |res: &Reply| {
        let err: Value = serde_json::from_str(&res.body).unwrap_or_default();
        res.status == 400 && err["error"]["code"] == -32020
    };
    for version in [
        None,
        Some("2025-03-26"),
        Some("2025-06-18"),
        Some("2025-11-25"),
        Some("2026-07-28"),
    ] {
        let before = srv.posts();
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut h: Vec<(&str, &str)> = extra.to_vec();
            if let Some(v) = version {
                h.push(("mcp-protocol-version", v));
            }
            h
        };
        for lie in [
            &[("mcp-method", "tools/call"), ("mcp-name", "read_data")][..],
            &[
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?cmVhZF9kYXRh?="),
            ],
            &[("mcp-method", "tools/list")],
            &[("mcp-name", "read_data")],
        ] {
            let res = post(&srv, READER, &sid, &with(lie), delete.clone()).await;
            assert!(
                mismatch(&res),
                "{version:?} {lie:?}: {} {}",
                res.status,
                res.body
            );
        }
        // Headers that tell the truth about delete_data: the body decides, 403 for a reader.
        let truth = post(
            &srv,
            READER,
            &sid,
            &with(&[
                ("mcp-method", "tools/call"),
                ("mcp-name", "=?base64?ZGVsZXRlX2RhdGE=?="),
            ]),
            delete.clone(),
        )
        .await;
        assert_eq!(truth.status, 403, "{version:?}: {}", truth.body);
        // Nothing above reached rmcp.
        assert_eq!(srv.posts(), before, "{version:?}");
        // Missing headers: refused from 2026-07-28 on, allowed before.
        let bare = post(&srv, READER, &sid, &with(&[]), read.clone()).await;
        let method_only = post(
            &srv,
            READER,
            &sid,
            &with(&[("mcp-method", "tools/call")]),
            read.clone(),
        )
        .await;
        if version == Some("2026-07-28") {
            assert!(mismatch(&bare), "{}", bare.body);
            assert!(mismatch(&method_only), "{}", method_only.body);
            assert_eq!(srv.posts(), before);
        } else {
            assert!(!mismatch(&bare), "{version:?}: {}", bare.body);
            assert!(mismatch(&method_only), "{version:?}: {}", method_only.body);
        }
    }
}
