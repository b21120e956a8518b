//! [`RedisRefreshTokenStore`]: the newest refresh token in Redis (features `outbound` and
//! `redis`), so every instance, and a restarted one, continues with it.

use std::fmt;

use super::error::OutboundError;
use super::refresh::{RefreshTokenStore, StoreFuture};
use crate::secret::Secret;
use crate::store::redis::Redis;

/// A [`RefreshTokenStore`] in Redis: one string at `<prefix>refresh:<hex sha256(name)>`,
/// replaced on every rotation (no expiry: the authorization server decides how long a
/// refresh token lives). The value is the token itself: protect the Redis server as you
/// protect the token (TLS with `rediss://`, an ACL user of its own). Cheap to clone.
///
/// ```no_run
/// use mcp_auth::outbound::RedisRefreshTokenStore;
/// use mcp_auth::store::redis::{Redis, RedisConfig};
///
/// let redis = Redis::new(RedisConfig::new("redis://127.0.0.1:6379/0")).unwrap();
/// let store = RedisRefreshTokenStore::new(&redis, "crm-api");
/// # let _ = store;
/// ```
#[derive(Clone)]
pub struct RedisRefreshTokenStore {
    redis: Redis,
    key: String,
}

impl fmt::Debug for RedisRefreshTokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRefreshTokenStore")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl RedisRefreshTokenStore {
    /// The store named `name` (one per upstream grant) on `redis`.
    #[must_use]
    pub fn new(redis: &Redis, name: &str) -> Self {
        Self {
            redis: redis.clone(),
            key: redis.key("refresh", name),
        }
    }
}

fn failed(e: &crate::store::StoreError) -> OutboundError {
    OutboundError::Store(e.to_string())
}

impl RefreshTokenStore for RedisRefreshTokenStore {
    fn load(&self) -> StoreFuture<'_, Option<Secret>> {
        Box::pin(async move {
            let key = self.key.clone();
            let value: Option<String> = self
                .redis
                .run(|mut c| async move { redis::cmd("GET").arg(&key).query_async(&mut c).await })
                .await
                .map_err(|e| failed(&e))?;
            Ok(value.map(Secret::new))
        })
    }

    fn save<'a>(&'a self, token: &'a Secret) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = self.key.clone();
            let value = token.expose();
            self.redis
                .run(|mut c| async move {
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(value)
                        .query_async::<()>(&mut c)
                        .await
                })
                .await
                .map_err(|e| failed(&e))
        })
    }
}
