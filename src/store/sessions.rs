//! Session bindings for [`SessionBindingLayer`](crate::session::SessionBindingLayer): the
//! [`SessionStore`] trait, the digests it keys by ([`SessionDigest`], [`Owner`]), the
//! bounded in-memory [`MemorySessionStore`] and, with feature `redis`,
//! [`RedisSessionStore`](crate::store::RedisSessionStore).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::StoreError;
use super::bounded::{Locked, Queue, memory_store};
use super::hex::{hex, unhex};

/// `as_bytes` and `to_hex` of a SHA-256 digest newtype (`struct $digest([u8; 32])`).
macro_rules! digest_accessors {
    ($digest:ident) => {
        impl $digest {
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
        }
    };
}

digest_accessors!(SessionDigest);
digest_accessors!(Owner);

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
/// ([`AuthContext::principal`](crate::AuthContext::principal)), or the shared anonymous owner.
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

    /// Parses [`Owner::to_hex`]'s output.
    #[must_use]
    pub fn from_hex(s: &str) -> Option<Self> {
        unhex(s)?.try_into().ok().map(Self)
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
    async fn owner(&self, session: &SessionDigest) -> Result<Option<Owner>, StoreError> {
        (**self).owner(session).await
    }
    async fn bind(&self, session: &SessionDigest, owner: &Owner) -> Result<Owner, StoreError> {
        (**self).bind(session, owner).await
    }
    async fn unbind(&self, session: &SessionDigest, owner: &Owner) -> Result<bool, StoreError> {
        (**self).unbind(session, owner).await
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
///
/// [`SessionBindingLayer`]: crate::session::SessionBindingLayer
#[derive(Clone)]
pub struct MemorySessionStore {
    inner: Locked<Bindings>,
}

struct Entry {
    owner: Owner,
    last_use: Instant,
    /// Its place in `lru`.
    seq: u64,
    /// Its place in its owner's queue in `by_owner`.
    owner_seq: u64,
}

struct Bindings {
    map: HashMap<SessionDigest, Entry>,
    /// Every binding, least recently used first.
    lru: Queue<SessionDigest>,
    /// Each owner's bindings, least recently used first.
    by_owner: HashMap<Owner, Queue<SessionDigest>>,
    capacity: usize,
    per_owner: usize,
    idle: Duration,
}

impl Bindings {
    fn expired(&self, last_use: Instant, now: Instant) -> bool {
        now.saturating_duration_since(last_use) >= self.idle
    }

    fn remove(&mut self, session: &SessionDigest) -> Option<Entry> {
        let entry = self.map.remove(session)?;
        self.lru.remove(entry.seq);
        if let Some(list) = self.by_owner.get_mut(&entry.owner) {
            list.remove(entry.owner_seq);
            if list.len() == 0 {
                self.by_owner.remove(&entry.owner);
            }
        }
        Some(entry)
    }

    /// Drops expired bindings, oldest first (amortised: each binding is dropped once).
    fn sweep(&mut self, now: Instant) {
        while let Some(session) = self.lru.oldest().map(|(_, s)| *s) {
            if self
                .map
                .get(&session)
                .is_some_and(|e| !self.expired(e.last_use, now))
            {
                break;
            }
            self.evict_lru();
        }
    }

    /// Evicts the least recently used binding of anyone.
    fn evict_lru(&mut self) -> Option<SessionDigest> {
        let (seq, session) = self.lru.oldest().map(|(seq, s)| (seq, *s))?;
        if self.remove(&session).is_none() {
            // Never queued without a binding; dropped all the same, so no loop can stall.
            self.lru.remove(seq);
        }
        Some(session)
    }

    fn touch(&mut self, session: &SessionDigest, now: Instant) -> Option<Owner> {
        let entry = self.map.get_mut(session)?;
        entry.last_use = now;
        entry.seq = self.lru.touch(entry.seq).unwrap_or(entry.seq);
        if let Some(list) = self.by_owner.get_mut(&entry.owner) {
            entry.owner_seq = list.touch(entry.owner_seq).unwrap_or(entry.owner_seq);
        }
        Some(entry.owner)
    }

    /// The owner's least recently used binding.
    fn owner_lru(&self, owner: &Owner) -> Option<SessionDigest> {
        self.by_owner.get(owner)?.oldest().map(|(_, s)| *s)
    }

    fn insert(&mut self, session: SessionDigest, owner: Owner, now: Instant) {
        let seq = self.lru.push(session);
        let owner_seq = self.by_owner.entry(owner).or_default().push(session);
        self.map.insert(
            session,
            Entry {
                owner,
                last_use: now,
                seq,
                owner_seq,
            },
        );
    }

    /// Room for one more binding of `owner`: its own least recently used binding goes when it
    /// is at its limit, then anyone's while the store is full.
    fn make_room(&mut self, owner: &Owner) {
        if self.by_owner.get(owner).map_or(0, Queue::len) >= self.per_owner
            && let Some(oldest) = self.owner_lru(owner)
        {
            tracing::debug!(session = %oldest.short(), "session binding evicted: its owner reached the per-owner limit");
            self.remove(&oldest);
        }
        while self.map.len() >= self.capacity {
            let Some(oldest) = self.evict_lru() else {
                break;
            };
            tracing::debug!(session = %oldest.short(), "session binding evicted: the store is full");
        }
    }
}

impl fmt::Debug for MemorySessionStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("MemorySessionStore");
        self.inner.peek(|b| {
            d.field("bindings", &b.map.len())
                .field("capacity", &b.capacity)
                .field("per_owner", &b.per_owner)
                .field("idle", &b.idle);
        });
        d.finish()
    }
}

