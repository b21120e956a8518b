//! [`RequireAuth`], the service an [`AuthLayer`](crate::AuthLayer) wraps around the inner
//! service: it authenticates each request through the layer's [`Gate`], then calls the inner
//! service or answers the refusal itself.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::{Authenticator, Gate};
use crate::body::{AuthBody, take_ready};
use crate::rejection::{DefaultRejection, RejectionResponse};

/// The service built by [`AuthLayer`](crate::AuthLayer).
#[must_use]
pub struct RequireAuth<S, A, R = DefaultRejection> {
    inner: S,
    shared: Arc<Gate<A, R>>,
}

impl<S, A, R> RequireAuth<S, A, R> {
    /// Wraps `inner` with the layer's shared configuration.
    pub(super) fn new(inner: S, shared: Arc<Gate<A, R>>) -> Self {
        Self { inner, shared }
    }

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
                let inner = take_ready(&mut self.inner);
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
