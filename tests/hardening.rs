//! Hardening through the example server on a loopback port: failed-attempt limiting (per
//! client address, not per claimed identity), `Origin` validation and HTTPS enforcement.

mod support;

use serde_json::json;
use support::{Server, start};

const KEY: &str = "key-alice-0123456789abcdef";

fn keys() -> (&'static str, &'static str) {
    (
        "MCP_API_KEYS",
        "key-alice-0123456789abcdef;sub=alice;scopes=data:read, key-admin-0123456789abcdef;sub=admin",
    )
}

/// POSTs `initialize` with `headers`; returns the status and the `Retry-After` header.
async fn attempt(srv: &Server, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(srv.url())
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
                "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}})
            .to_string(),
        );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), retry)
}

#[tokio::test]
async fn repeated_failures_from_one_address_get_429_until_the_window_ends() {
    let srv = start(&[keys(), ("MCP_FAILURE_LIMIT", "5/60")]).await;
    // Requests without credentials (OAuth discovery starts so) never count.
    for _ in 0..20 {
        assert_eq!(attempt(&srv, &[]).await.0, 401);
    }
    for i in 0..5 {
        let bad = format!("key-guess-{i:016}");
        assert_eq!(attempt(&srv, &[("x-api-key", &bad)]).await.0, 401);
    }
    let before = srv.reached.load(std::sync::atomic::Ordering::SeqCst);
    // Locked: even the right key is refused, without reaching the authenticator or rmcp.
    let (status, retry) = attempt(&srv, &[("x-api-key", KEY)]).await;
    assert_eq!(status, 429);
    let retry: u64 = retry.expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        srv.reached.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
}

#[tokio::test]
async fn a_stranger_cannot_lock_out_a_user_by_failing_in_their_name() {
    // Behind a trusted proxy, clients are told apart by X-Forwarded-For.
    let srv = start(&[
        keys(),
        ("MCP_FAILURE_LIMIT", "3/60"),
        ("MCP_TRUST_PROXY", "true"),
    ])
    .await;
    let attacker = [("x-forwarded-for", "198.51.100.66")];
    for i in 0..10 {
        // Near-misses of alice's key, from the attacker's address.
        let guess = format!("key-alice-0123456789abc{i:03}");
        let mut h = attacker.to_vec();
        h.push(("x-api-key", &guess));
        let status = attempt(&srv, &h).await.0;
        assert!(status == 401 || status == 429, "{status}");
    }
    assert_eq!(
        attempt(
            &srv,
            &[("x-forwarded-for", "198.51.100.66"), ("x-api-key", KEY)]
        )
        .await
        .0,
        429,
        "the attacker's address is locked"
    );
    assert_eq!(
        attempt(
            &srv,
            &[("x-forwarded-for", "203.0.113.5"), ("x-api-key", KEY)]
        )
        .await
        .0,
        200,
        "alice, from her own address, is not"
    );
}

#[tokio::test]
async fn foreign_origins_are_refused_and_local_ones_allowed() {
    let srv = start(&[keys()]).await;
    let before = srv.reached.load(std::sync::atomic::Ordering::SeqCst);
    for origin in [
        "https://evil.example",
        "null",
        "http://localhost.evil.example:80",
    ] {
        let (status, _) = attempt(&srv, &[("origin", origin), ("x-api-key", KEY)]).await;
        assert_eq!(status, 403, "{origin}");
    }
    assert_eq!(
        srv.reached.load(std::sync::atomic::Ordering::SeqCst),
        before
    );
    for origin in ["http://localhost:6274", "http://127.0.0.1:3000"] {
        let (status, _) = attempt(&srv, &[("origin", origin), ("x-api-key", KEY)]).await;
        assert_eq!(status, 200, "{origin}");
    }
    let custom = start(&[keys(), ("MCP_ALLOWED_ORIGINS", "https://app.example.com")]).await;
    assert_eq!(
        attempt(
            &custom,
            &[("origin", "http://localhost:6274"), ("x-api-key", KEY)]
        )
        .await
        .0,
        403
    );
    assert_eq!(
        attempt(
            &custom,
            &[("origin", "https://app.example.com"), ("x-api-key", KEY)]
        )
        .await
        .0,
        200
    );
}

#[tokio::test]
async fn plain_http_is_refused_when_https_is_required() {
    let srv = start(&[keys(), ("MCP_REQUIRE_HTTPS", "true")]).await;
    assert_eq!(attempt(&srv, &[("x-api-key", KEY)]).await.0, 403);
    assert_eq!(
        attempt(&srv, &[("x-api-key", KEY), ("x-forwarded-proto", "https")])
            .await
            .0,
        403,
        "the header counts only behind a trusted proxy"
    );
    let proxied = start(&[
        keys(),
        ("MCP_REQUIRE_HTTPS", "true"),
        ("MCP_TRUST_PROXY", "true"),
    ])
    .await;
    assert_eq!(
        attempt(
            &proxied,
            &[("x-api-key", KEY), ("x-forwarded-proto", "https")]
        )
        .await
        .0,
        200
    );
    assert_eq!(
        attempt(
            &proxied,
            &[("x-api-key", KEY), ("x-forwarded-proto", "http")]
        )
        .await
        .0,
        403
    );
}
