//! Transport guards: HTTPS enforcement ([`HttpsOnlyLayer`]), `Origin` validation
//! ([`OriginLayer`], the MCP streamable-HTTP rule), and the client address used by failure
//! limiting and audit events ([`client_addr`]; behind reverse proxies, [`TrustedProxies`] and
//! [`ClientAddrLayer`]).
//!
//! Put them outside the auth layer: a request over plain HTTP or from a foreign page is
//! refused before any credential is looked at.
//!
//! # Example
//!
//! ```
//! use mcp_auth::transport::{HttpsOnlyLayer, OriginLayer, TlsConnection};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let inner = service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! });
//! let svc = OriginLayer::new(["https://app.example.com"]).layer(HttpsOnlyLayer::new().layer(inner));
//!
//! let mut evil = http::Request::get("/mcp")
//!     .header("origin", "https://evil.example")
//!     .body(())
//!     .unwrap();
//! evil.extensions_mut().insert(TlsConnection);
//! assert_eq!(svc.clone().oneshot(evil).await.unwrap().status(), 403);
//!
//! // Plain HTTP, even with an `https://` request target (the client chooses that).
//! let plain = http::Request::get("https://mcp.example.com/mcp").body(()).unwrap();
//! assert_eq!(svc.clone().oneshot(plain).await.unwrap().status(), 403);
//!
//! let mut ok = http::Request::get("/mcp")
//!     .header("origin", "https://APP.example.com")
//!     .body(())
//!     .unwrap();
//! ok.extensions_mut().insert(TlsConnection); // from your TLS acceptor
//! assert_eq!(svc.oneshot(ok).await.unwrap().status(), 200);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, ORIGIN};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::AuthBody;

/// The client's address, as an extension a server can insert (axum users get the peer address
/// from `ConnectInfo<SocketAddr>` without doing anything, feature `axum`). Behind trusted
/// proxies, [`ClientAddrLayer`] replaces it with the client the proxies reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// The TCP peer of a request (the socket address), as [`ClientAddrLayer`] saw it before it
/// set [`ClientAddr`] to the client behind the proxies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub IpAddr);

/// Marks a request that arrived over TLS (insert it from your TLS acceptor).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsConnection;

/// The client address of a request: [`ClientAddr`], axum's `ConnectInfo<SocketAddr>` (feature
/// `axum`), or a bare `SocketAddr` extension, in that order. Never a header: forwarded
/// addresses count only through [`ClientAddrLayer`] (or
/// [`FailureLimitLayer::trust_forwarded_for`](crate::limit::FailureLimitLayer::trust_forwarded_for)),
/// and only from [`TrustedProxies`].
#[must_use]
pub fn client_addr(extensions: &http::Extensions) -> Option<IpAddr> {
    if let Some(ClientAddr(ip)) = extensions.get::<ClientAddr>() {
        return Some(*ip);
    }
    socket_addr(extensions)
}

fn socket_addr(extensions: &http::Extensions) -> Option<IpAddr> {
    #[cfg(feature = "axum")]
    if let Some(info) = extensions.get::<axum::extract::ConnectInfo<SocketAddr>>() {
        return Some(info.0.ip());
    }
    extensions.get::<SocketAddr>().map(SocketAddr::ip)
}

/// The TCP peer of a request: [`PeerAddr`], then the connection (`ConnectInfo<SocketAddr>`, a
/// `SocketAddr` extension), then [`ClientAddr`]. This is the address that must be a trusted
/// proxy before any forwarding header is believed.
#[must_use]
pub fn peer_addr(extensions: &http::Extensions) -> Option<IpAddr> {
    if let Some(PeerAddr(ip)) = extensions.get::<PeerAddr>() {
        return Some(*ip);
    }
    socket_addr(extensions).or_else(|| extensions.get::<ClientAddr>().map(|c| c.0))
}

/// An address block: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32u32.saturating_sub(u32::from(self.prefix)))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128u32.saturating_sub(u32::from(self.prefix)))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The most forwarding hops looked at per request.
const MAX_HOPS: usize = 32;

