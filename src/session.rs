//! Session binding: an MCP session belongs to the principal that created it. A request that
//! carries another principal's `Mcp-Session-Id` is answered 404, exactly as an unknown session
//! is, and never reaches the MCP service.
//!
//! The MCP specification says servers must not use sessions for authentication and should
//! bind session ids to user-specific information. Authentication layers check every request;
//! [`SessionBindingLayer`] adds the binding, so a stolen session id (from a log, a proxy or a
//! shared client) is worthless to anyone but its owner: they cannot attach to its SSE stream
//! (`GET`), post into it (`POST`, including answers to the server's elicitation or sampling
//! requests), or end it (`DELETE`).
//!
//! - **Creation.** A response that carries an `Mcp-Session-Id` other than the request's (the
//!   answer to `initialize`) binds that session to the caller's
//!   [`principal`](crate::AuthContext::principal) before the response leaves: the client cannot
//!   use the id before it is bound.
//! - **Use.** A request with `Mcp-Session-Id` passes only when the store binds that session to
//!   the caller. Another principal's session **and a session the store does not know** are
//!   answered `404 Not Found` with rmcp's own body for an unknown session (`Not Found: Session
//!   not found`), without calling the inner service; the two cases cannot be told apart.
//!   Refusing unknown sessions is what makes the store's bounds safe: a binding that expired
//!   or was evicted can never fall back to "unbound, let the MCP server decide", so no one can
//!   flood the store to push a victim's binding out and then take the session over. The cost
//!   is availability only: the owner gets 404 too and, as the specification requires of
//!   clients, starts a new session.
//! - **End.** A `DELETE` that the inner service answers with success removes the binding.
//! - The caller is the [`AuthContext`] the auth layer put in the request
//!   extensions; install this layer **inside** the auth layer. Requests that an
//!   [optional](crate::AuthLayer::optional) layer let through anonymously share one
//!   "anonymous" owner, distinct from every principal. Without either, the layer answers 500
//!   (a wiring bug), like [`ScopeLayer`](crate::scope::ScopeLayer).
//! - More than one `Mcp-Session-Id` header is refused with 400.
//! - If the store cannot answer, the request gets 503 with `Retry-After` (fail closed).
//! - Stores key bindings by the SHA-256 [`SessionDigest`] of the id and record the owner as the
//!   SHA-256 [`Owner`] digest of the principal; logs name a session by the first 8 hex digits
//!   of its digest, never by its id.
//!
//! Stores: [`MemorySessionStore`] (one process; bounded, idle expiry) and, with feature
//! `redis`, [`RedisSessionStore`] (shared by every instance, so sessions can move between
//! instances that share rmcp's session state).
//!
//! Limits:
//!
//! - With a per-process store, a session is usable only on the instance that created it
//!   (rmcp's default session manager is per-process too). Instances that share sessions
//!   (rmcp's external session store) need a shared binding store, or they answer 404.
//! - If recording a new binding fails, the client gets 503 instead of the session id; the
//!   session rmcp created is unusable (unknown to the store, hence 404) and ends at rmcp's
//!   idle timeout.
//! - Only `Mcp-Session-Id` is bound. rmcp servers configured with an event store also replay
//!   events to a `GET` that carries `Last-Event-ID` and no session (the stateless protocol
//!   revision); those replays are keyed by the event id alone and are not checked here.
//!
//! ```
//! use mcp_auth::session::{MemorySessionStore, SessionBindingLayer};
//! use mcp_auth::{AuthContext, AuthMethod};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Stands in for rmcp: a request without a session creates "s-1"; others are served.
//! let mcp = service_fn(|req: http::Request<()>| async move {
//!     let mut res = http::Response::new(String::from("ok"));
//!     if !req.headers().contains_key("mcp-session-id") {
//!         res.headers_mut().insert("mcp-session-id", "s-1".parse().unwrap());
//!     }
//!     Ok::<_, std::convert::Infallible>(res)
//! });
//! // In a real server the auth layer (outside) puts the caller's AuthContext there.
//! let svc = SessionBindingLayer::new(MemorySessionStore::new()).layer(mcp);
//! let call = |user: &str, session: Option<&str>| {
//!     let mut req = http::Request::post("/mcp");
//!     if let Some(s) = session {
//!         req = req.header("mcp-session-id", s);
//!     }
//!     let mut req = req.body(()).unwrap();
//!     req.extensions_mut()
//!         .insert(AuthContext::builder(user, AuthMethod::ApiKey).build());
//!     svc.clone().oneshot(req)
//! };
//! // alice's initialize creates s-1, bound to alice.
//! let res = call("alice", None).await.unwrap();
//! assert_eq!(res.headers()["mcp-session-id"], "s-1");
//! // alice may use it; bob, holding the same id, is told it does not exist.
//! assert_eq!(call("alice", Some("s-1")).await.unwrap().status(), 200);
//! assert_eq!(call("bob", Some("s-1")).await.unwrap().status(), 404);
//! // So is anyone with an id the layer never bound.
//! assert_eq!(call("alice", Some("s-2")).await.unwrap().status(), 404);
//! # }
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use sha2::{Digest as _, Sha256};
use tower_layer::Layer;
use tower_service::Service;

