//! The proxy in front of a scriptable upstream written for these tests (loopback only, no
//! packages from npm or PyPI): header hygiene and identity headers, filtered listings (JSON
//! and SSE), streaming, sessions, 502/504, the health check, metrics, a minted upstream JWT
//! and the public path.

mod support;

use std::time::{Duration, Instant};

use mcp_auth::authenticators::jwt::{Algorithm, JwtAuthenticator, JwtKey};
use serde_json::{Value, json};
use support::upstream::{self, Upstream};
use support::{Proxy, free_port, pairs, start_proxy};

const ADMIN: &str = "tok-admin-0123456789abcdef";
const READER: &str = "tok-reader-0123456789abcdef";
const TOKENS: &str =
    "tok-admin-0123456789abcdef;sub=alice, tok-reader-0123456789abcdef;sub=reader;scopes=data:read";

/// The proxy with the two static tokens, in front of `up`, plus `extra` settings.
async fn proxy_for(up: &Upstream, extra: &[(&str, &str)]) -> Proxy {
    let url = up.url();
    let extra = pairs(extra);
    start_proxy(move |_| {
        let mut env = pairs(&[("MCP_AUTH_TOKENS", TOKENS), ("MCP_UPSTREAM_URL", &url)]);
        env.extend(extra);
        env
    })
    .await
}

/// POSTs a JSON-RPC message to the proxy's endpoint with `token` and extra headers.
async fn post(
    url: &str,
    token: Option<&str>,
    body: Value,
    headers: &[(&str, &str)],
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn call(method: &str) -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":method,"params":{}})
}

fn header<'a>(h: &'a http::HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).map(|v| v.to_str().unwrap())
}

#[tokio::test]
async fn the_upstream_gets_the_callers_identity_and_never_its_credentials() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    let res = post(
        &proxy.url(),
        Some(ADMIN),
        call("ping"),
        &[
            ("cookie", "session=abc"),
            ("x-mcp-subject", "mallory"),
            ("X-MCP-Roles", "admin"),
            ("x-mcp-extra", "spoof"),
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-host", "evil.example"),
            ("forwarded", "for=10.0.0.1"),
            ("connection", "x-client-hop"),
            ("x-client-hop", "1"),
            ("te", "trailers"),
            ("x-end-to-end", "kept"),
            ("accept-encoding", "br"),
        ],
    )
    .await;
    assert_eq!(res.status(), 200);
    // The upstream's hop-by-hop field, cookie and challenge stop at the proxy.
    let h = res.headers().clone();
    for gone in ["x-upstream-hop", "set-cookie", "www-authenticate"] {
        assert!(h.get(gone).is_none(), "{gone} passed back: {h:?}");
    }
    assert_eq!(header(&h, "x-upstream-end-to-end"), Some("kept"));

    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    let h = &seen[0].headers;
    for gone in [
        "authorization",
        "cookie",
        "x-mcp-extra",
        "forwarded",
        "x-client-hop",
        "te",
    ] {
        assert!(h.get(gone).is_none(), "{gone} forwarded: {h:?}");
    }
    assert_eq!(header(h, "x-mcp-subject"), Some("alice"));
    assert_eq!(h.get_all("x-mcp-subject").iter().count(), 1);
    assert_eq!(
        header(h, "x-mcp-scopes"),
        Some("data:admin data:read data:write")
    );
    assert_eq!(
        header(h, "x-mcp-roles"),
        Some(""),
        "the spoofed role is gone"
    );
    assert_eq!(header(h, "x-mcp-auth-method"), Some("bearer"));
    assert_eq!(header(h, "x-forwarded-for"), Some("127.0.0.1"));
    assert_eq!(
        header(h, "x-forwarded-host"),
        Some(proxy.addr.to_string().as_str())
    );
    assert_eq!(header(h, "x-forwarded-proto"), Some("http"));
    assert_eq!(header(h, "host"), Some(up.addr.to_string().as_str()));
    assert_eq!(header(h, "x-end-to-end"), Some("kept"));
    assert_eq!(header(h, "accept-encoding"), Some("br"));
    assert_eq!(
        seen[0].body,
        call("ping").to_string().as_bytes(),
        "the body is forwarded byte for byte"
    );
}

