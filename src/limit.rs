//! Failed-attempt limiting: after too many failed authentications from one client, answer
//! 429 with `Retry-After` until the window ends, without asking the authenticator.
//!
//! - The client is its **peer address** by default (IPv6 by /64, so one host cannot rotate
//!   through its own prefix), taken from the connection ([`crate::transport::client_addr`]),
//!   never from a claimed identity: a stranger cannot lock a legitimate user out by failing
//!   in their name. `X-Forwarded-For` counts only in trusted-proxy mode. Or supply a key
//!   function.
//! - A failure is a presented credential that was refused: 401 `invalid_token` / `expired` /
//!   `revoked`, or 400 `invalid_request`. Requests without credentials (OAuth discovery
//!   starts with one), scope denials and 503s are not failures. Successful requests cost one
//!   counter lookup.
//! - Counters live in an [`AttemptStore`]: [`MemoryAttemptStore`] (bounded, whatever the number
//!   of distinct clients) or a shared one (Redis) so limits hold across instances. If the
//!   store cannot answer, requests get 503 (fail closed) unless `fail_open` is set.
//!
//! Put the layer **outside** the auth layer (it reads the auth layer's verdict from the
//! response).
//!
//! ```
//! use std::time::Duration;
//! use mcp_auth::limit::{FailureLimitLayer, MemoryAttemptStore};
//! use mcp_auth::transport::ClientAddr;
//! use mcp_auth::{ApiKeyAuthenticator, ApiKeyLayer, Credential};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let keys = ApiKeyAuthenticator::new().with_key(Credential::new("k-0123456789abcdef")).unwrap();
//! let inner = service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! });
//! let svc = FailureLimitLayer::new(MemoryAttemptStore::new())
//!     .max_failures(3)
//!     .window(Duration::from_secs(60))
//!     .layer(ApiKeyLayer::new(keys).layer(inner));
//! let attempt = |key: &'static str| {
//!     let mut req = http::Request::get("/mcp").header("x-api-key", key).body(()).unwrap();
//!     req.extensions_mut().insert(ClientAddr([203, 0, 113, 7].into()));
//!     svc.clone().oneshot(req)
//! };
//! for _ in 0..3 {
//!     assert_eq!(attempt("wrong-guess-000000").await.unwrap().status(), 401);
//! }
//! // Locked out, even with the right key, until the window ends.
//! let res = attempt("k-0123456789abcdef").await.unwrap();
//! assert_eq!(res.status(), 429);
//! assert!(res.headers().contains_key("retry-after"));
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::body::AuthBody;
use crate::error::{AuthError, AuthErrorKind};
use crate::store::StoreError;

/// Failures counted for one client in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// Failures so far in the window.
    pub count: u32,
    /// Time left in the window.
    pub resets_in: Duration,
}

/// Where failure counters live. Counters are fixed windows: the first failure opens a
/// window of the configured length; it expires with all its count.
pub trait AttemptStore: Send + Sync + 'static {
    /// The failures of `key` in its current window, if one is open.
    fn failures(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Attempts>, StoreError>> + Send;

    /// Counts one failure of `key` (opening a `window` if none is open); returns the count.
    fn record_failure(
        &self,
        key: &str,
        window: Duration,
    ) -> impl Future<Output = Result<Attempts, StoreError>> + Send;
}

impl<T: AttemptStore + ?Sized> AttemptStore for Arc<T> {
    fn failures(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Attempts>, StoreError>> + Send {
        (**self).failures(key)
    }
    fn record_failure(
        &self,
        key: &str,
        window: Duration,
    ) -> impl Future<Output = Result<Attempts, StoreError>> + Send {
        (**self).record_failure(key, window)
    }
}

/// In-process counters, bounded in entries (default 100,000): when full, expired windows are
/// dropped, and if none has expired an arbitrary one is (so an attacker rotating addresses
/// costs memory up to the bound, never more).
#[derive(Clone)]
pub struct MemoryAttemptStore {
    inner: Arc<Mutex<Counters>>,
}

struct Counters {
    map: HashMap<String, (u32, Instant)>,
    capacity: usize,
    last_purge: Instant,
}

impl fmt::Debug for MemoryAttemptStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.inner.lock().map(|c| c.map.len()).unwrap_or(0);
        f.debug_struct("MemoryAttemptStore")
            .field("entries", &len)
            .finish()
    }
}

