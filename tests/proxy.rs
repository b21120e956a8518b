//! Client addresses behind reverse proxies, as audit events and logs show them (review test 3):
//! `X-Forwarded-For` from a peer outside `MCP_TRUSTED_PROXIES` is ignored for `client_addr`,
//! from a trusted proxy it names the client, and forwarded headers from an untrusted peer log
//! one warning.
//!
//! This is the only test in its binary: `tracing`'s per-thread capture is unreliable when
//! other tests in the same process run without a subscriber. A "direct client" connects from
//! 127.0.0.2, a different peer from the "proxy" at 127.0.0.1.

mod support;

use support::capture::Capture;
use support::{Server, start};

const KEYS: &str = "key-alice-0123456789abcdef;sub=alice";

/// POSTs `initialize` from a local (loopback) address; returns the status.
async fn attempt_from(local: [u8; 4], srv: &Server, headers: &[(&str, &str)]) -> u16 {
    support::raw::attempt_from(local, srv, headers).await.0
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies_in_audit_events_and_warnings() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let proxied = start(&[("MCP_API_KEYS", KEYS), ("MCP_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let bad = ("x-api-key", "key-guess-0000000000000000");
    // A direct client claiming another address: judged by its socket address.
    for _ in 0..2 {
        let status = attempt_from(
            [127, 0, 0, 2],
            &proxied,
            &[("x-forwarded-for", "203.0.113.77"), bad],
        )
        .await;
        assert_eq!(status, 401);
    }
    // Through the proxy: the address it reports (the client's own claim on the left is not).
    let status = attempt_from(
        [127, 0, 0, 1],
        &proxied,
        &[("x-forwarded-for", "203.0.113.88, 198.51.100.5"), bad],
    )
    .await;
    assert_eq!(status, 401);

    // No trusted proxy at all, but forwarded headers arrive: one warning, however many.
    let unconfigured = start(&[("MCP_API_KEYS", KEYS)]).await;
    for headers in [
        vec![("x-forwarded-for", "198.51.100.9"), bad],
        vec![("forwarded", "for=198.51.100.9"), bad],
        vec![("x-forwarded-for", "198.51.100.10"), bad],
    ] {
        assert_eq!(
            attempt_from([127, 0, 0, 1], &unconfigured, &headers).await,
            401
        );
    }

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let audit: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("mcp_auth::audit") && l.contains("authn_failure"))
        .collect();
    let count = |needle: &str| audit.iter().filter(|l| l.contains(needle)).count();
    assert_eq!(count("client_addr=127.0.0.2 "), 2, "{audit:#?}");
    assert_eq!(
        count("203.0.113.77"),
        0,
        "a direct client's claim: {audit:#?}"
    );
    assert_eq!(count("client_addr=198.51.100.5 "), 1, "{audit:#?}");
    assert_eq!(
        count("203.0.113.88"),
        0,
        "the claim left of the proxy's: {audit:#?}"
    );
    assert_eq!(
        count("client_addr=127.0.0.1 "),
        3,
        "without trusted proxies, the socket address: {audit:#?}"
    );
    assert_eq!(count("198.51.100.9"), 0, "{audit:#?}");
    let warnings = |needle: &str| {
        logs.lines()
            .filter(|l| l.contains("WARN") && l.contains(needle))
            .count()
    };
    assert_eq!(
        warnings("no trusted proxy is configured (MCP_TRUSTED_PROXIES"),
        1,
        "{logs}"
    );
    assert_eq!(
        warnings("a request from a peer that is not a trusted proxy carries X-Forwarded-For"),
        1,
        "{logs}"
    );
}
