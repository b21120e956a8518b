//! `mcp-auth-proxy`: mcp-auth's layers in front of any streamable HTTP MCP server.
//!
//! The proxy serves the MCP endpoint at the path of `MCP_PUBLIC_URL` (default `/mcp`) behind
//! mcp-auth's configured stack (`mcp_auth::config`: API keys, bearer tokens, JWTs,
//! introspection, OAuth protected resource metadata, per-tool scopes, session binding, failure
//! limits, Origin and HTTPS checks), with CORS, and forwards each authenticated, authorized request to
//! `MCP_UPSTREAM_URL` ([`Forward`]):
//!
//! - the client's credentials never reach the upstream; the caller's identity does, in
//!   `X-MCP-Subject`, `X-MCP-Scopes`, `X-MCP-Roles`, `X-MCP-Auth-Method` and
//!   `X-MCP-Client-Id` (incoming headers of those names, and any `X-MCP-*`, are removed),
//!   and optionally as a short-lived JWT the proxy mints (`MCP_UPSTREAM_JWT_*`);
//! - responses stream back as they arrive (SSE event by event), and `tools/list`,
//!   `prompts/list` and `resources/list` answers show each caller only what it may use;
//! - an unreachable upstream gives 502, a slow one 504; `/healthz` answers `ok`; metrics are
//!   served on their own listener (`MCP_PROXY_METRICS_BIND`).
//!
//! The binary serves with [`serve_threads`] (a single-threaded runtime per worker thread,
//! `MCP_PROXY_WORKERS`); [`serve`] runs on the caller's runtime. The environment is
//! documented in the crate's `README.md`.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_auth_proxy::Env;
//!
//! let proxy = mcp_auth_proxy::load(&Env::Process)?;
//! let listener = tokio::net::TcpListener::bind(proxy.bind()).await?;
//! let grace = proxy.config().shutdown_grace();
//! mcp_auth_proxy::serve(listener, proxy.into_router(), std::future::pending(), grace).await?;
//! # Ok(())
//! # }
//! ```

#![forbid(unsafe_code)]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub,
    clippy::await_holding_lock
)]
// No panics on a request path: unwrap, expect, panic! and slice indexing are refused outside
// tests.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod config;
pub mod forward;
mod headers;
mod hosts;
mod listing;
pub mod metrics;
mod mint;
mod prefetch;
mod sse;
mod stack;
mod threads;
mod upstream;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::response::Response;
use axum::routing::get;
use mcp_auth::{ConfigError, Secret};
use tokio::net::TcpListener;
use tower::Layer;

pub use config::{Env, ProxyConfig};
pub use forward::Forward;
pub use metrics::Metrics;
pub use threads::serve_threads;

/// The proxy, configured: the auth stack, the proxy's own settings and its metrics.
pub struct Proxy {
    stack: stack::Stack,
    config: ProxyConfig,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("bind", &self.stack.bind())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Reads the whole configuration (the auth stack's and the proxy's) from `env`.
///
/// # Errors
///
/// Every problem at once, by variable name, never with a value.
pub fn load(env: &Env) -> Result<Proxy, ConfigError> {
    let (stack, read) = stack::load(env.reader(), |env| {
        // The endpoint's public URL as the auth stack reads it (checked there).
        let public_url = env.raw("MCP_PUBLIC_URL").map_or_else(
            || {
                let bind = env.raw("MCP_BIND");
                format!(
                    "http://{}/mcp",
                    bind.as_deref().unwrap_or("127.0.0.1:8080").trim()
                )
            },
            |v| v.trim().to_owned(),
        );
        ProxyConfig::read(env, &public_url)
    })?;
    Ok(Proxy {
        stack,
        config: read.build()?,
        metrics: Arc::new(Metrics::new()),
    })
}

impl Proxy {
    /// The address to listen on (`MCP_BIND`, default `127.0.0.1:8080`).
    #[must_use]
    pub fn bind(&self) -> SocketAddr {
        self.stack.bind()
    }

    /// The bearer token generated because no credential was configured: print it for the
    /// operator, never log it.
    #[must_use]
    pub fn generated_token(&self) -> Option<&Secret> {
        self.stack.generated_token()
    }

    /// The names of the accepted authentication schemes (for the startup log).
    #[must_use]
    pub fn scheme_names(&self) -> Vec<String> {
        self.stack.scheme_names()
    }

    /// Starts fetching JWKS keys in the background (JWT requests get 503 until they arrive).
    pub fn prefetch(&self) {
        self.stack.prefetch();
    }

    /// The proxy's own settings.
    #[must_use]
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// The counters the router updates (render them with [`metrics_router`]).
    #[must_use]
    pub fn metrics(&self) -> Arc<Metrics> {
        self.metrics.clone()
    }

