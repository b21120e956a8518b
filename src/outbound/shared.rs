//! [`RedisExchangeCache`]: exchanged tokens shared by every instance through Redis (features
//! `outbound` and `redis`), encrypted with AES-256-GCM under a key every instance holds.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use sha2::{Digest as _, Sha256};

use super::error::OutboundError;
use crate::error::ConfigError;
use crate::secret::Secret;
use crate::store::redis::Redis;

/// Shortest key accepted, in bytes.
pub const MIN_EXCHANGE_CACHE_KEY_LEN: usize = 32;

/// A second tier under [`TokenExchange`](super::TokenExchange)'s memory cache: an exchanged
/// token made by one instance is reused by the others for the same (caller, upstream,
/// scopes), until it expires, instead of each asking the authorization server again.
///
/// Each entry is `<prefix>xchg:<hex sha256(cache key)>`, expiring with the token (`PXAT`),
/// holding base64(nonce ‖ AES-256-GCM(expiry ‖ token)) with the Redis key as associated data,
/// so an entry can neither be read without the key nor moved to another caller's slot. The
/// key (at least 32 bytes, the same on every instance) is hashed into the AES key.
#[derive(Clone)]
pub struct RedisExchangeCache {
    redis: Redis,
    key: Arc<LessSafeKey>,
}

impl fmt::Debug for RedisExchangeCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisExchangeCache")
            .field("key", &"<redacted>")
            .finish_non_exhaustive()
    }
}

fn store_failed(e: &crate::store::StoreError) -> OutboundError {
    OutboundError::Store(e.to_string())
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl RedisExchangeCache {
    /// The cache on `redis`, encrypting with `key`.
    ///
    /// # Errors
    ///
    /// When `key` is shorter than [`MIN_EXCHANGE_CACHE_KEY_LEN`].
    pub fn new(redis: &Redis, key: &Secret) -> Result<Self, ConfigError> {
        if key.len() < MIN_EXCHANGE_CACHE_KEY_LEN {
            return Err(ConfigError::new(
                "exchange cache key",
                "must be at least 32 bytes",
            ));
        }
        let mut h = Sha256::new();
        h.update(b"mcp-auth exchange cache v1\0");
        h.update(key.expose().as_bytes());
        let material = zeroize::Zeroizing::new(<[u8; 32]>::from(h.finalize()));
        let unbound = UnboundKey::new(&AES_256_GCM, material.as_ref())
            .map_err(|_| ConfigError::new("exchange cache key", "unusable"))?;
        Ok(Self {
            redis: redis.clone(),
            key: Arc::new(LessSafeKey::new(unbound)),
        })
    }

    fn redis_key(&self, id: &str) -> String {
        self.redis.key("xchg", id)
    }

    /// The token cached for `id` and until when it may be used; `None` when absent,
    /// expired, or not readable with this key (then the caller exchanges again).
    pub(crate) async fn get(
        &self,
        id: &str,
    ) -> Result<Option<(Secret, SystemTime)>, OutboundError> {
        let key = self.redis_key(id);
        let k = key.clone();
        let stored: Option<String> = self
            .redis
            .run(|mut c| async move { redis::cmd("GET").arg(&k).query_async(&mut c).await })
            .await
            .map_err(|e| store_failed(&e))?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        Ok(self.open(&key, &stored))
    }

    fn open(&self, key: &str, stored: &str) -> Option<(Secret, SystemTime)> {
        let raw = STANDARD.decode(stored).ok()?;
        let (nonce, sealed) = raw.split_at_checked(NONCE_LEN)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut sealed = zeroize::Zeroizing::new(sealed.to_vec());
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(key.as_bytes()), sealed.as_mut_slice())
            .ok()?;
        let (until, token) = plain.split_at_checked(8)?;
        let until = UNIX_EPOCH + Duration::from_millis(u64::from_be_bytes(until.try_into().ok()?));
        if until <= SystemTime::now() {
            return None;
        }
        let token = std::str::from_utf8(token).ok()?;
        Some((Secret::new(token), until))
    }

    /// Shares `token` for `id` until `until`.
    pub(crate) async fn put(
        &self,
        id: &str,
        token: &str,
        until: SystemTime,
    ) -> Result<(), OutboundError> {
        let until_ms = millis(until);
        if until_ms <= millis(SystemTime::now()) {
            return Ok(());
        }
        let key = self.redis_key(id);
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).map_err(|_| OutboundError::Store("no random source".into()))?;
        let mut sealed = zeroize::Zeroizing::new(Vec::with_capacity(8 + token.len() + 16));
        sealed.extend_from_slice(&until_ms.to_be_bytes());
        sealed.extend_from_slice(token.as_bytes());
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(key.as_bytes()),
                &mut *sealed,
            )
            .map_err(|_| OutboundError::Store("encryption failed".into()))?;
        let mut value = Vec::with_capacity(NONCE_LEN + sealed.len());
        value.extend_from_slice(&nonce);
        value.extend_from_slice(&sealed);
        let value = STANDARD.encode(value);
        self.redis
            .run(|mut c| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(value)
                    .arg("PXAT")
                    .arg(until_ms)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
            .map_err(|e| store_failed(&e))
    }
}
