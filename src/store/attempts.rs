//! Failed-attempt counters for [`FailureLimitLayer`](crate::hardening::FailureLimitLayer): the
//! [`AttemptStore`] trait, its [`Attempts`] and [`Reservation`] answers, and the in-memory
//! [`MemoryAttemptStore`] (bounded: when it fills up, expired counters go first, and a client
//! that is locked out is never evicted to make room).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::StoreError;
use super::bounded::{Locked, Queue, debug_entries, memory_store};

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
    async fn failures(&self, key: &str) -> Result<Option<Attempts>, StoreError> {
        (**self).failures(key).await
    }
    async fn record_failure(&self, key: &str, window: Duration) -> Result<Attempts, StoreError> {
        (**self).record_failure(key, window).await
    }
    async fn reserve(
        &self,
        key: &str,
        window: Duration,
        max_failures: u32,
    ) -> Result<Reservation, StoreError> {
        (**self).reserve(key, window, max_failures).await
    }
    async fn refund(&self, key: &str) -> Result<(), StoreError> {
        (**self).refund(key).await
    }
}

/// `now + window` (at most [`MAX_WINDOW`]), never overflowing.
fn deadline(now: Instant, window: Duration) -> Instant {
    crate::time::instant_after(now, window.min(MAX_WINDOW))
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
    inner: Locked<Counters>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    count: u32,
    until: Instant,
    /// Its place in the table's eviction queue (while it is queued).
    seq: u64,
}

/// One bounded table of counters with its eviction queue (oldest window first).
struct Table {
    map: HashMap<String, Entry>,
    order: Queue<String>,
    capacity: usize,
}

impl Table {
    fn new(capacity: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: Queue::default(),
            capacity: capacity.max(1),
        }
    }

    fn live(&self, key: &str, now: Instant) -> Option<Entry> {
        self.map.get(key).copied().filter(|e| e.until > now)
    }

    fn purge(&mut self, now: Instant) {
        let order = &mut self.order;
        self.map.retain(|_, e| {
            let live = e.until > now;
            if !live {
                order.remove(e.seq);
            }
            live
        });
    }

    fn remove(&mut self, key: &str) {
        if let Some(e) = self.map.remove(key) {
            self.order.remove(e.seq);
        }
    }

    /// The live entry of `key`, opening a window if there is none and there is room (making
    /// room by evicting the oldest entry below `threshold`). `None`: full of locked entries.
    fn slot(
        &mut self,
        key: &str,
        window: Duration,
        threshold: u32,
        now: Instant,
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
            self.remove(key);
            let entry = Entry {
                count: 0,
                until: deadline(now, window),
                seq: self.order.push(key.to_owned()),
            };
            self.map.insert(key.to_owned(), entry);
        }
        self.map.get_mut(key)
    }

    fn make_room(&mut self, threshold: u32, now: Instant) {
        while let Some((_, k)) = self.order.pop_oldest() {
            let Some(e) = self.map.get(&k).copied() else {
                continue;
            };
            if e.until <= now || e.count < threshold {
                self.map.remove(&k);
                return;
            }
            // At or above the limit: out of the queue, kept until its window ends (purge
            // drops it then).
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
        if self.main.slot(key, window, threshold, now).is_some() {
            // Borrowck: look the entry up again.
            if let Some(e) = self.main.map.get_mut(key) {
                return (e, Place::Main);
            }
        }
        let prefix = prefix_key(key);
        if self
            .overflow
            .slot(&prefix, window, threshold, now)
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
        debug_entries(f, "MemoryAttemptStore", self.len())
    }
}

memory_store!(
    MemoryAttemptStore,
    capacity: 100_000,
    new: "A store of up to 100,000 clients.",
    empty: "Whether no client is counted."
);

impl MemoryAttemptStore {
    /// A store of up to `capacity` clients (at least 1), plus `capacity / 8` (at least 1)
    /// overflow prefixes.
    #[must_use]
    pub fn with_capacity(capacity: usize) -> Self {
        let counters = Counters {
            main: Table::new(capacity),
            overflow: Table::new(capacity / 8),
            last: None,
            threshold: u32::MAX,
            last_purge: Instant::now(),
        };
        Self {
            inner: Locked::new("attempt store", counters),
        }
    }

    /// Clients currently counted (overflow prefixes included).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner
            .peek(|c| c.main.map.len().saturating_add(c.overflow.map.len()))
            .unwrap_or(0)
    }
}

impl AttemptStore for MemoryAttemptStore {
    async fn failures(&self, key: &str) -> Result<Option<Attempts>, StoreError> {
        let now = Instant::now();
        self.inner.with(|c| {
            c.find(key, now).map(|e| Attempts {
                count: e.count,
                resets_in: e.until.saturating_duration_since(now),
            })
        })
    }

    async fn record_failure(&self, key: &str, window: Duration) -> Result<Attempts, StoreError> {
        let now = Instant::now();
        self.inner.with(|c| {
            let (e, _) = c.entry(key, window, now);
            e.count = e.count.saturating_add(1);
            Attempts {
                count: e.count,
                resets_in: e.until.saturating_duration_since(now),
            }
        })
    }

    async fn reserve(
        &self,
        key: &str,
        window: Duration,
        max_failures: u32,
    ) -> Result<Reservation, StoreError> {
        let now = Instant::now();
        self.inner.with(|c| {
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
                    c.main.remove(key);
                }
                return Reservation::Refused(refused);
            }
            e.count = e.count.saturating_add(1);
            Reservation::Reserved
        })
    }

    async fn refund(&self, key: &str) -> Result<(), StoreError> {
        let now = Instant::now();
        self.inner.with(|c| {
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
        })
    }
}

#[cfg(test)]
mod tests;
