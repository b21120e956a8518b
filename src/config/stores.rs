//! Where shared state lives: issued tokens, failure counters and session bindings, each in
//! memory (this process only) or in Redis when `MCP_REDIS_URL` is set (shared by every
//! instance; with the `redis` feature). Each enum implements the mcp-auth store trait by delegating to its variant.

use std::time::Duration;

#[cfg(feature = "redis")]
use crate::store::RedisSessionStore;
#[cfg(feature = "redis")]
use crate::store::redis::{RedisAttemptStore, RedisReplayCache, RedisTokenStore};
use crate::store::{AttemptStore, Attempts, MemoryAttemptStore, Reservation};
use crate::store::{MemoryReplayCache, ReplayCache, StoreError};
use crate::store::{MemorySessionStore, Owner, SessionDigest, SessionStore};
use crate::store::{MemoryTokenStore, TokenDigest, TokenRecord, TokenStore};

/// Issued tokens: in memory, or in Redis when `MCP_REDIS_URL` is set.
#[derive(Clone, Debug)]
pub enum Tokens {
    /// This process only.
    Memory(MemoryTokenStore),
    /// Shared by every instance.
    #[cfg(feature = "redis")]
    Redis(RedisTokenStore),
}

impl TokenStore for Tokens {
    async fn get(&self, digest: &TokenDigest) -> Result<Option<TokenRecord>, StoreError> {
        match self {
            Self::Memory(s) => s.get(digest).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.get(digest).await,
        }
    }
    fn get_now(&self, digest: &TokenDigest) -> Option<Result<Option<TokenRecord>, StoreError>> {
        match self {
            Self::Memory(s) => s.get_now(digest),
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.get_now(digest),
        }
    }
    async fn insert(&self, digest: TokenDigest, record: TokenRecord) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.insert(digest, record).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.insert(digest, record).await,
        }
    }
    async fn revoke(&self, digest: &TokenDigest) -> Result<bool, StoreError> {
        match self {
            Self::Memory(s) => s.revoke(digest).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.revoke(digest).await,
        }
    }
    async fn revoke_id(&self, id: &str) -> Result<bool, StoreError> {
        match self {
            Self::Memory(s) => s.revoke_id(id).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.revoke_id(id).await,
        }
    }
    async fn revoke_subject(&self, subject: &str) -> Result<usize, StoreError> {
        match self {
            Self::Memory(s) => s.revoke_subject(subject).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.revoke_subject(subject).await,
        }
    }
}

/// Failure counters: in memory, or in Redis when `MCP_REDIS_URL` is set.
#[derive(Clone, Debug)]
pub enum Counters {
    /// This process only.
    Memory(MemoryAttemptStore),
    /// Shared by every instance.
    #[cfg(feature = "redis")]
    Redis(RedisAttemptStore),
}

impl AttemptStore for Counters {
    async fn failures(&self, key: &str) -> Result<Option<Attempts>, StoreError> {
        match self {
            Self::Memory(s) => s.failures(key).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.failures(key).await,
        }
    }
    async fn record_failure(&self, key: &str, window: Duration) -> Result<Attempts, StoreError> {
        match self {
            Self::Memory(s) => s.record_failure(key, window).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.record_failure(key, window).await,
        }
    }
    async fn reserve(
        &self,
        key: &str,
        window: Duration,
        max_failures: u32,
    ) -> Result<Reservation, StoreError> {
        match self {
            Self::Memory(s) => s.reserve(key, window, max_failures).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.reserve(key, window, max_failures).await,
        }
    }
    async fn refund(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.refund(key).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.refund(key).await,
        }
    }
}

/// Session bindings (each MCP session belongs to the principal that created it): in memory,
/// or in Redis when `MCP_REDIS_URL` is set.
#[derive(Clone, Debug)]
pub enum Sessions {
    /// This process only.
    Memory(MemorySessionStore),
    /// Shared by every instance.
    #[cfg(feature = "redis")]
    Redis(RedisSessionStore),
}

impl SessionStore for Sessions {
    async fn owner(&self, session: &SessionDigest) -> Result<Option<Owner>, StoreError> {
        match self {
            Self::Memory(s) => s.owner(session).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.owner(session).await,
        }
    }
    async fn bind(&self, session: &SessionDigest, owner: &Owner) -> Result<Owner, StoreError> {
        match self {
            Self::Memory(s) => s.bind(session, owner).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.bind(session, owner).await,
        }
    }
    async fn unbind(&self, session: &SessionDigest, owner: &Owner) -> Result<bool, StoreError> {
        match self {
            Self::Memory(s) => s.unbind(session, owner).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.unbind(session, owner).await,
        }
    }
}

/// Used DPoP proof ids: in memory, or in Redis when `MCP_REDIS_URL` is set.
#[derive(Clone, Debug)]
pub enum Replays {
    /// This process only.
    Memory(MemoryReplayCache),
    /// Shared by every instance.
    #[cfg(feature = "redis")]
    Redis(RedisReplayCache),
}

impl ReplayCache for Replays {
    async fn first_use(
        &self,
        id: &[u8; 32],
        until: std::time::SystemTime,
    ) -> Result<bool, StoreError> {
        match self {
            Self::Memory(s) => s.first_use(id, until).await,
            #[cfg(feature = "redis")]
            Self::Redis(s) => s.first_use(id, until).await,
        }
    }
}
