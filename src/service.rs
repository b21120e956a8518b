//! [`AuthLayer`] and [`RequireAuth`]: the one layer and service every credential layer uses.
//!
//! On success the [`AuthContext`] goes into the request's extensions and the inner service
//! is called. On rejection the layer answers itself (see [`crate::response`]) and the inner
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

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::authenticator::Authenticator;
use crate::body::AuthBody;
use crate::context::{Anonymous, AuthContext};
use crate::error::{AuthError, AuthErrorKind};
use crate::future::ResponseFuture;
use crate::response::{Challenge, DefaultRejection, Rejection, RejectionResponse};

/// The `tracing` target of rejection events.
pub const REJECTION_TARGET: &str = "mcp_auth::rejection";

/// Everything a [`RequireAuth`] service shares with its clones.
pub(crate) struct Shared<A, R> {
    pub(crate) authenticator: Arc<A>,
    pub(crate) responder: Arc<R>,
    pub(crate) challenge: Challenge,
    pub(crate) optional: bool,
}

impl<A: Authenticator, R: RejectionResponse> Shared<A, R> {
    /// Applies an authentication result to the request head: inserts the context, lets an
    /// anonymous request through in optional mode, or returns the rejection response.
    pub(crate) fn decide(
        &self,
        result: Result<AuthContext, AuthError>,
        parts: &mut Parts,
    ) -> Option<Response<Bytes>> {
        match result {
            Ok(ctx) => {
                crate::audit::success(parts, &ctx);
                parts.extensions.insert(ctx);
                None
            }
            Err(err) if self.optional && err.kind() == AuthErrorKind::MissingCredentials => {
                parts.extensions.insert(Anonymous);
                None
            }
            Err(err) => Some(self.reject(&err, parts)),
        }
    }

    fn reject(&self, err: &AuthError, parts: &Parts) -> Response<Bytes> {
        log_rejection(err, parts);
        crate::audit::failure(parts, err);
        let mut res = self.responder.response(&Rejection::new(
            err,
            &crate::resource::challenge_for(&self.challenge, parts),
        ));
        res.extensions_mut().insert(err.clone());
        res
    }
}

/// Logs a refused request on [`REJECTION_TARGET`]: rejections at `debug`, failures at `warn`,
/// with the reason code, the HTTP method and the path (bounded like every logged value, see
/// [`crate::audit`]); never a header value.
///
/// A refusal is logged once: when its audit event ([`crate::audit::AUDIT_TARGET`]) is enabled,
/// that event is the only line and this one is skipped.
pub(crate) fn log_rejection(err: &AuthError, parts: &Parts) {
    if crate::audit::failure_enabled(err) {
        return;
    }
    let path = crate::audit::bounded(parts.uri.path(), crate::audit::MAX_PATH);
    let method = crate::audit::bounded(parts.method.as_str(), crate::audit::MAX_HTTP_METHOD);
    if err.is_rejection() {
        tracing::debug!(
            target: REJECTION_TARGET,
            reason = err.reason(),
            detail = err.detail().unwrap_or(""),
            http.method = %method,
            path = &*path,
            "request rejected"
        );
    } else {
        tracing::warn!(
            target: REJECTION_TARGET,
            reason = err.reason(),
            http.method = %method,
            path = &*path,
            error = crate::audit::error_source(err).as_str(),
            "authentication failed"
        );
    }
}

/// Layer that authenticates every request with an [`Authenticator`].
///
/// [`ApiKeyLayer`](crate::ApiKeyLayer) and [`BearerLayer`](crate::BearerLayer) are this
/// layer with their own authenticators. See the [module docs](crate::service) for an example.
#[must_use]
pub struct AuthLayer<A, R = DefaultRejection> {
    authenticator: Arc<A>,
    responder: Arc<R>,
    challenge: Challenge,
    optional: bool,
}

impl<A, R> Clone for AuthLayer<A, R> {
    fn clone(&self) -> Self {
        Self {
            authenticator: self.authenticator.clone(),
            responder: self.responder.clone(),
            challenge: self.challenge.clone(),
            optional: self.optional,
        }
    }
}

impl<A: fmt::Debug, R> fmt::Debug for AuthLayer<A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthLayer")
            .field("authenticator", &self.authenticator)
            .field("challenge", &self.challenge)
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