/// The proxies whose forwarding headers are believed: addresses and CIDR blocks, IPv4 and
/// IPv6. A request counts as coming through a proxy only when its TCP peer
/// ([`peer_addr`]) is in this set; from any other peer, `X-Forwarded-*` headers are ignored.
///
/// The client behind the proxies is the right-most `X-Forwarded-For` address that is not a
/// trusted proxy (each proxy appends the address it received the request from, so everything
/// to the left of that is what the client claimed). If every address is a trusted proxy, the
/// left-most one is the client.
///
/// ```
/// use mcp_auth::transport::TrustedProxies;
///
/// let proxies = TrustedProxies::parse("MCP_TRUSTED_PROXIES", "10.0.0.0/8, ::1").unwrap();
/// let mut headers = http::HeaderMap::new();
/// headers.append("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.1.2.3".parse().unwrap());
/// // Through the proxy at 10.0.0.5: the client is 203.0.113.9 (6.6.6.6 was its own claim).
/// assert_eq!(proxies.client_addr([10, 0, 0, 5].into(), &headers), "203.0.113.9".parse::<std::net::IpAddr>().unwrap());
/// // Directly from 198.51.100.1: the header is ignored.
/// assert_eq!(proxies.client_addr([198, 51, 100, 1].into(), &headers), "198.51.100.1".parse::<std::net::IpAddr>().unwrap());
/// assert!(TrustedProxies::parse("MCP_TRUSTED_PROXIES", "10.0.0.0/33").is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Net>,
}

impl TrustedProxies {
    /// No proxy: every request is judged by its socket address.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// The loopback addresses (`127.0.0.0/8`, `::1`): a proxy on the same host.
    #[must_use]
    pub fn loopback() -> Self {
        Self {
            nets: vec![
                Net {
                    addr: IpAddr::from([127, 0, 0, 0]),
                    prefix: 8,
                },
                Net {
                    addr: IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
                    prefix: 128,
                },
            ],
        }
    }

    /// Parses a comma-separated list of addresses (`10.0.0.7`, `::1`) and CIDR blocks
    /// (`10.0.0.0/8`, `fd00::/8`); empty entries are skipped.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`](crate::ConfigError) naming `setting` for an entry that is not an
    /// address or a block (prefix longer than the address).
    pub fn parse(setting: &str, list: &str) -> Result<Self, crate::ConfigError> {
        let mut nets = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (addr, prefix) = match entry.split_once('/') {
                Some((a, p)) => (a.trim(), Some(p.trim())),
                None => (entry, None),
            };
            let addr = addr
                .strip_prefix('[')
                .and_then(|a| a.strip_suffix(']'))
                .unwrap_or(addr);
            let shown: String = entry.chars().take(64).collect();
            let bad = || {
                crate::ConfigError::new(
                    setting,
                    format!(
                        "`{shown}` is not an IP address or CIDR block (such as 10.0.0.0/8 or fd00::/8)"
                    ),
                )
            };
            let addr: IpAddr = addr.parse().map_err(|_| bad())?;
            let addr = addr.to_canonical();
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = match prefix {
                None => max,
                Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            };
            nets.push(Net { addr, prefix });
        }
        Ok(Self { nets })
    }

    /// Adds the blocks of `other`.
    #[must_use]
    pub fn with(mut self, other: &TrustedProxies) -> Self {
        self.nets.extend(other.nets.iter().copied());
        self
    }

    /// Whether no proxy is trusted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// Whether the request's TCP peer ([`peer_addr`]) is a trusted proxy.
    #[must_use]
    pub fn trusts_peer(&self, extensions: &http::Extensions) -> bool {
        peer_addr(extensions).is_some_and(|p| self.contains(p))
    }

    /// The client address of a request that came from `peer` (see the [type docs](Self)):
    /// `peer` itself unless it is a trusted proxy; otherwise the right-most `X-Forwarded-For`
    /// address (over every instance of the header) that is not a trusted proxy. A malformed
    /// entry, or more than 32 hops, stops the walk at the last trusted address.
    #[must_use]
    pub fn client_addr(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let mut client = peer;
        let mut hops = 0usize;
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(value) = value.to_str() else {
                return client;
            };
            for entry in value.rsplit(',') {
                hops = hops.saturating_add(1);
                if hops > MAX_HOPS {
                    return client;
                }
                let Some(ip) = parse_hop(entry.trim()) else {
                    return client;
                };
                if !self.contains(ip) {
                    return ip;
                }
                client = ip;
            }
        }
        client
    }

    /// Resolves the client of a request in place: records the socket address as
    /// [`PeerAddr`] and sets [`ClientAddr`] to [`client_addr`](Self::client_addr). Does
    /// nothing when the request has no peer address. Idempotent.
    pub fn resolve(&self, extensions: &mut http::Extensions, headers: &HeaderMap) {
        if let Some(peer) = peer_addr(extensions) {
            let client = self.client_addr(peer, headers);
            extensions.insert(PeerAddr(peer));
            extensions.insert(ClientAddr(client));
        }
    }
}

