//! A real browser against the example server: the MCP Inspector's web client
//! (`@modelcontextprotocol/inspector`, tests/e2e/browser) in headless Chromium, connecting
//! "direct" (browser to server, no Inspector proxy) over streamable HTTP, from its own origin
//! (`http://localhost:<port>`, cross-origin to the server on `127.0.0.1`):
//!
//! - with a bearer token typed into the Inspector: it lists the tools and calls `whoami`;
//! - through the whole OAuth flow against oidc-provider (cold-start 401, discovery, dynamic
//!   registration, the authorization server's pages, the Inspector's `/oauth/callback`);
//! - `fetch()` from the Inspector's page: CORS preflights succeed without credentials, and
//!   scripts can read `WWW-Authenticate` on 401 and 403 answers, and `Retry-After` on 429s.
//!
//! Needs `npm ci --prefix tests/e2e/browser`, `npm ci --prefix tests/e2e/idp` and Debian's
//! `chromium` (scripts/test.sh installs them and runs these tests with `--ignored`).

mod support;

use serde_json::{Value, json};
use support::browser::{origin_of, preflights_to, probe, requests_to, run_inspector, sent_header};
use support::idp::start_idp;
use support::{start, start_with};

const ALICE: &str = "browser-alice-token-0123456789abcdef";
const READER: &str = "browser-reader-token-0123456789abcdef";

/// The tools the example server lists to a caller with every `data:` scope.
fn all_tools() -> Value {
    json!(["delete_data", "read_data", "whoami", "write_data"])
}