use crate::body::AuthBody;
use crate::context::{Anonymous, AuthContext};
use crate::store::StoreError;

/// The session header of MCP's streamable HTTP transport.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// The body rmcp's streamable HTTP server (3.9) sends with its 404 for an unknown session;
/// the layer sends the same for sessions that are not the caller's.
pub const NOT_FOUND_BODY: &str = "Not Found: Session not found";

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The SHA-256 digest of a session id: what stores keep and logs name (by its first 8 hex
/// digits), so the id itself is never stored or logged.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionDigest([u8; 32]);

impl SessionDigest {
    /// The digest of the session id `id` (the header value's bytes).
    #[must_use]
    pub fn of(id: &[u8]) -> Self {
        Self(Sha256::digest(id).into())
    }

    /// The digest's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest in lowercase hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// The first 8 hex digits: enough to correlate log lines, nothing of the id.
    fn short(&self) -> String {
        hex(self.0.get(..4).unwrap_or_default())
    }
}

impl fmt::Debug for SessionDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionDigest({}…)", self.short())
    }
}

/// Who a session belongs to: the SHA-256 digest of a principal key
/// ([`AuthContext::principal`]), or the shared anonymous owner.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Owner([u8; 32]);

impl Owner {
    /// The owner for the principal key `principal`.
    #[must_use]
    pub fn of(principal: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"mcp-auth session owner\0principal\0");
        h.update(principal.as_bytes());
        Self(h.finalize().into())
    }

    /// The owner of sessions created without credentials (through an optional auth layer);
    /// equal to no principal's owner.
    #[must_use]
    pub fn anonymous() -> Self {
        Self(Sha256::digest(b"mcp-auth session owner\0anonymous").into())
    }

    /// The digest's bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The digest in lowercase hex.
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses [`Owner::to_hex`]'s output.
    #[must_use]
    pub fn from_hex(s: &str) -> Option<Self> {
        let s = s.as_bytes();
        if s.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
            let digit = |c: u8| (c as char).to_digit(16);
            let (hi, lo) = match pair {
                [hi, lo] => (digit(*hi)?, digit(*lo)?),
                _ => return None,
            };
            *byte = u8::try_from(hi * 16 + lo).ok()?;
        }
        Some(Self(out))
    }
}

impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Owner({}…)", hex(self.0.get(..4).unwrap_or_default()))
    }
}