memory_store!(
    MemorySessionStore,
    capacity: DEFAULT_SESSION_CAPACITY,
    new: "A store of up to 100,000 bindings, 1,000 per owner, idle timeout 1 hour.",
    empty: "Whether no binding is held."
);

impl MemorySessionStore {
    /// A store of up to `capacity` bindings (at least 1).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        let bindings = Bindings {
            map: HashMap::new(),
            lru: Queue::default(),
            by_owner: HashMap::new(),
            capacity: capacity.max(1),
            per_owner: DEFAULT_SESSIONS_PER_OWNER,
            idle: DEFAULT_SESSION_IDLE_TIMEOUT,
        };
        Self {
            inner: Locked::new("session store", bindings),
        }
    }

    /// At most `n` bindings per owner (at least 1); a new one evicts the owner's least
    /// recently used. Several agents sharing one credential count as one owner.
    #[must_use]
    pub fn per_owner(self, n: usize) -> Self {
        let _ = self.inner.with(|b| b.per_owner = n.max(1));
        self
    }

    /// Bindings unused for `idle` expire (at least 1 ms). Keep it above your MCP server's own
    /// session idle timeout, or idle sessions will be refused before the server ends them.
    #[must_use]
    pub fn idle_timeout(self, idle: Duration) -> Self {
        let _ = self
            .inner
            .with(|b| b.idle = idle.max(Duration::from_millis(1)));
        self
    }

    /// Bindings held (expired ones included until they are swept).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.peek(|b| b.map.len()).unwrap_or(0)
    }
}

impl SessionStore for MemorySessionStore {
    async fn owner(&self, session: &SessionDigest) -> Result<Option<Owner>, StoreError> {
        let now = Instant::now();
        self.inner.with(|b| {
            let last_use = b.map.get(session).map(|e| e.last_use)?;
            if b.expired(last_use, now) {
                b.remove(session);
                return None;
            }
            b.touch(session, now)
        })
    }

    async fn bind(&self, session: &SessionDigest, owner: &Owner) -> Result<Owner, StoreError> {
        let now = Instant::now();
        self.inner.with(|b| {
            b.sweep(now);
            if let Some(existing) = b.touch(session, now) {
                return existing;
            }
            b.make_room(owner);
            b.insert(*session, *owner, now);
            *owner
        })
    }

    async fn unbind(&self, session: &SessionDigest, owner: &Owner) -> Result<bool, StoreError> {
        self.inner.with(|b| {
            if b.map.get(session).is_some_and(|e| e.owner == *owner) {
                b.remove(session);
                true
            } else {
                false
            }
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
        store.inner.peek(|inner| {
            assert_eq!(inner.lru.len(), inner.map.len());
            assert_eq!(
                inner.by_owner.values().map(Queue::len).sum::<usize>(),
                inner.map.len()
            );
            for (d, e) in &inner.map {
                assert_eq!(inner.lru.get(e.seq), Some(d));
                assert_eq!(inner.by_owner[&e.owner].get(e.owner_seq), Some(d));
            }
        });
    }
}
