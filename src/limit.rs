//! Failed-attempt limiting: after too many failed authentications from one client, answer
//! 429 with `Retry-After` until the window ends, without asking the authenticator.
//!
//! - The client is its **address** by default (IPv6 by /64, so one host cannot rotate
//!   through its own prefix): the connection's ([`crate::transport::client_addr`]), or behind
//!   [`TrustedProxies`] the address they report
//!   ([`FailureLimitLayer::trust_forwarded_for`], or
//!   [`ClientAddrLayer`](crate::transport::ClientAddrLayer) outside this layer). Never a
//!   claimed identity, and never `X-Forwarded-For` from a peer that is not a trusted proxy.
//!   Clients that share an address (a proxy you do not trust, NAT) share one counter: a
//!   stranger behind the same address can lock them out, so behind a proxy configure it as
//!   trusted, or turn the limit off. Or supply a key function.
//! - Each attempt is **counted before** the authenticator runs (reserved) and refunded when
//!   it succeeds, so parallel guesses cannot overtake the count: at most `max_failures`
//!   attempts of one client are ever being authenticated or counted at once. Put
//!   [`FailureLimitLayer::release`] just inside the auth layer to refund as soon as a request
//!   has authenticated (otherwise the refund waits for the response).
//! - A failure is a presented credential that was refused: 401 `invalid_token` / `expired` /
//!   `revoked`, or 400 `invalid_request`. Requests without credentials (OAuth discovery
//!   starts with one), scope denials and 503s are not failures. Successful requests cost one
//!   counter lookup.
//! - Counters live in an [`AttemptStore`]: [`MemoryAttemptStore`] (bounded, whatever the number
//!   of distinct clients; it never forgets a locked-out client to make room) or a shared one
//!   (Redis) so limits hold across instances. If the
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

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
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
use crate::transport::TrustedProxies;

/// The longest window: longer settings are cut to this (a year), so deadlines never overflow.
pub const MAX_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);

/// Failures counted for one client in the current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempts {
    /// Failures so far in the window (with [`AttemptStore::reserve`], attempts still being
    /// authenticated count too).
    pub count: u32,
    /// Time left in the window.
    pub resets_in: Duration,
}

/// The answer of [`AttemptStore::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// One attempt was counted for this request before authenticating; it is refunded
    /// ([`AttemptStore::refund`]) if the request authenticates.
    Reserved,
    /// The client is at its limit: the request gets 429.
    Refused(Attempts),
    /// The store only checked the count (stores without reservations): the layer counts a
    /// failure afterwards with [`AttemptStore::record_failure`]. Parallel attempts can then
    /// overtake the limit.
    Checked,
}

/// Where failure counters live. Counters are fixed windows: the first failure opens a
/// window of the configured length; it expires with all its count.
///
/// Stores should implement [`reserve`](Self::reserve) and [`refund`](Self::refund) atomically
/// (the defaults only check, which lets parallel guesses all pass).
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

    /// Before authenticating, atomically: if `key` has fewer than `max_failures` counted in
    /// its window, count one more (opening a `window` if none is open) and answer
    /// [`Reservation::Reserved`]; otherwise answer [`Reservation::Refused`] and count
    /// nothing. The default only reads [`failures`](Self::failures) and answers
    /// [`Reservation::Checked`] (not atomic).
    fn reserve(
        &self,
        key: &str,
        window: Duration,
        max_failures: u32,
    ) -> impl Future<Output = Result<Reservation, StoreError>> + Send {
        let _ = window;
        let failures = self.failures(key);
        async move {
            Ok(match failures.await? {
                Some(a) if a.count >= max_failures => Reservation::Refused(a),
                _ => Reservation::Checked,
            })
        }
    }

    /// Takes back one attempt [`reserve`](Self::reserve) counted for `key` (the request
    /// authenticated): one less, never below zero, within the current window. The default
    /// does nothing (it goes with the default `reserve`, which counts nothing).
    fn refund(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let _ = key;
        std::future::ready(Ok(()))
    }
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
    fn reserve(
        &self,
        key: &str,
        window: Duration,
        max_failures: u32,
    ) -> impl Future<Output = Result<Reservation, StoreError>> + Send {
        (**self).reserve(key, window, max_failures)
    }
    fn refund(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        (**self).refund(key)
    }
}

/// `now + window`, never overflowing.
fn deadline(now: Instant, window: Duration) -> Instant {
    now.checked_add(window.min(MAX_WINDOW))
        .or_else(|| now.checked_add(Duration::from_secs(3600)))
        .unwrap_or(now)
}

