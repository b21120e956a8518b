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

pub mod audit;
pub mod authenticator;
#[cfg(feature = "bearer")]
pub mod bearer;
mod body;
pub mod context;
#[cfg_attr(not(any(feature = "api-key", feature = "bearer")), allow(dead_code))]
pub mod credentials;
pub mod env;
pub mod error;
pub mod future;
pub mod header;
#[cfg(any(feature = "jwt", feature = "introspection"))]
pub mod http;
mod json;
pub mod limit;
#[cfg(feature = "redis")]
pub mod redis;
pub mod resource;
pub mod response;
pub mod revocation;
pub mod scope;
pub mod secret;
pub mod service;
pub mod session;
pub mod store;
pub mod transport;

#[cfg(feature = "api-key")]
pub mod api_key;
#[cfg(feature = "axum")]
pub mod extract;
#[cfg(feature = "introspection")]
pub mod introspection;
#[cfg(feature = "jwt")]
pub mod jwt;
#[cfg(feature = "rmcp")]
pub mod rmcp;

#[cfg(feature = "api-key")]
pub use api_key::{ApiKeyAuthenticator, ApiKeyLayer};
pub use authenticator::{Authenticator, Chain};
#[cfg(feature = "bearer")]
pub use bearer::{BearerAuthenticator, BearerLayer};
pub use body::AuthBody;
pub use context::{Anonymous, AuthContext, AuthContextBuilder, AuthMethod, Scopes};
pub use credentials::Credential;
pub use error::{AuthError, AuthErrorKind, ConfigError, ConfigProblem};
#[cfg(feature = "jwt")]
pub use jwt::{JwtAuthenticator, JwtLayer};
pub use response::{Challenge, DefaultRejection, Rejection, RejectionResponse, Scheme};
pub use secret::Secret;
pub use service::{AuthLayer, RequireAuth};