/// One `X-Forwarded-For` entry: an address, `[v6]`, or an address with a port.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse::<IpAddr>().ok())
        })?;
    Some(ip.to_canonical())
}

/// Whether a request carries forwarding headers (`X-Forwarded-For`, `Forwarded`).
fn has_forwarding_headers(headers: &HeaderMap) -> bool {
    headers.contains_key("x-forwarded-for") || headers.contains_key("forwarded")
}

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
                tracing::warn!(target: crate::service::REJECTION_TARGET, %peer, "requests carry X-Forwarded-For/Forwarded but no trusted proxy is configured (MCP_TRUSTED_PROXIES in the example server): a proxy seems to be in front, and every client behind it shares its address; the headers are ignored");
            } else {
                tracing::warn!(target: crate::service::REJECTION_TARGET, %peer, "a request from a peer that is not a trusted proxy carries X-Forwarded-For/Forwarded; the headers are ignored and the socket address counts (check MCP_TRUSTED_PROXIES)");
            }
        }
        let (mut parts, body) = req.into_parts();
        self.proxies.resolve(&mut parts.extensions, &parts.headers);
        req = Request::from_parts(parts, body);
        self.inner.call(req)
    }
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
        tracing::warn!(target: crate::service::REJECTION_TARGET, "HttpsOnlyLayer: plain HTTP allowed (development mode)");
        self.config.allow_plain_http = true;
        self
    }
}