/// In-process counters, bounded in entries (default 100,000), with atomic reservations.
///
/// When full, room for a new client is made by dropping expired windows, then the oldest
/// client **below** the limit. A client at or above the limit is never forgotten early. If
/// every counted client is at the limit (an attacker with more addresses than the store
/// holds, each failing `max_failures` times in one window), a new client is counted with its
/// neighbours in an overflow counter: per IPv4 /24 or IPv6 /48 (other keys share one), held in
/// a second table of an eighth of the capacity and run the same way; if that is full of
/// locked prefixes too, in one last shared counter. A flood can so lock out only its own
/// prefixes, or, after it locked capacity + capacity/8 counters in one window, new clients,
/// never clients already counted; memory stays bounded either way.
#[derive(Clone)]
pub struct MemoryAttemptStore {
    inner: Arc<Mutex<Counters>>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u32,
    until: Instant,
    /// Identifies this window in the eviction queue.
    seq: u64,
}

/// One bounded table of counters with its eviction queue (oldest window first).
struct Table {
    map: HashMap<String, Entry>,
    order: VecDeque<(String, u64)>,
    capacity: usize,
}

impl Table {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
        }
    }

    fn live(&self, key: &str, now: Instant) -> Option<Entry> {
        self.map.get(key).copied().filter(|e| e.until > now)
    }

    fn purge(&mut self, now: Instant) {
        self.map.retain(|_, e| e.until > now);
        let map = &self.map;
        self.order
            .retain(|(k, seq)| map.get(k).is_some_and(|e| e.seq == *seq));
    }

    /// The live entry of `key`, opening a window if there is none and there is room (making
    /// room by evicting the oldest entry below `threshold`). `None`: full of locked entries.
    fn slot(
        &mut self,
        key: &str,
        window: Duration,
        threshold: u32,
        now: Instant,
        seq: &mut u64,
    ) -> Option<&mut Entry> {
        let open = self.map.get(key).is_some_and(|e| e.until > now);
        if !open {
            let present = self.map.contains_key(key);
            if !present && self.map.len() >= self.capacity {
                self.make_room(threshold, now);
                if self.map.len() >= self.capacity {
                    return None;
                }
            }
            *seq = seq.wrapping_add(1);
            let entry = Entry {
                count: 0,
                until: deadline(now, window),
                seq: *seq,
            };
            self.map.insert(key.to_owned(), entry);
            self.order.push_back((key.to_owned(), *seq));
            if self.order.len() > self.capacity.saturating_mul(2).saturating_add(16) {
                let map = &self.map;
                self.order
                    .retain(|(k, s)| map.get(k).is_some_and(|e| e.seq == *s));
            }
        }
        self.map.get_mut(key)
    }

    fn make_room(&mut self, threshold: u32, now: Instant) {
        while let Some((k, seq)) = self.order.pop_front() {
            let Some(e) = self.map.get(&k).copied() else {
                continue;
            };
            if e.seq != seq {
                continue; // a later window of this key is queued further back
            }
            if e.until <= now || e.count < threshold {
                self.map.remove(&k);
                return;
            }
            // At or above the limit: kept until its window ends (purge drops it then).
        }
        // The queue is empty: every entry is locked. Expired ones go in the next purge (at
        // most once a second, so a flood of new keys never costs a scan each).
    }

    fn refund(&mut self, key: &str, now: Instant) -> bool {
        match self.map.get_mut(key) {
            Some(e) if e.until > now => {
                // Kept at zero: the client's next request reuses it without allocating; an
                // entry under the limit is the first to go when room is needed.
                e.count = e.count.saturating_sub(1);
                true
            }
            _ => false,
        }
    }
}

struct Counters {
    main: Table,
    /// Per-prefix counters for clients the main table has no room for.
    overflow: Table,
    /// The last resort when both tables are full of locked entries.
    last: Option<Entry>,
    /// The limit the layer asked for last ([`AttemptStore::reserve`]); entries at or above it
    /// are never evicted. `u32::MAX` until then.
    threshold: u32,
    seq: u64,
    last_purge: Instant,
}

/// Where a client's attempts are counted.
enum Place {
    Main,
    Overflow,
    Last,
}