    /// The application: the MCP endpoint behind the auth stack, the metadata routes, and
    /// `/healthz`. Every request but the health check is counted in [`Proxy::metrics`].
    ///
    /// Serve it with [`serve`] or [`serve_threads`]: they give each client connection an
    /// upstream connection of its own, reused by its requests, and send requests for the
    /// endpoint's own path straight to its service (the router handles every other path).
    pub fn into_app(self) -> App {
        let public_host = self
            .config
            .forwarding
            .host
            .to_str()
            .unwrap_or_default()
            .to_owned();
        let hosts = hosts::AllowedHosts::new(self.stack.allowed_hosts(), &public_host);
        let forward = Forward::new(
            self.config,
            self.stack.policy(),
            self.metrics.clone(),
            hosts,
        );
        let endpoint = self.stack.endpoint(forward);
        let metrics = self.metrics;
        let count = tower::util::MapResponseLayer::new(move |res: Response| {
            metrics.record(&res);
            res
        });
        let direct = tower::util::BoxCloneSyncService::new(count.clone().layer(endpoint.0.clone()));
        let app = self.stack.router(endpoint).layer(count);
        let router = Router::new()
            .route(config::HEALTH_PATH, get(|| async { "ok" }))
            .merge(app);
        App {
            router,
            endpoint: Some(Direct {
                path: self.stack.mcp_path().into(),
                service: direct,
            }),
        }
    }

    /// [`Proxy::into_app`] as an axum router, for another server (`axum::serve`). It works
    /// the same, but opens an upstream connection per request: prefer [`serve`] or
    /// [`serve_threads`].
    pub fn into_router(self) -> Router {
        self.into_app().router
    }
}

/// What [`serve`] and [`serve_threads`] serve: [`Proxy::into_app`], or any axum router.
#[derive(Clone)]
pub struct App {
    router: Router,
    /// The MCP endpoint, called directly for requests to its exact path.
    endpoint: Option<Direct>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("endpoint", &self.endpoint.as_ref().map(|d| &d.path))
            .finish_non_exhaustive()
    }
}

impl From<Router> for App {
    fn from(router: Router) -> Self {
        Self {
            router,
            endpoint: None,
        }
    }
}

/// The MCP endpoint's service, with the metrics, and its path (empty for the root).
#[derive(Clone)]
struct Direct {
    path: Arc<str>,
    service: DirectService,
}

/// Whether `req` is for the endpoint at `endpoint` (its path, empty for the root); if so, it
/// is made what the router would pass on: the original URI in `OriginalUri`, the path `/`
/// (the router nests the endpoint).
fn take_for_endpoint(endpoint: &str, req: &mut http::Request<axum::body::Body>) -> bool {
    let path = req.uri().path();
    let root = endpoint.is_empty();
    if !(path == endpoint || (root && path == "/")) {
        return false;
    }
    let original = req.uri().clone();
    if !root {
        let nested = match original.query() {
            Some(q) => format!("/?{q}").parse().ok(),
            None => Some(http::Uri::from_static("/")),
        };
        let Some(nested) = nested else {
            return false;
        };
        *req.uri_mut() = nested;
    }
    req.extensions_mut()
        .insert(axum::extract::OriginalUri(original));
    true
}

/// `GET /metrics`: the Prometheus text exposition of `metrics`. Serve it on its own,
/// private listener: it is not authenticated.
pub fn metrics_router(metrics: Arc<Metrics>) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    )
}

/// Serves `app` on `listener` (HTTP/1, `TCP_NODELAY` on every connection, the peer address
/// as connection info, one upstream connection per client connection) until `shutdown`
/// completes; then open connections get `grace` to finish (long-lived SSE streams would
/// otherwise hold the shutdown forever) and are dropped.
///
/// # Errors
///
/// When accepting connections fails.
pub async fn serve(
    listener: TcpListener,
    app: impl Into<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    serve_on(listener, app.into(), shutdown, grace).await
}

