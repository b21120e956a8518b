//! A real browser against the proxy: the MCP Inspector's web client
//! (`@modelcontextprotocol/inspector`, tests/e2e/browser) in headless Chromium, connecting
//! "direct" (browser to proxy, no Inspector proxy) over streamable HTTP, from its own origin
//! (`http://localhost:<port>`, cross-origin to the proxy on `127.0.0.1`), with the official
//! TypeScript SDK server (tests/e2e/upstream-ts) as the upstream:
//!
//! - with a bearer token typed into the Inspector: it lists the tools (only those the token's
//!   scopes allow) and calls `whoami`, which shows the identity the proxy forwarded;
//! - through the whole OAuth flow against oidc-provider (cold-start 401, discovery, dynamic
//!   registration, the authorization server's pages, the Inspector's `/oauth/callback`);
//! - `fetch()` from the Inspector's page: CORS preflights succeed without credentials, and
//!   scripts can read `WWW-Authenticate` on the proxy's 401 and 403 answers (with static tokens,
//!   and as an OAuth protected resource, where each challenge points to the metadata), the
//!   upstream's session id, and `Retry-After` on the proxy's 429s.
//!
//! The upstream never sees the browser's credentials, only the identity the proxy forwards.
//!
//! Needs `npm ci --prefix tests/e2e/browser`, `npm ci --prefix tests/e2e/idp`,
//! `npm ci --prefix tests/e2e/ts-sdk` and Debian's `chromium`; ignored in a plain `cargo test`.

mod support;

use serde_json::{Value, json};
use support::browser::{origin_of, preflights_to, probe, requests_to, run_inspector, sent_header};
use support::idp::start_idp;
use support::{Child, Proxy, TOOL_SCOPES, pairs, start_proxy};

const ALICE: &str = "browser-alice-token-0123456789abcdef";
const WRITER: &str = "browser-writer-token-0123456789abcdef";
const READER: &str = "browser-reader-token-0123456789abcdef";
/// Alice has the default scopes (every `data:` scope); the writer `data:write`, which implies
/// `data:read`; the reader `data:read`.
const TOKENS: &str = "browser-alice-token-0123456789abcdef;sub=alice, \
     browser-writer-token-0123456789abcdef;sub=writer;scopes=data:write, \
     browser-reader-token-0123456789abcdef;sub=reader;scopes=data:read";

/// The tools the TypeScript SDK upstream serves.
const UPSTREAM_TOOLS: [&str; 5] = [
    "whoami",
    "read_data",
    "write_data",
    "delete_data",
    "slow_progress",
];

/// The proxy in front of `upstream`, with `env` besides.
async fn proxy_for(upstream: &Child, env: &[(&str, &str)]) -> Proxy {
    let mut env = pairs(env);
    env.push(("MCP_UPSTREAM_URL".into(), upstream.url.clone()));
    start_proxy(move |_| env).await
}

/// The scope `tool` needs in the deployment's table ([`TOOL_SCOPES`]); empty for none.
fn needed_scope(tool: &str) -> &'static str {
    TOOL_SCOPES
        .split(';')
        .filter_map(|entry| entry.split_once('='))
        .find(|(name, _)| *name == tool)
        .map(|(_, scope)| scope)
        .unwrap_or_else(|| panic!("{tool} is not in the tool table"))
}

/// The upstream's tools a caller with `scopes` may use, sorted.
fn allowed_tools(scopes: &[&str]) -> Vec<String> {
    let mut tools: Vec<String> = UPSTREAM_TOOLS
        .into_iter()
        .filter(|tool| {
            let needs = needed_scope(tool);
            needs.is_empty() || scopes.contains(&needs)
        })
        .map(str::to_owned)
        .collect();
    tools.sort();
    tools
}