/// The overflow counter of a key: its IPv4 /24 or IPv6 /48, or one for every other key.
fn prefix_key(key: &str) -> String {
    if let Ok(v4) = key.parse::<Ipv4Addr>() {
        let [a, b, c, _] = v4.octets();
        return format!("{a}.{b}.{c}.0/24");
    }
    let v6 = key
        .strip_suffix("/64")
        .unwrap_or(key)
        .parse::<Ipv6Addr>()
        .ok();
    match v6 {
        Some(v6) => {
            let [a, b, c, ..] = v6.segments();
            format!("{a:x}:{b:x}:{c:x}::/48")
        }
        None => "*".to_owned(),
    }
}

impl Counters {
    fn maybe_purge(&mut self, now: Instant) {
        if now.saturating_duration_since(self.last_purge) >= Duration::from_secs(1) {
            self.main.purge(now);
            self.overflow.purge(now);
            self.last_purge = now;
        }
    }

    /// The entry counting `key`, opening a window where there is room.
    fn entry(&mut self, key: &str, window: Duration, now: Instant) -> (&mut Entry, Place) {
        if !self.main.map.contains_key(key) && self.main.map.len() >= self.main.capacity {
            self.maybe_purge(now);
        }
        let threshold = self.threshold;
        if self
            .main
            .slot(key, window, threshold, now, &mut self.seq)
            .is_some()
        {
            // Borrowck: look the entry up again.
            if let Some(e) = self.main.map.get_mut(key) {
                return (e, Place::Main);
            }
        }
        let prefix = prefix_key(key);
        if self
            .overflow
            .slot(&prefix, window, threshold, now, &mut self.seq)
            .is_some()
            && let Some(e) = self.overflow.map.get_mut(&prefix)
        {
            return (e, Place::Overflow);
        }
        let last = self.last.get_or_insert(Entry {
            count: 0,
            until: deadline(now, window),
            seq: 0,
        });
        if last.until <= now {
            *last = Entry {
                count: 0,
                until: deadline(now, window),
                seq: 0,
            };
        }
        (last, Place::Last)
    }

    /// The live entry counting `key`, without opening one.
    fn find(&self, key: &str, now: Instant) -> Option<Entry> {
        if let Some(e) = self.main.live(key, now) {
            return Some(e);
        }
        if self.main.map.len() < self.main.capacity {
            return None;
        }
        self.overflow
            .live(&prefix_key(key), now)
            .or_else(|| self.last.filter(|e| e.until > now))
    }
}

impl fmt::Debug for MemoryAttemptStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let len = self.len();
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

    /// A store of up to `capacity` clients (at least 1), plus `capacity / 8` (at least 1)
    /// overflow prefixes.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Counters {
                main: Table::new(capacity),
                overflow: Table::new(capacity / 8),
                last: None,
                threshold: u32::MAX,
                seq: 0,
                last_purge: Instant::now(),
            })),
        }
    }

    /// Clients currently counted (overflow prefixes included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .map(|c| c.main.map.len().saturating_add(c.overflow.map.len()))
            .unwrap_or(0)
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
            c.find(key, now).map(|e| Attempts {
                count: e.count,
                resets_in: e.until.saturating_duration_since(now),
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
                let (e, _) = c.entry(key, window, now);
                e.count = e.count.saturating_add(1);
                Attempts {
                    count: e.count,
                    resets_in: e.until.saturating_duration_since(now),
                }
            });
        std::future::ready(result)
    }

    fn reserve(
        &self,
        key: &str,
        window: Duration,
        max_failures: u32,
    ) -> impl Future<Output = Result<Reservation, StoreError>> + Send {
        let now = Instant::now();
        let result = self
            .inner
            .lock()
            .map_err(|_| Self::poisoned())
            .map(|mut c| {
                c.threshold = max_failures;
                let (e, place) = c.entry(key, window, now);
                if e.count >= max_failures {
                    let refused = Attempts {
                        count: e.count,
                        resets_in: e.until.saturating_duration_since(now),
                    };
                    // A window opened just now for a refusal holds nothing: drop it.
                    if e.count == 0
                        && let Place::Main = place
                    {
                        c.main.map.remove(key);
                    }
                    return Reservation::Refused(refused);
                }
                e.count = e.count.saturating_add(1);
                Reservation::Reserved
            });
        std::future::ready(result)
    }

    fn refund(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let now = Instant::now();
        let result = self
            .inner
            .lock()
            .map_err(|_| Self::poisoned())
            .map(|mut c| {
                if c.main.refund(key, now) || c.main.map.len() < c.main.capacity {
                    return;
                }
                let prefix = prefix_key(key);
                if c.overflow.refund(&prefix, now) {
                    return;
                }
                if let Some(last) = &mut c.last
                    && last.until > now
                {
                    last.count = last.count.saturating_sub(1);
                }
            });
        std::future::ready(result)
    }
}

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
    /// [`ClientAddr`](crate::transport::ClientAddr)).
    proxies: Option<Arc<TrustedProxies>>,
}

