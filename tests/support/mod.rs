//! Shared harness for the integration tests that run the example server on a loopback port.

#![allow(dead_code)]

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/mcp_server.rs"]
pub mod example;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http::{HeaderName, HeaderValue};
use mcp_auth::env::EnvReader;
use rmcp::ServiceExt;
use rmcp::model::ClientConfig;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use tokio_util::sync::CancellationToken;

/// The example server on a loopback port, stopped on drop.
pub struct Server {
    pub addr: SocketAddr,
    /// Requests that reached the MCP service.
    pub reached: Arc<AtomicUsize>,
    /// POST requests that reached the MCP service (rmcp's client also opens a GET stream in
    /// the background, at a time of its choosing, so tests of single calls count POSTs).
    pub posts: Arc<AtomicUsize>,
    pub tokens: mcp_auth::bearer::TokenManager<example::Tokens>,
    pub generated: Option<String>,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
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
/// server's public MCP URL (also set as `MCP_PUBLIC_URL` unless `env` sets it).
pub async fn start_with(env: impl FnOnce(&str) -> Vec<(String, String)>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let public_url = format!("http://{addr}/mcp");
    let mut env = env(&public_url);
    if !env.iter().any(|(k, _)| k == "MCP_PUBLIC_URL") {
        env.push(("MCP_PUBLIC_URL".to_owned(), public_url));
    }
    let config = example::load_config(EnvReader::from_pairs(env)).expect("config");
    let reached = Arc::new(AtomicUsize::new(0));
    let counter = reached.clone();
    let posts = Arc::new(AtomicUsize::new(0));
    let post_counter = posts.clone();
    let mcp = tower::ServiceBuilder::new()
        .map_request(move |req: http::Request<axum::body::Body>| {
            counter.fetch_add(1, Ordering::SeqCst);
            if req.method() == http::Method::POST {
                post_counter.fetch_add(1, Ordering::SeqCst);
            }
            req
        })
        .service(example::mcp_service(None, config.policy.clone()));
    let tokens = config.tokens.clone();
    let generated = config
        .generated_token
        .as_ref()
        .map(|t| t.expose().to_owned());
    let app = example::router(
        config.auth,
        &config.policy,
        config.resource.as_ref(),
        &config.guards,
        mcp,
    );
    let stop = CancellationToken::new();
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move { s.cancelled().await })
        .await
        .unwrap();
    });
    Server {
        addr,
        reached,
        posts,
        tokens,
        generated,
        stop,
    }
}

impl Server {
    /// POST requests that reached the MCP service so far.
    pub fn posts(&self) -> usize {
        self.posts.load(Ordering::SeqCst)
    }
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

/// The oidc-provider test authorization server (tests/e2e/idp), killed on drop.
pub struct Idp {
    child: std::process::Child,
    /// Its issuer URL (`http://127.0.0.1:<port>`).
    pub issuer: String,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Idp {
    /// Stops the authorization server now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the test authorization server on a free loopback port.
pub fn start_idp() -> Idp {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/idp");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/oidc-provider")
            .exists(),
        "oidc-provider is not installed: run `npm ci --prefix tests/e2e/idp` (scripts/test.sh does)"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new("node")
        .arg("server.mjs")
        .current_dir(dir)
        .env("IDP_PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node is installed");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(issuer) = line.strip_prefix("listening ") {
                let _ = tx.send(issuer.to_owned());
            }
        }
    });
    let issuer = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the IdP did not start within 30 s");
    Idp { child, issuer }
}
