//! The auth stack in front of the forwarding service, from mcp-auth's configuration loader
//! (`mcp_auth::config`: the `MCP_*` environment and the TOML file named by `MCP_AUTH_CONFIG`):
//! client address, Origin check, HTTPS check, failure limit, authentication, session binding
//! and per-tool scopes, with CORS around it and the OAuth protected resource metadata beside
//! it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Method, Request};
use mcp_auth::config::{Config, Loader};
use mcp_auth::env::EnvReader;
use mcp_auth::scope::ScopePolicy;
use mcp_auth::{ConfigError, Secret};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The loaded auth configuration.
pub(crate) struct Stack(Config);

/// Reads the auth stack's configuration from `env` (and `MCP_AUTH_CONFIG`'s file), with the
/// library's defaults (without `MCP_TOOL_SCOPES` every tool is open to any authenticated
/// caller), and the proxy's own settings through the same layers with `read`: every problem
/// of both at once.
pub(crate) fn load<T>(
    env: EnvReader,
    read: impl FnOnce(&mut EnvReader) -> T,
) -> Result<(Stack, T), ConfigError> {
    Loader::from_env(env)
        .load_with(crate::config::PROXY_SETTINGS, read)
        .map(|(config, t)| (Stack(config), t))
}

impl Stack {
    /// The address to listen on (`MCP_BIND`).
    pub(crate) fn bind(&self) -> SocketAddr {
        self.0.bind
    }

    /// The scope policy (`MCP_TOOL_SCOPES`).
    pub(crate) fn policy(&self) -> Arc<ScopePolicy> {
        self.0.policy.clone()
    }

    /// `Host` values accepted (`MCP_ALLOWED_HOSTS`), when configured.
    pub(crate) fn allowed_hosts(&self) -> Option<&[String]> {
        self.0.allowed_hosts.as_deref()
    }

    /// The bearer token generated because no credential was configured.
    pub(crate) fn generated_token(&self) -> Option<&Secret> {
        self.0.generated_token.as_ref()
    }

    /// The names of the accepted authentication schemes.
    pub(crate) fn scheme_names(&self) -> Vec<String> {
        self.0.scheme_names()
    }

    /// Starts fetching JWKS keys in the background.
    pub(crate) fn prefetch(&self) {
        self.0.prefetch();
    }

    /// `service` behind the stack, with CORS around it: the MCP endpoint's service.
    ///
    /// CORS is outside the auth stack: preflights carry no credentials, and 401s must carry
    /// the headers that let scripts read `WWW-Authenticate`.
    pub(crate) fn endpoint<S>(&self, service: S) -> Endpoint
    where
        S: Service<Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let service = cors().layer(self.0.layer().layer(service));
        Endpoint(tower::util::BoxCloneSyncService::new(
            tower::util::MapResponseLayer::new(|res: http::Response<_>| res.map(Body::new))
                .layer(service),
        ))
    }

    /// The path of the MCP endpoint (`MCP_PUBLIC_URL`'s), without a trailing `/`: empty when
    /// the endpoint is the root.
    pub(crate) fn mcp_path(&self) -> String {
        self.0.mcp_path().trim_end_matches('/').to_owned()
    }

    /// `endpoint` at the public path and every path below it (it sees the endpoint itself as
    /// `/`), and the metadata routes, which answer their own CORS requests.
    pub(crate) fn router(&self, endpoint: Endpoint) -> Router {
        let mcp = match self.mcp_path().as_str() {
            "" => Router::new().fallback_service(endpoint.0),
            path => Router::new().nest_service(path, endpoint.0),
        };
        mcp.merge(self.0.metadata_router())
    }
}

/// The MCP endpoint's service: the auth stack and CORS around the forwarding service.
#[derive(Clone)]
pub(crate) struct Endpoint(
    pub(crate) tower::util::BoxCloneSyncService<Request<Body>, http::Response<Body>, Infallible>,
);

/// CORS for browser clients: any origin the Origin check lets through may call; the MCP
/// headers are allowed, and the challenge, the session id and `Retry-After` exposed.
fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers(mcp_auth::config::CORS_ALLOW_HEADERS)
        .expose_headers(mcp_auth::config::CORS_EXPOSE_HEADERS)
}
