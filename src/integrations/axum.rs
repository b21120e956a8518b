//! axum 0.8 extractors (feature `axum`): `AuthContext` and `Option<AuthContext>`.
//!
//! A handler behind an auth layer takes `AuthContext` as an argument. If no auth layer ran,
//! that is a wiring bug: the extractor answers 500 and says so, never 401. Behind an
//! [optional](crate::AuthLayer::optional) layer, take `Option<AuthContext>`: `None` means the
//! caller sent no credentials.
//!
//! # Example
//!
//! ```
//! use axum::{Router, routing::get};
//! use mcp_auth::{AuthContext, Credential, ApiKeyAuthenticator, ApiKeyLayer};
//! use tower::ServiceExt;
//!
//! async fn whoami(ctx: AuthContext) -> String {
//!     ctx.subject().to_owned()
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let keys = ApiKeyAuthenticator::new().with_key(Credential::new("k-0123456789abcdef").subject("alice")).unwrap();
//! let app = Router::new().route("/whoami", get(whoami)).layer(ApiKeyLayer::new(keys));
//! let req = http::Request::builder().uri("/whoami").header("x-api-key", "k-0123456789abcdef")
//!     .body(axum::body::Body::empty()).unwrap();
//! assert_eq!(app.clone().oneshot(req).await.unwrap().status(), 200);
//!
//! // The same handler without the layer: a wiring bug, reported as 500.
//! let unprotected = Router::new().route("/whoami", get(whoami));
//! let req = http::Request::builder().uri("/whoami").body(axum::body::Body::empty()).unwrap();
//! assert_eq!(unprotected.oneshot(req).await.unwrap().status(), 500);
//! # }
//! ```

use std::fmt;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::StatusCode;
use http::request::Parts;

use crate::context::{Anonymous, AuthContext};
use crate::error::AuthError;
use crate::rejection::{Challenge, Rejection};

/// The request reached a handler without passing through an auth layer (a wiring bug).
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct MissingAuthContext;

const MISSING: &str =
    "AuthContext missing from request extensions: is an mcp-auth layer installed on this route?";

impl fmt::Display for MissingAuthContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MISSING)
    }
}

impl std::error::Error for MissingAuthContext {}

impl IntoResponse for MissingAuthContext {
    fn into_response(self) -> Response {
        tracing::error!(target: crate::telemetry::REJECTION_TARGET, "{MISSING}");
        (StatusCode::INTERNAL_SERVER_ERROR, MISSING).into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for AuthContext {
    type Rejection = MissingAuthContext;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<AuthContext>()
            .cloned()
            .ok_or(MissingAuthContext)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for AuthContext {
    type Rejection = MissingAuthContext;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        match parts.extensions.get::<AuthContext>() {
            Some(ctx) => Ok(Some(ctx.clone())),
            None if parts.extensions.get::<Anonymous>().is_some() => Ok(None),
            None => Err(MissingAuthContext),
        }
    }
}

/// An [`AuthError`] returned from a handler becomes the same response the layers send, with
/// a `Bearer` challenge.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let res = Rejection::new(&self, &Challenge::bearer()).default_response();
        let mut res = res.map(axum_core::body::Body::from);
        res.extensions_mut().insert(self);
        res
    }
}
