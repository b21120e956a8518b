//! Failure counters in Redis ([`RedisAttemptStore`]): one fixed-window counter per client,
//! reserved and refunded by atomic scripts.

use std::sync::LazyLock;
use std::time::Duration;

use redis::Script;

use super::{NO_ARGS, Redis};
use crate::store::StoreError;
use crate::store::{AttemptStore, Attempts, Reservation};

/// Counts one failure in a fixed window: the first failure sets the window's expiry.
/// Counts one failure in a fixed window: the first failure sets the window's expiry.
/// KEYS: the counter. ARGV: the window (ms). Returns the count and the time left (ms).
static RECORD_FAILURE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local c = redis.call('INCR', KEYS[1])
local t = redis.call('PTTL', KEYS[1])
if t < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  t = tonumber(ARGV[1])
end
return {c, t}",
    )
});

/// Counts one attempt before authenticating, if the window's count is below the limit
/// ([`AttemptStore::reserve`]); a refusal counts nothing and creates no key. A counter found
/// without an expiry (written by someone else) gets one, so it cannot lock a client forever.
/// KEYS: the counter. ARGV: the window (ms), the limit. Returns reserved (1) or refused (0),
/// the count and the time left (ms); an error when the key holds something else than a count.
static RESERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
local c = tonumber(v or '0')
if not c then return redis.error_reply('ERR not a failure counter') end
local t = redis.call('PTTL', KEYS[1])
if v and t < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  t = tonumber(ARGV[1])
end
if c >= tonumber(ARGV[2]) then
  if t < 0 then t = tonumber(ARGV[1]) end
  return {0, string.format('%.0f', c), t}
end
c = redis.call('INCR', KEYS[1])
if t < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  t = tonumber(ARGV[1])
end
return {1, tostring(c), t}",
    )
});

/// Gives back one reserved attempt ([`AttemptStore::refund`]): one less, never below zero,
/// keeping the window's expiry; nothing when no window is open.
/// KEYS: the counter. Returns the count after; an error when the key holds something else.
static REFUND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('GET', KEYS[1])
if not v then return 0 end
local c = tonumber(v)
if not c then return redis.error_reply('ERR not a failure counter') end
if c > 0 then return redis.call('DECR', KEYS[1]) end
return 0",
    )
});

/// A window length in milliseconds, as the scripts take it (1 ms to 2^52 ms).
fn window_ms(window: Duration) -> u64 {
    u64::try_from(window.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, 1 << 52)
}

/// Failure counters in Redis (see the [module docs](super)): fixed windows, counted across
/// every instance. Attempts are reserved before authenticating and refunded on success in
/// one atomic script each, so parallel requests, on any instance, cannot overtake the limit.
#[derive(Clone, Debug)]
pub struct RedisAttemptStore {
    pub(super) redis: Redis,
}

impl AttemptStore for RedisAttemptStore {
    async fn failures(&self, key: &str) -> Result<Option<Attempts>, StoreError> {
        let key = self.redis.key("fail", key);
        let (count, ttl): (Option<u32>, i64) = self
            .redis
            .run(|mut c| async move {
                redis::pipe()
                    .atomic()
                    .get(&key)
                    .pttl(&key)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(count.filter(|_| ttl > 0).map(|count| Attempts {
            count,
            resets_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
        }))
    }

    async fn record_failure(&self, key: &str, window: Duration) -> Result<Attempts, StoreError> {
        let key = self.redis.key("fail", key);
        let window_ms = window_ms(window);
        let (count, ttl): (u32, i64) = self.redis.eval(&RECORD_FAILURE, &key, window_ms).await?;
        Ok(Attempts {
            count,
            resets_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
        })
    }

    async fn reserve(
        &self,
        key: &str,
        window: Duration,
        max_failures: u32,
    ) -> Result<Reservation, StoreError> {
        let key = self.redis.key("fail", key);
        let window_ms = window_ms(window);
        // The count comes back as a string when refused: it may exceed any integer type
        // (anyone who can write to Redis can set it).
        let (reserved, count, ttl): (i64, String, i64) = self
            .redis
            .eval(&RESERVE, &key, (window_ms, max_failures))
            .await?;
        if reserved == 1 {
            return Ok(Reservation::Reserved);
        }
        // Refused means at least the limit; more than `u64` holds (or not finite) saturates.
        let count = count
            .parse::<u64>()
            .map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX));
        Ok(Reservation::Refused(Attempts {
            count,
            resets_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
        }))
    }

    async fn refund(&self, key: &str) -> Result<(), StoreError> {
        let key = self.redis.key("fail", key);
        let _count: i64 = self.redis.eval(&REFUND, &key, NO_ARGS).await?;
        Ok(())
    }
}
