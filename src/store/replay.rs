//! One-time values: [`ReplayCache`] remembers each until it expires, so a second use is
//! refused (DPoP proof `jti`s, RFC 9449 §11.1). [`MemoryReplayCache`] serves one instance;
//! `RedisReplayCache` (feature `redis`) several.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::StoreError;
use super::bounded::{Locked, debug_entries};

/// Default capacity of a [`MemoryReplayCache`]: one million one-time values (about 80 MB at
/// most), enough for 1,600 DPoP requests a second inside a ±5 minute window.
pub const DEFAULT_REPLAY_CAPACITY: usize = 1_000_000;

/// Remembers one-time values until they expire.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use mcp_auth::store::{MemoryReplayCache, ReplayCache};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let cache = MemoryReplayCache::default();
/// let id = [7u8; 32]; // a digest of the one-time value
/// let until = SystemTime::now() + Duration::from_secs(300);
/// assert!(cache.first_use(&id, until).await.unwrap());
/// assert!(!cache.first_use(&id, until).await.unwrap()); // a replay
/// # }
/// ```
pub trait ReplayCache: Send + Sync + 'static {
    /// Records `id` (a SHA-256 digest of the one-time value) as used until `until`.
    /// `Ok(true)` on its first use, `Ok(false)` when it was seen before and has not expired.
    ///
    /// # Errors
    ///
    /// The store is unreachable, or full ([`StoreError::is_full`]): the caller fails closed.
    fn first_use(
        &self,
        id: &[u8; 32],
        until: SystemTime,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
}

impl<T: ReplayCache + ?Sized> ReplayCache for Arc<T> {
    async fn first_use(&self, id: &[u8; 32], until: SystemTime) -> Result<bool, StoreError> {
        (**self).first_use(id, until).await
    }
}

/// A bounded in-memory [`ReplayCache`] for one instance. Expired values are dropped as new
/// ones arrive (oldest expiry first, O(log n) each); when every slot holds an unexpired value
/// the cache is full and [`first_use`](ReplayCache::first_use) answers
/// [`StoreError::full`] — it never forgets a live value to make room, which would let it be
/// replayed. Cheap to clone (clones share the state).
#[derive(Clone)]
pub struct MemoryReplayCache {
    state: Locked<State>,
    capacity: usize,
}

#[derive(Default)]
struct State {
    /// Each value's expiry, in milliseconds since the epoch.
    until: HashMap<[u8; 32], u64>,
    /// Expiries, soonest first. An entry whose value was renewed is stale and skipped.
    order: BinaryHeap<Reverse<(u64, [u8; 32])>>,
}

impl State {
    /// Drops the values expired at `now`.
    fn purge(&mut self, now: u64) {
        while let Some(Reverse((at, id))) = self.order.peek().copied() {
            if at > now {
                break;
            }
            self.order.pop();
            if self.until.get(&id) == Some(&at) {
                self.until.remove(&id);
            }
        }
    }
}

impl MemoryReplayCache {
    /// A cache of at most `capacity` live values (at least 1).
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            state: Locked::new("replay cache", State::default()),
            capacity: capacity.max(1),
        }
    }

    /// How many values are remembered (expired ones may still count until the next use).
    #[must_use]
    pub fn len(&self) -> usize {
        self.state.peek(|s| s.until.len()).unwrap_or(0)
    }

    /// Whether no value is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryReplayCache {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_REPLAY_CAPACITY)
    }
}

impl std::fmt::Debug for MemoryReplayCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        debug_entries(f, "MemoryReplayCache", self.len())
    }
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl ReplayCache for MemoryReplayCache {
    async fn first_use(&self, id: &[u8; 32], until: SystemTime) -> Result<bool, StoreError> {
        let now = millis(SystemTime::now());
        let until = millis(until);
        let capacity = self.capacity;
        self.state.with(|s| {
            s.purge(now);
            if s.until.contains_key(id) {
                return Ok(false);
            }
            if until <= now {
                // Already expired: nothing to remember, and it cannot be replayed later.
                return Ok(true);
            }
            if s.until.len() >= capacity {
                return Err(StoreError::full());
            }
            s.until.insert(*id, until);
            s.order.push(Reverse((until, *id)));
            Ok(true)
        })?
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn later(secs: u64) -> SystemTime {
        SystemTime::now() + Duration::from_secs(secs)
    }

    #[tokio::test]
    async fn a_value_is_accepted_once_until_it_expires() {
        let cache = MemoryReplayCache::default();
        assert!(cache.first_use(&[1; 32], later(60)).await.unwrap());
        assert!(!cache.first_use(&[1; 32], later(60)).await.unwrap());
        assert!(cache.first_use(&[2; 32], later(60)).await.unwrap());
        // An expiry already past is never stored.
        let past = SystemTime::now() - Duration::from_secs(1);
        assert!(cache.first_use(&[3; 32], past).await.unwrap());
        assert_eq!(cache.len(), 2);
    }

    #[tokio::test]
    async fn expired_values_make_room_and_live_ones_are_never_evicted() {
        let cache = MemoryReplayCache::with_capacity(2);
        let soon = SystemTime::now() + Duration::from_millis(50);
        assert!(cache.first_use(&[1; 32], soon).await.unwrap());
        assert!(cache.first_use(&[2; 32], later(60)).await.unwrap());
        // Full of live values: refused, not evicted.
        let err = cache.first_use(&[3; 32], later(60)).await.unwrap_err();
        assert!(err.is_full());
        assert!(!cache.first_use(&[2; 32], later(60)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(80)).await;
        // The first expired: its slot is free again.
        assert!(cache.first_use(&[3; 32], later(60)).await.unwrap());
        assert!(!cache.first_use(&[2; 32], later(60)).await.unwrap());
    }
}
