//! [`FailureLimitLayer`]: 429 after too many failed authentications from one client.

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use super::release::{ReleaseLayer, Ticket, TicketHandle};
use crate::body::{AuthBody, BoxResponse, take_ready};
use crate::error::{AuthError, AuthErrorKind};
use crate::rejection::{json_error, store_unavailable};
use crate::request_info::TrustedProxies;
use crate::store::StoreError;
use crate::store::{AttemptStore, MAX_WINDOW, Reservation};

type KeyFn = dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync;

/// The default client key: the client address, IPv6 reduced to its /64.
fn address_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
        }
    }
}

/// The settings of a [`FailureLimitLayer`] (cheap to clone).
#[derive(Clone)]
struct Settings {
    max_failures: u32,
    window: Duration,
    fail_open: bool,
    key: Arc<KeyFn>,
    /// Resolve the client behind these proxies first (and record it as the request's
    /// [`ClientAddr`](crate::request_info::ClientAddr)).
    proxies: Option<Arc<TrustedProxies>>,
}

struct Shared<St> {
    store: Arc<St>,
    settings: Settings,
}

/// Layer limiting failed authentications per client: after too many failed authentications
/// from one client, it answers 429 with `Retry-After` until the window ends, without asking
/// the authenticator.
///
/// - The client is its **address** by default (IPv6 by /64, so one host cannot rotate
///   through its own prefix): the connection's ([`crate::request_info::client_addr`]), or behind
///   [`TrustedProxies`] the address they report
///   ([`FailureLimitLayer::trust_forwarded_for`], or
///   [`ClientAddrLayer`](crate::hardening::ClientAddrLayer) outside this layer). Never a
///   claimed identity, and never `X-Forwarded-For` from a peer that is not a trusted proxy.
///   Clients that share an address (a proxy you do not trust, NAT) share one counter: a
///   stranger behind the same address can lock them out, so behind a proxy configure it as
///   trusted, or turn the limit off. Or supply a key function.
/// - Each attempt is **counted before** the authenticator runs (reserved) and refunded when
///   it succeeds, so parallel guesses cannot overtake the count: at most `max_failures`
///   attempts of one client are ever being authenticated or counted at once. Put
///   [`FailureLimitLayer::release`] just inside the auth layer to refund as soon as a request
///   has authenticated (otherwise the refund waits for the response).
/// - A failure is a presented credential that was refused: 401 `invalid_token` / `expired` /
///   `revoked`, or 400 `invalid_request`. Requests without credentials (OAuth discovery
///   starts with one), scope denials and 503s are not failures. Successful requests cost one
///   counter lookup.
/// - Counters live in an [`AttemptStore`]:
///   [`MemoryAttemptStore`](crate::store::MemoryAttemptStore) (bounded, whatever the number of
///   distinct clients; it never forgets a locked-out client to make room) or a shared one
///   (Redis) so limits hold across instances. If the store cannot answer, requests get 503
///   (fail closed) unless `fail_open` is set.
///
/// Put the layer **outside** the auth layer (it reads the auth layer's verdict from the
/// response).
///
/// ```
/// use std::time::Duration;
/// use mcp_auth::{hardening::FailureLimitLayer, store::MemoryAttemptStore};
/// use mcp_auth::request_info::ClientAddr;
/// use mcp_auth::{ApiKeyAuthenticator, ApiKeyLayer, Credential};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let keys = ApiKeyAuthenticator::new().with_key(Credential::new("k-0123456789abcdef")).unwrap();
/// let inner = service_fn(|_req: http::Request<()>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
/// });
/// let svc = FailureLimitLayer::new(MemoryAttemptStore::new())
///     .max_failures(3)
///     .window(Duration::from_secs(60))
///     .layer(ApiKeyLayer::new(keys).layer(inner));
/// let attempt = |key: &'static str| {
///     let mut req = http::Request::get("/mcp").header("x-api-key", key).body(()).unwrap();
///     req.extensions_mut().insert(ClientAddr([203, 0, 113, 7].into()));
///     svc.clone().oneshot(req)
/// };
/// for _ in 0..3 {
///     assert_eq!(attempt("wrong-guess-000000").await.unwrap().status(), 401);
/// }
/// // Locked out, even with the right key, until the window ends.
/// let res = attempt("k-0123456789abcdef").await.unwrap();
/// assert_eq!(res.status(), 429);
/// assert!(res.headers().contains_key("retry-after"));
/// # }
/// ```
#[must_use]
pub struct FailureLimitLayer<St> {
    store: Arc<St>,
    settings: Settings,
}

