//! The transport guards ([`HttpsOnlyLayer`], [`OriginLayer`]) and [`ClientAddrLayer`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::ORIGIN;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::AuthBody;
use crate::request_info::{
    RepeatedHeader, TlsConnection, TrustedProxies, has_forwarding_headers, last_forwarded,
    only_value, peer_addr,
};

/// Sets each request's [`ClientAddr`] to its real client: the socket address, or behind
/// [`TrustedProxies`] the address they reported (see [`TrustedProxies::client_addr`]), and
/// records the socket address as [`PeerAddr`]. Put it outermost, so failure limits and audit
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

fn refusal(status: StatusCode, code: &'static str, description: &'static str) -> Response<Bytes> {
    crate::rejection::json_error(status, code, description)
}

/// A check made on the request head before the inner service runs.
trait Check: Send + Sync + 'static {
    fn check<B>(&self, req: &Request<B>) -> Option<Response<Bytes>>;
}

/// The service of both guard layers.
pub struct Guard<S, C> {
    inner: S,
    check: Arc<C>,
}

impl<S: Clone, C> Clone for Guard<S, C> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            check: self.check.clone(),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for Guard<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The response future of [`Guard`]: the inner service's, or a refusal.
    pub struct GuardFuture<F> {
        #[pin]
        inner: Option<F>,
        refused: Option<Response<Bytes>>,
    }
}

impl<F, B, E> Future for GuardFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<AuthBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(res) = this.refused.take() {
            return Poll::Ready(Ok(res.map(AuthBody::rejection)));
        }
        match this.inner.as_pin_mut() {
            Some(f) => f.poll(cx).map(|r| r.map(|res| res.map(AuthBody::inner))),
            None => Poll::Pending,
        }
    }
}

#[allow(private_bounds)]
impl<S, C, ReqBody, ResBody> Service<Request<ReqBody>> for Guard<S, C>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    C: Check,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = GuardFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match self.check.check(&req) {
            Some(response) => GuardFuture {
                inner: None,
                refused: Some(response),
            },
            None => GuardFuture {
                inner: Some(self.inner.call(req)),
                refused: None,
            },
        }
    }
}

/// Refuses requests that did not arrive over HTTPS with 403 `https_required` (MCP: tokens
/// travel only over TLS). A request counts as HTTPS when it carries a [`TlsConnection`]
/// extension (set by your TLS acceptor), or, with
/// [`trust_forwarded_proto`](HttpsOnlyLayer::trust_forwarded_proto), when its TCP peer is a
/// trusted proxy and the last `X-Forwarded-Proto` value is `https`. The request target's
/// scheme is never a signal: a client chooses it (absolute-form targets, h2c `:scheme`).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct HttpsOnlyLayer {
    config: HttpsOnly,
}

/// The settings of an [`HttpsOnlyLayer`].
#[derive(Debug, Clone, Default)]
pub struct HttpsOnly {
    proxies: Option<Arc<TrustedProxies>>,
    allow_plain_http: bool,
}

impl HttpsOnlyLayer {
    /// Refuse plain HTTP.
    pub fn new() -> Self {
        Self::default()
    }

    /// Believe `X-Forwarded-Proto: https` from these proxies only (the TCP peer must be one
    /// of them; the proxy must set the header and drop any a client sent).
    pub fn trust_forwarded_proto(mut self, proxies: TrustedProxies) -> Self {
        self.config.proxies = Some(Arc::new(proxies));
        self
    }

    /// Development opt-out: let plain HTTP through (logged once per layer at `warn`).
    pub fn allow_plain_http(mut self) -> Self {
        tracing::warn!(target: crate::telemetry::REJECTION_TARGET, "HttpsOnlyLayer: plain HTTP allowed (development mode)");
        self.config.allow_plain_http = true;
        self
    }
}

impl Check for HttpsOnly {
    fn check<B>(&self, req: &Request<B>) -> Option<Response<Bytes>> {
        let secure = self.allow_plain_http
            || req.extensions().get::<TlsConnection>().is_some()
            || self.proxies.as_ref().is_some_and(|p| {
                p.trusts_peer(req.extensions())
                    && last_forwarded(req.headers(), "x-forwarded-proto")
                        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
            });
        if secure {
            return None;
        }
        crate::telemetry::refused(req, "https_required");
        Some(refusal(
            StatusCode::FORBIDDEN,
            "https_required",
            "this server accepts HTTPS requests only",
        ))
    }
}

impl<S> Layer<S> for HttpsOnlyLayer {
    type Service = Guard<S, HttpsOnly>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            check: Arc::new(self.config.clone()),
        }
    }
}

/// Refuses requests whose `Origin` header is present and not allowed, with 403 (MCP
/// streamable-HTTP transport: servers must validate `Origin` against DNS rebinding). A request
/// without `Origin` (not from a browser) passes. Origins compare case-insensitively as
/// `scheme://host[:port]`; an entry ending in `:*` allows any port of that host
/// (`http://localhost:*`); `null` is refused unless listed.
#[derive(Debug, Clone)]
#[must_use]
pub struct OriginLayer {
    allowed: Arc<AllowedOrigins>,
}