/// Where session bindings live.
pub trait SessionStore: Send + Sync + 'static {
    /// The owner of `session`, if it is bound and has not expired; a hit counts as use (it
    /// restarts the idle timeout).
    fn owner(
        &self,
        session: &SessionDigest,
    ) -> impl Future<Output = Result<Option<Owner>, StoreError>> + Send;

    /// Binds `session` to `owner` unless it is bound already; returns its owner after the
    /// call (`owner`, or the earlier one, which is never replaced).
    fn bind(
        &self,
        session: &SessionDigest,
        owner: &Owner,
    ) -> impl Future<Output = Result<Owner, StoreError>> + Send;

    /// Removes the binding of `session` if `owner` owns it; returns whether it did.
    fn unbind(
        &self,
        session: &SessionDigest,
        owner: &Owner,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<T: SessionStore + ?Sized> SessionStore for Arc<T> {
    fn owner(
        &self,
        session: &SessionDigest,
    ) -> impl Future<Output = Result<Option<Owner>, StoreError>> + Send {
        (**self).owner(session)
    }
    fn bind(
        &self,
        session: &SessionDigest,
        owner: &Owner,
    ) -> impl Future<Output = Result<Owner, StoreError>> + Send {
        (**self).bind(session, owner)
    }
    fn unbind(
        &self,
        session: &SessionDigest,
        owner: &Owner,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        (**self).unbind(session, owner)
    }
}

// --- memory store ----------------------------------------------------------------------------------

/// Default [`MemorySessionStore`] capacity.
pub const DEFAULT_CAPACITY: usize = 100_000;
/// Default bindings per owner in a [`MemorySessionStore`].
pub const DEFAULT_PER_OWNER: usize = 1_000;
/// Default idle timeout of a binding (rmcp's own session idle timeout is 5 minutes).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// In-process bindings, bounded three ways:
///
/// - a binding unused for the idle timeout (default 1 hour, restarted by every request of the
///   session) expires;
/// - an owner holds at most `per_owner` bindings (default 1,000): a new one evicts that
///   owner's least recently used binding, so one principal can only crowd out itself;
/// - the store holds at most `capacity` bindings (default 100,000): when full, the least
///   recently used binding of anyone is evicted.
///
/// Losing a binding never hands a session to someone else: [`SessionBindingLayer`] answers
/// 404 for sessions the store does not know, so an evicted session is dead for everyone,
/// including an attacker who flooded the store to evict it. Active sessions are the most
/// recently used, so a flood must create more sessions than the capacity between two requests
/// of a victim to end its session (and the victim's client then starts a new one).
#[derive(Clone)]
pub struct MemorySessionStore {
    inner: Arc<Mutex<Bindings>>,
}

struct Entry {
    owner: Owner,
    /// Last use and a sequence number (ties): the key in `lru`.
    stamp: (Instant, u64),
}

struct Bindings {
    map: HashMap<SessionDigest, Entry>,
    lru: BTreeMap<(Instant, u64), SessionDigest>,
    /// Each owner's bindings by last use (its own LRU order).
    by_owner: HashMap<Owner, BTreeMap<(Instant, u64), SessionDigest>>,
    seq: u64,
    capacity: usize,
    per_owner: usize,
    idle: Duration,
}

impl Bindings {
    fn stamp(&mut self, now: Instant) -> (Instant, u64) {
        self.seq = self.seq.wrapping_add(1);
        (now, self.seq)
    }

    fn expired(&self, stamp: (Instant, u64), now: Instant) -> bool {
        now.saturating_duration_since(stamp.0) >= self.idle
    }

    fn remove(&mut self, session: &SessionDigest) -> Option<Entry> {
        let entry = self.map.remove(session)?;
        self.lru.remove(&entry.stamp);
        if let Some(list) = self.by_owner.get_mut(&entry.owner) {
            list.remove(&entry.stamp);
            if list.is_empty() {
                self.by_owner.remove(&entry.owner);
            }
        }
        Some(entry)
    }

    /// Drops expired bindings, oldest first (amortised: each binding is dropped once).
    fn sweep(&mut self, now: Instant) {
        while let Some((stamp, session)) = self.lru.first_key_value().map(|(k, v)| (*k, *v)) {
            if !self.expired(stamp, now) {
                break;
            }
            self.remove(&session);
        }
    }

    fn touch(&mut self, session: &SessionDigest, now: Instant) -> Option<Owner> {
        let stamp = self.stamp(now);
        let entry = self.map.get_mut(session)?;
        let old = std::mem::replace(&mut entry.stamp, stamp);
        let owner = entry.owner;
        self.lru.remove(&old);
        self.lru.insert(stamp, *session);
        if let Some(list) = self.by_owner.get_mut(&owner) {
            list.remove(&old);
            list.insert(stamp, *session);
        }
        Some(owner)
    }

    /// The owner's least recently used binding.
    fn owner_lru(&self, owner: &Owner) -> Option<SessionDigest> {
        self.by_owner.get(owner)?.first_key_value().map(|(_, s)| *s)
    }
}

impl fmt::Debug for MemorySessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MemorySessionStore");
        if let Ok(b) = self.inner.lock() {
            d.field("bindings", &b.map.len())
                .field("capacity", &b.capacity)
                .field("per_owner", &b.per_owner)
                .field("idle", &b.idle);
        }
        d.finish()
    }
}

impl Default for MemorySessionStore {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl MemorySessionStore {
    /// A store of up to 100,000 bindings, 1,000 per owner, idle timeout 1 hour.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A store of up to `capacity` bindings (at least 1).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Bindings {
                map: HashMap::new(),
                lru: BTreeMap::new(),
                by_owner: HashMap::new(),
                seq: 0,
                capacity: capacity.max(1),
                per_owner: DEFAULT_PER_OWNER,
                idle: DEFAULT_IDLE_TIMEOUT,
            })),
        }
    }

    /// At most `n` bindings per owner (at least 1); a new one evicts the owner's least
    /// recently used. Several agents sharing one credential count as one owner.
    #[must_use]
    pub fn per_owner(self, n: usize) -> Self {
        if let Ok(mut b) = self.inner.lock() {
            b.per_owner = n.max(1);
        }
        self
    }

    /// Bindings unused for `idle` expire (at least 1 ms). Keep it above your MCP server's own
    /// session idle timeout, or idle sessions will be refused before the server ends them.
    #[must_use]
    pub fn idle_timeout(self, idle: Duration) -> Self {
        if let Ok(mut b) = self.inner.lock() {
            b.idle = idle.max(Duration::from_millis(1));
        }
        self
    }

    /// Bindings held (expired ones included until they are swept).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.lock().map(|b| b.map.len()).unwrap_or(0)
    }

    /// Whether no binding is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn with<T>(&self, f: impl FnOnce(&mut Bindings) -> T) -> Result<T, StoreError> {
        self.inner
            .lock()
            .map(|mut b| f(&mut b))
            .map_err(|_| StoreError::unavailable("session store lock poisoned"))
    }
}

