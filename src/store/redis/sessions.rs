//! Session bindings in Redis ([`RedisSessionStore`]): one string per session, owned by
//! Lua scripts that never replace a binding.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::Redis;
use crate::store::StoreError;
use crate::store::{DEFAULT_SESSION_IDLE_TIMEOUT, Owner, SessionDigest, SessionStore};

/// The owner, refreshing the idle timeout. KEYS: the binding. ARGV: idle (ms).
static OWNER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return v",
    )
});

/// Binds unless bound; returns the owner. KEYS: the binding. ARGV: owner, idle (ms).
static BIND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if v then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return v
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]",
    )
});

/// Deletes the binding if `owner` owns it. KEYS: the binding. ARGV: owner.
static UNBIND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0",
    )
});

/// Bindings in Redis, shared by every instance (feature `redis`).
///
/// One string per session: key `<prefix>session:<h>` where `<h>` is the hex SHA-256 of
/// the hex [`SessionDigest`] (so neither the id nor its plain digest is a key), value the
/// hex [`Owner`], expiring after the idle timeout (default 1 hour), which every use
/// restarts. Reads and writes are Lua scripts (atomic, one round trip); a binding is never
/// replaced, only removed by its owner or by expiry. Redis's own eviction (`maxmemory`)
/// may drop bindings: the layer then answers 404 for those sessions (fail closed). A value
/// that is not an owner digest makes the request 503.
#[derive(Clone, Debug)]
pub struct RedisSessionStore {
    redis: Redis,
    idle: Duration,
}

impl RedisSessionStore {
    /// Bindings on `redis` (clones share its connection).
    #[must_use]
    pub fn new(redis: &Redis) -> Self {
        Self {
            redis: redis.clone(),
            idle: DEFAULT_SESSION_IDLE_TIMEOUT,
        }
    }

    /// Bindings unused for `idle` expire (at least 1 ms).
    #[must_use]
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle.max(Duration::from_millis(1));
        self
    }

    fn key(&self, session: &SessionDigest) -> String {
        self.redis.key("session", &session.to_hex())
    }

    fn idle_ms(&self) -> u64 {
        u64::try_from(self.idle.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(1, 1 << 52)
    }
}

fn parse(v: &str) -> Result<Owner, StoreError> {
    Owner::from_hex(v).ok_or_else(|| StoreError::unavailable("redis: malformed session binding"))
}

impl SessionStore for RedisSessionStore {
    async fn owner(&self, session: &SessionDigest) -> Result<Option<Owner>, StoreError> {
        let key = self.key(session);
        let idle = self.idle_ms();
        let v: Option<String> = self.redis.eval(&OWNER, &key, idle).await?;
        v.as_deref().map(parse).transpose()
    }

    async fn bind(&self, session: &SessionDigest, owner: &Owner) -> Result<Owner, StoreError> {
        let key = self.key(session);
        let owner = owner.to_hex();
        let idle = self.idle_ms();
        let v: String = self.redis.eval(&BIND, &key, (owner.as_str(), idle)).await?;
        parse(&v)
    }

    async fn unbind(&self, session: &SessionDigest, owner: &Owner) -> Result<bool, StoreError> {
        let key = self.key(session);
        let owner = owner.to_hex();
        let n: i64 = self.redis.eval(&UNBIND, &key, owner.as_str()).await?;
        Ok(n > 0)
    }
}