/// The names in a JSON array, sorted.
fn sorted_names(v: &Value) -> Vec<String> {
    let mut names: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// The `whoami` result the upstream sent (through the proxy), parsed.
fn whoami_result(v: &Value) -> Value {
    let text = v["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_else(|| panic!("no whoami result: {v:#}"));
    serde_json::from_str(text).unwrap()
}

/// The page is on `http://localhost:<port>`, another origin than the proxy's.
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

/// What the upstream received: requests, none with a credential, every one with `subject`
/// as the forwarded identity.
async fn assert_upstream_saw_identity_only(upstream: &Child, subject: &str) {
    let requests = upstream.requests().await;
    assert!(!requests.is_empty());
    for credential in ["authorization", "x-api-key", "cookie"] {
        assert!(
            upstream.header_values(credential).await.is_empty(),
            "the upstream received {credential}: {requests:#?}"
        );
    }
    let subjects = upstream.header_values("x-mcp-subject").await;
    assert_eq!(subjects.len(), requests.len(), "{requests:#?}");
    assert!(subjects.iter().all(|s| s == subject), "{subjects:?}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages and chromium: run scripts/test.sh"]
async fn inspector_with_a_bearer_token_lists_the_allowed_tools_and_calls_whoami() {
    let upstream = support::ts_upstream();
    let proxy = proxy_for(&upstream, &[("MCP_AUTH_TOKENS", TOKENS)]).await;
    let url = proxy.url();
    let v = run_inspector(json!({ "url": url, "mode": "bearer", "token": WRITER })).await;
    let page = assert_cross_origin(&v, &url);

    assert_eq!(v["connected"], true, "{v:#}");
    // data:write implies data:read: every tool but delete_data (data:admin).
    let allowed = allowed_tools(&["data:read", "data:write"]);
    assert!(!allowed.iter().any(|t| t == "delete_data"), "{allowed:?}");
    assert_eq!(sorted_names(&v["tools"]), allowed, "{v:#}");
    assert_eq!(
        sorted_names(&v["toolsShown"]),
        allowed,
        "the page shows the tools listed: {v:#}"
    );
    assert_eq!(v["resultStatus"], "Tool Result: Success", "{v:#}");
    let who = whoami_result(&v);
    assert_eq!(who["identity"]["x-mcp-subject"], "writer", "{who:#}");
    assert_eq!(who["identity"]["x-mcp-auth-method"], "bearer", "{who:#}");
    // The scopes the token grants; the implied data:read is the proxy's policy, not forwarded.
    assert_eq!(who["identity"]["x-mcp-scopes"], "data:write", "{who:#}");
    assert_eq!(who["authorization"], Value::Null, "{who:#}");
    assert_eq!(who["x_api_key"], Value::Null, "{who:#}");
    let shown = v["resultText"].as_str().unwrap();
    assert!(shown.contains(r#"x-mcp-subject: "writer""#), "{shown}");
    assert!(shown.contains("authorization: null"), "{shown}");

    // The browser itself talked to the proxy: every request carried the token and every
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
    // The Inspector's stream for the upstream's messages (GET) opened through the proxy too.
    assert!(
        mcp.iter()
            .any(|r| r["method"] == "GET" && r["status"] == 200),
        "{v:#}"
    );
    assert_preflights_succeed(&v, &url, &page);
    assert_upstream_saw_identity_only(&upstream, "writer").await;
    let reached = upstream.requests().await;
    assert!(reached.iter().any(|r| r["method"] == "GET"), "{reached:#?}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages and chromium: run scripts/test.sh"]
async fn inspector_completes_the_oauth_flow_against_oidc_provider_and_calls_whoami() {
    let idp = start_idp();
    let upstream = support::ts_upstream();
    let proxy = proxy_for(&upstream, &[("MCP_OIDC_ISSUER", &idp.issuer)]).await;
    let url = proxy.url();
    let v = run_inspector(json!({ "url": url, "mode": "oauth", "issuer": idp.issuer })).await;
    let page = assert_cross_origin(&v, &url);

    // Cold start: the first request carried no credentials and was refused with 401.
    let mcp = requests_to(&v, &url, "/mcp");
    let first = mcp.first().expect("a request to /mcp");
    assert_eq!(first["status"], 401, "{v:#}");
    assert!(!sent_header(first, "authorization"), "{first}");
    assert_eq!(first["allowOrigin"], page.as_str());
    // Discovery from the browser: the proxy's protected resource metadata, the authorization
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
    for r in requests_to(&v, &url, "/.well-known/oauth-protected-resource/mcp") {
        assert_eq!(r["allowOrigin"], "*", "the page may read the metadata: {r}");
        assert!(r.get("corsError").is_none_or(Value::is_null), "{r}");
    }
    assert!(
        saw(&idp.issuer, "/.well-known/oauth-authorization-server", 200),
        "{v:#}"
    );
    assert!(saw(&idp.issuer, "/reg", 201), "{v:#}");
    assert!(saw(&idp.issuer, "/token", 200), "{v:#}");

    // The page went to the authorization server with an RFC 8707 resource (the proxy's URL),
    // PKCE, and the Inspector's own callback, and came back there.
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

    // Then, with the token: connected, and the upstream's whoami shows alice by JWT.
    assert_eq!(v["connected"], true, "{v:#}");
    assert_eq!(v["resultStatus"], "Tool Result: Success", "{v:#}");
    let shown = v["resultText"].as_str().unwrap();
    assert!(shown.contains(r#"x-mcp-subject: "alice""#), "{shown}");
    let who = whoami_result(&v);
    assert_eq!(who["identity"]["x-mcp-subject"], "alice", "{who:#}");
    assert_eq!(who["identity"]["x-mcp-auth-method"], "jwt", "{who:#}");
    assert_eq!(who["authorization"], Value::Null, "{who:#}");
    // The Inspector asks for the challenged scope (data:read) or for every scope the metadata
    // lists, depending on which of its two discovery paths redirects first; the token has
    // what it asked for, and the tools listed are exactly those that scope allows.
    let granted: Vec<&str> = who["identity"]["x-mcp-scopes"]
        .as_str()
        .unwrap()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    let asked = authorizations.last().unwrap()["scope"].as_str().unwrap();
    let mut asked: Vec<&str> = asked
        .split(' ')
        .filter(|s| s.starts_with("data:"))
        .collect();
    asked.sort_unstable();
    assert_eq!(granted, asked, "{v:#}");
    assert!(granted.contains(&"data:read"), "{granted:?}");
    let allowed = allowed_tools(&granted);
    assert_eq!(sorted_names(&v["tools"]), allowed, "{v:#}");
    assert_eq!(sorted_names(&v["toolsShown"]), allowed, "{v:#}");
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
    assert_upstream_saw_identity_only(&upstream, "alice").await;
}

/// A JSON-RPC POST body.
fn rpc(method: &str, params: Value) -> String {
    json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string()
}

/// A `fetch()` the page makes to the proxy: POST with the MCP headers and, when given, a
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

/// What the proxy sends to `token` (none: no credentials) for `body`, read without a
/// browser: the status, `WWW-Authenticate` and `Retry-After`.
async fn sent(url: &str, token: Option<&str>, body: String) -> (u16, String, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    // Every value, joined as the Fetch API joins them for a page.
    let challenges: Vec<&str> = res
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    (
        res.status().as_u16(),
        challenges.join(", "),
        header("retry-after"),
    )
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages and chromium: run scripts/test.sh"]
async fn page_scripts_read_the_401_and_403_challenges_and_the_session_id() {
    let upstream = support::ts_upstream();
    let proxy = proxy_for(&upstream, &[("MCP_AUTH_TOKENS", TOKENS)]).await;
    let url = proxy.url();
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
            post_probe("insufficient-scope", Some(READER), delete.clone()),
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
    assert_eq!(
        unknown["wwwAuthenticate"],
        "Bearer error=\"invalid_token\", error_description=\"invalid access token\"",
        "{unknown}"
    );
    let scope = probe(&v, "insufficient-scope");
    assert_eq!(scope["status"], 403, "{scope}");
    assert_eq!(
        scope["wwwAuthenticate"],
        "Bearer error=\"insufficient_scope\", error_description=\"this operation needs more scope\", scope=\"data:admin\"",
        "{scope}"
    );
    // The page reads what the proxy sent, not less.
    for (name, token, body) in [
        ("no-credentials", None, initialize()),
        ("insufficient-scope", Some(READER), delete),
    ] {
        let (status, challenge, _) = sent(&url, token, body).await;
        assert_eq!(probe(&v, name)["status"], status, "{name}");
        assert_eq!(probe(&v, name)["wwwAuthenticate"], challenge, "{name}");
    }
    // The upstream's session id is readable too (scripts send it back on every request).
    let init = probe(&v, "initialize");
    assert_eq!(init["status"], 200, "{init}");
    assert!(
        init["sessionId"].as_str().is_some_and(|s| !s.is_empty()),
        "{init}"
    );
    assert!(
        init["body"].as_str().unwrap().contains("upstream-ts"),
        "{init}"
    );

    assert_preflights_succeed(&v, &url, &page);
    for r in requests_to(&v, &url, "/mcp") {
        assert_eq!(r["allowOrigin"], page.as_str(), "{r}");
    }
    // Only the authorized initialize reached the upstream: the refusals are the proxy's own.
    let reached = upstream.requests().await;
    assert_eq!(reached.len(), 1, "{reached:#?}");
    assert_upstream_saw_identity_only(&upstream, "alice").await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages and chromium: run scripts/test.sh"]
async fn page_scripts_read_the_429_and_its_retry_after() {
    // Failures are counted per client address: 127.0.0.1 as a trusted proxy (no
    // X-Forwarded-For) makes the browser's address the client.
    let upstream = support::ts_upstream();
    let proxy = proxy_for(
        &upstream,
        &[
            ("MCP_AUTH_TOKENS", TOKENS),
            ("MCP_TRUSTED_PROXIES", "127.0.0.1"),
            ("MCP_FAILURE_LIMIT", "2/60"),
        ],
    )
    .await;
    let url = proxy.url();
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
    // What the proxy sent, read without a browser (same client address, still limited).
    let (status, challenge, retry) = sent(&url, Some(ALICE), initialize()).await;
    assert_eq!(status, 429);
    let sent = format!("the proxy sent Retry-After {retry:?}, WWW-Authenticate {challenge:?}");
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
        // When to retry is readable by the script, and so is the challenge the proxy sends
        // with it, if any (the limit refuses before any credential is looked at).
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
    for r in requests_to(&v, &url, "/mcp") {
        assert_eq!(r["allowOrigin"], page.as_str(), "{r}");
    }
    // Nothing reached the upstream: every request was refused by the proxy.
    let reached = upstream.requests().await;
    assert!(reached.is_empty(), "{reached:#?}");
}

/// An access token for the proxy (`resource`) with `scope`, by client credentials.
async fn client_credentials_token(issuer: &str, resource: &str, scope: &str) -> String {
    let res: Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth("cc-client", Some("cc-secret"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", scope),
            ("resource", resource),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {res}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm packages and chromium: run scripts/test.sh"]
async fn page_scripts_read_the_oauth_challenges_that_point_to_the_metadata() {
    let idp = start_idp();
    let upstream = support::ts_upstream();
    let proxy = proxy_for(&upstream, &[("MCP_OIDC_ISSUER", &idp.issuer)]).await;
    let url = proxy.url();
    let reader = client_credentials_token(&idp.issuer, &url, "data:read").await;
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
            post_probe("insufficient-scope", Some(&reader), delete.clone()),
        ],
    }))
    .await;
    let page = assert_cross_origin(&v, &url);
    for p in v["probes"].as_array().unwrap() {
        assert!(p["error"].is_null(), "fetch failed (CORS?): {p}");
    }
    let metadata = format!(
        "resource_metadata=\"{}\"",
        proxy.at("/.well-known/oauth-protected-resource/mcp")
    );
    const DPOP: &str = "DPoP algs=\"ES256 ES384 EdDSA PS256 RS256\",";
    let none = probe(&v, "no-credentials");
    assert_eq!(none["status"], 401, "{none}");
    assert_eq!(
        none["wwwAuthenticate"],
        // Bearer, then DPoP (offered beside it); a page sees both values joined.
        format!("Bearer scope=\"data:read\", {metadata}, {DPOP} scope=\"data:read\", {metadata}"),
        "{none}"
    );
    let unknown = probe(&v, "unknown-token");
    assert_eq!(unknown["status"], 401, "{unknown}");
    assert_eq!(
        unknown["wwwAuthenticate"],
        format!(
            "Bearer error=\"invalid_token\", error_description=\"invalid access token\", scope=\"data:read\", {metadata}, \
             {DPOP} error=\"invalid_token\", error_description=\"invalid access token\", scope=\"data:read\", {metadata}"
        ),
        "{unknown}"
    );
    // A step-up challenge: the scope the call needs, and where to find the authorization
    // server.
    let scope = probe(&v, "insufficient-scope");
    assert_eq!(scope["status"], 403, "{scope}");
    assert_eq!(
        scope["wwwAuthenticate"],
        format!(
            "Bearer error=\"insufficient_scope\", error_description=\"this operation needs more scope\", scope=\"data:admin\", {metadata}"
        ),
        "{scope}"
    );
    // The page reads what the proxy sent, not less.
    for (name, token, body) in [
        ("no-credentials", None, initialize()),
        ("insufficient-scope", Some(reader.as_str()), delete),
    ] {
        let (status, challenge, _) = sent(&url, token, body).await;
        assert_eq!(probe(&v, name)["status"], status, "{name}");
        assert_eq!(probe(&v, name)["wwwAuthenticate"], challenge, "{name}");
    }
    assert_preflights_succeed(&v, &url, &page);
    for r in requests_to(&v, &url, "/mcp") {
        assert_eq!(r["allowOrigin"], page.as_str(), "{r}");
    }
    let reached = upstream.requests().await;
    assert!(reached.is_empty(), "{reached:#?}");
}
