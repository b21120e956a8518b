//! One-time values in Redis ([`RedisReplayCache`]): `replay:` keys set only if absent, that
//! expire with the value.

use std::time::SystemTime;

use super::{Redis, hex, now_ms, unix_ms};
use crate::store::{ReplayCache, StoreError};

/// A [`ReplayCache`] shared by every instance on one Redis: one `SET … NX PXAT` per value
/// (atomic, one round trip). Keys are the hex digest the caller gives (a hash already, never
/// client text). Made by [`Redis::replay_cache`].
#[derive(Clone, Debug)]
pub struct RedisReplayCache {
    pub(super) redis: Redis,
}

impl ReplayCache for RedisReplayCache {
    async fn first_use(&self, id: &[u8; 32], until: SystemTime) -> Result<bool, StoreError> {
        let until_ms = unix_ms(until);
        if until_ms <= now_ms() {
            return Ok(true);
        }
        let key = format!("{}replay:{}", self.redis.inner.prefix, hex(id));
        self.redis
            .run(|mut c| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("PXAT")
                    .arg(until_ms)
                    .query_async::<Option<String>>(&mut c)
                    .await
            })
            .await
            .map(|set| set.is_some())
    }
}
