#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(
    missing_debug_implementations,
    missing_docs,
    rust_2018_idioms,
    unreachable_pub,
    clippy::await_holding_lock
)]
#![cfg_attr(docsrs, feature(doc_cfg))]
// No panics on a request path: unwrap, expect, panic! and slice indexing are refused outside
// tests. Each `allow` in `src/` carries a comment showing why it cannot fire.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

// The crate's map is ARCHITECTURE.md: modules in tiers, each importing only lower tiers
// (checked by scripts/check_tiers.py in CI).

// Tier 0: the core vocabulary. Private modules, reachable through the re-exports below.
mod body;
mod context;
pub mod env;
mod error;
pub mod request_info;
mod secret;
mod strict_json;
mod time;

// Tier 1: turning refusals into responses, logging them, and shared state.
mod rejection;
pub mod store;
pub mod telemetry;

// Tier 2: the server as an OAuth protected resource, and the client seam to its
// authorization server.
pub mod oauth;

// Tier 3: the auth layer and its extension point.
mod auth_layer;

// Tier 4: what plugs into the auth layer, and the layers around it.
pub mod authenticators;
pub mod hardening;
#[cfg(feature = "outbound")]
pub mod outbound;
pub mod scope;
pub mod session;

// Tier 5: framework integrations, the one-call configuration of the whole stack, and the test
// kit.
#[cfg(feature = "config")]
pub mod config;
pub mod integrations;
#[cfg(feature = "testing")]
pub mod testing;

// The public items of the private modules, each reachable at exactly one path: here, at the
// root (rustdoc documents them here). No module of the crate re-exports a sibling's items.
pub use auth_layer::future;
pub use auth_layer::{
    AuthLayer, Authenticator, Chain, FnAuthenticator, RequireAuth, TokenVerifier, from_fn,
};
pub use body::AuthBody;
pub use context::{Anonymous, AuthContext, AuthContextBuilder, AuthMethod, Confirmation, Scopes};
pub use error::{AuthError, AuthErrorKind, ConfigError, ConfigProblem};
pub use rejection::{Challenge, DefaultRejection, Rejection, RejectionResponse, Scheme};
pub use secret::Secret;

// The headline types of the public folders, also at the root (listed as re-exports; their
// documentation stays in their folder).
#[cfg(feature = "api-key")]
pub use authenticators::api_key::{ApiKeyAuthenticator, ApiKeyLayer};
#[cfg(feature = "bearer")]
pub use authenticators::bearer::{BearerAuthenticator, BearerLayer};
#[cfg(feature = "mtls")]
pub use authenticators::client_cert::{ClientCertAuthenticator, ClientCertLayer};
#[cfg(any(feature = "api-key", feature = "bearer"))]
pub use authenticators::credential::Credential;
#[cfg(feature = "introspection")]
pub use authenticators::introspection::{IntrospectionAuthenticator, IntrospectionLayer};
#[cfg(feature = "jwt")]
pub use authenticators::jwt::{JwtAuthenticator, JwtLayer};
pub use oauth::ProtectedResource;
pub use scope::{ScopeLayer, ScopePolicy};
