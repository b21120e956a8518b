//! Hardening through the example server on a loopback port: failed-attempt limiting (per
//! client address, not per claimed identity; forwarded addresses only from trusted proxies;
//! attempts counted before authenticating), `Origin` validation and HTTPS enforcement.
//!
//! A "direct client" connects from 127.0.0.2 (any 127/8 address is this host on Linux), so
//! it is a different peer from the "proxy" at 127.0.0.1.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use mcp_auth::AuthLayer;
use mcp_auth::env::EnvReader;
use mcp_auth::request_info::ClientAddr;
use mcp_auth::{hardening::FailureLimitLayer, store::MemoryAttemptStore};
use support::auth::Slow;
use support::raw::{attempt, attempt_from};
use support::{example, start};
use tower::{Layer, ServiceExt, service_fn};

const KEY: &str = "key-alice-0123456789abcdef";

fn keys() -> (&'static str, &'static str) {
    (
        "MCP_API_KEYS",
        "key-alice-0123456789abcdef;sub=alice;scopes=data:read, key-admin-0123456789abcdef;sub=admin",
    )
}

#[tokio::test]
async fn repeated_failures_from_one_address_get_429_until_the_window_ends() {
    // Direct clients told apart by address: a proxy is configured elsewhere (192.0.2.1), so
    // 127.0.0.1 is a client like any other.
    let srv = start(&[
        keys(),
        ("MCP_FAILURE_LIMIT", "5/60"),
        ("MCP_TRUSTED_PROXIES", "192.0.2.1"),
    ])
    .await;
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
    // The proxy is 127.0.0.1; a stranger reaches the port directly from 127.0.0.2.
    let srv = start(&[
        keys(),
        ("MCP_FAILURE_LIMIT", "3/60"),
        ("MCP_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    let victim = "203.0.113.5";
    // 1. Directly, forging the victim's address: the header is ignored, the stranger's own
    //    socket address is counted (M1).
    for i in 0..10 {
        let guess = format!("key-alice-0123456789abc{i:03}");
        let status = attempt_from(
            [127, 0, 0, 2],
            &srv,
            &[("x-forwarded-for", victim), ("x-api-key", &guess)],
        )
        .await
        .0;
        assert!(status == 401 || status == 429, "{status}");
    }
    // Rotating the forged address does not get the stranger past its own lock either.
    assert_eq!(
        attempt_from(
            [127, 0, 0, 2],
            &srv,
            &[("x-forwarded-for", "198.51.100.99"), ("x-api-key", KEY)]
        )
        .await
        .0,
        429,
        "the stranger's socket address is locked"
    );
    assert_eq!(
        attempt(&srv, &[("x-forwarded-for", victim), ("x-api-key", KEY)])
            .await
            .0,
        200,
        "the victim, through the proxy, is not"
    );
    // 2. Through the proxy: a stranger's failures lock only the stranger, even when it puts
    //    the victim's address in its own X-Forwarded-For (the proxy appends the real one).
    for i in 0..10 {
        let guess = format!("key-alice-0123456789abd{i:03}");
        let forged = format!("{victim}, 198.51.100.66");
        let status = attempt(&srv, &[("x-forwarded-for", &forged), ("x-api-key", &guess)])
            .await
            .0;
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
        "the stranger's address is locked"
    );
    assert_eq!(
        attempt(&srv, &[("x-forwarded-for", victim), ("x-api-key", KEY)])
            .await
            .0,
        200,
        "the victim, from her own address, is not"
    );
}

#[tokio::test]
async fn behind_a_proxy_one_clients_failures_do_not_lock_out_another() {
    // Every request comes from one peer (the proxy, 127.0.0.1), as behind nginx on the same
    // host. Configured with MCP_TRUSTED_PROXIES, clients are told apart (review test 2).
    let srv = start(&[
        keys(),
        ("MCP_TRUSTED_PROXIES", "127.0.0.1"),
        ("MCP_FAILURE_LIMIT", "10/300"),
    ])
    .await;
    for i in 0..10 {
        let guess = format!("key-guess-{i:016}");
        assert_eq!(
            attempt(
                &srv,
                &[("x-forwarded-for", "198.51.100.10"), ("x-api-key", &guess)]
            )
            .await
            .0,
            401
        );
    }
    assert_eq!(
        attempt(
            &srv,
            &[("x-forwarded-for", "198.51.100.10"), ("x-api-key", KEY)]
        )
        .await
        .0,
        429,
        "client A is limited"
    );
    assert_eq!(
        attempt(
            &srv,
            &[("x-forwarded-for", "198.51.100.11"), ("x-api-key", KEY)]
        )
        .await
        .0,
        200,
        "client B is not"
    );
}

#[tokio::test]
async fn behind_an_untrusted_local_proxy_the_limit_is_off_by_default_and_refused_when_set() {
    // Loopback bind (the default), no MCP_TRUSTED_PROXIES: every client would share
    // 127.0.0.1, so the limit is off by default (H2)...
    let srv = start(&[keys()]).await;
    for i in 0..30 {
        let guess = format!("key-guess-{i:016}");
        assert_eq!(attempt(&srv, &[("x-api-key", &guess)]).await.0, 401);
    }
    assert_eq!(
        attempt(&srv, &[("x-api-key", KEY)]).await.0,
        200,
        "strangers behind the same address did not lock the user out"
    );
    // ...and asking for it is refused at start-up, naming the way out.
    for limit in ["10/300", "3/60"] {
        let err = example::load_config(EnvReader::from_pairs([
            keys(),
            ("MCP_FAILURE_LIMIT", limit),
        ]))
        .expect_err("refused");
        let text = err.to_string();
        assert!(
            text.contains("MCP_TRUSTED_PROXIES") && text.contains("MCP_FAILURE_LIMIT=off"),
            "{text}"
        );
        assert!(
            err.problems()
                .iter()
                .any(|p| p.setting() == "MCP_FAILURE_LIMIT")
        );
    }
    // Off explicitly is fine; so is a limit once addresses tell clients apart.
    let ok = |env: Vec<(&'static str, &'static str)>| {
        let mut pairs = vec![keys()];
        pairs.extend(env);
        example::load_config(EnvReader::from_pairs(pairs))
            .unwrap_or_else(|e| panic!("refused: {e}"))
            .guards
            .failure_limit
    };
    assert_eq!(ok(vec![("MCP_FAILURE_LIMIT", "off")]), None);
    assert_eq!(ok(vec![]), None);
    let on = Some((10, Duration::from_secs(300)));
    assert_eq!(ok(vec![("MCP_TRUSTED_PROXIES", "127.0.0.1")]), on);
    assert_eq!(ok(vec![("MCP_TRUST_PROXY", "true")]), on);
    assert_eq!(ok(vec![("MCP_BIND", "0.0.0.0:0")]), on);
    assert_eq!(ok(vec![("MCP_BIND", "[::]:0")]), on);
    assert_eq!(
        ok(vec![
            ("MCP_BIND", "0.0.0.0:0"),
            ("MCP_FAILURE_LIMIT", "3/60")
        ]),
        Some((3, Duration::from_secs(60)))
    );
    assert_eq!(ok(vec![("MCP_BIND", "[::1]:0")]), None);
}

#[test]
fn proxy_settings_are_checked_at_start_up() {
    let err = |env: Vec<(&'static str, &'static str)>| {
        let mut pairs = vec![keys()];
        pairs.extend(env);
        let e = example::load_config(EnvReader::from_pairs(pairs)).expect_err("refused");
        e.problems()
            .iter()
            .map(|p| p.setting().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        err(vec![("MCP_TRUSTED_PROXIES", "10.0.0.0/33")]),
        ["MCP_TRUSTED_PROXIES"]
    );
    assert_eq!(
        err(vec![("MCP_TRUSTED_PROXIES", "nginx.internal")]),
        ["MCP_TRUSTED_PROXIES"]
    );
    assert_eq!(
        err(vec![("MCP_TRUST_FORWARDED_HOST", "true")]),
        ["MCP_TRUST_FORWARDED_HOST"],
        "forwarded host and scheme need trusted proxies"
    );
}

#[tokio::test]
async fn a_huge_failure_window_neither_panics_nor_overflows() {
    let srv = start(&[
        keys(),
        ("MCP_FAILURE_LIMIT", "2/18446744073709551615"),
        ("MCP_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    for i in 0..2 {
        let guess = format!("key-guess-{i:016}");
        assert_eq!(attempt(&srv, &[("x-api-key", &guess)]).await.0, 401);
    }
    let (status, retry) = attempt(&srv, &[("x-api-key", KEY)]).await;
    assert_eq!(status, 429);
    let retry: u64 = retry.unwrap().parse().unwrap();
    assert!(retry <= 365 * 24 * 3600, "{retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_guesses_cannot_overtake_the_count() {
    // M4: 50 guesses at once against max_failures(3) and a slow authenticator. Counted
    // before authenticating, only 3 ever reach it; the rest get 429 without being looked at.
    let seen = Arc::new(AtomicUsize::new(0));
    let svc = FailureLimitLayer::new(MemoryAttemptStore::new())
        .max_failures(3)
        .window(Duration::from_secs(60))
        .layer(
            AuthLayer::new(Slow { seen: seen.clone() }).layer(service_fn(
                |_req: http::Request<()>| async {
                    Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
                },
            )),
        );
    let guess = |i: usize, key: String| {
        let svc = svc.clone();
        async move {
            let mut req = http::Request::get("/mcp")
                .header("x-api-key", key)
                .body(())
                .unwrap();
            req.extensions_mut()
                .insert(ClientAddr([198, 51, 100, (i % 2) as u8].into()));
            svc.oneshot(req).await.unwrap().status().as_u16()
        }
    };
    let tasks: Vec<_> = (0..50)
        .map(|i| tokio::spawn(guess(0, format!("wrong-guess-{i:012}"))))
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(seen.load(Ordering::SeqCst), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 47);
    // Locked for the window, the right key too; another client is not affected.
    assert_eq!(guess(0, "the-right-key-0123456789".into()).await, 429);
    assert_eq!(guess(1, "the-right-key-0123456789".into()).await, 200);
    // Successes are refunded: a client's good requests, even 20 in parallel, never use up
    // its allowance once they are done.
    let tasks: Vec<_> = (0..20)
        .map(|_| tokio::spawn(guess(1, "the-right-key-0123456789".into())))
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap() == 200);
    }
    assert!(ok >= 3, "{ok}");
    for _ in 0..5 {
        assert_eq!(guess(1, "the-right-key-0123456789".into()).await, 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_release_layer_parallel_good_requests_are_never_limited() {
    // The companion layer inside the auth layer refunds as soon as a request authenticated,
    // so a client's in-flight requests do not hold its allowance.
    let seen = Arc::new(AtomicUsize::new(0));
    let in_handler = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let limit = FailureLimitLayer::new(MemoryAttemptStore::new()).max_failures(3);
    let release = limit.release();
    let (count, wait) = (in_handler.clone(), gate.clone());
    let handler = service_fn(move |_req: http::Request<()>| {
        let (count, wait) = (count.clone(), wait.clone());
        async move {
            // The first three stay in the handler until the test lets them go.
            if count.fetch_add(1, Ordering::SeqCst) < 3 {
                wait.acquire().await.unwrap().forget();
            }
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        }
    });
    let svc =
        limit.layer(AuthLayer::new(Slow { seen: seen.clone() }).layer(release.layer(handler)));
    let call = move || {
        let svc = svc.clone();
        async move {
            let mut req = http::Request::get("/mcp")
                .header("x-api-key", "the-right-key-0123456789")
                .body(())
                .unwrap();
            req.extensions_mut()
                .insert(ClientAddr([198, 51, 100, 7].into()));
            svc.oneshot(req).await.unwrap().status().as_u16()
        }
    };
    let tasks: Vec<_> = (0..3).map(|_| tokio::spawn(call())).collect();
    // Wait until all three have authenticated and sit in the handler.
    let started = std::time::Instant::now();
    while in_handler.load(Ordering::SeqCst) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never reached the handler"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A fourth request of the same client, while three are in flight: authenticated, not 429.
    assert_eq!(call().await, 200);
    gate.add_permits(3);
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
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

#[tokio::test]
async fn forwarded_proto_counts_only_from_a_trusted_proxy_with_the_setting_on() {
    let https = ("x-forwarded-proto", "https");
    // Trusted proxies for the client address only: the scheme header is not believed.
    let addr_only = start(&[
        keys(),
        ("MCP_REQUIRE_HTTPS", "true"),
        ("MCP_TRUSTED_PROXIES", "127.0.0.1"),
    ])
    .await;
    assert_eq!(
        attempt(&addr_only, &[("x-api-key", KEY), https]).await.0,
        403
    );
    let both = start(&[
        keys(),
        ("MCP_REQUIRE_HTTPS", "true"),
        ("MCP_TRUSTED_PROXIES", "127.0.0.1"),
        ("MCP_TRUST_FORWARDED_HOST", "true"),
    ])
    .await;
    assert_eq!(attempt(&both, &[("x-api-key", KEY), https]).await.0, 200);
    assert_eq!(
        attempt_from([127, 0, 0, 2], &both, &[("x-api-key", KEY), https])
            .await
            .0,
        403,
        "a direct client cannot claim HTTPS"
    );
}

#[tokio::test]
async fn an_https_request_target_over_plain_http_is_refused() {
    // L7: `POST https://host/mcp HTTP/1.1` over a plain connection is still plain HTTP.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = start(&[keys(), ("MCP_REQUIRE_HTTPS", "true")]).await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let request = format!(
        "POST https://{addr}/mcp HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {KEY}\r\n\
         Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len(),
        addr = srv.addr,
    );
    let mut tcp = tokio::net::TcpStream::connect(srv.addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("https_required"), "{answer}");
}

#[tokio::test]
async fn the_metadata_follows_forwarded_host_only_from_trusted_proxies_and_varies_on_it() {
    // M1 and L11 through the example. (MCP_TRUST_PROXY would trust all of 127.0.0.0/8, this
    // host, so the direct client at 127.0.0.2 needs the proxy named exactly.)
    let srv = start(&[
        keys(),
        ("MCP_AUTHORIZATION_SERVERS", "https://as.example.com"),
        ("MCP_TRUSTED_PROXIES", "127.0.0.1"),
        ("MCP_TRUST_FORWARDED_HOST", "true"),
    ])
    .await;
    let fetch = |local: [u8; 4]| {
        let url = format!(
            "http://{}/.well-known/oauth-protected-resource/mcp",
            srv.addr
        );
        async move {
            let res = reqwest::Client::builder()
                .local_address(std::net::IpAddr::from(local))
                .build()
                .unwrap()
                .get(url)
                .header("x-forwarded-proto", "https")
                .header("x-forwarded-host", "evil.example")
                .send()
                .await
                .unwrap();
            let vary = res
                .headers()
                .get("vary")
                .map(|v| v.to_str().unwrap().to_owned());
            let doc: serde_json::Value = res.json().await.unwrap();
            (doc["resource"].as_str().unwrap().to_owned(), vary)
        }
    };
    let vary = Some("X-Forwarded-Host, X-Forwarded-Proto".to_owned());
    assert_eq!(
        fetch([127, 0, 0, 1]).await,
        ("https://evil.example/mcp".to_owned(), vary.clone()),
        "the trusted proxy chooses the public host"
    );
    assert_eq!(
        fetch([127, 0, 0, 2]).await,
        (srv.url(), vary),
        "a direct client cannot"
    );
}