impl Default for MemoryAttemptStore {
    fn default() -> Self {
        Self::with_capacity(100_000)
    }
}

impl MemoryAttemptStore {
    /// A store of up to 100,000 clients.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A store of up to `capacity` clients (at least 1).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Counters {
                map: HashMap::new(),
                capacity: capacity.max(1),
                last_purge: Instant::now(),
            })),
        }
    }

    /// Clients currently counted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().map(|c| c.map.len()).unwrap_or(0)
    }

    /// Whether no client is counted.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn poisoned() -> StoreError {
        StoreError::unavailable("attempt store lock poisoned")
    }
}

impl AttemptStore for MemoryAttemptStore {
    fn failures(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Attempts>, StoreError>> + Send {
        let now = Instant::now();
        let result = self.inner.lock().map_err(|_| Self::poisoned()).map(|c| {
            c.map
                .get(key)
                .filter(|(_, until)| *until > now)
                .map(|(count, until)| Attempts {
                    count: *count,
                    resets_in: *until - now,
                })
        });
        std::future::ready(result)
    }

    fn record_failure(
        &self,
        key: &str,
        window: Duration,
    ) -> impl Future<Output = Result<Attempts, StoreError>> + Send {
        let now = Instant::now();
        let result = self
            .inner
            .lock()
            .map_err(|_| Self::poisoned())
            .map(|mut c| {
                if !c.map.contains_key(key) && c.map.len() >= c.capacity {
                    if now.duration_since(c.last_purge) >= Duration::from_secs(1) {
                        c.map.retain(|_, (_, until)| *until > now);
                        c.last_purge = now;
                    }
                    if c.map.len() >= c.capacity
                        && let Some(k) = c.map.keys().next().cloned()
                    {
                        c.map.remove(&k);
                    }
                }
                let entry = c.map.entry(key.to_owned()).or_insert((0, now + window));
                if entry.1 <= now {
                    *entry = (0, now + window);
                }
                entry.0 = entry.0.saturating_add(1);
                Attempts {
                    count: entry.0,
                    resets_in: entry.1 - now,
                }
            });
        std::future::ready(result)
    }
}

type KeyFn = dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync;

/// The default client key: the peer address, IPv6 reduced to its /64.
fn address_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

struct Shared<St> {
    store: St,
    max_failures: u32,
    window: Duration,
    fail_open: bool,
    key: Arc<KeyFn>,
    /// Trusted-proxy mode: record the forwarded address as the request's [`ClientAddr`].
    forwarded: bool,
}

/// Layer limiting failed authentications per client (see the [module docs](self)).
#[must_use]
pub struct FailureLimitLayer<St> {
    shared: Arc<Shared<St>>,
}

impl<St> Clone for FailureLimitLayer<St> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<St> fmt::Debug for FailureLimitLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailureLimitLayer")
            .field("max_failures", &self.shared.max_failures)
            .field("window", &self.shared.window)
            .field("fail_open", &self.shared.fail_open)
            .finish_non_exhaustive()
    }
}