impl SessionStore for MemorySessionStore {
    fn owner(
        &self,
        session: &SessionDigest,
    ) -> impl Future<Output = Result<Option<Owner>, StoreError>> + Send {
        let now = Instant::now();
        std::future::ready(self.with(|b| {
            let stamp = b.map.get(session).map(|e| e.stamp)?;
            if b.expired(stamp, now) {
                b.remove(session);
                return None;
            }
            b.touch(session, now)
        }))
    }

    fn bind(
        &self,
        session: &SessionDigest,
        owner: &Owner,
    ) -> impl Future<Output = Result<Owner, StoreError>> + Send {
        let now = Instant::now();
        std::future::ready(self.with(|b| {
            b.sweep(now);
            if let Some(existing) = b.touch(session, now) {
                return existing;
            }
            if b.by_owner.get(owner).map_or(0, BTreeMap::len) >= b.per_owner
                && let Some(oldest) = b.owner_lru(owner)
            {
                tracing::debug!(session = %oldest.short(), "session binding evicted: its owner reached the per-owner limit");
                b.remove(&oldest);
            }
            while b.map.len() >= b.capacity {
                let Some(oldest) = b.lru.first_key_value().map(|(_, s)| *s) else {
                    break;
                };
                tracing::debug!(session = %oldest.short(), "session binding evicted: the store is full");
                b.remove(&oldest);
            }
            let stamp = b.stamp(now);
            b.map.insert(
                *session,
                Entry {
                    owner: *owner,
                    stamp,
                },
            );
            b.lru.insert(stamp, *session);
            b.by_owner.entry(*owner).or_default().insert(stamp, *session);
            *owner
        }))
    }

    fn unbind(
        &self,
        session: &SessionDigest,
        owner: &Owner,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send {
        std::future::ready(self.with(|b| {
            if b.map.get(session).is_some_and(|e| e.owner == *owner) {
                b.remove(session);
                true
            } else {
                false
            }
        }))
    }
}

// --- Redis store -----------------------------------------------------------------------------------

#[cfg(feature = "redis")]
pub use self::redis_store::RedisSessionStore;

#[cfg(feature = "redis")]
mod redis_store {
    use std::future::Future;
    use std::sync::LazyLock;
    use std::time::Duration;

    use redis::Script;

    use super::{DEFAULT_IDLE_TIMEOUT, Owner, SessionDigest, SessionStore};
    use crate::redis::Redis;
    use crate::store::StoreError;

