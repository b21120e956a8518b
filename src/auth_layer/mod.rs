//! The authentication layer: [`AuthLayer`] and [`RequireAuth`], the one layer and service every
//! credential layer uses, and [`Authenticator`], the extension point that decides who is calling.
//!
//! On success the [`AuthContext`] goes into the request's extensions and the inner service
//! is called. On rejection the layer answers itself (see [`RejectionResponse`]) and the inner
//! service is never called; the response's extensions carry the [`AuthError`].
//! `poll_ready` only forwards. An authenticator that can decide at once
//! ([`Authenticator::authenticate_now`]) costs no allocation per request.
//!
//! # Example
//!
//! ```
//! use mcp_auth::{ApiKeyAuthenticator, AuthContext, AuthLayer, Credential};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let keys = ApiKeyAuthenticator::new()
//!     .with_key(Credential::new("k-0123456789abcdef").subject("ci-bot"))
//!     .unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(AuthLayer::new(keys).realm("mcp"))
//!     .service(service_fn(|req: http::Request<String>| async move {
//!         let who = req.extensions().get::<AuthContext>().unwrap().subject().to_owned();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(who))
//!     }));
//!
//! let req = http::Request::builder().header("x-api-key", "wrong-key-0000000").body(String::new()).unwrap();
//! let res = svc.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.status(), 401);
//! assert_eq!(
//!     res.headers()["www-authenticate"],
//!     "ApiKey realm=\"mcp\", header=\"x-api-key\", error=\"invalid_token\", error_description=\"invalid API key\""
//! );
//! # }
//! ```
//!
//! Inside this module: `authenticator.rs` (the trait, [`Chain`], [`from_fn`]), `layer.rs`
//! ([`AuthLayer`] and its builder), `service.rs` ([`RequireAuth`]), `future.rs` (the response
//! future, which depends only on the [`Gate`]) and, here, the
//! [`Gate`] both the service and its future use to turn an authentication result into a
//! pass or a refusal.

use std::sync::Arc;

use bytes::Bytes;
use http::Response;
use http::request::Parts;

use crate::context::{Anonymous, AuthContext};
use crate::error::{AuthError, AuthErrorKind};
use crate::rejection::{Challenge, Rejection, RejectionResponse};

mod authenticator;
pub mod future;
mod layer;
mod service;
mod token_verifier;

pub use self::authenticator::{Authenticator, Chain, FnAuthenticator, from_fn};
pub use self::layer::AuthLayer;
pub use self::service::RequireAuth;
pub use self::token_verifier::TokenVerifier;

/// Everything a [`RequireAuth`] service shares with its clones.
pub(crate) struct Gate<A, R> {
    pub(crate) authenticator: Arc<A>,
    pub(crate) responder: Arc<R>,
    pub(crate) challenge: Challenge,
    pub(crate) optional: bool,
}

impl<A: Authenticator, R: RejectionResponse> Gate<A, R> {
    /// Applies an authentication result to the request head: inserts the context, lets an
    /// anonymous request through in optional mode, or returns the rejection response.
    pub(crate) fn decide(
        &self,
        result: Result<AuthContext, AuthError>,
        parts: &mut Parts,
    ) -> Option<Response<Bytes>> {
        match result {
            Ok(ctx) => {
                crate::telemetry::success(parts, &ctx);
                parts.extensions.insert(ctx);
                None
            }
            Err(err) if self.optional && err.kind() == AuthErrorKind::MissingCredentials => {
                parts.extensions.insert(Anonymous);
                None
            }
            Err(err) => Some(self.reject(err, parts)),
        }
    }

    fn reject(&self, err: AuthError, parts: &Parts) -> Response<Bytes> {
        crate::telemetry::log_rejection(&err, parts);
        crate::telemetry::failure(parts, &err);
        let mut res = self
            .responder
            .response(&Rejection::new(&err, &self.challenge.for_request(parts)));
        res.extensions_mut().insert(err);
        crate::body::close_if_body_unread(&parts.headers, &mut res);
        res
    }
}