struct Shared<St> {
    store: Arc<St>,
    settings: Settings,
}

/// Layer limiting failed authentications per client (see the [module docs](self)).
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
                    crate::transport::client_addr(&parts.extensions).map(address_key)
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
    /// [`TrustedProxies::client_addr`](crate::transport::TrustedProxies::client_addr)); from
    /// any other peer the header is ignored. The resolved address also becomes the request's
    /// [`ClientAddr`](crate::transport::ClientAddr) for the layers inside (audit events).
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
        ReleaseLayer {
            _store: std::marker::PhantomData,
        }
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

/// A reserved attempt travelling with its request, so [`ReleaseLayer`] can refund it.
struct Ticket<St> {
    store: Arc<St>,
    key: String,
    settled: AtomicBool,
}

impl<St> Ticket<St> {
    /// Whether this call is the first to settle the ticket.
    fn settle(&self) -> bool {
        !self.settled.swap(true, Ordering::AcqRel)
    }
}

/// The request extension carrying a [`Ticket`].
struct TicketHandle<St>(Arc<Ticket<St>>);

impl<St> Clone for TicketHandle<St> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
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
    let secs = retry_after
        .as_secs()
        .saturating_add(u64::from(retry_after.subsec_nanos() > 0))
        .max(1);
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
                    crate::audit::rate_limited(&Request::from_parts(parts, ()));
                    return Ok(too_many(a.resets_in).map(AuthBody::rejection));
                }
                Ok(r) => Some(r),
                Err(e) if settings.fail_open => {
                    tracing::warn!(target: crate::service::REJECTION_TARGET, error = %e, "failure-limit store unavailable; not limiting (fail open)");
                    None
                }
                Err(e) => return Ok(store_down(&e).map(AuthBody::rejection)),
            };
            if reservation != Some(Reservation::Reserved) {
                // Checked (a store without reservations), or not limited (fail open).
                let req = Request::from_parts(parts, body);
                let result = inner.call(req).await;
                if reservation == Some(Reservation::Checked)
                    && result.as_ref().is_ok_and(is_failure)
                {
                    record(&shared, &key).await;
                }
                return Ok(result?.map(AuthBody::inner));
            }
            let ticket = Arc::new(Ticket {
                store: shared.store.clone(),
                key,
                settled: AtomicBool::new(false),
            });
            parts.extensions.insert(TicketHandle(ticket.clone()));
            let req = Request::from_parts(parts, body);
            let result = inner.call(req).await;
            if result.as_ref().is_ok_and(is_failure) {
                // The reservation stands as the failure, unless ReleaseLayer already refunded
                // it (a layer inside the auth layer refused): then count it again.
                if !ticket.settle() {
                    record(&shared, &ticket.key).await;
                }
            } else if ticket.settle()
                && let Err(e) = shared.store.refund(&ticket.key).await
            {
                tracing::warn!(target: crate::service::REJECTION_TARGET, error = %e, "could not refund a reserved attempt");
            }
            Ok(result?.map(AuthBody::inner))
        })
    }
}

async fn record<St: AttemptStore>(shared: &Shared<St>, key: &str) {
    if let Err(e) = shared
        .store
        .record_failure(key, shared.settings.window)
        .await
    {
        tracing::warn!(target: crate::service::REJECTION_TARGET, error = %e, "could not count a failed attempt");
    }
}

/// Refunds the attempt [`FailureLimitLayer`] reserved for a request, as the request passes
/// (see [`FailureLimitLayer::release`]). Put it just inside the auth layer.
#[must_use]
pub struct ReleaseLayer<St> {
    _store: std::marker::PhantomData<fn() -> St>,
}

