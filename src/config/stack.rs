//! The configured stack as one tower layer ([`AuthStackLayer`]), and (feature `axum`) the
//! router that mounts a service behind it with the metadata routes.

use std::sync::Arc;
use std::time::Duration;

use tower_layer::{Layer, Stack};

use super::{Config, ConfiguredAuth, Counters, Guards, Sessions};
use crate::AuthLayer;
use crate::hardening::{
    ClientAddrLayer, FailureLimitLayer, HttpsOnlyLayer, OriginLayer, ReleaseLayer,
};
use crate::scope::ScopeLayer;
use crate::session::SessionBindingLayer;

/// The layers of a configured stack, innermost first (tower's [`Stack`] applies its first
/// layer inside its second).
type Layers = Stack<
    ScopeLayer,
    Stack<
        SessionBindingLayer<Sessions>,
        Stack<
            ReleaseLayer<Counters>,
            Stack<
                AuthLayer<Arc<ConfiguredAuth>>,
                Stack<
                    FailureLimitLayer<Counters>,
                    Stack<HttpsOnlyLayer, Stack<OriginLayer, Stack<CertLayer, ClientAddrLayer>>>,
                >,
            >,
        >,
    >,
>;

/// The client certificate a trusted proxy reports (feature `mtls`), right inside the client
/// address.
#[cfg(feature = "mtls")]
type CertLayer = crate::hardening::ForwardedClientCertLayer;

/// Without the `mtls` feature, no certificate is read from a proxy.
#[cfg(not(feature = "mtls"))]
type CertLayer = tower_layer::Identity;

/// The whole configured stack as one layer, outermost first: client address, (feature
/// `mtls`) the client certificate a trusted proxy reports, `Origin` check, HTTPS check,
/// failed-attempt limit, authentication, the limit's release, session binding, per-tool
/// scopes. Made by [`Config::layer`].
///
/// ```
/// use mcp_auth::config::Loader;
/// use mcp_auth::env::EnvReader;
/// use tower_layer::Layer;
///
/// let config = Loader::from_env(EnvReader::from_pairs([(
///     "MCP_AUTH_TOKENS",
///     "tok-alice-0123456789abcdef;sub=alice",
/// )]))
/// .load()
/// .unwrap();
/// let mcp = tower::service_fn(|_req: http::Request<http_body_util::Full<bytes::Bytes>>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from("hello"))))
/// });
/// let _protected = config.layer().layer(mcp); // a tower service: serve it with hyper or axum
/// ```
#[derive(Clone)]
pub struct AuthStackLayer {
    layers: Layers,
}

impl std::fmt::Debug for AuthStackLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthStackLayer").finish_non_exhaustive()
    }
}

/// The service an [`AuthStackLayer`] makes of `S`.
pub type AuthStack<S> = <Layers as Layer<S>>::Service;

impl<S> Layer<S> for AuthStackLayer {
    type Service = AuthStack<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.layers.layer(inner)
    }
}

impl Config {
    /// The whole stack as one tower layer (see [`AuthStackLayer`]). Each call shares this
    /// configuration's authenticators and stores.
    #[must_use]
    pub fn layer(&self) -> AuthStackLayer {
        let guards = &self.guards;
        let mut auth = AuthLayer::new(self.auth.clone());
        let mut scopes = ScopeLayer::new((*self.policy).clone());
        if let Some(pr) = &self.resource {
            auth = auth.protected_resource(pr);
            scopes = scopes.protected_resource(pr);
        }
        let limit = failure_limit(guards);
        // Refunds a request's reserved attempt as soon as it has authenticated.
        let release = limit.release();
        let outer = Stack::new(
            https_only(guards),
            Stack::new(
                OriginLayer::new(&guards.allowed_origins),
                Stack::new(
                    self.cert_layer(),
                    // The client address (the socket's, or behind trusted proxies the one they
                    // report), for the failure limit and audit events.
                    ClientAddrLayer::new(guards.trusted_proxies.clone()),
                ),
            ),
        );
        let layers = Stack::new(
            scopes,
            Stack::new(
                SessionBindingLayer::new(guards.sessions.clone()),
                Stack::new(release, Stack::new(auth, Stack::new(limit, outer))),
            ),
        );
        AuthStackLayer { layers }
    }
}

impl Config {
    /// `MCP_CLIENT_CERT_HEADER` from the trusted proxies; without it, a layer that trusts no
    /// peer (it never reads the header).
    #[cfg(feature = "mtls")]
    fn cert_layer(&self) -> CertLayer {
        use crate::hardening::CertHeader;
        use crate::request_info::TrustedProxies;
        match &self.client_cert_header {
            Some(header) => CertLayer::new(self.guards.trusted_proxies.clone(), header.clone()),
            None => CertLayer::new(TrustedProxies::none(), CertHeader::nginx()),
        }
    }

    /// Without the `mtls` feature: nothing.
    #[cfg(not(feature = "mtls"))]
    fn cert_layer(&self) -> CertLayer {
        tower_layer::Identity::new()
    }
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

#[cfg(feature = "axum")]
mod router {
    use std::convert::Infallible;

    use axum::Router;
    use axum::body::Body;
    use bytes::Bytes;
    use http::Request;
    use tower_layer::Layer;
    use tower_service::Service;

    use super::Config;

    impl Config {
        /// An axum router serving `mcp` at the path of `MCP_PUBLIC_URL` behind
        /// [`Config::layer`], and the RFC 9728 metadata at its well-known paths when
        /// authorization servers are configured: [`Config::mcp_router`] merged with
        /// [`Config::metadata_router`].
        ///
        /// ```
        /// use mcp_auth::config::Loader;
        /// use mcp_auth::env::EnvReader;
        ///
        /// let config = Loader::from_env(EnvReader::from_pairs([
        ///     ("MCP_OIDC_ISSUER", "https://idp.example.com"),
        ///     ("MCP_PUBLIC_URL", "https://mcp.example.com/mcp"),
        /// ]))
        /// .load()
        /// .unwrap();
        /// let app: axum::Router = config.router(axum::routing::post(|| async { "hello" }));
        /// # let _ = app;
        /// ```
        pub fn router<S, B>(&self, mcp: S) -> Router
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
            self.mcp_router(mcp).merge(self.metadata_router())
        }

        /// The MCP route alone: `mcp` at the path of `MCP_PUBLIC_URL` (and below it) behind
        /// [`Config::layer`]. Browser clients need CORS around it (answering preflights,
        /// which carry no credentials, and exposing `WWW-Authenticate`): add it with
        /// `.layer(…)` (e.g. `tower-http`'s `CorsLayer`) before merging
        /// [`Config::metadata_router`], which answers its own CORS requests.
        pub fn mcp_router<S, B>(&self, mcp: S) -> Router
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
            let path = self.mcp_path();
            let service = self.layer().layer(mcp);
            // The endpoint and every path below it go through the stack (a request for an
            // unknown sub-path is still authenticated before the MCP service answers it).
            match path.trim_end_matches('/') {
                "" => Router::new().fallback_service(service),
                path => Router::new().nest_service(path, service),
            }
        }

        /// The protected resource metadata routes (public; with their own CORS answers), or
        /// an empty router when no authorization server is configured.
        pub fn metadata_router(&self) -> Router {
            let mut app = Router::new();
            if let Some(pr) = &self.resource {
                let [path_form, root_form] = pr.well_known_paths();
                app = app.route_service(path_form, pr.service());
                if root_form != path_form {
                    app = app.route_service(root_form, pr.service());
                }
            }
            app
        }
    }
}
