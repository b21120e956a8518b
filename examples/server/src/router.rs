//! The layer stack and routes, and [`serve`].
//!
//! Layer order, outermost first: CORS, client address, Origin check, HTTPS check (optional),
//! failure limit, auth, the failure limit's release, session binding, scopes, then the MCP
//! service. CORS sits outside auth so browser preflights (which carry no credentials) are
//! answered, and so 401s carry the CORS headers that let scripts read `WWW-Authenticate`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::serve::ListenerExt;
use bytes::Bytes;
use http::{HeaderName, Method, Request, header};
use mcp_auth::authenticators::introspection::IntrospectionAuthenticator;
use mcp_auth::authenticators::jwt::JwtAuthenticator;
use mcp_auth::hardening::FailureLimitLayer;
use mcp_auth::hardening::{ClientAddrLayer, HttpsOnlyLayer, OriginLayer};
use mcp_auth::integrations::rmcp::ScopedServer;
use mcp_auth::oauth::ProtectedResource;
use mcp_auth::scope::{ScopeLayer, ScopePolicy};
use mcp_auth::session::SessionBindingLayer;
use mcp_auth::{ApiKeyAuthenticator, AuthLayer, BearerAuthenticator, Chain};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::net::TcpListener;
use tower::{Service, ServiceBuilder};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::{Config, Guards};
use crate::stores::{Counters, Tokens};
use crate::tools::DataServer;

/// API keys, then bearer tokens (static or issued), then JWTs, then introspection: the
/// first credential the request carries decides.
pub type ServerAuth = Chain<
    Option<ApiKeyAuthenticator>,
    Chain<
        Option<BearerAuthenticator<Tokens>>,
        Chain<Option<JwtAuthenticator>, Option<IntrospectionAuthenticator>>,
    >,
>;

/// The MCP service: rmcp's streamable HTTP transport serving [`DataServer`], whose
/// `tools/list` shows each caller only the tools `policy` lets it call.
pub fn mcp_service(
    allowed_hosts: Option<Vec<String>>,
    policy: Arc<ScopePolicy>,
) -> StreamableHttpService<ScopedServer<DataServer>, LocalSessionManager> {
    let data = Arc::new(Mutex::new(HashMap::new()));
    let mut mcp_config = StreamableHttpServerConfig::default();
    if let Some(hosts) = allowed_hosts {
        mcp_config.allowed_hosts = hosts;
    }
    StreamableHttpService::new(
        move || {
            Ok(ScopedServer::new(
                DataServer::new(data.clone(), policy.clone()),
                policy.clone(),
            ))
        },
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    )
}

/// The whole application.
pub fn app(config: Config) -> Router {
    let mcp = mcp_service(config.allowed_hosts, config.policy.clone());
    router(
        config.auth,
        &config.policy,
        config.resource.as_ref(),
        &config.guards,
        mcp,
    )
}

/// Mounts `mcp` at `/mcp` behind the auth layer and the scope layer, and CORS around
/// everything.
pub fn router<S, B>(
    auth: ServerAuth,
    policy: &ScopePolicy,
    resource: Option<&ProtectedResource>,
    guards: &Guards,
    mcp: S,
) -> Router
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
    let mut auth_layer = AuthLayer::new(auth);
    let mut scope_layer = ScopeLayer::new(policy.clone());
    if let Some(pr) = resource {
        auth_layer = auth_layer.protected_resource(pr);
        scope_layer = scope_layer.protected_resource(pr);
    }
    let limit = failure_limit(guards);
    // Refunds a request's reserved attempt as soon as it has authenticated.
    let release = limit.release();
    // The client address (the socket's, or behind MCP_TRUSTED_PROXIES the one they report)
    // for the failure limit and audit events.
    let mcp = ServiceBuilder::new()
        .layer(ClientAddrLayer::new(guards.trusted_proxies.clone()))
        .layer(OriginLayer::new(&guards.allowed_origins))
        .layer(https_only(guards))
        .layer(limit)
        .layer(auth_layer)
        .layer(release)
        .layer(SessionBindingLayer::new(guards.sessions.clone()))
        .layer(scope_layer)
        .service(mcp);
    let mut app = Router::new().nest_service("/mcp", mcp).layer(cors());
    // The metadata is public, answers its own CORS preflights, and is added after the CORS
    // layer so its `Access-Control-Allow-Origin: *` is not doubled.
    if let Some(pr) = resource {
        let [path_form, root_form] = pr.well_known_paths();
        app = app.route_service(path_form, pr.service());
        if root_form != path_form {
            app = app.route_service(root_form, pr.service());
        }
    }
    app
}

/// CORS for browser clients: any origin the Origin check lets through may call; the MCP
/// headers are allowed and the challenge and session id exposed.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("mcp-method"),
            HeaderName::from_static("mcp-name"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
        ])
}

/// The failure limit per client address, or (limits off) a key function that never names a
/// client.
fn failure_limit(guards: &Guards) -> FailureLimitLayer<Counters> {
    let (failures, window) = guards
        .failure_limit
        .unwrap_or((u32::MAX, Duration::from_secs(1)));
    let limit = FailureLimitLayer::new(guards.counters.clone())
        .max_failures(failures)
        .window(window);
    if guards.failure_limit.is_none() {
        limit.key_fn(|_| None)
    } else {
        limit
    }
}

/// Plain HTTP is allowed unless `MCP_REQUIRE_HTTPS`; behind trusted proxies with
/// `MCP_TRUST_FORWARDED_HOST`, their `X-Forwarded-Proto` counts.
fn https_only(guards: &Guards) -> HttpsOnlyLayer {
    let https = HttpsOnlyLayer::new();
    if !guards.require_https {
        https.allow_plain_http()
    } else if guards.forwarded_host {
        https.trust_forwarded_proto(guards.trusted_proxies.clone())
    } else {
        https
    }
}

/// Serves [`app`]`(config)` on `listener` until `shutdown` completes, with `TCP_NODELAY` on
/// every connection (small streamed responses must not wait for delayed ACKs) and the peer
/// address as connection info (for the failure limit and audit events).
pub async fn serve(
    listener: TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(
        listener,
        app(config).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
