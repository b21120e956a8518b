//! Shared harness for the proxy's integration tests: the proxy in-process on a loopback port
//! ([`start_proxy`]), a scriptable upstream written here ([`upstream`]), the Python SDK
//! upstream (`tests/e2e/upstream-py`, [`py_upstream`]), the TypeScript SDK upstream
//! (`tests/e2e/upstream-ts`, [`ts_upstream`]), rmcp's client ([`connect`]) and the MCP
//! Inspector's web client in headless Chromium ([`browser`], shared with the root crate's tests).
//!
//! Each test binary compiles this module with `mod support;` and uses part of it.

#![allow(dead_code)]

#[path = "../../../tests/support/browser.rs"]
pub mod browser;
pub mod idp;
pub mod sdk;
pub mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use mcp_auth_proxy::{Env, Metrics};
use rmcp::model::ClientConfig;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ServiceExt};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The repository's root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the proxy crate sits in the repository")
        .to_path_buf()
}

/// The tool table the tests' deployments use (the upstreams' tools; `data:*` scopes).
pub const TOOL_SCOPES: &str =
    "whoami=;read_data=data:read;write_data=data:write;delete_data=data:admin;slow_progress=";

/// The proxy on a loopback port, stopped on drop.
pub struct Proxy {
    pub addr: SocketAddr,
    pub metrics: Arc<Metrics>,
    pub generated: Option<String>,
    stop: CancellationToken,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Proxy {
    /// The MCP endpoint's URL (at `/mcp`).
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// `path` on the proxy.
    pub fn at(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Starts the proxy in this process with `env` (MCP_BIND and MCP_PUBLIC_URL are set to its
/// loopback port, and the scope settings to [`TOOL_SCOPES`] with `data:` scopes, unless `env`
/// sets them; `env` receives the port's address).
pub async fn start_proxy(env: impl FnOnce(SocketAddr) -> Vec<(String, String)>) -> Proxy {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut env = env(addr);
    for (k, v) in [
        ("MCP_BIND", addr.to_string()),
        ("MCP_PUBLIC_URL", format!("http://{addr}/mcp")),
        ("MCP_TOOL_SCOPES", TOOL_SCOPES.to_owned()),
        ("MCP_SCOPE_IMPLIES", "data:write>data:read".to_owned()),
        (
            "MCP_DEFAULT_SCOPES",
            "data:read data:write data:admin".to_owned(),
        ),
        ("MCP_BASIC_SCOPES", "data:read".to_owned()),
    ] {
        if !env.iter().any(|(name, _)| name == k) {
            env.push((k.to_owned(), v));
        }
    }
    let proxy = mcp_auth_proxy::load(&Env::Pairs(env)).unwrap_or_else(|e| panic!("config: {e}"));
    let metrics = proxy.metrics();
    let generated = proxy.generated_token().map(|t| t.expose().to_owned());
    let app = proxy.into_app();
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        mcp_auth_proxy::serve(
            listener,
            app,
            async move { s.cancelled().await },
            Duration::from_millis(100),
        )
        .await
        .unwrap();
    });
    Proxy {
        addr,
        metrics,
        generated,
        stop,
    }
}

/// `(name, value)` pairs as owned strings.
pub fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// A free loopback port (free when this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process (an SDK upstream), killed on drop.
pub struct Child {
    child: std::process::Child,
    /// Its MCP URL.
    pub url: String,
    base: String,
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Child {
    /// Every request the upstream received so far (method, path, headers as pairs).
    pub async fn requests(&self) -> Vec<Value> {
        reqwest::get(format!("{}/_requests", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The values of header `name` in every recorded request.
    pub async fn header_values(&self, name: &str) -> Vec<String> {
        self.requests()
            .await
            .iter()
            .flat_map(|r| r["headers"].as_array().cloned().unwrap_or_default())
            .filter(|h| h[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
            .map(|h| h[1].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

/// Spawns `program args` in `dir` and waits (30 s at most) for its `listening <url>` line.
fn spawn(program: &Path, args: &[String], dir: &Path) -> Child {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("{} cannot start: {e}", program.display()));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("listening ") {
                let _ = tx.send(url.to_owned());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the upstream did not start within 30 s");
    let base = url.trim_end_matches("/mcp").to_owned();
    Child { child, url, base }
}

/// The Python SDK upstream (tests/e2e/upstream-py/server.py in tests/e2e/py-sdk/.venv).
pub fn py_upstream() -> Child {
    let python = repo().join("tests/e2e/py-sdk/.venv/bin/python");
    assert!(
        python.exists(),
        "the Python SDK is not installed: run scripts/test.sh (it creates tests/e2e/py-sdk/.venv)"
    );
    spawn(
        &python,
        &["server.py".to_owned(), free_port().to_string()],
        &repo().join("tests/e2e/upstream-py"),
    )
}

/// The TypeScript SDK upstream (tests/e2e/upstream-ts/server.mjs with tests/e2e/ts-sdk's
/// node_modules).
pub fn ts_upstream() -> Child {
    let dir = repo().join("tests/e2e/upstream-ts");
    assert!(
        repo()
            .join("tests/e2e/ts-sdk/node_modules/@modelcontextprotocol/sdk")
            .exists(),
        "the TypeScript SDK is not installed: run `npm ci --prefix tests/e2e/ts-sdk` (scripts/test.sh does)"
    );
    spawn(
        Path::new("node"),
        &["server.mjs".to_owned(), free_port().to_string()],
        &dir,
    )
}

/// rmcp's client with extra request headers and a handler (progress notifications).
pub async fn connect_with<H: ClientHandler>(
    url: String,
    headers: &[(&'static str, &str)],
    handler: H,
) -> Result<RunningService<RoleClient, H>, String> {
    let map: HashMap<HeaderName, HeaderValue> = headers
        .iter()
        .map(|(k, v)| {
            (
                HeaderName::from_static(k),
                HeaderValue::from_str(v).unwrap(),
            )
        })
        .collect();
    let transport = StreamableHttpClientTransport::from_config(
        StreamableHttpClientTransportConfig::with_uri(url).custom_headers(map),
    );
    handler.serve(transport).await.map_err(|e| e.to_string())
}

/// rmcp's client with extra request headers.
pub async fn connect(
    url: String,
    headers: &[(&'static str, &str)],
) -> Result<RunningService<RoleClient, ClientConfig>, String> {
    connect_with(url, headers, ClientConfig::default()).await
}