impl<St: AttemptStore> FailureLimitLayer<St> {
    /// 10 failures per client per 5 minutes, keyed by peer address, failing closed.
    pub fn new(store: St) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                max_failures: 10,
                window: Duration::from_secs(300),
                fail_open: false,
                key: Arc::new(|parts: &http::request::Parts| {
                    crate::transport::client_addr(&parts.extensions).map(address_key)
                }),
                forwarded: false,
            }),
        }
    }

    fn map(self, f: impl FnOnce(&mut Shared<St>)) -> Self {
        let mut shared = match Arc::try_unwrap(self.shared) {
            Ok(s) => s,
            Err(_) => unreachable!("a layer being configured is not shared yet"),
        };
        f(&mut shared);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Failures allowed per window (at least 1); the next request is refused.
    pub fn max_failures(self, n: u32) -> Self {
        self.map(|s| s.max_failures = n.max(1))
    }

    /// Window length, and so the longest lockout (at least 1 s).
    pub fn window(self, window: Duration) -> Self {
        self.map(|s| s.window = window.max(Duration::from_secs(1)))
    }

    /// Let requests through (unlimited) when the store cannot answer, instead of 503.
    pub fn fail_open(self) -> Self {
        self.map(|s| s.fail_open = true)
    }

    /// Trusted-proxy mode: key by the last `X-Forwarded-For` address (set by your proxy),
    /// falling back to the peer address. That address also becomes the request's
    /// [`ClientAddr`](crate::transport::ClientAddr) for the layers inside (audit events).
    pub fn trust_forwarded_for(self) -> Self {
        self.map(|s| s.forwarded = true).key_fn(|parts| {
            crate::transport::forwarded_for(&parts.headers)
                .or_else(|| crate::transport::client_addr(&parts.extensions))
                .map(address_key)
        })
    }

    /// Your own client key (e.g. an mTLS certificate fingerprint). `None` means the request is
    /// not limited. Never key on a name the client claims.
    pub fn key_fn(
        self,
        f: impl Fn(&http::request::Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.map(|s| s.key = Arc::new(f))
    }
}

impl<S, St> Layer<S> for FailureLimitLayer<St> {
    type Service = FailureLimit<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        FailureLimit {
            inner,
            shared: self.shared.clone(),
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
    let body = serde_json::json!({
        "error": "too_many_requests",
        "error_description": "too many failed authentication attempts; retry later",
    })
    .to_string();
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let secs = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn store_down(err: &StoreError) -> Response<Bytes> {
    tracing::warn!(target: crate::service::REJECTION_TARGET, error = %err, "failure-limit store unavailable; refusing (fail closed)");
    let mut res = Response::new(Bytes::from_static(
        br#"{"error":"temporarily_unavailable","error_description":"authentication is temporarily unavailable"}"#,
    ));
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
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

type BoxFuture<B, E> = Pin<Box<dyn Future<Output = Result<Response<AuthBody<B>>, E>> + Send>>;

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
    type Future = BoxFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            if shared.forwarded
                && let Some(ip) = crate::transport::forwarded_for(&parts.headers)
            {
                parts.extensions.insert(crate::transport::ClientAddr(ip));
            }
            let key = (shared.key)(&parts);
            let req = Request::from_parts(parts, body);
            let Some(key) = key else {
                return Ok(inner.call(req).await?.map(AuthBody::inner));
            };
            match shared.store.failures(&key).await {
                Ok(Some(a)) if a.count >= shared.max_failures => {
                    crate::audit::rate_limited(&req);
                    return Ok(too_many(a.resets_in).map(AuthBody::rejection));
                }
                Ok(_) => {}
                Err(e) if shared.fail_open => {
                    tracing::warn!(target: crate::service::REJECTION_TARGET, error = %e, "failure-limit store unavailable; not limiting (fail open)");
                }
                Err(e) => return Ok(store_down(&e).map(AuthBody::rejection)),
            }
            let res = inner.call(req).await?;
            if is_failure(&res)
                && let Err(e) = shared.store.record_failure(&key, shared.window).await
            {
                tracing::warn!(target: crate::service::REJECTION_TARGET, error = %e, "could not count a failed attempt");
            }
            Ok(res.map(AuthBody::inner))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn windows_count_and_expire() {
        let s = MemoryAttemptStore::new();
        assert_eq!(s.failures("a").await.unwrap(), None);
        let w = Duration::from_millis(50);
        assert_eq!(s.record_failure("a", w).await.unwrap().count, 1);
        assert_eq!(s.record_failure("a", w).await.unwrap().count, 2);
        assert_eq!(s.failures("a").await.unwrap().unwrap().count, 2);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(s.failures("a").await.unwrap(), None);
        assert_eq!(
            s.record_failure("a", w).await.unwrap().count,
            1,
            "a new window"
        );
    }

    #[tokio::test]
    async fn memory_stays_bounded_whatever_the_number_of_clients() {
        let s = MemoryAttemptStore::with_capacity(1000);
        for i in 0..50_000u32 {
            s.record_failure(
                &format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
                Duration::from_secs(300),
            )
            .await
            .unwrap();
        }
        assert!(s.len() <= 1000, "{}", s.len());
    }

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
}