/// The `whoami` result the server sent, parsed.
fn whoami_result(v: &Value) -> Value {
    let text = v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no whoami result: {v:#}"));
    serde_json::from_str(text).unwrap()
}

/// The page is on `http://localhost:<port>`, another origin than the server's.
fn assert_cross_origin(v: &Value, url: &str) -> String {
    let page = v["pageOrigin"].as_str().unwrap().to_owned();
    assert!(page.starts_with("http://localhost:"), "{page}");
    assert_ne!(page, origin_of(url));
    page
}

/// Every CORS preflight to `/mcp` was answered 2xx for the page's origin, and carried no
/// credentials; at least one was sent.
fn assert_preflights_succeed(v: &Value, url: &str, page: &str) {
    let pre = preflights_to(v, url, "/mcp");
    assert!(!pre.is_empty(), "no preflight to /mcp: {v:#}");
    for p in pre {
        assert_eq!(p["method"], "OPTIONS");
        let status = p["status"].as_u64().unwrap_or(0);
        assert!((200..300).contains(&status), "{p}");
        assert_eq!(p["allowOrigin"], page, "{p}");
        for credential in ["authorization", "cookie", "x-api-key"] {
            assert!(
                !sent_header(p, credential),
                "a preflight sent {credential}: {p}"
            );
        }
        let allowed = p["allowHeaders"].as_str().unwrap_or_default();
        assert!(
            allowed.split(',').any(|h| h.trim() == "authorization"),
            "{p}"
        );
        assert!(p.get("corsError").is_none_or(Value::is_null), "{p}");
    }
}

/// The JSON-RPC methods of the requests to `/mcp` that got `status`, in order.
fn rpc_with_status(v: &Value, url: &str, status: u64) -> Vec<String> {
    requests_to(v, url, "/mcp")
        .into_iter()
        .filter(|r| r["status"] == status)
        .flat_map(|r| r["rpc"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m.as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages and chromium: run scripts/test.sh"]
async fn inspector_with_a_bearer_token_lists_tools_and_calls_whoami() {
    let srv = start(&[(
        "MCP_AUTH_TOKENS",
        "browser-alice-token-0123456789abcdef;sub=alice",
    )])
    .await;
    let url = srv.url();
    let v = run_inspector(json!({ "url": url, "mode": "bearer", "token": ALICE })).await;
    let page = assert_cross_origin(&v, &url);

    assert_eq!(v["connected"], true, "{v:#}");
    assert_eq!(v["tools"], all_tools(), "{v:#}");
    assert_eq!(
        v["toolsShown"],
        all_tools(),
        "the page shows every tool: {v:#}"
    );
    // What the page shows, and what the server sent.
    assert_eq!(v["resultStatus"], "Tool Result: Success", "{v:#}");
    let shown = v["resultText"].as_str().unwrap();
    assert!(shown.contains(r#"subject: "alice""#), "{shown}");
    let who = whoami_result(&v);
    assert_eq!(who["subject"], "alice");
    assert_eq!(who["method"], "bearer");

    // The browser itself talked to the server: every request carried the token and every
    // answer let the page's origin read it.
    let mcp = requests_to(&v, &url, "/mcp");
    assert!(mcp.len() >= 4, "{v:#}");
    for r in &mcp {
        assert!(sent_header(r, "authorization"), "{r}");
        assert_eq!(r["allowOrigin"], page.as_str(), "{r}");
        assert!(r.get("corsError").is_none_or(Value::is_null), "{r}");
    }
    let ok = rpc_with_status(&v, &url, 200);
    for method in ["initialize", "tools/list", "tools/call"] {
        assert!(ok.iter().any(|m| m == method), "{method}: {ok:?}");
    }
    assert_preflights_succeed(&v, &url, &page);
    // initialize, notifications/initialized, tools/list, tools/call reached the MCP service.
    assert!(srv.posts() >= 4, "{}", srv.posts());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages and chromium: run scripts/test.sh"]
async fn inspector_completes_the_oauth_flow_against_oidc_provider_and_calls_whoami() {
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let srv = start_with(|_| vec![("MCP_OIDC_ISSUER".into(), issuer)]).await;
    let url = srv.url();
    let v = run_inspector(json!({ "url": url, "mode": "oauth", "issuer": idp.issuer })).await;
    let page = assert_cross_origin(&v, &url);

    // Cold start: the first request carried no credentials and was refused with 401.
    let mcp = requests_to(&v, &url, "/mcp");
    let first = mcp.first().expect("a request to /mcp");
    assert_eq!(first["status"], 401, "{v:#}");
    assert!(!sent_header(first, "authorization"), "{first}");
    assert_eq!(first["allowOrigin"], page.as_str());
    // Discovery from the browser: the protected resource metadata, the authorization
    // server's metadata, dynamic registration, and (after the redirect) the token exchange.
    let saw = |at: &str, path: &str, status: u64| {
        requests_to(&v, at, path)
            .iter()
            .any(|r| r["status"] == status)
    };
    assert!(
        saw(&url, "/.well-known/oauth-protected-resource/mcp", 200),
        "{v:#}"
    );
    assert!(
        saw(&idp.issuer, "/.well-known/oauth-authorization-server", 200),
        "{v:#}"
    );
    assert!(saw(&idp.issuer, "/reg", 201), "{v:#}");
    assert!(saw(&idp.issuer, "/token", 200), "{v:#}");

    // The page went to the authorization server with an RFC 8707 resource (exactly the URL
    // it connects to), PKCE, and the Inspector's own callback, and came back there.
    let navigations = v["navigations"].as_array().unwrap();
    let authorizations: Vec<&Value> = navigations
        .iter()
        .filter(|n| n["origin"] == origin_of(&idp.issuer).as_str() && n["path"] == "/auth")
        .collect();
    assert!(!authorizations.is_empty(), "{v:#}");
    for a in &authorizations {
        assert_eq!(a["resource"], url.as_str(), "{a}");
        assert_eq!(a["code_challenge_method"], "S256", "{a}");
        assert_eq!(a["redirect_uri"], format!("{page}/oauth/callback"), "{a}");
    }
    assert!(
        navigations.iter().any(|n| n["origin"] == page.as_str()
            && n["path"] == "/oauth/callback"
            && n["params"].as_array().unwrap().iter().any(|p| p == "code")),
        "{v:#}"
    );

    // Then, with the token: connected, whoami is alice by JWT.
    assert_eq!(v["connected"], true, "{v:#}");
    assert_eq!(v["resultStatus"], "Tool Result: Success", "{v:#}");
    let shown = v["resultText"].as_str().unwrap();
    assert!(shown.contains(r#"subject: "alice""#), "{shown}");
    let who = whoami_result(&v);
    assert_eq!(who["subject"], "alice");
    assert_eq!(who["method"], "jwt");
    // The Inspector asks for the challenged scope (data:read) or for every scope the metadata
    // lists, depending on which of its two discovery paths redirects first; the token has
    // what it asked for, and the tools listed are exactly those that scope allows.
    let granted: Vec<&str> = who["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let asked = authorizations.last().unwrap()["scope"].as_str().unwrap();
    let mut asked: Vec<&str> = asked
        .split(' ')
        .filter(|s| s.starts_with("data:"))
        .collect();
    asked.sort_unstable();
    assert_eq!(granted, asked, "{v:#}");
    assert!(granted.contains(&"data:read"), "{granted:?}");
    let allowed: Vec<&str> = [
        ("delete_data", "data:admin"),
        ("read_data", "data:read"),
        ("whoami", ""),
        ("write_data", "data:write"),
    ]
    .into_iter()
    .filter(|(_, needs)| needs.is_empty() || granted.contains(needs))
    .map(|(tool, _)| tool)
    .collect();
    assert_eq!(v["tools"], json!(allowed), "{v:#}");
    assert_eq!(v["toolsShown"], json!(allowed), "{v:#}");
    let authorized: Vec<&&Value> = mcp
        .iter()
        .filter(|r| sent_header(r, "authorization"))
        .collect();
    assert!(
        authorized
            .iter()
            .any(|r| r["status"] == 200 && r["rpc"] == json!(["tools/call"])),
        "{v:#}"
    );
    assert_preflights_succeed(&v, &url, &page);
}

/// A JSON-RPC POST body.
fn rpc(method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string()
}

/// A `fetch()` the page makes to the server: POST with the MCP headers and, when given, a
/// bearer token.
fn post_probe(name: &str, token: Option<&str>, body: String) -> Value {
    let mut headers = json!({
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
    });
    if let Some(t) = token {
        headers["authorization"] = format!("Bearer {t}").into();
    }
    json!({ "name": name, "method": "POST", "headers": headers, "body": body })
}

fn initialize() -> String {
    rpc(
        "initialize",
        json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": { "name": "browser-probe", "version": "0" }
        }),
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages and chromium: run scripts/test.sh"]
async fn page_scripts_read_the_401_and_403_challenges_and_the_session_id() {
    let srv = start(&[(
        "MCP_AUTH_TOKENS",
        "browser-alice-token-0123456789abcdef;sub=alice, browser-reader-token-0123456789abcdef;sub=reader;scopes=data:read",
    )])
    .await;
    let url = srv.url();
    let delete = rpc(
        "tools/call",
        json!({ "name": "delete_data", "arguments": { "key": "k" } }),
    );
    let v = run_inspector(json!({
        "url": url,
        "mode": "probe",
        "probes": [
            post_probe("no-credentials", None, initialize()),
            post_probe("unknown-token", Some("not-a-known-token-0123456789abcdef"), initialize()),
            post_probe("insufficient-scope", Some(READER), delete),
            post_probe("initialize", Some(ALICE), initialize()),
        ],
    }))
    .await;
    let page = assert_cross_origin(&v, &url);
    for p in v["probes"].as_array().unwrap() {
        assert!(p["error"].is_null(), "fetch failed (CORS?): {p}");
    }

    let none = probe(&v, "no-credentials");
    assert_eq!(none["status"], 401, "{none}");
    assert_eq!(none["wwwAuthenticate"], "Bearer", "{none}");
    let unknown = probe(&v, "unknown-token");
    assert_eq!(unknown["status"], 401, "{unknown}");
    assert!(
        unknown["wwwAuthenticate"]
            .as_str()
            .is_some_and(|c| c.starts_with("Bearer error=\"invalid_token\"")),
        "{unknown}"
    );
    let scope = probe(&v, "insufficient-scope");
    assert_eq!(scope["status"], 403, "{scope}");
    assert_eq!(
        scope["wwwAuthenticate"],
        "Bearer error=\"insufficient_scope\", error_description=\"this operation needs more scope\", scope=\"data:admin\"",
        "{scope}"
    );
    // A session's id is readable too (scripts send it back on every request).
    let init = probe(&v, "initialize");
    assert_eq!(init["status"], 200, "{init}");
    assert!(
        init["sessionId"].as_str().is_some_and(|s| !s.is_empty()),
        "{init}"
    );

    assert_preflights_succeed(&v, &url, &page);
    for r in requests_to(&v, &url, "/mcp") {
        assert_eq!(r["allowOrigin"], page.as_str(), "{r}");
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages and chromium: run scripts/test.sh"]
async fn page_scripts_read_the_429_and_its_retry_after() {
    // Failures are counted per client address: 127.0.0.1 as a trusted proxy (no
    // X-Forwarded-For) makes the browser's address the client.
    let srv = start(&[
        (
            "MCP_AUTH_TOKENS",
            "browser-alice-token-0123456789abcdef;sub=alice",
        ),
        ("MCP_TRUSTED_PROXIES", "127.0.0.1"),
        ("MCP_FAILURE_LIMIT", "2/60"),
    ])
    .await;
    let url = srv.url();
    let bad = |i: usize| {
        post_probe(
            &format!("bad-{i}"),
            Some(&format!("not-a-known-token-0123456789abcdef-{i}")),
            initialize(),
        )
    };
    let v = run_inspector(json!({
        "url": url,
        "mode": "probe",
        "probes": [bad(1), bad(2), bad(3), post_probe("good-while-limited", Some(ALICE), initialize())],
    }))
    .await;
    let page = assert_cross_origin(&v, &url);
    for p in v["probes"].as_array().unwrap() {
        assert!(p["error"].is_null(), "fetch failed (CORS?): {p}");
    }
    assert_eq!(probe(&v, "bad-1")["status"], 401, "{v:#}");
    assert_eq!(probe(&v, "bad-2")["status"], 401, "{v:#}");
    assert_preflights_succeed(&v, &url, &page);
    // What the server sent, read without a browser (same client address, still limited).
    let (status, challenge, retry) = support::raw::probe(&url, Some(ALICE)).await;
    assert_eq!(status, 429);
    let sent = format!("the server sent Retry-After {retry:?}, WWW-Authenticate {challenge:?}");
    for name in ["bad-3", "good-while-limited"] {
        let limited = probe(&v, name);
        // The 429 reaches the script (CORS headers on it), with its JSON error.
        assert_eq!(limited["status"], 429, "{limited}");
        assert!(
            limited["body"]
                .as_str()
                .unwrap()
                .contains("\"too_many_requests\""),
            "{limited}"
        );
        // When to retry is readable by the script, and so is a challenge: the limit refuses
        // before any credential is looked at, so it sends none (the 401 and 403 tests read
        // the challenges the same CORS headers expose).
        let seconds = limited["retryAfter"]
            .as_str()
            .and_then(|s| s.parse::<u64>().ok());
        assert!(
            seconds.is_some_and(|s| (1..=60).contains(&s)),
            "Retry-After readable by the page's script; {sent}: {limited}"
        );
        assert!(retry.is_some(), "{sent}");
        assert_eq!(
            limited["wwwAuthenticate"].as_str(),
            Some(challenge.as_str()).filter(|c| !c.is_empty()),
            "{sent}: {limited}"
        );
    }
}