impl<St> Clone for FailureLimitLayer<St> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl<St> fmt::Debug for FailureLimitLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureLimitLayer")
            .field("max_failures", &self.settings.max_failures)
            .field("window", &self.settings.window)
            .field("fail_open", &self.settings.fail_open)
            .field("proxies", &self.settings.proxies)
            .finish_non_exhaustive()
    }
}

impl<St: AttemptStore> FailureLimitLayer<St> {
    /// 10 failures per client per 5 minutes, keyed by client address, failing closed.
    pub fn new(store: St) -> Self {
        Self {
            store: Arc::new(store),
            settings: Settings {
                max_failures: 10,
                window: Duration::from_secs(300),
                fail_open: false,
                key: Arc::new(|parts: &http::request::Parts| {
                    crate::request_info::client_addr(&parts.extensions).map(address_key)
                }),
                proxies: None,
            },
        }
    }

    /// Failures allowed per window (at least 1); the next request is refused.
    pub fn max_failures(mut self, n: u32) -> Self {
        self.settings.max_failures = n.max(1);
        self
    }

    /// Window length, and so the longest lockout (at least 1 s, at most [`MAX_WINDOW`]).
    pub fn window(mut self, window: Duration) -> Self {
        self.settings.window = window.clamp(Duration::from_secs(1), MAX_WINDOW);
        self
    }

    /// Let requests through (unlimited) when the store cannot answer, instead of 503.
    pub fn fail_open(mut self) -> Self {
        self.settings.fail_open = true;
        self
    }

    /// Behind reverse proxies: when the TCP peer is one of `proxies`, the client is the
    /// address they report in `X-Forwarded-For` (see
    /// [`TrustedProxies::client_addr`](crate::request_info::TrustedProxies::client_addr)); from
    /// any other peer the header is ignored. The resolved address also becomes the request's
    /// [`ClientAddr`](crate::request_info::ClientAddr) for the layers inside (audit events).
    pub fn trust_forwarded_for(mut self, proxies: TrustedProxies) -> Self {
        self.settings.proxies = Some(Arc::new(proxies));
        self
    }

    /// Your own client key (e.g. an mTLS certificate fingerprint). `None` means the request is
    /// not limited. Never key on a name the client claims.
    pub fn key_fn(
        mut self,
        f: impl Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.settings.key = Arc::new(f);
        self
    }

    /// The companion layer to put just **inside** the auth layer: a request that reaches it
    /// has authenticated, so its reserved attempt is refunded at once instead of when the
    /// response comes back (a client's in-flight requests then never use up its allowance).
    pub fn release(&self) -> ReleaseLayer<St> {
        ReleaseLayer::new()
    }
}

impl<S, St> Layer<S> for FailureLimitLayer<St> {
    type Service = FailureLimit<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        FailureLimit {
            inner,
            shared: Arc::new(Shared {
                store: self.store.clone(),
                settings: self.settings.clone(),
            }),
        }
    }
}

/// The service built by [`FailureLimitLayer`].
pub struct FailureLimit<S, St> {
    inner: S,
    shared: Arc<Shared<St>>,
}

impl<S: Clone, St> Clone for FailureLimit<S, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug, St> fmt::Debug for FailureLimit<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureLimit")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

fn too_many(retry_after: Duration) -> Response<Bytes> {
    let mut res = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_requests",
        "too many failed authentication attempts; retry later",
    );
    let secs = retry_after
        .as_secs()
        .saturating_add(u64::from(retry_after.subsec_nanos() > 0))
        .max(1);
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    res
}

fn store_down(err: &StoreError) -> Response<Bytes> {
    tracing::warn!(target: crate::telemetry::REJECTION_TARGET, error = %err, "failure-limit store unavailable; refusing (fail closed)");
    store_unavailable("authentication is temporarily unavailable")
}

/// Whether the auth layer's verdict in `res` is a refused credential.
fn is_failure<B>(res: &Response<B>) -> bool {
    res.extensions().get::<AuthError>().is_some_and(|e| {
        matches!(
            e.kind(),
            AuthErrorKind::InvalidToken
                | AuthErrorKind::Expired
                | AuthErrorKind::Revoked
                | AuthErrorKind::InvalidRequest
        )
    })
}

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for FailureLimit<S, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    St: AttemptStore,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxResponse<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        Box::pin(limit(self.shared.clone(), take_ready(&mut self.inner), req))
    }
}

