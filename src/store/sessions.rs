//! Session bindings for [`SessionBindingLayer`](crate::session::SessionBindingLayer): the
//! [`SessionStore`] trait, the digests it keys by ([`SessionDigest`], [`Owner`]), the
//! bounded in-memory [`MemorySessionStore`] and, with feature `redis`, [`RedisSessionStore`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::StoreError;

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
    pub(crate) fn short(&self) -> String {
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
pub const DEFAULT_SESSION_CAPACITY: usize = 100_000;
/// Default bindings per owner in a [`MemorySessionStore`].
pub const DEFAULT_SESSIONS_PER_OWNER: usize = 1_000;
/// Default idle timeout of a binding (rmcp's own session idle timeout is 5 minutes).
pub const DEFAULT_SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

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
        Self::with_capacity(DEFAULT_SESSION_CAPACITY)
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
                per_owner: DEFAULT_SESSIONS_PER_OWNER,
                idle: DEFAULT_SESSION_IDLE_TIMEOUT,
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

    use super::{DEFAULT_SESSION_IDLE_TIMEOUT, Owner, SessionDigest, SessionStore};
    use crate::store::StoreError;
    use crate::store::redis::Redis;

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
                idle: DEFAULT_SESSION_IDLE_TIMEOUT,
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
}