#[tokio::test]
async fn api_keys_never_reach_the_upstream() {
    let up = upstream::start().await;
    let url = up.url();
    let proxy = start_proxy(move |_| {
        pairs(&[
            (
                "MCP_API_KEYS",
                "key-bob-0123456789abcdef;sub=bob;scopes=data:read",
            ),
            ("MCP_UPSTREAM_URL", &url),
        ])
    })
    .await;
    let res = post(
        &proxy.url(),
        None,
        call("ping"),
        &[("x-api-key", "key-bob-0123456789abcdef")],
    )
    .await;
    assert_eq!(res.status(), 200);
    let h = &up.seen()[0].headers;
    assert!(h.get("x-api-key").is_none(), "{h:?}");
    assert_eq!(header(h, "x-mcp-subject"), Some("bob"));
    assert_eq!(header(h, "x-mcp-scopes"), Some("data:read"));
    assert_eq!(header(h, "x-mcp-auth-method"), Some("api_key"));
}

#[tokio::test]
async fn refused_requests_never_reach_the_upstream() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    let res = post(&proxy.url(), None, call("ping"), &[]).await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("www-authenticate").is_some());
    let res = post(
        &proxy.url(),
        Some("tok-wrong-0123456789abcdef"),
        call("ping"),
        &[],
    )
    .await;
    assert_eq!(res.status(), 401);
    let delete = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_data","arguments":{}}});
    let res = post(&proxy.url(), Some(READER), delete, &[]).await;
    assert_eq!(res.status(), 403);
    let challenge = header(res.headers(), "www-authenticate")
        .unwrap()
        .to_owned();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    assert!(up.seen().is_empty(), "{:?}", up.seen());
}

