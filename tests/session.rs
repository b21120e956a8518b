//! Session binding in the example server (rmcp's streamable HTTP transport over loopback HTTP):
//! an MCP session belongs to the principal that created it. Another authenticated user holding
//! its `Mcp-Session-Id` gets rmcp's own "unknown session" 404 for GET (the SSE stream), POST
//! and DELETE, and none of those requests reaches rmcp; the owner carries on.
//!
//! The Redis variant needs `redis-server` and is `#[ignore]`d (scripts/test.sh runs it).

mod support;

use std::sync::Arc;
use std::time::Duration;

use mcp_auth::{
    session::NOT_FOUND_BODY,
    store::{Owner, SessionDigest, SessionStore},
};
use reqwest::header::HeaderMap;
use support::redis_server::RedisServer;
use support::{Server, example, start};

const ALICE: &str = "key-alice-0123456789abcdef";
const BOB: &str = "key-bob-0123456789abcdef0";
const VERSION: &str = "2025-06-18";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![(
        "MCP_API_KEYS",
        "key-alice-0123456789abcdef;sub=alice, key-bob-0123456789abcdef0;sub=bob",
    )]
}

fn reached(srv: &Server) -> usize {
    srv.reached.load(std::sync::atomic::Ordering::SeqCst)
}

struct Reply {
    status: u16,
    headers: HeaderMap,
    body: String,
}

/// One request; the body is read to its end (within 5 s) unless `stream` is set.
async fn send(
    srv: &Server,
    method: reqwest::Method,
    key: &str,
    session: Option<&str>,
    body: Option<serde_json::Value>,
) -> Reply {
    let mut req = reqwest::Client::new()
        .request(method.clone(), srv.url())
        .header("x-api-key", key)
        .header("accept", "application/json, text/event-stream");
    if let Some(s) = session {
        req = req
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", VERSION);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = tokio::time::timeout(Duration::from_secs(5), res.text())
        .await
        .expect("the response ended")
        .unwrap();
    Reply {
        status,
        headers,
        body,
    }
}

/// `initialize` + `notifications/initialized` as `key`; the new session id.
async fn open_session(srv: &Server, key: &str) -> String {
    let init = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    });
    let res = send(srv, reqwest::Method::POST, key, None, Some(init)).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let session = res.headers["mcp-session-id"].to_str().unwrap().to_owned();
    let initialized = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let res = send(
        srv,
        reqwest::Method::POST,
        key,
        Some(&session),
        Some(initialized),
    )
    .await;
    assert_eq!(res.status, 202, "{}", res.body);
    session
}

fn whoami_call(id: u32) -> serde_json::Value {
    serde_json::json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}}
    })
}

/// `whoami` in `session` as `key`: the reply, and the subject when it succeeded.
async fn whoami(srv: &Server, key: &str, session: &str, id: u32) -> (Reply, Option<String>) {
    let res = send(
        srv,
        reqwest::Method::POST,
        key,
        Some(session),
        Some(whoami_call(id)),
    )
    .await;
    let subject = res
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d.trim()).ok())
        .find_map(|m| {
            let text = m["result"]["content"][0]["text"].as_str()?.to_owned();
            let who: serde_json::Value = serde_json::from_str(&text).ok()?;
            who["subject"].as_str().map(str::to_owned)
        });
    (res, subject)
}

/// The response header names a client sees, minus those the HTTP stack adds to every response.
fn names(h: &HeaderMap) -> Vec<String> {
    let mut v: Vec<String> = h
        .keys()
        .map(|k| k.as_str().to_owned())
        .filter(|k| !matches!(k.as_str(), "date" | "content-length" | "vary"))
        .filter(|k| !k.starts_with("access-control-"))
        .collect();
    v.sort();
    v
}

fn assert_not_found(res: &Reply, what: &str) {
    assert_eq!(res.status, 404, "{what}: {}", res.body);
    assert_eq!(res.body, NOT_FOUND_BODY, "{what}");
    assert!(names(&res.headers).is_empty(), "{what}: {:?}", res.headers);
}

