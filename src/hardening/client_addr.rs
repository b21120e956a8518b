//! [`ClientAddrLayer`]: the real client of each request, behind trusted proxies.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::request_info::{TrustedProxies, has_forwarding_headers, peer_addr};

/// Sets each request's [`ClientAddr`](crate::request_info::ClientAddr) to its real client: the
/// socket address, or behind [`TrustedProxies`] the address they reported (see
/// [`TrustedProxies::client_addr`]), and records the socket address as
/// [`PeerAddr`](crate::request_info::PeerAddr). Put it outermost, so failure limits and audit
/// events see the resolved address.
///
/// The first request from an untrusted peer that carries `X-Forwarded-For` or `Forwarded`
/// logs one warning per layer: a proxy seems to be in front, and without trusting it every
/// client behind it shares its address.
#[derive(Debug, Clone)]
#[must_use]
pub struct ClientAddrLayer {
    proxies: Arc<TrustedProxies>,
    warned: Arc<AtomicBool>,
}

impl ClientAddrLayer {
    /// Believes `X-Forwarded-For` from `proxies` only.
    pub fn new(proxies: TrustedProxies) -> Self {
        Self {
            proxies: Arc::new(proxies),
            warned: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl<S> Layer<S> for ClientAddrLayer {
    type Service = ClientAddrService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ClientAddrService {
            inner,
            proxies: self.proxies.clone(),
            warned: self.warned.clone(),
        }
    }
}

/// The service built by [`ClientAddrLayer`].
#[derive(Debug, Clone)]
pub struct ClientAddrService<S> {
    inner: S,
    proxies: Arc<TrustedProxies>,
    warned: Arc<AtomicBool>,
}

impl<S, B> Service<Request<B>> for ClientAddrService<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let peer = peer_addr(req.extensions());
        if let Some(peer) = peer
            && !self.proxies.contains(peer)
            && has_forwarding_headers(req.headers())
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            if self.proxies.is_empty() {
                tracing::warn!(target: crate::telemetry::REJECTION_TARGET, %peer, "requests carry X-Forwarded-For/Forwarded but no trusted proxy is configured (MCP_TRUSTED_PROXIES in the example server): a proxy seems to be in front, and every client behind it shares its address; the headers are ignored");
            } else {
                tracing::warn!(target: crate::telemetry::REJECTION_TARGET, %peer, "a request from a peer that is not a trusted proxy carries X-Forwarded-For/Forwarded; the headers are ignored and the socket address counts (check MCP_TRUSTED_PROXIES)");
            }
        }
        let (mut parts, body) = req.into_parts();
        self.proxies.resolve(&mut parts.extensions, &parts.headers);
        req = Request::from_parts(parts, body);
        self.inner.call(req)
    }
}