    /// The owner, refreshing the idle timeout. KEYS: the binding. ARGV: idle (ms).
    static OWNER: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r"
local v = redis.call('GET', KEYS[1])
if v then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return v",
        )
    });

    /// Binds unless bound; returns the owner. KEYS: the binding. ARGV: owner, idle (ms).
    static BIND: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r"
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return v
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]",
        )
    });

    /// Deletes the binding if `owner` owns it. KEYS: the binding. ARGV: owner.
    static UNBIND: LazyLock<Script> = LazyLock::new(|| {
        Script::new(
            r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0",
        )
    });

    /// Bindings in Redis, shared by every instance (feature `redis`).
    ///
    /// One string per session: key `<prefix>session:<h>` where `<h>` is the hex SHA-256 of
    /// the hex [`SessionDigest`] (so neither the id nor its plain digest is a key), value the
    /// hex [`Owner`], expiring after the idle timeout (default 1 hour), which every use
    /// restarts. Reads and writes are Lua scripts (atomic, one round trip); a binding is never
    /// replaced, only removed by its owner or by expiry. Redis's own eviction (`maxmemory`)
    /// may drop bindings: the layer then answers 404 for those sessions (fail closed). A value
    /// that is not an owner digest makes the request 503.
    #[derive(Clone, Debug)]
    pub struct RedisSessionStore {
        redis: Redis,
        idle: Duration,
    }

    impl RedisSessionStore {
        /// Bindings on `redis` (clones share its connection).
        #[must_use]
        pub fn new(redis: &Redis) -> Self {
            Self {
                redis: redis.clone(),
                idle: DEFAULT_IDLE_TIMEOUT,
            }
        }

        /// Bindings unused for `idle` expire (at least 1 ms).
        #[must_use]
        pub fn idle_timeout(mut self, idle: Duration) -> Self {
            self.idle = idle.max(Duration::from_millis(1));
            self
        }

        fn key(&self, session: &SessionDigest) -> String {
            self.redis.key("session", &session.to_hex())
        }

        fn idle_ms(&self) -> u64 {
            u64::try_from(self.idle.as_millis())
                .unwrap_or(u64::MAX)
                .clamp(1, 1 << 52)
        }
    }

    fn parse(v: &str) -> Result<Owner, StoreError> {
        Owner::from_hex(v)
            .ok_or_else(|| StoreError::unavailable("redis: malformed session binding"))
    }

    impl SessionStore for RedisSessionStore {
        fn owner(
            &self,
            session: &SessionDigest,
        ) -> impl Future<Output = Result<Option<Owner>, StoreError>> + Send {
            let key = self.key(session);
            let idle = self.idle_ms();
            let redis = self.redis.clone();
            async move {
                let v: Option<String> = redis
                    .run(
                        |mut c| async move { OWNER.key(&key).arg(idle).invoke_async(&mut c).await },
                    )
                    .await?;
                v.as_deref().map(parse).transpose()
            }
        }

        fn bind(
            &self,
            session: &SessionDigest,
            owner: &Owner,
        ) -> impl Future<Output = Result<Owner, StoreError>> + Send {
            let key = self.key(session);
            let owner = owner.to_hex();
            let idle = self.idle_ms();
            let redis = self.redis.clone();
            async move {
                let v: String = redis
                    .run(|mut c| async move {
                        BIND.key(&key)
                            .arg(&owner)
                            .arg(idle)
                            .invoke_async(&mut c)
                            .await
                    })
                    .await?;
                parse(&v)
            }
        }

        fn unbind(
            &self,
            session: &SessionDigest,
            owner: &Owner,
        ) -> impl Future<Output = Result<bool, StoreError>> + Send {
            let key = self.key(session);
            let owner = owner.to_hex();
            let redis = self.redis.clone();
            async move {
                let n: i64 =
                    redis
                        .run(|mut c| async move {
                            UNBIND.key(&key).arg(&owner).invoke_async(&mut c).await
                        })
                        .await?;
                Ok(n > 0)
            }
        }
    }
}

// --- the layer -------------------------------------------------------------------------------------

/// Layer binding MCP sessions to the principal that created them (see the
/// [module docs](self)). Install it inside the auth layer.
#[must_use]
pub struct SessionBindingLayer<St> {
    store: Arc<St>,
}

impl<St> Clone for SessionBindingLayer<St> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
        }
    }
}

impl<St> fmt::Debug for SessionBindingLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBindingLayer")
            .finish_non_exhaustive()
    }
}

impl<St: SessionStore> SessionBindingLayer<St> {
    /// Bindings in `store`.
    pub fn new(store: St) -> Self {
        Self {
            store: Arc::new(store),
        }
    }
}

impl<S, St> Layer<S> for SessionBindingLayer<St> {
    type Service = SessionBinding<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionBinding {
            inner,
            store: self.store.clone(),
        }
    }
}

/// The service built by [`SessionBindingLayer`].
pub struct SessionBinding<S, St> {
    inner: S,
    store: Arc<St>,
}

impl<S: Clone, St> Clone for SessionBinding<S, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            store: self.store.clone(),
        }
    }
}

impl<S: fmt::Debug, St> fmt::Debug for SessionBinding<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBinding")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// rmcp's answer to a request for a session it does not know: 404, a plain-text body, no
/// other header.
fn not_found() -> Response<Bytes> {
    let mut res = Response::new(Bytes::from_static(NOT_FOUND_BODY.as_bytes()));
    *res.status_mut() = StatusCode::NOT_FOUND;
    res
}