/// One request through the limit (see [`FailureLimitLayer`]): reserve an attempt, call
/// the inner service, then count the failure or refund the attempt.
async fn limit<S, St, ReqBody, ResBody>(
    shared: Arc<Shared<St>>,
    mut inner: S,
    req: Request<ReqBody>,
) -> Result<Response<AuthBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    St: AttemptStore,
{
    let settings = &shared.settings;
    let (mut parts, body) = req.into_parts();
    if let Some(proxies) = &settings.proxies {
        proxies.resolve(&mut parts.extensions, &parts.headers);
    }
    let Some(key) = (settings.key)(&parts) else {
        let req = Request::from_parts(parts, body);
        return Ok(inner.call(req).await?.map(AuthBody::inner));
    };
    let reservation = match shared
        .store
        .reserve(&key, settings.window, settings.max_failures)
        .await
    {
        Ok(Reservation::Refused(a)) => {
            let mut res = too_many(a.resets_in);
            crate::body::close_if_body_unread(&parts.headers, &mut res);
            crate::telemetry::rate_limited(&Request::from_parts(parts, ()));
            return Ok(res.map(AuthBody::rejection));
        }
        Ok(r) => Some(r),
        Err(e) if settings.fail_open => {
            tracing::warn!(target: crate::telemetry::REJECTION_TARGET, error = %e, "failure-limit store unavailable; not limiting (fail open)");
            None
        }
        Err(e) => {
            let mut res = store_down(&e);
            crate::body::close_if_body_unread(&parts.headers, &mut res);
            return Ok(res.map(AuthBody::rejection));
        }
    };
    if reservation == Some(Reservation::Reserved) {
        return reserved(&shared, inner, parts, body, key).await;
    }
    // Checked (a store without reservations), or not limited (fail open).
    let result = inner.call(Request::from_parts(parts, body)).await;
    if reservation == Some(Reservation::Checked) && result.as_ref().is_ok_and(is_failure) {
        record(&shared, &key).await;
    }
    Ok(result?.map(AuthBody::inner))
}

/// Calls the inner service with the attempt reserved for `key`, its ticket in the request
/// (for [`ReleaseLayer`]): a failure keeps it as the counted failure, anything else refunds
/// it.
async fn reserved<S, St, ReqBody, ResBody>(
    shared: &Shared<St>,
    mut inner: S,
    mut parts: http::request::Parts,
    body: ReqBody,
    key: String,
) -> Result<Response<AuthBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    St: AttemptStore,
{
    let ticket = Arc::new(Ticket::new(shared.store.clone(), key));
    parts.extensions.insert(TicketHandle(ticket.clone()));
    let result = inner.call(Request::from_parts(parts, body)).await;
    if result.as_ref().is_ok_and(is_failure) {
        // The reservation stands as the failure, unless ReleaseLayer already refunded it (a
        // layer inside the auth layer refused): then count it again.
        if !ticket.settle() {
            record(shared, &ticket.key).await;
        }
    } else if ticket.settle()
        && let Err(e) = shared.store.refund(&ticket.key).await
    {
        tracing::warn!(target: crate::telemetry::REJECTION_TARGET, error = %e, "could not refund a reserved attempt");
    }
    Ok(result?.map(AuthBody::inner))
}

async fn record<St: AttemptStore>(shared: &Shared<St>, key: &str) {
    if let Err(e) = shared
        .store
        .record_failure(key, shared.settings.window)
        .await
    {
        tracing::warn!(target: crate::telemetry::REJECTION_TARGET, error = %e, "could not count a failed attempt");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryAttemptStore;

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_prefix() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(address_key(mapped), "192.0.2.1");
    }

    #[test]
    fn builders_stay_usable_after_clone() {
        let layer = FailureLimitLayer::new(MemoryAttemptStore::new());
        let kept = layer.clone();
        let configured = layer
            .max_failures(3)
            .window(Duration::from_secs(5))
            .fail_open()
            .trust_forwarded_for(TrustedProxies::loopback())
            .key_fn(|_| None);
        assert_eq!(configured.settings.max_failures, 3);
        assert_eq!(kept.settings.max_failures, 10, "the clone is independent");
        let _ = kept.clone().max_failures(1);
    }

    #[tokio::test]
    async fn huge_windows_neither_overflow_nor_panic() {
        let s = MemoryAttemptStore::new();
        let a = s.record_failure("a", Duration::MAX).await.unwrap();
        assert!(a.resets_in <= MAX_WINDOW);
        assert_eq!(
            s.reserve("b", Duration::MAX, 1).await.unwrap(),
            Reservation::Reserved
        );
        let Reservation::Refused(r) = s.reserve("b", Duration::MAX, 1).await.unwrap() else {
            panic!()
        };
        let res = too_many(r.resets_in);
        assert_eq!(res.status(), 429);
        assert_eq!(
            too_many(Duration::MAX).headers()["retry-after"],
            u64::MAX.to_string()
        );
        assert_eq!(
            too_many(Duration::from_millis(1)).headers()["retry-after"],
            "1"
        );
        let layer = FailureLimitLayer::new(MemoryAttemptStore::new()).window(Duration::MAX);
        assert_eq!(layer.settings.window, MAX_WINDOW);
    }
}
