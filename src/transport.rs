//! Transport guards: HTTPS enforcement ([`HttpsOnlyLayer`]), `Origin` validation
//! ([`OriginLayer`], the MCP streamable-HTTP rule), and the client address used by failure
//! limiting and audit events ([`client_addr`]).
//!
//! Put them outside the auth layer: a request over plain HTTP or from a foreign page is
//! refused before any credential is looked at.
//!
//! # Example
//!
//! ```
//! use mcp_auth::transport::{HttpsOnlyLayer, OriginLayer};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let inner = service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! });
//! let svc = OriginLayer::new(["https://app.example.com"]).layer(HttpsOnlyLayer::new().layer(inner));
//!
//! let evil = http::Request::get("https://mcp.example.com/mcp")
//!     .header("origin", "https://evil.example")
//!     .body(())
//!     .unwrap();
//! assert_eq!(svc.clone().oneshot(evil).await.unwrap().status(), 403);
//!
//! let plain = http::Request::get("http://mcp.example.com/mcp").body(()).unwrap();
//! assert_eq!(svc.clone().oneshot(plain).await.unwrap().status(), 403);
//!
//! let ok = http::Request::get("https://mcp.example.com/mcp")
//!     .header("origin", "https://APP.example.com")
//!     .body(())
//!     .unwrap();
//! assert_eq!(svc.oneshot(ok).await.unwrap().status(), 200);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, ORIGIN};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::AuthBody;

/// The client's address, as an extension a server can insert (axum users get it from
/// `ConnectInfo<SocketAddr>` without doing anything, feature `axum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Marks a request that arrived over TLS (insert it from your TLS acceptor).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsConnection;

/// The peer address of a request: [`ClientAddr`], axum's `ConnectInfo<SocketAddr>` (feature
/// `axum`), or a bare `SocketAddr` extension, in that order. Never a header.
#[must_use]
pub fn client_addr(extensions: &http::Extensions) -> Option<IpAddr> {
    if let Some(ClientAddr(ip)) = extensions.get::<ClientAddr>() {
        return Some(*ip);
    }
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// The address a trusted proxy reported: the last `X-Forwarded-For` entry (the one the nearest
/// proxy appended), when it parses as an IP address.
#[must_use]
pub fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?;
    let entry = last.to_str().ok()?.rsplit(',').next()?.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

fn refusal(status: StatusCode, code: &'static str, description: &'static str) -> Response<Bytes> {
    let body = serde_json::json!({ "error": code, "error_description": description }).to_string();
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
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
/// travel only over TLS). A request counts as HTTPS when its URI has the `https` scheme, it
/// carries a [`TlsConnection`] extension, or, in trusted-proxy mode, the last
/// `X-Forwarded-Proto` value is `https`.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct HttpsOnlyLayer {
    config: HttpsOnly,
}

/// The settings of an [`HttpsOnlyLayer`].
#[derive(Debug, Clone, Default)]
pub struct HttpsOnly {
    trust_proxy: bool,
    allow_plain_http: bool,
}

impl HttpsOnlyLayer {
    /// Refuse plain HTTP.
    pub fn new() -> Self {
        Self::default()
    }

    /// Believe `X-Forwarded-Proto: https` (only behind a proxy that sets it and drops any a
    /// client sent).
    pub fn trust_forwarded_proto(mut self) -> Self {
        self.config.trust_proxy = true;
        self
    }

    /// Development opt-out: let plain HTTP through (logged once per layer at `warn`).
    pub fn allow_plain_http(mut self) -> Self {
        tracing::warn!(target: crate::service::REJECTION_TARGET, "HttpsOnlyLayer: plain HTTP allowed (development mode)");
        self.config.allow_plain_http = true;
        self
    }
}

impl Check for HttpsOnly {
    fn check<B>(&self, req: &Request<B>) -> Option<Response<Bytes>> {
        let secure = self.allow_plain_http
            || req.uri().scheme_str() == Some("https")
            || req.extensions().get::<TlsConnection>().is_some()
            || (self.trust_proxy
                && req
                    .headers()
                    .get_all("x-forwarded-proto")
                    .iter()
                    .next_back()
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.rsplit(',').next())
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("https")));
        if secure {
            return None;
        }
        crate::audit::refused(req, "https_required");
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
        let mut values = req.headers().get_all(ORIGIN).iter();
        let first = values.next()?;
        let allowed = values.next().is_none()
            && first.to_str().is_ok_and(|o| {
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
            });
        if allowed {
            return None;
        }
        crate::audit::refused(req, "forbidden_origin");
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
        assert!(strict.check(&req("https://h/mcp", &[])).is_none());
        assert!(strict.check(&req("/mcp", &[])).is_some());
        let fwd = [("x-forwarded-proto", "https")];
        assert!(
            strict.check(&req("/mcp", &fwd)).is_some(),
            "untrusted header"
        );
        let proxied = HttpsOnly {
            trust_proxy: true,
            allow_plain_http: false,
        };
        assert!(proxied.check(&req("/mcp", &fwd)).is_none());
        assert!(
            proxied
                .check(&req("/mcp", &[("x-forwarded-proto", "https, http")]))
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

    #[test]
    fn client_address_comes_from_extensions_and_forwarded_for_from_the_last_hop() {
        let mut ext = http::Extensions::new();
        assert_eq!(client_addr(&ext), None);
        ext.insert(SocketAddr::from(([10, 0, 0, 1], 5000)));
        assert_eq!(client_addr(&ext), Some(IpAddr::from([10, 0, 0, 1])));
        ext.insert(ClientAddr(IpAddr::from([10, 0, 0, 2])));
        assert_eq!(client_addr(&ext), Some(IpAddr::from([10, 0, 0, 2])));
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "1.1.1.1, 2.2.2.2".parse().unwrap());
        assert_eq!(forwarded_for(&h), Some(IpAddr::from([2, 2, 2, 2])));
        h.append("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(forwarded_for(&h), None);
    }
}
