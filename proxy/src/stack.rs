//! The auth stack in front of the forwarding service, from the `MCP_*` environment the
//! example server documents: client address, Origin check, HTTPS check, failure limit,
//! authentication, session binding and per-tool scopes, with CORS around it and the OAuth
//! protected resource metadata beside it.
//!
//! This is the only module that uses the example server's crate
//! (`mcp_auth_example_server::load_config` and `router`), so the stack can move to the
//! library's own configuration loader by changing this file alone.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use http::{Request, Uri};
use mcp_auth::scope::ScopePolicy;
use mcp_auth::{ConfigError, Secret};
use mcp_auth_example_server as example;
use tower::Service;

/// Where the example server's router mounts the MCP service.
const MOUNT: &str = "/mcp";

/// The loaded auth configuration.
pub(crate) struct Stack(example::Config);

/// Reads the auth stack's configuration from `env`.
pub(crate) fn load(env: mcp_auth::env::EnvReader) -> Result<Stack, ConfigError> {
    example::load_config(env).map(Stack)
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
        if let Some(jwt) = self.0.jwt() {
            jwt.prefetch();
        }
    }

    /// `service` behind the layers at `public_path`, CORS around it, and the metadata
    /// routes. The service sees requests for the endpoint itself with the path `/`.
    pub(crate) fn router<S>(self, service: S, public_path: &str) -> Router
    where
        S: Service<Request<Body>, Response = http::Response<Body>, Error = Infallible>
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        let c = self.0;
        let app = example::router(c.auth, &c.policy, c.resource.as_ref(), &c.guards, service);
        if public_path == MOUNT {
            return app;
        }
        // The example router mounts at /mcp: requests for the public path are sent there,
        // and requests for /mcp itself are not (they get 404).
        let public = public_path.to_owned();
        let remapped =
            tower::util::MapRequest::new(app, move |req: Request<Body>| remap(req, &public));
        Router::new().fallback_service(remapped)
    }
}

/// The request with `public` (and paths under it) moved to [`MOUNT`], and [`MOUNT`] moved
/// out of the way.
fn remap(mut req: Request<Body>, public: &str) -> Request<Body> {
    let path = req.uri().path();
    let rest = if public == "/" {
        (path == "/").then_some("")
    } else {
        path.strip_prefix(public)
            .filter(|r| r.is_empty() || r.starts_with('/'))
    };
    let new_path = match rest {
        Some(rest) => format!("{MOUNT}{rest}"),
        None if path == MOUNT || path.starts_with("/mcp/") => "/.not-found".to_owned(),
        None => return req,
    };
    let mut parts = req.uri().clone().into_parts();
    let pq = match req.uri().query() {
        Some(q) => format!("{new_path}?{q}"),
        None => new_path,
    };
    parts.path_and_query = pq.parse().ok();
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str, public: &str) -> String {
        let req = Request::builder().uri(p).body(Body::empty()).unwrap();
        remap(req, public).uri().to_string()
    }

    #[test]
    fn the_public_path_is_moved_to_the_mount_and_the_mount_hidden() {
        assert_eq!(path("/api/mcp", "/api/mcp"), "/mcp");
        assert_eq!(path("/api/mcp/x?a=1", "/api/mcp"), "/mcp/x?a=1");
        assert_eq!(path("/api/mcpx", "/api/mcp"), "/api/mcpx");
        assert_eq!(path("/mcp", "/api/mcp"), "/.not-found");
        assert_eq!(path("/mcp/x", "/api/mcp"), "/.not-found");
        assert_eq!(
            path("/.well-known/oauth-protected-resource/api/mcp", "/api/mcp"),
            "/.well-known/oauth-protected-resource/api/mcp"
        );
        assert_eq!(path("/", "/"), "/mcp");
    }
}