#[tokio::test]
async fn another_users_session_id_gets_404_and_never_reaches_the_session() {
    let srv = start(&env()).await;
    let session = open_session(&srv, ALICE).await;
    // Alice's SSE stream is open while Bob tries.
    let stream = reqwest::Client::new()
        .get(srv.url())
        .header("x-api-key", ALICE)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let before = reached(&srv);

    // Bob, authenticated, with Alice's session id: GET (attach to her stream), POST (a call,
    // a notification, a response to a server request), all "no such session".
    let get = reqwest::Client::new()
        .get(srv.url())
        .header("x-api-key", BOB)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", &session)
        .header("mcp-protocol-version", VERSION)
        .send()
        .await
        .unwrap();
    let get = Reply {
        status: get.status().as_u16(),
        headers: get.headers().clone(),
        body: tokio::time::timeout(Duration::from_secs(5), get.text())
            .await
            .expect("Bob's GET ended, instead of attaching to Alice's stream")
            .unwrap(),
    };
    assert_not_found(&get, "GET");
    let (call, subject) = whoami(&srv, BOB, &session, 7).await;
    assert_not_found(&call, "tools/call");
    assert_eq!(subject, None);
    for body in [
        serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        serde_json::json!({"jsonrpc": "2.0", "id": 0, "result": {"action": "accept", "content": {}}}),
    ] {
        let res = send(&srv, reqwest::Method::POST, BOB, Some(&session), Some(body)).await;
        assert_not_found(&res, "notification/response");
    }
    assert_eq!(reached(&srv), before, "none of Bob's requests reached rmcp");

    // Alice carries on in the same session, her stream still open.
    let (res, subject) = whoami(&srv, ALICE, &session, 8).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(subject.as_deref(), Some("alice"));
    drop(stream);

    // Bob's own session works, and Alice cannot use it either.
    let bobs = open_session(&srv, BOB).await;
    let (_, subject) = whoami(&srv, BOB, &bobs, 9).await;
    assert_eq!(subject.as_deref(), Some("bob"));
    let (res, _) = whoami(&srv, ALICE, &bobs, 10).await;
    assert_not_found(&res, "Alice in Bob's session");
}

#[tokio::test]
async fn delete_by_another_user_is_404_and_the_session_lives_on() {
    let srv = start(&env()).await;
    let session = open_session(&srv, ALICE).await;
    let before = reached(&srv);
    let res = send(&srv, reqwest::Method::DELETE, BOB, Some(&session), None).await;
    assert_not_found(&res, "DELETE by Bob");
    assert_eq!(reached(&srv), before, "Bob's DELETE never reached rmcp");
    let (res, subject) = whoami(&srv, ALICE, &session, 2).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(subject.as_deref(), Some("alice"));

    // Her own DELETE ends it (rmcp answers 202) and removes the binding.
    let res = send(&srv, reqwest::Method::DELETE, ALICE, Some(&session), None).await;
    assert_eq!(res.status, 202, "{}", res.body);
    let before = reached(&srv);
    let (res, _) = whoami(&srv, ALICE, &session, 3).await;
    assert_not_found(&res, "after DELETE");
    assert_eq!(reached(&srv), before);
}

#[tokio::test]
async fn the_refusal_is_rmcps_own_answer_for_an_unknown_session() {
    use tower::ServiceExt;
    let policy = Arc::new(example::scope_policy(example::DEFAULT_TOOL_SCOPES).unwrap());
    let unknown = "0f8fad5b-d9cb-469f-a165-70867728950e";
    // rmcp alone, asked about a session it does not know.
    let mut direct = Vec::new();
    for (method, body) in [
        (http::Method::POST, whoami_call(1).to_string()),
        (http::Method::GET, String::new()),
    ] {
        let req = http::Request::builder()
            .method(method)
            .uri("http://127.0.0.1/mcp")
            .header("host", "127.0.0.1")
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-session-id", unknown)
            .header("mcp-protocol-version", VERSION)
            .body(axum::body::Body::from(body))
            .unwrap();
        let res = example::mcp_service(None, policy.clone(), None)
            .oneshot(req)
            .await
            .unwrap();
        let status = res.status().as_u16();
        let headers: Vec<String> = res
            .headers()
            .keys()
            .map(|k| k.as_str().to_owned())
            .filter(|k| k != "content-length")
            .collect();
        let body = axum::body::to_bytes(axum::body::Body::new(res.into_body()), 1 << 16)
            .await
            .unwrap();
        direct.push((status, headers, String::from_utf8(body.to_vec()).unwrap()));
    }
    for (status, headers, body) in &direct {
        assert_eq!(*status, 404);
        assert!(headers.is_empty(), "{headers:?}");
        assert_eq!(body, NOT_FOUND_BODY);
    }

    // Through the server: Bob with Alice's session, and anyone with an unknown one, get exactly
    // that, and cannot tell the two apart.
    let srv = start(&env()).await;
    let session = open_session(&srv, ALICE).await;
    let before = reached(&srv);
    for (key, id) in [(BOB, session.as_str()), (ALICE, unknown), (BOB, unknown)] {
        let (res, _) = whoami(&srv, key, id, 4).await;
        assert_not_found(&res, id);
    }
    assert_eq!(reached(&srv), before);
}