fn json(status: StatusCode, code: &str, description: &str) -> Response<Bytes> {
    let body = serde_json::json!({ "error": code, "error_description": description }).to_string();
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

fn store_down(err: &StoreError) -> Response<Bytes> {
    tracing::warn!(target: crate::service::REJECTION_TARGET, error = %err, "session store unavailable; refusing (fail closed)");
    let mut res = json(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "sessions are temporarily unavailable",
    );
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    res
}

type BoxFuture<B, E> = Pin<Box<dyn Future<Output = Result<Response<AuthBody<B>>, E>> + Send>>;

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for SessionBinding<S, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    St: SessionStore,
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
        let store = self.store.clone();
        Box::pin(async move {
            let refuse = |res: Response<Bytes>| Ok(res.map(AuthBody::rejection));
            let owner = match req.extensions().get::<AuthContext>() {
                Some(ctx) => Owner::of(ctx.principal()),
                None if req.extensions().get::<Anonymous>().is_some() => Owner::anonymous(),
                None => {
                    tracing::error!(target: crate::service::REJECTION_TARGET, reason = "server_error", "SessionBindingLayer found no AuthContext: install it inside an mcp-auth layer");
                    return refuse(json(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "SessionBindingLayer found no AuthContext: install it inside an mcp-auth layer",
                    ));
                }
            };
            let mut ids = req.headers().get_all(SESSION_HEADER).iter();
            let session = ids.next().map(|v| SessionDigest::of(v.as_bytes()));
            if ids.next().is_some() {
                tracing::debug!(target: crate::service::REJECTION_TARGET, reason = "invalid_request", "more than one Mcp-Session-Id header");
                return refuse(json(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "more than one Mcp-Session-Id header",
                ));
            }
            if let Some(session) = &session {
                match store.owner(session).await {
                    Ok(Some(o)) if o == owner => {}
                    Ok(found) => {
                        let reason = if found.is_some() {
                            "foreign_session"
                        } else {
                            "unknown_session"
                        };
                        tracing::debug!(target: crate::service::REJECTION_TARGET, reason, session = %session.short(), "session refused (404)");
                        crate::audit::refused(&req, reason);
                        return refuse(not_found());
                    }
                    Err(e) => return refuse(store_down(&e)),
                }
            }
            let delete = req.method() == Method::DELETE;
            let res = inner.call(req).await?;
            if let Some(session) = &session
                && delete
                && res.status().is_success()
                && let Err(e) = store.unbind(session, &owner).await
            {
                tracing::warn!(error = %e, session = %session.short(), "could not remove a deleted session's binding; it expires on its own");
            }
            let created = res
                .headers()
                .get(SESSION_HEADER)
                .map(|v| SessionDigest::of(v.as_bytes()))
                .filter(|created| session.as_ref() != Some(created));
            if let Some(created) = created {
                match store.bind(&created, &owner).await {
                    Ok(o) if o == owner => {
                        tracing::debug!(session = %created.short(), "session bound to its creator");
                    }
                    Ok(_) => {
                        // Another principal's session already has this id: never hand it over.
                        tracing::error!(target: crate::service::REJECTION_TARGET, session = %created.short(), "a new session id is already bound to another principal; refusing");
                        return refuse(json(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "server_error",
                            "the session could not be created",
                        ));
                    }
                    Err(e) => return refuse(store_down(&e)),
                }
            }
            Ok(res.map(AuthBody::inner))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(i: u32) -> SessionDigest {
        SessionDigest::of(format!("session-{i}").as_bytes())
    }

    #[test]
    fn owners_are_domain_separated_and_round_trip_through_hex() {
        let alice = Owner::of("|alice|");
        assert_ne!(alice, Owner::of("|bob|"));
        assert_ne!(Owner::of(""), Owner::anonymous());
        assert_eq!(Owner::from_hex(&alice.to_hex()), Some(alice));
        assert_eq!(Owner::from_hex("zz"), None);
        assert_eq!(Owner::from_hex(&"g".repeat(64)), None);
        let d = SessionDigest::of(b"0f8fad5b-d9cb-469f-a165-70867728950e");
        let debug = format!("{d:?}");
        assert!(!debug.contains("0f8fad5b"), "{debug}");
        assert_eq!(debug.len(), "SessionDigest(…)".len() + 8, "{debug}");
    }

    #[tokio::test]
    async fn bindings_are_never_replaced_and_only_their_owner_unbinds() {
        let store = MemorySessionStore::new();
        let (a, b) = (Owner::of("a"), Owner::of("b"));
        assert_eq!(store.owner(&s(1)).await.unwrap(), None);
        assert_eq!(store.bind(&s(1), &a).await.unwrap(), a);
        assert_eq!(store.bind(&s(1), &b).await.unwrap(), a, "first owner stays");
        assert_eq!(store.owner(&s(1)).await.unwrap(), Some(a));
        assert!(!store.unbind(&s(1), &b).await.unwrap());
        assert_eq!(store.owner(&s(1)).await.unwrap(), Some(a));
        assert!(store.unbind(&s(1), &a).await.unwrap());
        assert_eq!(store.owner(&s(1)).await.unwrap(), None);
        assert!(store.is_empty());
    }

    #[tokio::test]
    async fn idle_bindings_expire_and_use_keeps_them_alive() {
        let store = MemorySessionStore::new().idle_timeout(Duration::from_millis(80));
        let a = Owner::of("a");
        store.bind(&s(1), &a).await.unwrap();
        store.bind(&s(2), &a).await.unwrap();
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            assert_eq!(store.owner(&s(1)).await.unwrap(), Some(a));
        }
        assert_eq!(store.owner(&s(2)).await.unwrap(), None, "idle 120 ms");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(store.owner(&s(1)).await.unwrap(), None);
        // Expired bindings are swept by the next bind, whoever makes it.
        store.bind(&s(3), &Owner::of("b")).await.unwrap();
        assert_eq!(store.len(), 1);
    }

    #[tokio::test]
    async fn one_owner_can_only_crowd_out_its_own_bindings() {
        let store = MemorySessionStore::with_capacity(100).per_owner(3);
        let (victim, attacker) = (Owner::of("victim"), Owner::of("attacker"));
        store.bind(&s(0), &victim).await.unwrap();
        for i in 1..=1000 {
            store.bind(&s(i), &attacker).await.unwrap();
        }
        assert_eq!(store.owner(&s(0)).await.unwrap(), Some(victim));
        assert_eq!(
            store.len(),
            4,
            "the victim's one and the attacker's last three"
        );
        for i in 998..=1000 {
            assert_eq!(store.owner(&s(i)).await.unwrap(), Some(attacker));
        }
        assert_eq!(store.owner(&s(997)).await.unwrap(), None);
        // Use reorders an owner's bindings: the one just used is not the next to go.
        assert_eq!(store.owner(&s(998)).await.unwrap(), Some(attacker));
        store.bind(&s(1001), &attacker).await.unwrap();
        assert_eq!(store.owner(&s(998)).await.unwrap(), Some(attacker));
        assert_eq!(store.owner(&s(999)).await.unwrap(), None);
        consistent(&store);
    }

    #[tokio::test]
    async fn a_full_store_evicts_the_least_recently_used_binding() {
        let store = MemorySessionStore::with_capacity(10);
        let active = Owner::of("active");
        store.bind(&s(0), &active).await.unwrap();
        for i in 1..1000 {
            // The active user's session is used between the flood's creations.
            assert_eq!(store.owner(&s(0)).await.unwrap(), Some(active), "at {i}");
            store
                .bind(&s(i), &Owner::of(&format!("flood-{i}")))
                .await
                .unwrap();
            assert!(store.len() <= 10);
        }
        assert_eq!(store.owner(&s(1)).await.unwrap(), None, "flooded out");
        // Once unused, it goes in its turn.
        for i in 5000..5010 {
            store.bind(&s(i), &Owner::of("x")).await.unwrap();
        }
        assert_eq!(store.owner(&s(0)).await.unwrap(), None);
        assert_eq!(store.len(), 10);
        consistent(&store);
    }

    /// The three indexes describe the same bindings.
    fn consistent(store: &MemorySessionStore) {
        let inner = store.inner.lock().unwrap();
        assert_eq!(inner.lru.len(), inner.map.len());
        assert_eq!(
            inner.by_owner.values().map(BTreeMap::len).sum::<usize>(),
            inner.map.len()
        );
        for (d, e) in &inner.map {
            assert_eq!(inner.lru.get(&e.stamp), Some(d));
            assert_eq!(inner.by_owner[&e.owner].get(&e.stamp), Some(d));
        }
    }

    // --- the layer, over a stand-in MCP service ---------------------------------------------

    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::{ServiceExt, service_fn};

    /// Creates session "s-<n>" for requests without one, answers DELETE with 202 and counts
    /// the requests it sees.
    fn mcp(
        seen: Arc<AtomicUsize>,
    ) -> impl Service<
        Request<()>,
        Response = Response<String>,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        service_fn(move |req: Request<()>| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut res = Response::new(String::from("ok"));
                if req.method() == Method::DELETE {
                    *res.status_mut() = StatusCode::ACCEPTED;
                } else if !req.headers().contains_key(SESSION_HEADER) {
                    res.headers_mut()
                        .insert(SESSION_HEADER, format!("s-{n}").parse().unwrap());
                }
                Ok(res)
            }
        })
    }

    fn req(method: Method, who: Option<&str>, sessions: &[&str]) -> Request<()> {
        let mut req = Request::builder().method(method).uri("/mcp");
        for s in sessions {
            req = req.header(SESSION_HEADER, *s);
        }
        let mut req = req.body(()).unwrap();
        match who {
            Some("") => {
                req.extensions_mut().insert(Anonymous);
            }
            Some(who) => {
                req.extensions_mut()
                    .insert(AuthContext::builder(who, crate::AuthMethod::ApiKey).build());
            }
            None => {}
        }
        req
    }

    async fn status<St: SessionStore>(
        svc: &SessionBinding<
            impl Service<
                Request<()>,
                Response = Response<String>,
                Error = std::convert::Infallible,
                Future = impl Send + 'static,
            > + Clone
            + Send
            + 'static,
            St,
        >,
        r: Request<()>,
    ) -> (StatusCode, Option<String>) {
        let res = svc.clone().oneshot(r).await.unwrap();
        let id = res
            .headers()
            .get(SESSION_HEADER)
            .map(|v| v.to_str().unwrap().to_owned());
        (res.status(), id)
    }

    #[tokio::test]
    async fn delete_unbinds_only_the_owners_session() {
        let seen = Arc::new(AtomicUsize::new(0));
        let store = MemorySessionStore::new();
        let svc = SessionBindingLayer::new(store.clone()).layer(mcp(seen.clone()));
        let (_, id) = status(&svc, req(Method::POST, Some("alice"), &[])).await;
        let id = id.unwrap();
        assert_eq!(store.len(), 1);
        let r = status(&svc, req(Method::DELETE, Some("bob"), &[&id])).await;
        assert_eq!(r.0, StatusCode::NOT_FOUND);
        assert_eq!(store.len(), 1, "bob's DELETE left it");
        assert_eq!(
            seen.load(Ordering::SeqCst),
            1,
            "and never reached the service"
        );
        let r = status(&svc, req(Method::DELETE, Some("alice"), &[&id])).await;
        assert_eq!(r.0, StatusCode::ACCEPTED);
        assert!(store.is_empty());
        let r = status(&svc, req(Method::POST, Some("alice"), &[&id])).await;
        assert_eq!(r.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn anonymous_sessions_belong_to_anonymous_callers_only() {
        let seen = Arc::new(AtomicUsize::new(0));
        let svc = SessionBindingLayer::new(MemorySessionStore::new()).layer(mcp(seen.clone()));
        let (_, anon) = status(&svc, req(Method::POST, Some(""), &[])).await;
        let (_, alice) = status(&svc, req(Method::POST, Some("alice"), &[])).await;
        let (anon, alice) = (anon.unwrap(), alice.unwrap());
        assert_eq!(
            status(&svc, req(Method::GET, Some(""), &[&anon])).await.0,
            StatusCode::OK
        );
        assert_eq!(
            status(&svc, req(Method::GET, Some("alice"), &[&anon]))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(&svc, req(Method::GET, Some(""), &[&alice])).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(&svc, req(Method::GET, Some("alice"), &[&alice]))
                .await
                .0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn without_an_auth_context_or_with_two_session_headers_nothing_passes() {
        let seen = Arc::new(AtomicUsize::new(0));
        let svc = SessionBindingLayer::new(MemorySessionStore::new()).layer(mcp(seen.clone()));
        let (_, id) = status(&svc, req(Method::POST, Some("alice"), &[])).await;
        let id = id.unwrap();
        let before = seen.load(Ordering::SeqCst);
        let r = status(&svc, req(Method::POST, None, &[])).await;
        assert_eq!(r, (StatusCode::INTERNAL_SERVER_ERROR, None), "wiring bug");
        let r = status(&svc, req(Method::POST, Some("alice"), &[&id, "s-99"])).await;
        assert_eq!(r.0, StatusCode::BAD_REQUEST);
        let r = status(&svc, req(Method::POST, Some("bob"), &["s-99", &id])).await;
        assert_eq!(r.0, StatusCode::BAD_REQUEST);
        assert_eq!(seen.load(Ordering::SeqCst), before);
    }

    /// A store that cannot answer.
    struct Down;
    impl SessionStore for Down {
        async fn owner(&self, _: &SessionDigest) -> Result<Option<Owner>, StoreError> {
            Err(StoreError::unavailable("down"))
        }
        async fn bind(&self, _: &SessionDigest, _: &Owner) -> Result<Owner, StoreError> {
            Err(StoreError::unavailable("down"))
        }
        async fn unbind(&self, _: &SessionDigest, _: &Owner) -> Result<bool, StoreError> {
            Err(StoreError::unavailable("down"))
        }
    }

    #[tokio::test]
    async fn a_store_that_cannot_answer_fails_closed() {
        let seen = Arc::new(AtomicUsize::new(0));
        let svc = SessionBindingLayer::new(Down).layer(mcp(seen.clone()));
        // Use of a session: 503 before the service.
        let res = svc
            .clone()
            .oneshot(req(Method::GET, Some("alice"), &["s-1"]))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[RETRY_AFTER], "5");
        assert_eq!(seen.load(Ordering::SeqCst), 0);
        // Creation: the id is never handed out unbound.
        let r = status(&svc, req(Method::POST, Some("alice"), &[])).await;
        assert_eq!(r, (StatusCode::SERVICE_UNAVAILABLE, None));
    }
}
