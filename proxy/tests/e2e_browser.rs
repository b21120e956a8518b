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
//!   scripts can read `WWW-Authenticate` on the proxy's 401 and 403 answers, and `Retry-After`
//!   on its 429s.
//!
//! The upstream never sees the browser's credentials. Needs `npm ci --prefix tests/e2e/browser`,
//! `npm ci --prefix tests/e2e/idp`, `npm ci --prefix tests/e2e/ts-sdk` and Debian's `chromium`;
//! ignored in a plain `cargo test`.

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
    assert_preflights_succeed(&v, &url, &page);
    assert_upstream_saw_identity_only(&upstream, "writer").await;
}