#[tokio::test]
async fn rmcp_clients_of_two_users_work_side_by_side() {
    use rmcp::model::CallToolRequestParams;
    let srv = start(&env()).await;
    let a = support::connect(srv.url(), &[("x-api-key", ALICE)])
        .await
        .unwrap();
    let b = support::connect(srv.url(), &[("x-api-key", BOB)])
        .await
        .unwrap();
    for (client, who) in [(&a, "alice"), (&b, "bob"), (&a, "alice")] {
        let r = client
            .call_tool(CallToolRequestParams::new("whoami"))
            .await
            .unwrap();
        let text = &r.content[0].as_text().unwrap().text;
        let v: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(v["subject"], who);
    }
    let _ = a.cancel().await;
    let _ = b.cancel().await;
}

// --- Redis ------------------------------------------------------------------------------------------

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn redis_bindings_hold_across_instances_and_never_store_the_id() {
    use mcp_auth::store::RedisSessionStore;
    use mcp_auth::store::redis::{Redis, RedisConfig};
    let redis = RedisServer::start();
    let url = redis.url();
    let mut env = env();
    env.push(("MCP_REDIS_URL", &url));
    // Off, so that with Redis down the 503 below is the session layer's own.
    env.push(("MCP_FAILURE_LIMIT", "off"));
    let srv = start(&env).await;
    let session = open_session(&srv, ALICE).await;
    let (res, _) = whoami(&srv, BOB, &session, 2).await;
    assert_not_found(&res, "Bob, Redis store");
    let (_, subject) = whoami(&srv, ALICE, &session, 3).await;
    assert_eq!(subject.as_deref(), Some("alice"));

    // Another instance (its own handle) sees the binding, and cannot rebind it.
    let other = RedisSessionStore::new(&Redis::new(RedisConfig::new(&url)).unwrap());
    let digest = SessionDigest::of(session.as_bytes());
    let alice = Owner::of("|alice|");
    assert_eq!(other.owner(&digest).await.unwrap(), Some(alice));
    assert_eq!(
        other.bind(&digest, &Owner::of("|bob|")).await.unwrap(),
        alice
    );
    assert!(!other.unbind(&digest, &Owner::of("|bob|")).await.unwrap());

    // Key layout: one `session:` key, hashed, with the idle TTL; the id appears nowhere.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*session*")
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].contains(&session) && !keys[0].contains(&digest.to_hex()));
    let value: String = redis::cmd("GET")
        .arg(&keys[0])
        .query_async(&mut c)
        .await
        .unwrap();
    assert_eq!(value, alice.to_hex());
    let ttl: i64 = redis::cmd("TTL")
        .arg(&keys[0])
        .query_async(&mut c)
        .await
        .unwrap();
    assert!((3000..=3600).contains(&ttl), "{ttl}");

    // Alice's DELETE removes it; a binding Redis lost (evicted, flushed) is refused, not
    // handed to whoever asks next.
    let res = send(&srv, reqwest::Method::DELETE, ALICE, Some(&session), None).await;
    assert_eq!(res.status, 202);
    assert_eq!(other.owner(&digest).await.unwrap(), None);
    let second = open_session(&srv, ALICE).await;
    let _: () = redis::cmd("FLUSHALL").query_async(&mut c).await.unwrap();
    let before = reached(&srv);
    for key in [ALICE, BOB] {
        let (res, _) = whoami(&srv, key, &second, 4).await;
        assert_not_found(&res, "lost binding");
    }
    assert_eq!(reached(&srv), before);

    // Redis down: 503, fail closed, nothing reaches rmcp.
    drop(redis);
    let res = send(
        &srv,
        reqwest::Method::POST,
        ALICE,
        Some(&second),
        Some(whoami_call(5)),
    )
    .await;
    assert_eq!(res.status, 503, "{}", res.body);
    assert_eq!(reached(&srv), before);
}