fn tool_names(v: &Value) -> Vec<String> {
    v["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn listings_show_each_caller_only_what_it_may_call() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    let list = json!({"jsonrpc":"2.0","id":"l-1","method":"tools/list"});

    let res = post(
        &proxy.url(),
        Some(READER),
        list.clone(),
        &[("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        header(&up.seen()[0].headers, "accept-encoding"),
        Some("identity"),
        "a listing answer must come uncompressed to be filtered"
    );
    assert!(
        res.headers()
            .get("content-length")
            .is_none_or(|l| { l.to_str().unwrap().parse::<usize>().unwrap() < 200 })
    );
    let v: Value = res.json().await.unwrap();
    assert_eq!(tool_names(&v), ["whoami", "read_data"]);

    let v: Value = post(&proxy.url(), Some(ADMIN), list.clone(), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        tool_names(&v),
        ["whoami", "read_data", "write_data", "delete_data"],
        "a tool the table does not name is hidden from everyone"
    );

    // As SSE: the notification passes as it is, the answer (split across chunks) is
    // filtered.
    let res = post(&proxy.url(), Some(READER), list, &[("x-test-mode", "sse")]).await;
    assert_eq!(
        header(res.headers(), "content-type"),
        Some("text/event-stream")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.starts_with("event: message\r\ndata: {") && text.contains("\"info\"}}\r\n\r\nevent"),
        "the notification passes byte for byte: {text:?}"
    );
    let normalized = text.replace("\r\n", "\n");
    let events: Vec<&str> = normalized
        .split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .collect();
    assert_eq!(events.len(), 2, "{text}");
    assert!(
        events[0].contains("delete_data listed"),
        "untouched: {text}"
    );
    let data = events[1]
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap();
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(tool_names(&v), ["whoami", "read_data"]);
}

#[tokio::test]
async fn sse_responses_arrive_event_by_event() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    let started = Instant::now();
    let mut res = post(&proxy.url(), Some(ADMIN), call("test/stream"), &[]).await;
    assert_eq!(res.status(), 200);
    let mut arrivals = Vec::new();
    let mut text = String::new();
    while let Some(chunk) = res.chunk().await.unwrap() {
        let s = String::from_utf8(chunk.to_vec()).unwrap();
        for _ in 0..s.matches("notifications/progress").count() {
            arrivals.push(started.elapsed());
        }
        text.push_str(&s);
    }
    assert_eq!(arrivals.len(), 5, "{text}");
    let spread = arrivals[4] - arrivals[0];
    assert!(
        spread >= Duration::from_millis(450),
        "events arrived together: {arrivals:?}"
    );
    assert!(text.contains("\"result\""), "{text}");
}

#[tokio::test]
async fn sessions_pass_both_ways_and_get_and_delete_are_forwarded() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{}});
    let res = post(&proxy.url(), Some(ADMIN), init, &[]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(header(res.headers(), "mcp-session-id"), Some("sess-1"));

    let client = reqwest::Client::new();
    let mut stream = client
        .get(proxy.url())
        .bearer_auth(ADMIN)
        .header("accept", "text/event-stream")
        .header("mcp-session-id", "sess-1")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
        .await
        .expect("the stream's first bytes arrive while it stays open")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b": open\n\n");

    // Another caller cannot use the session (bound to alice by the auth stack).
    let res = client
        .delete(proxy.url())
        .bearer_auth(READER)
        .header("mcp-session-id", "sess-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = client
        .delete(proxy.url())
        .bearer_auth(ADMIN)
        .header("mcp-session-id", "sess-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    drop(stream);

    let seen = up.seen();
    let methods: Vec<_> = seen.iter().map(|s| s.method.as_str().to_owned()).collect();
    assert_eq!(methods, ["POST", "GET", "DELETE"]);
    for s in &seen[1..] {
        assert_eq!(header(&s.headers, "mcp-session-id"), Some("sess-1"));
    }
}

#[tokio::test]
async fn an_unreachable_upstream_is_a_502_without_details() {
    let dead = format!("http://127.0.0.1:{}/mcp", free_port());
    let proxy =
        start_proxy(move |_| pairs(&[("MCP_AUTH_TOKENS", TOKENS), ("MCP_UPSTREAM_URL", &dead)]))
            .await;
    let res = post(&proxy.url(), Some(ADMIN), call("ping"), &[]).await;
    assert_eq!(res.status(), 502);
    assert_eq!(res.text().await.unwrap(), r#"{"error":"bad_gateway"}"#);
    assert_eq!(proxy.metrics.requests("5xx", "upstream_unreachable"), 1);
}

#[tokio::test]
async fn a_silent_upstream_is_a_504_after_the_timeout() {
    let hanging = upstream::hanging().await;
    let url = format!("http://{hanging}/mcp");
    let proxy = start_proxy(move |_| {
        pairs(&[
            ("MCP_AUTH_TOKENS", TOKENS),
            ("MCP_UPSTREAM_URL", &url),
            ("MCP_UPSTREAM_TIMEOUT", "300ms"),
        ])
    })
    .await;
    let started = Instant::now();
    let res = post(&proxy.url(), Some(ADMIN), call("ping"), &[]).await;
    let took = started.elapsed();
    assert_eq!(res.status(), 504);
    assert_eq!(res.text().await.unwrap(), r#"{"error":"gateway_timeout"}"#);
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert_eq!(proxy.metrics.requests("5xx", "upstream_timeout"), 1);
}

#[tokio::test]
async fn an_upstream_refusing_the_proxy_is_a_502_not_a_challenge() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    let res = post(
        &proxy.url(),
        Some(ADMIN),
        call("ping"),
        &[("x-test-mode", "401")],
    )
    .await;
    assert_eq!(res.status(), 502);
    assert!(res.headers().get("www-authenticate").is_none());
}

#[tokio::test]
async fn the_health_check_needs_no_credentials_and_is_not_counted() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    let res = reqwest::get(proxy.at("/healthz")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "ok");
    assert_eq!(proxy.metrics.requests("2xx", "ok"), 0);
}

#[tokio::test]
async fn metrics_count_outcomes_and_upstream_latency() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    post(&proxy.url(), Some(ADMIN), call("ping"), &[]).await;
    post(&proxy.url(), Some(ADMIN), call("ping"), &[]).await;
    post(&proxy.url(), None, call("ping"), &[]).await;
    let delete =
        json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_data"}});
    post(&proxy.url(), Some(READER), delete, &[]).await;
    assert_eq!(proxy.metrics.requests("2xx", "ok"), 2);
    assert_eq!(proxy.metrics.requests("4xx", "missing_credentials"), 1);
    assert_eq!(proxy.metrics.requests("4xx", "insufficient_scope"), 1);

    // Served on a listener of its own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = mcp_auth_proxy::metrics_router(proxy.metrics.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let text = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("mcp_proxy_requests_total{class=\"2xx\",reason=\"ok\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains("mcp_proxy_requests_total{class=\"4xx\",reason=\"missing_credentials\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("mcp_proxy_upstream_response_seconds_count 2\n"),
        "{text}"
    );
    // The proxy's own endpoint does not serve them.
    let res = reqwest::get(proxy.at("/metrics")).await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn the_endpoint_is_at_the_public_urls_path() {
    let up = upstream::start().await;
    let url = up.url();
    let proxy = start_proxy(move |addr| {
        pairs(&[
            ("MCP_AUTH_TOKENS", TOKENS),
            ("MCP_UPSTREAM_URL", &url),
            ("MCP_PUBLIC_URL", &format!("http://{addr}/api/mcp")),
        ])
    })
    .await;
    let res = post(&proxy.at("/api/mcp"), Some(ADMIN), call("ping"), &[]).await;
    assert_eq!(res.status(), 200);
    let res = post(&proxy.at("/mcp"), Some(ADMIN), call("ping"), &[]).await;
    assert_eq!(res.status(), 404);
    let res = post(&proxy.at("/api/mcp/other"), Some(ADMIN), call("ping"), &[]).await;
    assert_eq!(res.status(), 404);
    assert_eq!(up.seen().len(), 1);
}

