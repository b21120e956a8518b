//! JWT revocations in Redis ([`RedisRevocationList`]): `rev-jti:` and `rev-p:` entries that
//! expire with what they cover.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use redis::{AsyncCommands, Script};

use super::{Redis, now_ms, unix_ms};
use crate::store::StoreError;
use crate::store::{Principal, RevocationList, TokenFacts};

/// Sets a principal's "revoked before" time to the later of the stored and the given one, and
/// its expiry to the later of the two. KEYS: the entry. ARGV: before (Unix ms), ttl (ms).
static REVOKE_BEFORE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local before = tonumber(ARGV[1])
local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if cur > before then before = cur end
local ttl = tonumber(ARGV[2])
local left = redis.call('PTTL', KEYS[1])
if left > ttl then ttl = left end
redis.call('SET', KEYS[1], string.format('%.0f', before), 'PX', string.format('%.0f', ttl))
return 1",
    )
});

/// JWT revocations in Redis (see the [module docs](super)): entries expire with what they
/// cover.
#[derive(Clone, Debug)]
pub struct RedisRevocationList {
    pub(super) redis: Redis,
}

impl RevocationList for RedisRevocationList {
    async fn revoke_token_id(
        &self,
        token_id: &str,
        expires_at: SystemTime,
    ) -> Result<(), StoreError> {
        let key = self.redis.key("rev-jti", token_id);
        let exp_ms = unix_ms(expires_at);
        if exp_ms <= now_ms() {
            // Already expired: nothing left to refuse.
            return Ok(());
        }
        self.redis
            .run(|mut c| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("PXAT")
                    .arg(exp_ms)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
    }

    async fn revoke_before(
        &self,
        principal: Principal<'_>,
        before: SystemTime,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let key = self.redis.key("rev-p", &principal.key());
        let before_ms = unix_ms(before);
        let ttl_ms = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(1, 1 << 52);
        let _done: i64 = self
            .redis
            .eval(&REVOKE_BEFORE, &key, (before_ms, ttl_ms))
            .await?;
        Ok(())
    }

    async fn revoked(&self, facts: &TokenFacts) -> Result<bool, StoreError> {
        let mut keys: Vec<String> = facts
            .principal_keys
            .iter()
            .map(|k| self.redis.key("rev-p", k))
            .collect();
        let has_jti = facts.token_id.is_some();
        if let Some(id) = &facts.token_id {
            keys.push(self.redis.key("rev-jti", id));
        }
        // A token without `iat` counts as issued at the epoch: every cut-off covers it.
        let issued_ms = facts.issued_at.map_or(0, unix_ms);
        if keys.is_empty() {
            return Ok(false);
        }
        let mut values: Vec<Option<String>> = self
            .redis
            .run(|mut c| async move { c.mget(&keys).await })
            .await?;
        if has_jti && values.pop().flatten().is_some() {
            return Ok(true);
        }
        Ok(values.iter().flatten().any(|before| {
            before
                .parse::<u64>()
                .is_ok_and(|before_ms| issued_ms < before_ms)
        }))
    }
}
