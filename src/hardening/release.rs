//! [`ReleaseLayer`]: refunds the attempt [`FailureLimitLayer`](super::FailureLimitLayer)
//! reserved for a request as soon as the request has authenticated, and the [`Ticket`] that
//! carries the reservation from one layer to the other.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::take_ready;
use crate::store::AttemptStore;

/// A reserved attempt travelling with its request, so [`ReleaseLayer`] can refund it.
pub(super) struct Ticket<St> {
    pub(super) store: Arc<St>,
    pub(super) key: String,
    settled: AtomicBool,
}

impl<St> Ticket<St> {
    /// The reservation of one attempt of `key` in `store`, not settled yet.
    pub(super) fn new(store: Arc<St>, key: String) -> Self {
        Self {
            store,
            key,
            settled: AtomicBool::new(false),
        }
    }

    /// Whether this call is the first to settle the ticket.
    pub(super) fn settle(&self) -> bool {
        !self.settled.swap(true, Ordering::AcqRel)
    }
}

/// The request extension carrying a [`Ticket`].
pub(super) struct TicketHandle<St>(pub(super) Arc<Ticket<St>>);

impl<St> Clone for TicketHandle<St> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

/// Refunds the attempt [`FailureLimitLayer`](super::FailureLimitLayer) reserved for a
/// request, as the request passes (see
/// [`FailureLimitLayer::release`](super::FailureLimitLayer::release)). Put it just inside the
/// auth layer.
#[must_use]
pub struct ReleaseLayer<St> {
    _store: std::marker::PhantomData<fn() -> St>,
}

impl<St> ReleaseLayer<St> {
    pub(super) fn new() -> Self {
        Self {
            _store: std::marker::PhantomData,
        }
    }
}

impl<St> Clone for ReleaseLayer<St> {
    fn clone(&self) -> Self {
        Self::new()
    }
}

impl<St> fmt::Debug for ReleaseLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReleaseLayer").finish()
    }
}

impl<S, St> Layer<S> for ReleaseLayer<St> {
    type Service = Release<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        Release {
            inner,
            _store: std::marker::PhantomData,
        }
    }
}

/// The service built by [`ReleaseLayer`].
pub struct Release<S, St> {
    inner: S,
    _store: std::marker::PhantomData<fn() -> St>,
}

impl<S: Clone, St> Clone for Release<S, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _store: std::marker::PhantomData,
        }
    }
}

impl<S: fmt::Debug, St> fmt::Debug for Release<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Release")
            .field("inner", &self.inner)
            .finish()
    }
}

type PlainFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, E>> + Send>>;

impl<S, St, ReqBody> Service<Request<ReqBody>> for Release<S, St>
where
    S: Service<Request<ReqBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    St: AttemptStore,
    ReqBody: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = PlainFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let ticket = req
            .extensions()
            .get::<TicketHandle<St>>()
            .map(|t| t.0.clone());
        Box::pin(async move {
            if let Some(t) = ticket
                && t.settle()
                && let Err(e) = t.store.refund(&t.key).await
            {
                tracing::warn!(target: crate::telemetry::REJECTION_TARGET, error = %e, "could not refund a reserved attempt");
            }
            inner.call(req).await
        })
    }
}
