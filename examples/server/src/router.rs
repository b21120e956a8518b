//! The MCP service, the router around it, and [`serve`].
//!
//! Layer order, outermost first: CORS, then [`Config::layer`]'s stack (client address, Origin
//! check, HTTPS check, failure limit, auth, the failure limit's release, session binding,
//! scopes), then the MCP service. CORS sits outside auth so browser preflights (which carry
//! no credentials) are answered, and so 401s carry the CORS headers that let scripts read
//! `WWW-Authenticate`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::serve::ListenerExt;
use bytes::Bytes;
use http::{Method, Request};
use mcp_auth::config::{Config, TlsSettings};
use mcp_auth::integrations::rmcp::ScopedServer;
use mcp_auth::outbound::KeepInboundTokenLayer;
use mcp_auth::scope::ScopePolicy;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tower::util::MapRequestLayer;
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::tls::{TlsListener, TlsPeer, connection_extensions};
use crate::tools::{DataServer, Upstream};

/// The MCP service: rmcp's streamable HTTP transport serving [`DataServer`], whose
/// `tools/list` shows each caller only the tools `policy` lets it call.
pub fn mcp_service(
    allowed_hosts: Option<Vec<String>>,
    policy: Arc<ScopePolicy>,
    upstream: Option<Upstream>,
) -> StreamableHttpService<ScopedServer<DataServer>, LocalSessionManager> {
    let data = Arc::new(Mutex::new(HashMap::new()));
    let mut mcp_config = StreamableHttpServerConfig::default();
    if let Some(hosts) = allowed_hosts {
        mcp_config.allowed_hosts = hosts;
    }
    StreamableHttpService::new(
        move || {
            let server = DataServer::new(data.clone(), policy.clone());
            let server = match &upstream {
                Some(up) => server.with_upstream(up.clone()),
                None => server,
            };
            Ok(ScopedServer::new(server, policy.clone()))
        },
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    )
}

/// The upstream API `call_upstream` calls, when `MCP_OUTBOUND_MODE` and
/// `MCP_UPSTREAM_API_URL` configure one.
#[must_use]
pub fn upstream(config: &Config) -> Option<Upstream> {
    config
        .outbound
        .clone()
        .zip(config.upstream_api_url.clone())
        .map(|(client, url)| Upstream { client, url })
}

/// The whole application: [`mcp_service`] behind the configured stack.
pub fn app(config: Config) -> Router {
    let upstream = upstream(&config);
    // The caller's token is kept (inside the auth stack) only when it may be exchanged.
    let keep = KeepInboundTokenLayer::when(upstream.is_some());
    let mcp = mcp_service(
        config.allowed_hosts.clone(),
        config.policy.clone(),
        upstream,
    );
    router(&config, keep.layer(mcp))
}

/// Mounts `mcp` at the path of `MCP_PUBLIC_URL` behind the configured stack with CORS
/// around it, and the metadata routes beside it (they answer their own CORS requests, with
/// `Access-Control-Allow-Origin: *`, so they are merged after the CORS layer).
pub fn router<S, B>(config: &Config, mcp: S) -> Router
where
    S: Service<Request<Body>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    config
        .mcp_router(mcp)
        .layer(cors())
        .merge(config.metadata_router())
}

/// CORS for browser clients: any origin the Origin check lets through may call; the MCP
/// headers are allowed, and the challenge, the session id and `Retry-After` (on 429 and 503)
/// exposed.
pub fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(mcp_auth::config::CORS_ALLOW_HEADERS)
        .expose_headers(mcp_auth::config::CORS_EXPOSE_HEADERS)
}

/// Serves [`app`]`(config)` on `listener` until `shutdown` completes: HTTPS when the
/// configuration has TLS settings (`MCP_TLS_CERT`), plain HTTP otherwise; see
/// [`serve_app`].
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = config.tls.clone();
    serve_app(listener, app(config), tls, shutdown).await
}

/// Serves `app` on `listener` until `shutdown` completes, with `TCP_NODELAY` on every
/// connection (small streamed responses must not wait for delayed ACKs) and the peer address
/// as connection info (for the failure limit and audit events). With `tls`, over HTTPS
/// ([`TlsListener`]): each request also carries
/// [`TlsConnection`](mcp_auth::request_info::TlsConnection) and the client certificate the
/// handshake verified, if any ([`connection_extensions`]).
pub async fn serve_app(
    listener: TcpListener,
    app: Router,
    tls: Option<TlsSettings>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    match tls {
        None => {
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
        Some(tls) => {
            let listener = TlsListener::new(listener, &tls)?;
            let app = app.layer(MapRequestLayer::new(connection_extensions::<Body>));
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<TlsPeer>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
        }
    }
}