/// [`serve`] on any listener of TCP connections.
///
/// Each connection is served by hyper's HTTP/1 server, with `TCP_NODELAY`, the peer address
/// as axum's `ConnectInfo`, and an upstream slot ([`upstream::ConnSlot`]): the requests of
/// one client connection share one upstream connection. When `shutdown` completes, accepting
/// stops and every connection is told to finish its exchange in progress and close; after
/// `grace`, whatever is still open is dropped.
async fn serve_on<L>(
    mut listener: L,
    app: App,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Io = tokio::net::TcpStream, Addr = SocketAddr>,
{
    // Dropped by the shutdown: every connection task sees it and closes gracefully.
    let (stop, stopping) = tokio::sync::watch::channel(());
    // One receiver per open connection: `closed()` once the last has finished.
    let (open, _) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = ConnService {
            endpoint: app
                .endpoint
                .as_ref()
                .map(|d| (d.path.clone(), std::cell::RefCell::new(d.service.clone()))),
            router: app.router.clone(),
            peer,
            slot: upstream::ConnSlot::default(),
        };
        let mut stopping = stopping.clone();
        let still_open = open.subscribe();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(target: "mcp_auth_proxy", error = %e, "client connection ended with an error");
                    }
                }
                _ = stopping.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(still_open);
        });
    }
    drop(listener);
    drop(stop);
    drop(stopping);
    tokio::select! {
        () = open.closed() => Ok(()),
        () = tokio::time::sleep(grace) => {
            tracing::warn!(
                target: "mcp_auth_proxy",
                grace_ms = grace.as_millis() as u64,
                "connections still open after the shutdown grace period; closing them"
            );
            Ok(())
        }
    }
}

/// The service of one client connection: the endpoint or the router, with the peer address
/// and the connection's upstream slot in each request's extensions.
///
/// The endpoint's service is cloned once per connection, not per request: a clone copies
/// the whole stack (a reference count per layer), and the connection's requests come one at
/// a time.
struct ConnService {
    /// The endpoint's path and this connection's instance of its service.
    endpoint: Option<(Arc<str>, std::cell::RefCell<DirectService>)>,
    router: Router,
    peer: SocketAddr,
    slot: upstream::ConnSlot,
}

type DirectService = tower::util::BoxCloneSyncService<
    http::Request<axum::body::Body>,
    Response,
    std::convert::Infallible,
>;

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for ConnService {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<Response, std::convert::Infallible>> + Send>>;

    fn call(&self, req: http::Request<hyper::body::Incoming>) -> Self::Future {
        let mut req = req.map(axum::body::Body::new);
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        req.extensions_mut().insert(self.slot.clone());
        // Borrowed only to start the call (the future owns what it needs), so the borrow
        // cannot fail; were it to, the router passes the request on the same way.
        if let Some((path, service)) = &self.endpoint
            && let Ok(mut service) = service.try_borrow_mut()
            && take_for_endpoint(path, &mut req)
        {
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            return match tower::Service::poll_ready(&mut *service, &mut cx) {
                std::task::Poll::Ready(Ok(())) => tower::Service::call(&mut *service, req),
                // Not ready (the stack never is that, but the contract allows it): a clone
                // waits for readiness with the task's own waker.
                std::task::Poll::Pending => {
                    Box::pin(tower::ServiceExt::oneshot(service.clone(), req))
                }
            };
        }
        // The router is always ready; calling a clone is what axum's own server does.
        Box::pin(tower::Service::call(&mut self.router.clone(), req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str) -> http::Request<axum::body::Body> {
        http::Request::builder()
            .uri(uri)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    /// The URI the endpoint sees and the `OriginalUri`, or `None` when the router takes it.
    fn taken(d: &str, uri: &str) -> Option<(String, String)> {
        let mut r = req(uri);
        if !take_for_endpoint(d, &mut r) {
            return None;
        }
        let original = r.extensions().get::<axum::extract::OriginalUri>().unwrap();
        Some((r.uri().to_string(), original.0.to_string()))
    }

    #[test]
    fn the_endpoints_own_path_is_passed_on_as_the_router_would_nest_it() {
        let d = "/api/mcp";
        assert_eq!(
            taken(d, "/api/mcp"),
            Some(("/".to_owned(), "/api/mcp".to_owned()))
        );
        assert_eq!(
            taken(d, "/api/mcp?a=1"),
            Some(("/?a=1".to_owned(), "/api/mcp?a=1".to_owned()))
        );
        // Everything else is the router's: sub-paths, other paths, a prefix of the path.
        for other in [
            "/api/mcp/",
            "/api/mcp/x",
            "/api/mcpx",
            "/api",
            "/",
            "/healthz",
        ] {
            assert_eq!(taken(d, other), None, "{other}");
        }
    }

    #[test]
    fn an_endpoint_at_the_root_takes_only_the_root() {
        let d = "";
        assert_eq!(taken(d, "/"), Some(("/".to_owned(), "/".to_owned())));
        assert_eq!(
            taken(d, "/?a=1"),
            Some(("/?a=1".to_owned(), "/?a=1".to_owned()))
        );
        for other in ["/healthz", "/.well-known/oauth-protected-resource", "/x"] {
            assert_eq!(taken(d, other), None, "{other}");
        }
    }
}
