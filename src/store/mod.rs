//! State shared across requests, and across server instances: issued tokens
//! ([`TokenStore`]), revocations ([`RevocationList`]), failed-attempt counters
//! ([`AttemptStore`]) and session bindings ([`SessionStore`]), each with a bounded in-memory
//! backend and, with feature `redis`, a Redis backend ([`redis`]).
//!
//! Every store reports [`StoreError`] when it cannot answer. Callers fail closed on it (503),
//! unless configured otherwise where that is offered.
//!
//! ```
//! use mcp_auth::store::StoreError;
//!
//! let e = StoreError::unavailable("connection refused");
//! assert!(!e.is_full());
//! assert_eq!(e.to_string(), "connection refused");
//! ```

mod attempts;
mod bounded;
mod hex;
mod replay;
mod revocations;
mod sessions;
mod tokens;

#[cfg(feature = "redis")]
pub mod redis;

pub use self::attempts::{AttemptStore, Attempts, MAX_WINDOW, MemoryAttemptStore, Reservation};
#[cfg(feature = "redis")]
pub use self::redis::sessions::RedisSessionStore;
pub use self::replay::{DEFAULT_REPLAY_CAPACITY, MemoryReplayCache, ReplayCache};
pub use self::revocations::{MemoryRevocationList, Principal, RevocationList, TokenFacts};
pub use self::sessions::{
    DEFAULT_SESSION_CAPACITY, DEFAULT_SESSION_IDLE_TIMEOUT, DEFAULT_SESSIONS_PER_OWNER,
    MemorySessionStore, Owner, SessionDigest, SessionStore,
};
pub use self::tokens::{
    DEFAULT_MEMORY_CAPACITY, MemoryTokenStore, NoStore, TokenDigest, TokenRecord, TokenStore,
};

use std::fmt;

/// A store could not answer. Authentication then fails closed with 503.
#[derive(Debug, Clone)]
pub struct StoreError {
    message: String,
    full: bool,
}

impl StoreError {
    /// The store is unreachable or failed.
    #[must_use]
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            full: false,
        }
    }

    /// The store refused a new record because it is at capacity.
    #[must_use]
    pub fn full() -> Self {
        Self {
            message: "store is full".into(),
            full: true,
        }
    }

    /// An in-memory store's lock was poisoned (a thread panicked while holding it): `what`
    /// names the store, as in "token store lock poisoned".
    pub(crate) fn poisoned(what: &str) -> Self {
        Self::unavailable(format!("{what} lock poisoned"))
    }

    /// Whether this is a capacity refusal.
    #[must_use]
    pub fn is_full(&self) -> bool {
        self.full
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StoreError {}
