//! The caches of introspection answers: active contexts, and refusals (the negative cache).

use std::time::{Duration, Instant, SystemTime};

use crate::authenticators::claims::TtlCache;
use crate::time::instant_after;

/// A bounded map from token digests to answers (eviction: see [`TtlCache`]), each kept for
/// at most `ttl` and never past the token's own expiry.
pub(super) struct AnswerCache<V> {
    ttl: Duration,
    map: TtlCache<V>,
}

impl<V: Clone> AnswerCache<V> {
    /// At most `max` answers, each for at most `ttl`.
    pub(super) fn new(max: usize, ttl: Duration) -> Self {
        Self {
            ttl,
            map: TtlCache::new(max),
        }
    }

    /// Size and lifetime, for `Debug`.
    pub(super) fn settings(&self) -> (usize, Duration) {
        (self.map.capacity(), self.ttl)
    }

    /// The answer remembered for this token digest, unless it expired.
    pub(super) fn get(&self, key: &[u8; 32], now: Instant) -> Option<V> {
        self.map.get(key, now)
    }

    /// Stores `value` for the cache's ttl, or less when `expires` comes sooner (nothing is
    /// stored for an already expired answer).
    pub(super) fn put(&self, key: [u8; 32], value: &V, expires: Option<SystemTime>, now: Instant) {
        let mut ttl = self.ttl;
        if let Some(exp) = expires {
            match exp.duration_since(SystemTime::now()) {
                Ok(left) => ttl = ttl.min(left),
                Err(_) => return,
            }
        }
        self.map
            .insert(key, value.clone(), instant_after(now, ttl), now);
    }
}
