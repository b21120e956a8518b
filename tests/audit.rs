//! Audit events captured over a run of attacks against the example server: every kind of
//! event appears with its documented fields, and none carries a credential.
//!
//! This is the only test in its binary: `tracing`'s per-thread capture is unreliable when
//! other tests in the same process run without a subscriber.

mod support;

use mcp_auth::authenticators::jwt::{Algorithm, JwtMinter};
use serde_json::json;
use support::capture::Capture;
use support::{Server, start_with};

const KEY: &str = "key-alice-0123456789abcdef";
const ADMIN: &str = "key-admin-0123456789abcdef";
const JWT_SECRET: &str = "hardening-test-secret-0123456789abcdef";
const KEYS: &str =
    "key-alice-0123456789abcdef;sub=alice;scopes=data:read, key-admin-0123456789abcdef;sub=admin";

/// POSTs `initialize` with `headers`; returns the status.
async fn attempt(srv: &Server, headers: &[(&str, &str)]) -> u16 {
    support::raw::attempt(srv, headers).await.0
}

#[tokio::test]
async fn audit_events_cover_an_attack_run_and_never_carry_a_credential() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let srv = start_with(|url| {
        vec![
            ("MCP_API_KEYS".into(), KEYS.into()),
            (
                "MCP_AUTH_TOKENS".into(),
                "tok-bob-0123456789abcdef;sub=bob".into(),
            ),
            ("MCP_JWT_SECRET".into(), JWT_SECRET.into()),
            ("MCP_JWT_ISSUER".into(), "https://as.example.com".into()),
            ("MCP_JWT_AUDIENCE".into(), url.into()),
            ("MCP_FAILURE_LIMIT".into(), "8/60".into()),
            ("MCP_TRUST_PROXY".into(), "true".into()),
        ]
    })
    .await;
    let minter = JwtMinter::hmac(JWT_SECRET, Algorithm::HS256)
        .unwrap()
        .issuer("https://as.example.com")
        .audience(srv.url());
    let good_jwt = minter.mint("carol", ["data:read"]).unwrap();
    let foreign_jwt = JwtMinter::hmac(JWT_SECRET, Algorithm::HS256)
        .unwrap()
        .issuer("https://as.example.com")
        .audience("https://other.example.com/mcp")
        .mint("mallory", ["data:admin"])
        .unwrap();
    let forged_jwt = {
        let mut t = good_jwt.clone();
        t.pop();
        t.push(if good_jwt.ends_with('A') { 'B' } else { 'A' });
        t
    };
    let mut secrets: Vec<String> = vec![
        KEY.into(),
        ADMIN.into(),
        "tok-bob-0123456789abcdef".into(),
        "key-alice-0123456789abcdeX".into(),
        "guess-0000000000000000".into(),
        good_jwt.clone(),
        foreign_jwt.clone(),
        forged_jwt.clone(),
    ];
    let bearer = |t: &str| format!("Bearer {t}");
    let unsigned_jwt = {
        let parts: Vec<&str> = good_jwt.split('.').collect();
        format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{}.", parts[1])
    };
    let huge = "h".repeat(32 * 1024);
    let attacks: Vec<Vec<(&str, String)>> = vec![
        vec![("x-api-key", secrets[3].clone())],
        vec![("x-api-key", secrets[4].clone())],
        vec![("authorization", bearer(&secrets[4]))],
        vec![("authorization", bearer(&foreign_jwt))],
        vec![("authorization", bearer(&forged_jwt))],
        vec![("authorization", format!("Basic {}", secrets[2]))],
        vec![("authorization", format!("bearer  {}", secrets[2]))],
        vec![
            ("authorization", bearer(&secrets[2])),
            ("authorization", bearer(&secrets[4])),
        ],
        vec![
            ("origin", "https://evil.example".into()),
            ("x-api-key", KEY.into()),
        ],
        vec![
            ("x-request-id", "req-42".into()),
            ("x-api-key", ADMIN.into()),
        ],
        vec![
            ("authorization", bearer(&good_jwt)),
            ("mcp-method", "initialize".into()),
        ],
        // More of the attack catalogue: unsigned JWT, empty and oversized tokens, a
        // credential in a second header with a valid one, a near-miss of a real key.
        vec![("authorization", bearer(&unsigned_jwt))],
        vec![("authorization", "Bearer ".into())],
        vec![("authorization", bearer(&huge))],
        vec![("x-api-key", KEY.into()), ("x-api-key", secrets[4].clone())],
        vec![("x-api-key", format!("{} ", &KEY[..KEY.len() - 1]))],
    ];
    for (i, headers) in attacks.iter().enumerate() {
        let mut h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let addr = format!("192.0.2.{}", i + 1);
        h.push(("x-forwarded-for", &addr));
        attempt(&srv, &h).await;
    }
    // A denial with a tool name: alice (data:read) calls delete_data.
    let sid = {
        let res = reqwest::Client::new()
            .post(srv.url())
            .header("x-api-key", KEY)
            .header("x-forwarded-for", "192.0.2.100")
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
                "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}))
            .send()
            .await
            .unwrap();
        res.headers()["mcp-session-id"].to_str().unwrap().to_owned()
    };
    let denied = reqwest::Client::new()
        .post(srv.url())
        .header("x-api-key", KEY)
        .header("mcp-session-id", &sid)
        .header("x-forwarded-for", "192.0.2.100")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_data","arguments":{"key":"k"}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    // A token in the query string (refused, 400).
    let res = reqwest::Client::new()
        .post(format!("{}?access_token={}", srv.url(), secrets[2]))
        .header("x-forwarded-for", "192.0.2.150")
        .header("authorization", bearer(&secrets[2]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // Brute force from one address until it is limited.
    for i in 0..10 {
        let guess = format!("key-brute-{i:016}");
        attempt(
            &srv,
            &[("x-api-key", &guess), ("x-forwarded-for", "192.0.2.200")],
        )
        .await;
    }

    // Log amplification (review L3): an unauthenticated request with a ~64 KiB path, and a
    // denied call naming a ~100 KiB tool, each give one bounded line.
    let long_path = format!("/mcp/{}", "p".repeat(65_000));
    let res = reqwest::Client::new()
        .get(format!("{}{long_path}", srv.url().trim_end_matches("/mcp")))
        .header("x-forwarded-for", "192.0.2.160")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let long_tool = "t".repeat(100_000);
    let denied = reqwest::Client::new()
        .post(srv.url())
        .header("x-api-key", KEY)
        .header("mcp-session-id", &sid)
        .header("x-forwarded-for", "192.0.2.100")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":long_tool,"arguments":{}}}))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    for (what, needle) in [("path", "p".repeat(200)), ("tool", "t".repeat(120))] {
        let lines: Vec<&str> = logs.lines().filter(|l| l.contains(&needle)).collect();
        assert_eq!(lines.len(), 1, "one line for the long {what}: {lines:#?}");
        assert!(
            lines[0].len() < 2048,
            "long {what}: {} bytes",
            lines[0].len()
        );
        assert!(
            lines[0].contains(mcp_auth::telemetry::TRUNCATED),
            "{}",
            lines[0]
        );
    }
    let audit: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("mcp_auth::audit"))
        .collect();
    let has = |needles: &[&str]| audit.iter().any(|l| needles.iter().all(|n| l.contains(n)));
    assert!(
        has(&[
            "event=\"authn_failure\"",
            "reason=\"invalid_token\"",
            "client_addr=192.0.2.1 ",
            "path=\"/mcp\""
        ]),
        "{logs}"
    );
    assert!(
        has(&["event=\"authn_failure\"", "detail=\"audience_mismatch\""]),
        "{logs}"
    );
    assert!(
        has(&["event=\"authn_failure\"", "reason=\"invalid_request\""]),
        "{logs}"
    );
    assert!(
        has(&["event=\"transport_refused\"", "reason=\"forbidden_origin\""]),
        "{logs}"
    );
    assert!(
        has(&[
            "event=\"authn_success\"",
            "principal=\"|admin|\"",
            "request_id=\"req-42\""
        ]),
        "{logs}"
    );
    assert!(
        has(&[
            "event=\"authn_success\"",
            "auth_method=\"jwt\"",
            "mcp_method=\"initialize\""
        ]),
        "{logs}"
    );
    assert!(
        has(&[
            "event=\"authz_denied\"",
            "tool=\"delete_data\"",
            "mcp_method=\"tools/call\"",
            "principal=\"|alice|\""
        ]),
        "{logs}"
    );
    assert!(
        has(&["event=\"rate_limited\"", "client_addr=192.0.2.200"]),
        "{logs}"
    );
    // No credential, whole or in part, in any event or log line.
    secrets.push(unsigned_jwt.clone());
    for s in &secrets {
        for part in [s.as_str(), &s[..12], &s[s.len() - 12..]] {
            assert!(!logs.contains(part), "{part:?} leaked into logs");
        }
    }
}