#[tokio::test]
async fn a_minted_jwt_carries_the_identity_to_the_upstream() {
    let secret = "an-upstream-secret-of-at-least-32-bytes";
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[("MCP_UPSTREAM_JWT_SECRET", secret)]).await;
    let res = post(&proxy.url(), Some(READER), call("ping"), &[]).await;
    assert_eq!(res.status(), 200);
    let seen = up.seen();
    let auth = header(&seen[0].headers, "authorization").unwrap();
    let token = auth.strip_prefix("Bearer ").unwrap();
    assert_ne!(token, READER);
    let verifier = JwtAuthenticator::builder()
        .key(JwtKey::hmac(secret, Algorithm::HS256).unwrap())
        .issuer(proxy.url())
        .audience(up.url())
        .build()
        .unwrap();
    let ctx = verifier.verify(token).unwrap();
    assert_eq!(ctx.subject(), "reader");
    assert!(ctx.has_scope("data:read") && !ctx.has_scope("data:write"));
}

#[tokio::test]
async fn a_host_that_is_not_allowed_is_refused() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    let res = post(
        &proxy.url(),
        Some(ADMIN),
        call("ping"),
        &[("host", "evil.example")],
    )
    .await;
    assert_eq!(res.status(), 403);
    assert_eq!(res.text().await.unwrap(), r#"{"error":"host_not_allowed"}"#);
    assert!(up.seen().is_empty());
    let res = post(
        &proxy.url(),
        Some(ADMIN),
        call("ping"),
        &[("host", "localhost")],
    )
    .await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn an_identity_that_is_no_valid_header_value_is_refused() {
    let up = upstream::start().await;
    let url = up.url();
    let proxy = start_proxy(move |_| {
        pairs(&[
            ("MCP_AUTH_TOKENS", "tok-jose-0123456789abcdef;sub=jos\u{e9}"),
            ("MCP_UPSTREAM_URL", &url),
        ])
    })
    .await;
    let res = post(
        &proxy.url(),
        Some("tok-jose-0123456789abcdef"),
        call("ping"),
        &[],
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(up.seen().is_empty());
}

#[tokio::test]
async fn with_no_credential_configured_a_generated_token_is_required() {
    let up = upstream::start().await;
    let url = up.url();
    let proxy = start_proxy(move |_| pairs(&[("MCP_UPSTREAM_URL", &url)])).await;
    let token = proxy.generated.clone().expect("a generated token");
    assert_eq!(
        post(&proxy.url(), None, call("ping"), &[]).await.status(),
        401
    );
    assert_eq!(
        post(&proxy.url(), Some(&token), call("ping"), &[])
            .await
            .status(),
        200
    );
}

#[test]
fn configuration_problems_are_reported_together_by_name() {
    let err = mcp_auth_proxy::load(&mcp_auth_proxy::Env::Pairs(pairs(&[
        ("MCP_BIND", "nope"),
        ("MCP_UPSTREAM_TIMEOUT", "forever"),
    ])))
    .unwrap_err();
    let mut names: Vec<&str> = err.problems().iter().map(|p| p.setting()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["MCP_BIND", "MCP_UPSTREAM_TIMEOUT", "MCP_UPSTREAM_URL"]
    );
}

#[test]
fn the_configuration_file_holds_the_proxys_settings_too_and_the_environment_wins() {
    let path = std::env::temp_dir().join(format!("mcp-auth-proxy-{}.toml", std::process::id()));
    let tokens = path.with_extension("tokens");
    std::fs::write(&tokens, "proxy-file-token-0123456789abcdef sub=file\n").unwrap();
    std::fs::write(
        &path,
        format!(
            "upstream_url = \"http://127.0.0.1:9/mcp\"\n\
             upstream_timeout = \"5s\"\n\
             proxy_metrics_bind = \"127.0.0.1:9091\"\n\
             auth_tokens_file = \"{}\"\n",
            tokens.display()
        ),
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let proxy = mcp_auth_proxy::load(&mcp_auth_proxy::Env::Pairs(pairs(&[
        ("MCP_AUTH_CONFIG", file),
        ("MCP_PROXY_METRICS_BIND", "127.0.0.1:9092"),
    ])));
    // A key neither the stack nor the proxy knows is refused, named with the file.
    std::fs::write(
        &path,
        "upstream_url = \"http://127.0.0.1:9/mcp\"\nupstream = 1\n",
    )
    .unwrap();
    let err = mcp_auth_proxy::load(&mcp_auth_proxy::Env::Pairs(pairs(&[(
        "MCP_AUTH_CONFIG",
        file,
    )])))
    .unwrap_err();
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&tokens).unwrap();
    let proxy = proxy.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(proxy.config().upstream_url(), "http://127.0.0.1:9/mcp");
    assert_eq!(
        proxy
            .config()
            .metrics_bind()
            .map(|a| a.to_string())
            .as_deref(),
        Some("127.0.0.1:9092")
    );
    assert!(proxy.generated_token().is_none());
    assert_eq!(err.problems().len(), 1, "{err}");
    assert!(
        err.problems()[0].setting().starts_with("\"upstream\" (in "),
        "{err}"
    );
}

#[tokio::test]
async fn browsers_get_cors_preflights_and_can_read_the_challenge() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    let http = reqwest::Client::new();
    let pre = http
        .request(reqwest::Method::OPTIONS, proxy.url())
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, mcp-session-id",
        )
        .send()
        .await
        .unwrap();
    assert!(pre.status().is_success(), "{}", pre.status());
    assert_eq!(
        header(pre.headers(), "access-control-allow-origin"),
        Some("http://localhost:6274")
    );
    let res = post(
        &proxy.url(),
        None,
        call("ping"),
        &[("origin", "http://localhost:6274")],
    )
    .await;
    assert_eq!(res.status(), 401);
    let exposed = header(res.headers(), "access-control-expose-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("www-authenticate"), "{exposed}");
    // An Origin outside the allowed list is refused before the upstream.
    let res = post(
        &proxy.url(),
        Some(ADMIN),
        call("ping"),
        &[("origin", "https://evil.example")],
    )
    .await;
    assert_eq!(res.status(), 403);
    assert!(up.seen().is_empty());
}

/// DPoP through the proxy (the shared configuration: `MCP_DPOP` defaults to optional): a
/// DPoP-bound token with a fresh proof for the proxy's public URL is forwarded as the caller's
/// identity, and neither the token nor the proof reaches the upstream; a replayed proof and
/// the bearer downgrade are refused before the upstream.
#[tokio::test]
async fn dpop_bound_tokens_are_checked_at_the_proxy_and_the_proof_stays_here() {
    use mcp_auth::testing::{DpopKey, MockAuthServer, assert_challenge};
    let mock = MockAuthServer::start().await;
    let up = upstream::start().await;
    let (issuer, url) = (mock.issuer().to_owned(), up.url());
    let proxy =
        start_proxy(move |_| pairs(&[("MCP_OIDC_ISSUER", &issuer), ("MCP_UPSTREAM_URL", &url)]))
            .await;
    let key = DpopKey::es256();
    let token = mock
        .token()
        .subject("alice")
        .audience(proxy.url().as_str())
        .scopes(["data:read"])
        .dpop_bound(&key)
        .jwt();
    let dpop = format!("DPoP {token}");
    let proof = key.proof("POST", &proxy.url()).access_token(&token).sign();
    let headers = [("authorization", dpop.as_str()), ("dpop", proof.as_str())];
    let res = post(&proxy.url(), None, call("ping"), &headers).await;
    assert_eq!(res.status(), 200);
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    let h = &seen[0].headers;
    assert!(
        h.get("authorization").is_none() && h.get("dpop").is_none(),
        "{h:?}"
    );
    assert_eq!(header(h, "x-mcp-subject"), Some("alice"));

    // The same proof again, and the token as a bearer token: refused at the proxy.
    let replay = post(&proxy.url(), None, call("ping"), &headers).await;
    assert_eq!(replay.status(), 401);
    assert_challenge(replay.headers(), "DPoP").error("invalid_dpop_proof");
    let downgrade = post(&proxy.url(), Some(&token), call("ping"), &[]).await;
    assert_eq!(downgrade.status(), 401);
    assert_eq!(up.seen().len(), 1, "nothing refused reached the upstream");
}

/// POSTs `body` with the admin token through `client` (whose connection may be reused).
async fn post_on(client: &reqwest::Client, url: &str, mode: &str) -> reqwest::StatusCode {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("x-test-mode", mode)
        .bearer_auth(ADMIN)
        .body(call("ping").to_string())
        .send()
        .await
        .unwrap()
        .status()
}

/// A client that keeps one connection to the proxy.
fn one_connection() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap()
}

