//! The credential caches: one [`Slot`] (a cached credential, refreshed single-flight) per
//! source or, for exchanged tokens, per key in a bounded [`SlotMap`].

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use super::error::OutboundError;
use super::source::Credential;

/// A credential and the moment it stops being served.
#[derive(Clone)]
struct Cached {
    credential: Credential,
    until: Instant,
}

/// One cached credential. [`get_or_fetch`](Slot::get_or_fetch) serves it while fresh;
/// otherwise one caller fetches while the others wait for its result (single-flight), and a
/// failed fetch is the answer of every caller that waited for it (an outage costs one request
/// per wave, not one per caller).
#[derive(Default)]
pub(crate) struct Slot {
    cached: RwLock<Option<Cached>>,
    refresh: tokio::sync::Mutex<()>,
    /// Fetches finished (success or failure).
    attempts: AtomicU64,
    last_error: Mutex<Option<(u64, OutboundError)>>,
}

impl Slot {
    /// The cached credential while fresh.
    pub(crate) fn fresh(&self) -> Option<Credential> {
        let cached = self.cached.read().unwrap_or_else(PoisonError::into_inner);
        cached
            .as_ref()
            .filter(|c| Instant::now() < c.until)
            .map(|c| c.credential.clone())
    }

    /// The fresh credential, or the one `fetch` gets (with the time it may be served), fetched
    /// once however many callers wait.
    pub(crate) async fn get_or_fetch<F, Fut>(&self, fetch: F) -> Result<Credential, OutboundError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(Credential, Duration), OutboundError>>,
    {
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        let seen = self.attempts.load(Ordering::Acquire);
        let _guard = self.refresh.lock().await;
        if let Some(c) = self.fresh() {
            return Ok(c);
        }
        if self.attempts.load(Ordering::Acquire) != seen {
            // A fetch finished while this caller waited, and did not leave a fresh credential.
            let last = self
                .last_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some((_, err)) = last.as_ref() {
                return Err(err.clone());
            }
        }
        let result = fetch().await;
        let n = self.attempts.fetch_add(1, Ordering::AcqRel).wrapping_add(1);
        match result {
            Ok((credential, ttl)) => {
                *self
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = None;
                let until = Instant::now().checked_add(ttl).unwrap_or_else(Instant::now);
                *self.cached.write().unwrap_or_else(PoisonError::into_inner) = Some(Cached {
                    credential: credential.clone(),
                    until,
                });
                Ok(credential)
            }
            Err(err) => {
                *self
                    .last_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some((n, err.clone()));
                Err(err)
            }
        }
    }

    /// Forgets the cached credential if it is `rejected` (a newer one stays).
    pub(crate) fn invalidate(&self, rejected: &Credential) {
        let mut cached = self.cached.write().unwrap_or_else(PoisonError::into_inner);
        if cached
            .as_ref()
            .is_some_and(|c| c.credential.same_token(rejected))
        {
            *cached = None;
        }
    }
}

/// How long a token with `expires_in` may be served: `expires_in - skew`, at least half its
/// lifetime; `default` when the answer has no `expires_in`; never past `cap` (the caller's
/// own expiry, for exchanged tokens).
pub(crate) fn serve_for(
    expires_in: Option<u64>,
    skew: Duration,
    default: Duration,
    cap: Option<SystemTime>,
) -> Duration {
    let ttl = expires_in.map_or(default, |s| {
        let life = Duration::from_secs(s);
        life.saturating_sub(skew).max(life / 2)
    });
    match cap {
        Some(at) => ttl.min(
            at.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        ),
        None => ttl,
    }
}

/// A bounded map of [`Slot`]s: the oldest key is evicted when a new one needs room.
pub(crate) struct SlotMap<K> {
    inner: Mutex<Entries<K>>,
    capacity: usize,
}

struct Entries<K> {
    slots: HashMap<K, (Arc<Slot>, u64)>,
    order: BTreeMap<u64, K>,
    next: u64,
}

impl<K: std::hash::Hash + Eq + Clone> SlotMap<K> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            inner: Mutex::new(Entries {
                slots: HashMap::new(),
                order: BTreeMap::new(),
                next: 0,
            }),
            capacity: capacity.max(1),
        }
    }

    /// The slot of `key`, made (evicting the oldest when full) if there is none.
    pub(crate) fn slot(&self, key: &K) -> Arc<Slot> {
        let mut e = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((slot, _)) = e.slots.get(key) {
            return Arc::clone(slot);
        }
        while e.slots.len() >= self.capacity {
            let Some((_, oldest)) = e.order.pop_first() else {
                break;
            };
            e.slots.remove(&oldest);
        }
        let seq = e.next;
        e.next = e.next.wrapping_add(1);
        let slot = Arc::new(Slot::default());
        e.slots.insert(key.clone(), (Arc::clone(&slot), seq));
        e.order.insert(seq, key.clone());
        slot
    }

    /// The slot of `key` if there is one.
    pub(crate) fn get(&self, key: &K) -> Option<Arc<Slot>> {
        let e = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        e.slots.get(key).map(|(s, _)| Arc::clone(s))
    }

    /// How many keys are held.
    pub(crate) fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .slots
            .len()
    }
}