/// The allowed origins of an [`OriginLayer`].
#[derive(Debug)]
pub struct AllowedOrigins(Vec<String>);

impl OriginLayer {
    /// Allows exactly these origins (`https://app.example.com`, `http://localhost:6274`).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(origins: I) -> Self {
        let allowed = origins
            .into_iter()
            .map(|o| o.as_ref().trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        Self {
            allowed: Arc::new(AllowedOrigins(allowed)),
        }
    }
}

impl Check for AllowedOrigins {
    fn check<B>(&self, req: &Request<B>) -> Option<Response<Bytes>> {
        // No Origin: not a browser's cross-origin call. More than one: refused.
        let origin = match only_value(req.headers(), ORIGIN) {
            Ok(None) => return None,
            Ok(Some(origin)) => Some(origin),
            Err(RepeatedHeader) => None,
        };
        let allowed = origin.is_some_and(|first| {
            first.to_str().is_ok_and(|o| {
                let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
                self.0.iter().any(|a| match a.strip_suffix(":*") {
                    Some(host) => o.strip_prefix(host).is_some_and(|rest| {
                        rest.is_empty()
                            || rest.strip_prefix(':').is_some_and(|p| {
                                !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())
                            })
                    }),
                    None => *a == o,
                })
            })
        });
        if allowed {
            return None;
        }
        crate::telemetry::refused(req, "forbidden_origin");
        Some(refusal(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "this origin may not call this server",
        ))
    }
}

impl<S> Layer<S> for OriginLayer {
    type Service = Guard<S, AllowedOrigins>;

    fn layer(&self, inner: S) -> Self::Service {
        Guard {
            inner,
            check: self.allowed.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn https_is_recognised_only_from_trustworthy_signals() {
        let strict = HttpsOnly::default();
        assert!(
            strict.check(&req("https://h/mcp", &[])).is_some(),
            "an absolute-form https target over plain HTTP is chosen by the client (L7)"
        );
        assert!(strict.check(&req("/mcp", &[])).is_some());
        let fwd = [("x-forwarded-proto", "https")];
        assert!(
            strict.check(&req("/mcp", &fwd)).is_some(),
            "untrusted header"
        );
        let proxied = HttpsOnly {
            proxies: Some(Arc::new(TrustedProxies::parse("p", "10.0.0.0/8").unwrap())),
            allow_plain_http: false,
        };
        let from = |ip: [u8; 4], h: &[(&str, &str)]| {
            let mut r = req("/mcp", h);
            r.extensions_mut()
                .insert(std::net::SocketAddr::from((ip, 4000)));
            r
        };
        assert!(proxied.check(&from([10, 0, 0, 1], &fwd)).is_none());
        assert!(
            proxied.check(&from([192, 0, 2, 1], &fwd)).is_some(),
            "X-Forwarded-Proto from a peer that is not a trusted proxy"
        );
        assert!(
            proxied.check(&req("/mcp", &fwd)).is_some(),
            "no peer address: nothing is trusted"
        );
        assert!(
            proxied
                .check(&from(
                    [10, 0, 0, 1],
                    &[("x-forwarded-proto", "https, http")]
                ))
                .is_some(),
            "the nearest proxy's value counts"
        );
        let mut tls = req("/mcp", &[]);
        tls.extensions_mut().insert(TlsConnection);
        assert!(strict.check(&tls).is_none());
        let status = strict.check(&req("/mcp", &[])).unwrap().status();
        assert_eq!(status, 403);
    }

    #[test]
    fn origins_are_checked_when_present() {
        let o = OriginLayer::new([
            "https://App.example.com/",
            "http://localhost:6274",
            "http://127.0.0.1:*",
        ]);
        let check = |h: &[(&str, &str)]| o.allowed.check(&req("/mcp", h)).map(|r| r.status());
        assert_eq!(check(&[]), None);
        assert_eq!(check(&[("origin", "https://app.example.com")]), None);
        assert_eq!(check(&[("origin", "http://localhost:6274")]), None);
        assert_eq!(
            check(&[("origin", "http://localhost:6275")]),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(check(&[("origin", "null")]), Some(StatusCode::FORBIDDEN));
        assert_eq!(check(&[("origin", "http://127.0.0.1:3000")]), None);
        assert_eq!(check(&[("origin", "http://127.0.0.1")]), None);
        assert_eq!(
            check(&[("origin", "http://127.0.0.1.evil.test:80")]),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            check(&[("origin", "http://127.0.0.1:80@evil.test")]),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            check(&[("origin", "https://app.example.com.evil.test")]),
            Some(StatusCode::FORBIDDEN)
        );
    }
}
