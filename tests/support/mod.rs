//! Shared harness for the integration tests: the example server on a loopback port
//! ([`start`], [`start_with`]) and rmcp's client for it ([`connect`], [`whoami`]), raw HTTP
//! requests ([`raw`]), the test authorization server ([`idp`]) and the official SDK clients
//! ([`sdk`]), a
//! `redis-server` ([`redis_server`]), and a log capture and test authenticator ([`capture`],
//! [`auth`]).
//!
//! Each test binary compiles this module with `mod support;` and uses part of it, so unused
//! items are not warned about here.

#![allow(dead_code)]

pub mod auth;
pub mod browser;
pub mod capture;
pub mod idp;
pub mod raw;
pub mod redis_server;
pub mod sdk;

/// The example server's crate (`examples/server`), as the tests have always called it.
pub use mcp_auth_example_server as example;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderName, HeaderValue};
use mcp_auth::env::EnvReader;
use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The example server on a loopback port, stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    /// Requests that reached the MCP service.
    pub reached: Arc<AtomicUsize>,
    /// POST requests that reached the MCP service (rmcp's client also opens a GET stream in
    /// the background, at a time of its choosing, so tests of single calls count POSTs).
    pub posts: Arc<AtomicUsize>,
    pub tokens: mcp_auth::authenticators::bearer::TokenManager<example::Tokens>,
    pub generated: Option<String>,
    /// Whether the server speaks HTTPS (`MCP_TLS_CERT` was set).
    pub tls: bool,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Server {
    /// The MCP endpoint's URL.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}/mcp", self.addr)
    }

    /// Leaves the server running until the test process ends; its address.
    pub fn detach(mut self) -> SocketAddr {
        self.stop = CancellationToken::new();
        self.addr
    }
}

/// Starts the example with `env`; counters between the scope layer and rmcp count the
/// requests, and the POST requests, that reached the MCP service.
pub async fn start(env: &[(&str, &str)]) -> Server {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    start_with(|_| env).await
}

/// Starts the example on a loopback port known before configuration: `env` receives the
/// server's public MCP URL (also set as `MCP_PUBLIC_URL` unless `env` sets it; `https://`
/// when `env` sets `MCP_TLS_CERT`, though `env` itself is handed the `http://` form).
pub async fn start_with(env: impl FnOnce(&str) -> Vec<(String, String)>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let public_url = format!("http://{addr}/mcp");
    let mut env = env(&public_url);
    if !env.iter().any(|(k, _)| k == "MCP_PUBLIC_URL") {
        let public_url = if env.iter().any(|(k, _)| k == "MCP_TLS_CERT") {
            format!("https://{addr}/mcp")
        } else {
            public_url
        };
        env.push(("MCP_PUBLIC_URL".to_owned(), public_url));
    }
    let config = example::load_config(EnvReader::from_pairs(env)).expect("config");
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    let posts = Arc::new(AtomicUsize::new(0));
    let post_counter = posts.clone();
    let upstream = example::upstream(&config);
    let keep = mcp_auth::outbound::KeepInboundTokenLayer::when(upstream.is_some());
    let mcp = tower::ServiceBuilder::new()
        .map_request(move |req: http::Request<axum::body::Body>| {
            counter.fetch_add(1, Ordering::SeqCst);
            if req.method() == http::Method::POST {
                post_counter.fetch_add(1, Ordering::SeqCst);
            }
            req
        })
        .layer(keep)
        .service(example::mcp_service(None, config.policy.clone(), upstream));
    let tokens = config.tokens.clone();
    let generated = config
        .generated_token
        .as_ref()
        .map(|t| t.expose().to_owned());
    let app = example::router(&config, mcp);
    let tls = config.tls.clone();
    let stop = CancellationToken::new();
    let s = stop.clone();
    let serves_tls = tls.is_some();
    tokio::spawn(async move {
        example::serve_app(listener, app, tls, async move { s.cancelled().await })
            .await
            .unwrap();
    });
    Server {
        addr,
        reached,
        posts,
        tokens,
        generated,
        tls: serves_tls,
        stop,
    }
}

impl Server {
    /// POST requests that reached the MCP service so far.
    pub fn posts(&self) -> usize {
        self.posts.load(Ordering::SeqCst)
    }
}

/// A free loopback port (free when this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Connects rmcp's MCP client with extra request headers.
pub async fn connect(
    url: String,
    headers: &[(&'static str, &str)],
) -> Result<RunningService<RoleClient, ClientConfig>, String> {
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
    ClientConfig::default()
        .serve(transport)
        .await
        .map_err(|e| e.to_string())
}

/// Connects rmcp's client with the given headers and calls `whoami`.
pub async fn whoami(url: String, headers: &[(&'static str, &str)]) -> Result<Value, String> {
    let client = connect(url, headers).await?;
    let result = client
        .call_tool(CallToolRequestParams::new("whoami"))
        .await
        .map_err(|e| e.to_string())?;
    let _ = client.cancel().await;
    let text = result.content[0]
        .as_text()
        .expect("text content")
        .text
        .clone();
    Ok(serde_json::from_str(&text).unwrap())
}