impl<St> Clone for ReleaseLayer<St> {
    fn clone(&self) -> Self {
        Self {
            _store: std::marker::PhantomData,
        }
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
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let ticket = req
            .extensions()
            .get::<TicketHandle<St>>()
            .map(|t| t.0.clone());
        Box::pin(async move {
            if let Some(t) = ticket
                && t.settle()
                && let Err(e) = t.store.refund(&t.key).await
            {
                tracing::warn!(target: crate::service::REJECTION_TARGET, error = %e, "could not refund a reserved attempt");
            }
            inner.call(req).await
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

    #[tokio::test]
    async fn reservations_count_before_and_refunds_give_back() {
        let s = MemoryAttemptStore::new();
        let w = Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(s.reserve("a", w, 3).await.unwrap(), Reservation::Reserved);
        }
        let Reservation::Refused(a) = s.reserve("a", w, 3).await.unwrap() else {
            panic!("the fourth is refused while three are in flight")
        };
        assert_eq!(a.count, 3);
        s.refund("a").await.unwrap();
        assert_eq!(s.reserve("a", w, 3).await.unwrap(), Reservation::Reserved);
        for _ in 0..10 {
            s.refund("a").await.unwrap();
        }
        assert_eq!(
            s.failures("a").await.unwrap().unwrap().count,
            0,
            "never below zero"
        );
        s.refund("unknown").await.unwrap();
    }

    #[tokio::test]
    async fn a_locked_client_is_never_evicted_to_make_room() {
        let s = MemoryAttemptStore::with_capacity(100);
        let w = Duration::from_secs(300);
        for _ in 0..3 {
            assert_eq!(
                s.reserve("198.51.100.66", w, 3).await.unwrap(),
                Reservation::Reserved
            );
        }
        // An address-rich attacker churns 10,000 fresh keys through the store.
        for i in 0..10_000u32 {
            let key = format!("2001:db8:{:x}:{:x}::/64", i >> 8, i & 255);
            let _ = s.reserve(&key, w, 3).await.unwrap();
        }
        assert!(
            matches!(
                s.reserve("198.51.100.66", w, 3).await.unwrap(),
                Reservation::Refused(_)
            ),
            "the locked counter survived"
        );
        assert!(s.len() <= 100 + 12, "{}", s.len());
    }

    #[tokio::test]
    async fn when_every_counter_is_locked_new_clients_share_their_prefix() {
        let s = MemoryAttemptStore::with_capacity(16); // overflow: 2 prefixes
        let w = Duration::from_secs(300);
        let lock = |key: String| {
            let s = s.clone();
            async move {
                for _ in 0..3 {
                    let _ = s.reserve(&key, w, 3).await.unwrap();
                }
            }
        };
        for i in 0..16 {
            lock(format!("10.0.0.{i}")).await;
        }
        // The store is full of locked clients; a new one from the flood's /24 is counted
        // in that prefix and locks it.
        lock("10.0.0.200".to_owned()).await;
        assert!(matches!(
            s.reserve("10.0.0.201", w, 3).await.unwrap(),
            Reservation::Refused(_)
        ));
        // A new client elsewhere has its own prefix counter: not locked out by the flood.
        assert_eq!(
            s.reserve("203.0.113.5", w, 3).await.unwrap(),
            Reservation::Reserved
        );
        s.refund("203.0.113.5").await.unwrap();
        assert_eq!(
            s.reserve("203.0.113.5", w, 3).await.unwrap(),
            Reservation::Reserved
        );
        // Clients already counted keep their own counters.
        assert!(matches!(
            s.reserve("10.0.0.3", w, 3).await.unwrap(),
            Reservation::Refused(_)
        ));
        assert!(s.len() <= 18, "{}", s.len());
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

    #[test]
    fn overflow_prefixes_are_ipv4_24_and_ipv6_48() {
        assert_eq!(prefix_key("192.0.2.77"), "192.0.2.0/24");
        assert_eq!(prefix_key("2001:db8:1:2::/64"), "2001:db8:1::/48");
        assert_eq!(prefix_key("cert:abcdef"), "*");
    }

    #[tokio::test]
    async fn a_store_full_of_locked_clients_stays_cheap_for_new_ones() {
        let s = MemoryAttemptStore::with_capacity(10_000);
        let w = Duration::from_secs(300);
        for i in 0..10_000u32 {
            let key = format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255);
            assert_eq!(s.record_failure(&key, w).await.unwrap().count, 1);
            let _ = s.reserve(&key, w, 1).await.unwrap();
        }
        let started = Instant::now();
        for i in 0..50_000u32 {
            let key = format!("2001:db8:{:x}:{:x}::/64", i >> 8, i & 255);
            let _ = s.reserve(&key, w, 1).await.unwrap();
        }
        // No scan of the 10,000 locked entries per new key (that took seconds).
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert!(s.len() <= 10_000 + 1_250, "{}", s.len());
    }
}
