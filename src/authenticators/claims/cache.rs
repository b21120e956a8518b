//! [`TtlCache`]: the bounded, expiring map behind the JWT verified-token cache and the
//! introspection caches.

use std::collections::{HashMap, VecDeque};
use std::sync::RwLock;
use std::time::Instant;

/// A map from 32-byte keys (token digests) to values that expire, holding at most
/// `capacity` entries. `D` is the deadline's clock (an `Instant`, or seconds since the
/// epoch); an entry is served while `now < until`.
///
/// Eviction rule: an insert of a new key into a full cache first drops every expired entry
/// (only when one may have expired: the earliest deadline is tracked), then, while the cache
/// is still full, the oldest insertion. The sweep for expired entries walks the whole map, so
/// it runs at most once per `capacity / 4` inserts; in between, a full cache drops its oldest
/// insertion. Memory stays bounded under a flood of distinct keys, and each insert costs
/// amortised O(1) even when entries keep expiring (a negative cache under a flood of distinct
/// bad tokens).
pub(crate) struct TtlCache<V, D = Instant> {
    capacity: usize,
    state: RwLock<State<V, D>>,
}

struct Entry<V, D> {
    value: V,
    until: D,
    /// Insertion number: tells the live queue slot of a key from stale ones.
    seq: u64,
}

struct State<V, D> {
    map: HashMap<[u8; 32], Entry<V, D>>,
    /// Keys in insertion order, with their insertion numbers; slots of replaced or dropped
    /// entries are skipped, and compacted away once the queue is twice the capacity.
    order: VecDeque<([u8; 32], u64)>,
    next_seq: u64,
    /// No entry expires before this (`None`: no entry).
    earliest: Option<D>,
    /// Inserts since the last sweep for expired entries.
    since_sweep: usize,
}

impl<V: Clone, D: Ord + Copy> TtlCache<V, D> {
    /// An empty cache of at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            state: RwLock::new(State {
                map: HashMap::new(),
                order: VecDeque::new(),
                next_seq: 0,
                earliest: None,
                since_sweep: 0,
            }),
        }
    }

    /// The most entries held (shown by introspection's `Debug`).
    #[cfg_attr(not(feature = "introspection"), allow(dead_code))]
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The value under `key`, unless it expired (`now >= until`).
    pub(crate) fn get(&self, key: &[u8; 32], now: D) -> Option<V> {
        let state = self.state.read().ok()?;
        state
            .map
            .get(key)
            .filter(|e| now < e.until)
            .map(|e| e.value.clone())
    }

    /// Stores `value` under `key` until `until`, making room by the eviction rule.
    pub(crate) fn insert(&self, key: [u8; 32], value: V, until: D, now: D) {
        let Ok(mut state) = self.state.write() else {
            return;
        };
        if !state.map.contains_key(&key) && state.map.len() >= self.capacity {
            state.make_room(self.capacity, now);
        }
        state.push(key, value, until, self.capacity);
    }

    #[cfg(test)]
    fn sizes(&self) -> (usize, usize) {
        let state = self.state.read().unwrap();
        (state.map.len(), state.order.len())
    }
}

impl<V, D: Ord + Copy> State<V, D> {
    fn make_room(&mut self, capacity: usize, now: D) {
        if self.earliest.is_some_and(|e| now >= e) && self.since_sweep >= capacity / 4 {
            self.map.retain(|_, e| now < e.until);
            self.earliest = self.map.values().map(|e| e.until).min();
            self.since_sweep = 0;
        }
        while self.map.len() >= capacity {
            let Some((key, seq)) = self.order.pop_front() else {
                return;
            };
            if self.map.get(&key).is_some_and(|e| e.seq == seq) {
                self.map.remove(&key);
            }
        }
    }

    fn push(&mut self, key: [u8; 32], value: V, until: D, capacity: usize) {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.since_sweep = self.since_sweep.saturating_add(1);
        self.map.insert(key, Entry { value, until, seq });
        self.order.push_back((key, seq));
        self.earliest = Some(self.earliest.map_or(until, |e| e.min(until)));
        if self.order.len() > capacity.saturating_mul(2) {
            let map = &self.map;
            self.order
                .retain(|(k, seq)| map.get(k).is_some_and(|e| e.seq == *seq));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> [u8; 32] {
        let mut k = [0; 32];
        k[..4].copy_from_slice(&i.to_be_bytes());
        k
    }

    #[test]
    fn entries_are_served_until_their_deadline() {
        let c: TtlCache<&str, u64> = TtlCache::new(4);
        c.insert(key(1), "a", 10, 0);
        assert_eq!(c.get(&key(1), 9), Some("a"));
        assert_eq!(c.get(&key(1), 10), None);
        assert_eq!(c.get(&key(2), 0), None);
    }

    #[test]
    fn a_full_cache_drops_expired_entries_first_then_the_oldest() {
        let c: TtlCache<u32, u64> = TtlCache::new(2);
        c.insert(key(1), 1, 100, 0);
        c.insert(key(2), 2, 5, 0);
        // Key 2 expired: it goes, the older key 1 stays.
        c.insert(key(3), 3, 100, 10);
        assert_eq!(c.get(&key(1), 10), Some(1));
        assert_eq!(c.get(&key(3), 10), Some(3));
        // Nothing expired: the oldest (key 1) goes.
        c.insert(key(4), 4, 100, 10);
        assert_eq!(c.get(&key(1), 10), None);
        assert_eq!(c.get(&key(3), 10), Some(3));
        assert_eq!(c.get(&key(4), 10), Some(4));
        // Replacing a key evicts nothing.
        c.insert(key(3), 33, 100, 10);
        assert_eq!(c.get(&key(3), 10), Some(33));
        assert_eq!(c.get(&key(4), 10), Some(4));
    }

    #[test]
    fn memory_stays_bounded_under_a_flood_of_distinct_keys() {
        let c: TtlCache<u32, u64> = TtlCache::new(100);
        for i in 0..100_000 {
            c.insert(key(i), i, u64::MAX, 0);
            // The same few keys again and again leave stale queue slots behind.
            c.insert(key(i % 7), i, u64::MAX, 0);
            let (entries, queue) = c.sizes();
            assert!(entries <= 100 && queue <= 201, "{entries} {queue}");
        }
        assert_eq!(c.get(&key(99_999), 0), Some(99_999));
    }

    #[test]
    fn expiring_entries_under_a_flood_are_swept_rarely() {
        // A negative cache under a flood of distinct bad tokens: ten inserts a tick, each entry
        // living 100 ticks, so once the cache is full an entry has just expired at every
        // insert. A sweep walks the whole map; it may run only once per capacity / 4 inserts
        // (sweeping at every insert would make each insert cost the whole map).
        let c: TtlCache<u32, u64> = TtlCache::new(1000);
        let mut sweeps = 0;
        for i in 0..20_000u32 {
            let now = u64::from(i) / 10;
            let before = c.state.read().unwrap().since_sweep;
            c.insert(key(i), i, now + 100, now);
            let after = c.state.read().unwrap().since_sweep;
            if after <= before {
                sweeps += 1;
            }
            let (entries, queue) = c.sizes();
            assert!(entries <= 1000 && queue <= 2001, "{entries} {queue}");
        }
        assert!(sweeps <= 20_000 / 250, "{sweeps} sweeps");
        assert!(sweeps > 0, "expired entries are swept");
        assert_eq!(c.get(&key(19_999), 1999), Some(19_999));
    }
}