/// The last `X-Forwarded-Proto` value (the nearest proxy's), trimmed.
pub(crate) fn last_forwarded(headers: &HeaderMap, name: &str) -> Option<String> {
    let v = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    Some(v.rsplit(',').next()?.trim().to_owned())
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
            r.extensions_mut().insert(SocketAddr::from((ip, 4000)));
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

    #[test]
    fn client_address_comes_from_extensions_never_from_headers() {
        let mut ext = http::Extensions::new();
        assert_eq!(client_addr(&ext), None);
        ext.insert(SocketAddr::from(([10, 0, 0, 1], 5000)));
        assert_eq!(client_addr(&ext), Some(IpAddr::from([10, 0, 0, 1])));
        ext.insert(ClientAddr(IpAddr::from([10, 0, 0, 2])));
        assert_eq!(client_addr(&ext), Some(IpAddr::from([10, 0, 0, 2])));
        assert_eq!(
            peer_addr(&ext),
            Some(IpAddr::from([10, 0, 0, 1])),
            "the socket, not the resolved client"
        );
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn trusted_proxies_parse_addresses_and_blocks_and_refuse_garbage() {
        let p = TrustedProxies::parse(
            "S",
            " 10.0.0.0/8, 192.0.2.7 ,, fd00::/8, [::1], ::ffff:172.16.0.1 ",
        )
        .unwrap();
        for yes in [
            "10.255.0.1",
            "192.0.2.7",
            "fd12::1",
            "::1",
            "::ffff:10.0.0.9",
            "172.16.0.1",
        ] {
            assert!(p.contains(ip(yes)), "{yes}");
        }
        for no in ["11.0.0.1", "192.0.2.8", "fe80::1", "::2", "127.0.0.1"] {
            assert!(!p.contains(ip(no)), "{no}");
        }
        assert!(
            TrustedProxies::parse("S", "0.0.0.0/0")
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        assert!(
            TrustedProxies::parse("S", "::/0")
                .unwrap()
                .contains(ip("2001:db8::1"))
        );
        assert!(TrustedProxies::parse("S", "").unwrap().is_empty());
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/-1",
            "10.0.0.0/",
            "example.com",
            "10.0.0.1/8/8",
            "1.2.3.4:80",
        ] {
            let err = TrustedProxies::parse("MCP_TRUSTED_PROXIES", bad).unwrap_err();
            assert_eq!(err.problems()[0].setting(), "MCP_TRUSTED_PROXIES", "{bad}");
        }
        let lo = TrustedProxies::loopback();
        assert!(
            lo.contains(ip("127.0.0.1")) && lo.contains(ip("127.9.9.9")) && lo.contains(ip("::1"))
        );
        assert!(
            lo.contains(ip("::ffff:127.0.0.1")),
            "dual-stack listeners see mapped addresses"
        );
        assert!(!lo.contains(ip("10.0.0.1")));
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_forwarded_address() {
        let p = TrustedProxies::parse("S", "10.0.0.0/8").unwrap();
        let proxy = ip("10.0.0.5");
        // From an untrusted peer, headers are ignored.
        assert_eq!(
            p.client_addr(ip("198.51.100.1"), &xff(&["203.0.113.9"])),
            ip("198.51.100.1")
        );
        // No header: the proxy itself.
        assert_eq!(p.client_addr(proxy, &HeaderMap::new()), proxy);
        // The client's own claim (left) is skipped; trusted hops are walked through.
        assert_eq!(
            p.client_addr(proxy, &xff(&["6.6.6.6, 203.0.113.9, 10.1.1.1"])),
            ip("203.0.113.9")
        );
        // Several header instances are one list, in order.
        assert_eq!(
            p.client_addr(proxy, &xff(&["6.6.6.6", "203.0.113.9", "10.1.1.1"])),
            ip("203.0.113.9")
        );
        // All trusted: the left-most.
        assert_eq!(
            p.client_addr(proxy, &xff(&["10.9.9.9, 10.1.1.1"])),
            ip("10.9.9.9")
        );
        // Ports and brackets.
        assert_eq!(
            p.client_addr(proxy, &xff(&["[2001:db8::7]:443"])),
            ip("2001:db8::7")
        );
        assert_eq!(
            p.client_addr(proxy, &xff(&["203.0.113.9:5555"])),
            ip("203.0.113.9")
        );
        // Garbage stops the walk at the last trusted address.
        assert_eq!(
            p.client_addr(proxy, &xff(&["garbage, 10.1.1.1"])),
            ip("10.1.1.1")
        );
        assert_eq!(p.client_addr(proxy, &xff(&["203.0.113.9, "])), proxy);
        // A long chain of trusted hops stops after 32.
        let long = vec!["10.0.0.1"; 100].join(",");
        assert_eq!(
            p.client_addr(proxy, &xff(&[&format!("203.0.113.9,{long}")])),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn resolving_records_the_peer_and_sets_the_client() {
        let p = TrustedProxies::loopback();
        let mut ext = http::Extensions::new();
        ext.insert(SocketAddr::from(([127, 0, 0, 1], 4000)));
        let h = xff(&["203.0.113.9"]);
        p.resolve(&mut ext, &h);
        assert_eq!(client_addr(&ext), Some(ip("203.0.113.9")));
        assert_eq!(peer_addr(&ext), Some(ip("127.0.0.1")));
        p.resolve(&mut ext, &h);
        assert_eq!(client_addr(&ext), Some(ip("203.0.113.9")), "idempotent");
        let mut direct = http::Extensions::new();
        direct.insert(SocketAddr::from(([198, 51, 100, 1], 4000)));
        TrustedProxies::none().resolve(&mut direct, &h);
        assert_eq!(client_addr(&direct), Some(ip("198.51.100.1")));
    }
}
