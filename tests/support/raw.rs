//! Raw HTTP requests to an MCP endpoint, for exact statuses and headers.

use serde_json::json;

use super::Server;

/// POSTs `initialize` with `headers`; returns the status and the `Retry-After` header.
pub async fn attempt(srv: &Server, headers: &[(&str, &str)]) -> (u16, Option<String>) {
    attempt_from([127, 0, 0, 1], srv, headers).await
}

/// [`attempt`] from a given local (loopback) address.
pub async fn attempt_from(
    local: [u8; 4],
    srv: &Server,
    headers: &[(&str, &str)],
) -> (u16, Option<String>) {
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from(local))
        .build()
        .unwrap();
    let mut req = client
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

/// POSTs `tools/list` with `token`; returns the status, `WWW-Authenticate` and `Retry-After`.
pub async fn probe(url: &str, token: Option<&str>) -> (u16, String, Option<String>) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    (
        res.status().as_u16(),
        header("www-authenticate").unwrap_or_default(),
        header("retry-after"),
    )
}

/// Initializes a (2025-06-18) session at `url` with API key `key` over raw HTTP; returns the
/// `Mcp-Session-Id`.
pub async fn raw_session(url: &str, key: &str) -> String {
    let http = reqwest::Client::new();
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}});
    let res = http
        .post(url)
        .header("x-api-key", key)
        .header("accept", "application/json, text/event-stream")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let id = res.headers()["mcp-session-id"].to_str().unwrap().to_owned();
    drop(res.text().await);
    let res = http
        .post(url)
        .header("x-api-key", key)
        .header("mcp-session-id", &id)
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc":"2.0","method":"notifications/initialized"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    id
}

/// An answer to a raw request: status, headers and body text.
#[allow(dead_code)] // Not every test binary reads every field.
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

/// POSTs `body` (JSON) to the MCP endpoint at `url` with `headers`, in `session` if given.
#[allow(dead_code)] // Not every test binary uses it.
pub async fn post_json(
    url: &str,
    headers: &[(&str, &str)],
    session: Option<&str>,
    body: &serde_json::Value,
) -> Reply {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let res = req.send().await.unwrap();
    Reply {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap(),
    }
}

/// Initializes a (2025-06-18) session at `url`, authenticated by `headers`; returns its id.
#[allow(dead_code)] // Not every test binary uses it.
pub async fn session_with(url: &str, headers: &[(&str, &str)]) -> String {
    let init = json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}});
    let res = post_json(url, headers, None, &init).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let id = res.headers["mcp-session-id"].to_str().unwrap().to_owned();
    let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(post_json(url, headers, Some(&id), &note).await.status, 202);
    id
}

/// Calls `tool` (arguments `{"key": "k"}`) in a fresh session authenticated by `headers`.
#[allow(dead_code)] // Not every test binary uses it.
pub async fn call_tool(url: &str, headers: &[(&str, &str)], tool: &str) -> Reply {
    let sid = session_with(url, headers).await;
    let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call",
        "params":{"name":tool,"arguments":{"key":"k"}}});
    post_json(url, headers, Some(&sid), &body).await
}
