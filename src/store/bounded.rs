//! The building blocks of the bounded in-memory stores ([`MemoryAttemptStore`],
//! [`MemorySessionStore`], [`MemoryRevocationList`]): the shared, lock-guarded state every
//! clone of a store sees ([`Locked`]), and the eviction order of their entries ([`Queue`]).
//!
//! What may be evicted stays each store's own rule: a locked-out client is never evicted to
//! make room ([`MemoryAttemptStore`]), and one owner can only crowd out its own session
//! bindings ([`MemorySessionStore`]). The queue only says which entry is oldest.
//!
//! [`MemoryAttemptStore`]: super::MemoryAttemptStore
//! [`MemorySessionStore`]: super::MemorySessionStore
//! [`MemoryRevocationList`]: super::MemoryRevocationList

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use super::StoreError;

/// A store's state behind one mutex, shared by the store's clones.
pub(super) struct Locked<T> {
    inner: Arc<Mutex<T>>,
    /// Names the store in the error of a poisoned lock.
    what: &'static str,
}

impl<T> Clone for Locked<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            what: self.what,
        }
    }
}

impl<T> Locked<T> {
    /// `state`, for the store `what` ("session store", "attempt store", …).
    pub(super) fn new(what: &'static str, state: T) -> Self {
        Self {
            inner: Arc::new(Mutex::new(state)),
            what,
        }
    }

    /// Runs `f` on the state under the lock.
    ///
    /// # Errors
    ///
    /// [`StoreError::poisoned`] when a thread panicked while holding the lock.
    pub(super) fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Result<R, StoreError> {
        self.inner
            .lock()
            .map(|mut state| f(&mut state))
            .map_err(|_| StoreError::poisoned(self.what))
    }

    /// Reads the state for `len()` and `Debug`: `None` when the lock is poisoned.
    pub(super) fn peek<R>(&self, f: impl FnOnce(&T) -> R) -> Option<R> {
        self.inner.lock().ok().map(|state| f(&state))
    }
}

/// The `Debug` of a store that shows only how many entries it holds.
pub(super) fn debug_entries(
    f: &mut fmt::Formatter<'_>,
    store: &str,
    entries: usize,
) -> fmt::Result {
    f.debug_struct(store).field("entries", &entries).finish()
}

/// `Default` (a store of `capacity` entries) and `new()` of a bounded memory store whose
/// `with_capacity` is its own; with `empty`, also `is_empty()` from its own `len()`.
macro_rules! memory_store {
    ($store:ident, capacity: $capacity:expr, new: $new:literal) => {
        impl Default for $store {
            fn default() -> Self {
                Self::with_capacity($capacity)
            }
        }

        impl $store {
            #[doc = $new]
            #[must_use]
            pub fn new() -> Self {
                Self::default()
            }
        }
    };
    ($store:ident, capacity: $capacity:expr, new: $new:literal, empty: $empty:literal) => {
        $crate::store::bounded::memory_store!($store, capacity: $capacity, new: $new);

        impl $store {
            #[doc = $empty]
            #[must_use]
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }
        }
    };
}

pub(super) use memory_store;

/// The order entries were queued in, oldest first, each under a sequence number its entry
/// keeps so it can be taken out of the queue (or moved to the back) in `O(log n)`. A store
/// queues an entry when it opens it (first in, first out) or each time it is used (least
/// recently used first).
pub(super) struct Queue<K> {
    order: BTreeMap<u64, K>,
    seq: u64,
}

impl<K> Default for Queue<K> {
    fn default() -> Self {
        Self {
            order: BTreeMap::new(),
            seq: 0,
        }
    }
}

impl<K> Queue<K> {
    /// Queues `key` at the back; returns its sequence number.
    pub(super) fn push(&mut self, key: K) -> u64 {
        self.seq = self.seq.wrapping_add(1);
        self.order.insert(self.seq, key);
        self.seq
    }

    /// Takes the entry queued under `seq` out of the queue (`None`: it is not queued).
    pub(super) fn remove(&mut self, seq: u64) -> Option<K> {
        self.order.remove(&seq)
    }

    /// Moves the entry queued under `seq` to the back; returns its new sequence number
    /// (`None`: it is not queued).
    pub(super) fn touch(&mut self, seq: u64) -> Option<u64> {
        let key = self.order.remove(&seq)?;
        Some(self.push(key))
    }

    /// The oldest entry and its sequence number.
    pub(super) fn oldest(&self) -> Option<(u64, &K)> {
        self.order.first_key_value().map(|(seq, key)| (*seq, key))
    }

    /// Takes the oldest entry out of the queue.
    pub(super) fn pop_oldest(&mut self) -> Option<(u64, K)> {
        self.order.pop_first()
    }

    /// Entries queued.
    pub(super) fn len(&self) -> usize {
        self.order.len()
    }

    /// The entry queued under `seq`.
    #[cfg(test)]
    pub(super) fn get(&self, seq: u64) -> Option<&K> {
        self.order.get(&seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_queue_hands_out_its_oldest_entry_and_use_moves_an_entry_back() {
        let mut q = Queue::default();
        let a = q.push("a");
        let b = q.push("b");
        let c = q.push("c");
        assert_eq!(q.oldest(), Some((a, &"a")));
        let a = q.touch(a).unwrap();
        assert_eq!(q.oldest(), Some((b, &"b")));
        assert_eq!(q.remove(b), Some("b"));
        assert_eq!(q.remove(b), None);
        assert_eq!(q.touch(b), None);
        assert_eq!(q.pop_oldest(), Some((c, "c")));
        assert_eq!((q.len(), q.get(a)), (1, Some(&"a")));
    }

    #[test]
    fn a_poisoned_lock_is_a_store_error_naming_the_store() {
        let locked = Locked::new("test store", 1);
        assert_eq!(locked.with(|n| *n + 1).unwrap(), 2);
        let clone = locked.clone();
        let _ = std::thread::spawn(move || {
            clone.with(|_| panic!("poisons the lock")).ok();
        })
        .join();
        let err = locked.with(|n| *n).unwrap_err();
        assert_eq!(err.to_string(), "test store lock poisoned");
        assert!(!err.is_full());
        assert_eq!(locked.peek(|n| *n), None);
    }
}
