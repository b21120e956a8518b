//! The server as an OAuth 2.1 protected resource (MCP authorization, RFC 9728, RFC 8707):
//! its protected resource metadata, the `resource_metadata` every challenge points to,
//! canonical resource URIs for audience checks and, for the authenticators that talk to an
//! authorization server, metadata discovery and the HTTP client seam ([`HttpFetcher`]).
//!
//! Configure a [`ProtectedResource`] once, from the public URL of the MCP endpoint (explicit
//! configuration such as `MCP_PUBLIC_URL`, never guessed from requests), then:
//!
//! - mount [`ProtectedResource::service`] at both [`ProtectedResource::well_known_paths`],
//!   **outside** the auth layer (clients fetch it before they have a token);
//! - give every layer [`ProtectedResource::challenge`] (or call `.protected_resource(&pr)` on
//!   [`AuthLayer`](crate::AuthLayer) and [`ScopeLayer`](crate::scope::ScopeLayer)), so every 401
//!   and 403 challenge carries `resource_metadata` and each 401 names the scopes for basic use.
//!
//! # Example
//!
//! ```
//! use mcp_auth::oauth::ProtectedResource;
//!
//! let pr = ProtectedResource::builder("https://mcp.example.com/mcp")
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported(["data:read", "data:write", "offline_access"])
//!     .basic_scopes(["data:read"])
//!     .resource_name("Example data server")
//!     .build()
//!     .unwrap();
//! assert_eq!(
//!     pr.metadata_url(),
//!     "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
//! );
//! assert_eq!(
//!     pr.well_known_paths(),
//!     ["/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"]
//! );
//! let doc: serde_json::Value = serde_json::from_slice(pr.document()).unwrap();
//! assert_eq!(doc["resource"], "https://mcp.example.com/mcp");
//! assert_eq!(doc["scopes_supported"], serde_json::json!(["data:read", "data:write"])); // never offline_access
//! assert_eq!(doc["bearer_methods_supported"], serde_json::json!(["header"]));
//! ```
//!
//! In axum:
//!
//! ```ignore
//! let [path_form, root_form] = pr.well_known_paths();
//! let app = Router::new()
//!     .route_service(path_form, pr.service())
//!     .route_service(root_form, pr.service())
//!     .nest_service("/mcp", ServiceBuilder::new()
//!         .layer(AuthLayer::new(auth).protected_resource(&pr))
//!         .layer(ScopeLayer::new(policy).protected_resource(&pr))
//!         .service(mcp));
//! ```

mod metadata_service;
mod protected_resource;
mod uri;

#[cfg(any(feature = "jwt", feature = "introspection"))]
mod fetch;
#[cfg(any(feature = "jwt", feature = "introspection"))]
mod server_metadata;

pub use self::metadata_service::MetadataService;
pub use self::protected_resource::{ProtectedResource, ProtectedResourceBuilder};
#[cfg(any(feature = "jwt", feature = "introspection"))]
pub(crate) use self::uri::check_url;
pub use self::uri::{WELL_KNOWN_PATH, canonical_resource};

#[cfg(all(feature = "reqwest", any(feature = "jwt", feature = "introspection")))]
pub use self::fetch::ReqwestFetcher;
#[cfg(all(test, any(feature = "jwt", feature = "introspection")))]
pub(crate) use self::fetch::cache_control_max_age;
#[cfg(any(feature = "jwt", feature = "introspection"))]
pub(crate) use self::fetch::{DynFetcher, default_fetcher};
#[cfg(any(feature = "jwt", feature = "introspection"))]
pub use self::fetch::{FetchError, Fetched, HttpFetcher};
#[cfg(any(feature = "jwt", feature = "introspection"))]
pub(crate) use self::server_metadata::discover_metadata;
#[cfg(all(test, any(feature = "jwt", feature = "introspection")))]
pub(crate) use self::server_metadata::discovery_urls;