impl<A: Authenticator> AuthLayer<A> {
    /// A layer requiring `authenticator` to accept every request. The challenge schemes come
    /// from [`Authenticator::schemes`].
    pub fn new(authenticator: A) -> Self {
        let challenge = Challenge::with_schemes(authenticator.schemes());
        Self {
            authenticator: Arc::new(authenticator),
            responder: Arc::new(DefaultRejection),
            challenge,
            optional: false,
        }
    }
}

impl<A: Authenticator, R: RejectionResponse> AuthLayer<A, R> {
    /// Optional mode: a request with no credentials passes without an [`AuthContext`];
    /// a request with bad credentials is still rejected.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Sets the challenge `realm`.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.challenge = self.challenge.realm(realm);
        self
    }

    /// Sets the scopes named in 401 challenges (never sent empty).
    pub fn challenge_scope<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, scopes: I) -> Self {
        self.challenge = self.challenge.scope(scopes);
        self
    }

    /// Sets `resource_metadata` (RFC 9728) for every challenge of this layer.
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.challenge = self.challenge.resource_metadata(url);
        self
    }

    /// Points every challenge of this layer at `pr`'s metadata (`resource_metadata`) and names
    /// its basic scopes in 401s; keeps the layer's schemes and realm.
    pub fn protected_resource(mut self, pr: &crate::resource::ProtectedResource) -> Self {
        self.challenge = pr.apply(self.challenge);
        self
    }

    /// Replaces the challenge configuration.
    pub fn challenge(mut self, challenge: Challenge) -> Self {
        self.challenge = challenge;
        self
    }

    /// Replaces the rejection response builder.
    pub fn rejection_response<R2: RejectionResponse>(self, responder: R2) -> AuthLayer<A, R2> {
        AuthLayer {
            authenticator: self.authenticator,
            responder: Arc::new(responder),
            challenge: self.challenge,
            optional: self.optional,
        }
    }

    /// The authenticator.
    #[must_use]
    pub fn authenticator(&self) -> &A {
        &self.authenticator
    }

    /// The challenge configuration.
    #[must_use]
    pub fn challenge_config(&self) -> &Challenge {
        &self.challenge
    }
}

impl<S, A, R> Layer<S> for AuthLayer<A, R> {
    type Service = RequireAuth<S, A, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireAuth {
            inner,
            shared: Arc::new(Shared {
                authenticator: self.authenticator.clone(),
                responder: self.responder.clone(),
                challenge: self.challenge.clone(),
                optional: self.optional,
            }),
        }
    }
}

/// The service built by [`AuthLayer`].
#[must_use]
pub struct RequireAuth<S, A, R = DefaultRejection> {
    inner: S,
    shared: Arc<Shared<A, R>>,
}

impl<S, A, R> RequireAuth<S, A, R> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: Clone, A, R> Clone for RequireAuth<S, A, R> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, A: fmt::Debug, R> fmt::Debug for RequireAuth<S, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireAuth")
            .field("inner", &self.inner)
            .field("authenticator", &self.shared.authenticator)
            .field("optional", &self.shared.optional)
            .finish_non_exhaustive()
    }
}

impl<S, A, R, ReqBody, ResBody> Service<Request<ReqBody>> for RequireAuth<S, A, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    A: Authenticator,
    R: RejectionResponse,
    ReqBody: Send + 'static,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, A, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Authentication adds no backpressure: readiness is the inner service's.
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let (mut parts, body) = req.into_parts();
        match self.shared.authenticator.authenticate_now(&parts) {
            Some(result) => match self.shared.decide(result, &mut parts) {
                None => ResponseFuture::called(self.inner.call(Request::from_parts(parts, body))),
                Some(rejection) => ResponseFuture::rejected(rejection),
            },
            None => {
                // The inner service made ready is the one we call later; leave a clone behind.
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                let shared = self.shared.clone();
                let auth = self.shared.authenticator.clone();
                let fut = Box::pin(async move {
                    let result = auth.authenticate(&parts).await;
                    (result, parts)
                });
                ResponseFuture::authenticating(fut, inner, body, shared)
            }
        }
    }
}