#[tokio::test]
async fn each_client_connection_has_one_upstream_connection_of_its_own() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    let url = proxy.url();
    let a = one_connection();
    for _ in 0..3 {
        assert_eq!(post_on(&a, &url, "").await, 200);
    }
    let b = one_connection();
    assert_eq!(post_on(&b, &url, "").await, 200);
    let peers: Vec<_> = up.seen().iter().map(|s| s.peer).collect();
    assert_eq!(peers.len(), 4);
    assert!(
        peers[..3].iter().all(|p| *p == peers[0]),
        "one client connection's requests share an upstream connection: {peers:?}"
    );
    assert_ne!(
        peers[3], peers[0],
        "another client connection has its own upstream connection"
    );
}

#[tokio::test]
async fn an_upstream_connection_the_upstream_closed_is_replaced() {
    let up = upstream::start().await;
    let proxy = proxy_for(&up, &[]).await;
    let url = proxy.url();
    let a = one_connection();
    // The upstream answers, then closes its connection.
    assert_eq!(post_on(&a, &url, "close").await, 200);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        post_on(&a, &url, "").await,
        200,
        "a new connection was opened"
    );
    assert_eq!(post_on(&a, &url, "").await, 200);
    let peers: Vec<_> = up.seen().iter().map(|s| s.peer).collect();
    assert_eq!(peers.len(), 3);
    assert_ne!(
        peers[1], peers[0],
        "the closed connection is not used again"
    );
    assert_eq!(peers[2], peers[1], "and the new one is kept");
}

#[tokio::test]
async fn the_router_served_by_another_server_opens_a_connection_per_request() {
    // No upstream slot in the extensions (axum's own server): still forwarded, each request
    // on a connection of its own.
    let up = upstream::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let env = pairs(&[
        ("MCP_AUTH_TOKENS", TOKENS),
        ("MCP_UPSTREAM_URL", &up.url()),
        ("MCP_BIND", &addr.to_string()),
    ]);
    let app = mcp_auth_proxy::load(&mcp_auth_proxy::Env::Pairs(env))
        .unwrap()
        .into_router();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let url = format!("http://{addr}/mcp");
    let a = one_connection();
    assert_eq!(post_on(&a, &url, "").await, 200);
    assert_eq!(post_on(&a, &url, "").await, 200);
    let peers: Vec<_> = up.seen().iter().map(|s| s.peer).collect();
    assert_eq!(peers.len(), 2);
    assert_ne!(peers[0], peers[1]);
}
