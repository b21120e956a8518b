//! Redis-backed shared state (feature `redis`): issued tokens ([`RedisTokenStore`]),
//! revocations ([`RedisRevocationList`]) and failure counters ([`RedisAttemptStore`]), so they
//! hold across every instance of a server.
//!
//! One [`Redis`] handle connects lazily (the server starts even while Redis is down) through
//! a `ConnectionManager` that reconnects by itself. Every operation is bounded by a timeout
//! (default 500 ms); while Redis cannot answer, operations fail with
//! [`StoreError`] and the callers fail closed (503) unless configured to fail open.
//!
//! Keys (all under the configured prefix, default `mcp-auth:`): `tok:<sha256 hex>` (a hash:
//! the token record and its revoked flag, expiring with the token), `tok-id:<h>` and `tok-sub:<h>` (sets of token digests by
//! id and by subject), `rev-jti:<h>`, `rev-p:<h>` (revocations, expiring with what they
//! cover), `fail:<h>` (a failure window). `<h>` is the SHA-256 of the id, subject or key, so
//! no client-chosen text becomes a Redis key. Tokens themselves are never stored: records are
//! keyed by their digest.
//!
//! ```
//! use mcp_auth::redis::{Redis, RedisConfig};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let redis = Redis::new(RedisConfig::new("redis://:secret@127.0.0.1:6379/0").timeout(Duration::from_millis(300)))
//!     .expect("a valid URL; nothing is connected yet");
//! assert!(!format!("{redis:?}").contains("secret"), "the password is redacted");
//! let (_tokens, _revocations, _attempts) = (redis.token_store(), redis.revocation_list(), redis.attempt_store());
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bearer::{TokenDigest, TokenRecord, TokenStore};
use crate::context::{AuthContext, AuthMethod};
use crate::error::ConfigError;
use crate::limit::{AttemptStore, Attempts};
use crate::revocation::{Principal, RevocationList, TokenFacts};
use crate::store::StoreError;

/// Where and how to reach Redis.
#[derive(Clone)]
#[must_use]
pub struct RedisConfig {
    url: String,
    prefix: String,
    timeout: Duration,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The URL with any password replaced.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}<redacted>{}", &url[..s + 3], &url[at..]),
        _ => url.to_owned(),
    }
}

impl RedisConfig {
    /// A Redis URL (`redis://[:password@]host:port[/db]`, or `rediss://` for TLS).
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "mcp-auth:".into(),
            timeout: Duration::from_millis(500),
        }
    }

    /// Key prefix (default `mcp-auth:`), to share one Redis between deployments.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Timeout of every operation, connecting included (default 500 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }
}

struct Inner {
    manager: ConnectionManager,
    prefix: String,
    timeout: Duration,
    url: String,
}

/// A lazily connected, self-reconnecting Redis handle. Cheap to clone.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("url", &redact(&self.inner.url))
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

fn hashed(s: &str) -> String {
    let d = Sha256::digest(s.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn unavailable(e: impl fmt::Display) -> StoreError {
    StoreError::unavailable(format!("redis: {e}"))
}

impl Redis {
    /// Checks the URL and prepares the connection; does not connect (the first operation
    /// does, and later ones reconnect after failures). Call it inside a Tokio runtime, which
    /// then drives the connection.
    ///
    /// # Errors
    ///
    /// A URL `redis` cannot parse (the message never contains the URL's password), or no
    /// Tokio runtime.
    pub fn new(config: RedisConfig) -> Result<Self, ConfigError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ConfigError::new(
                "redis",
                "Redis::new must be called inside a Tokio runtime",
            ));
        }
        let client = redis::Client::open(config.url.as_str())
            .map_err(|_| ConfigError::new("redis url", "is not a valid redis:// URL"))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.timeout))
            .set_response_timeout(Some(config.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let manager =
            ConnectionManager::new_lazy_with_config(client, manager_config).map_err(|e| {
                ConfigError::new(
                    "redis",
                    format!("cannot prepare a connection: {:?}", e.kind()),
                )
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                manager,
                prefix: config.prefix,
                timeout: config.timeout,
                url: config.url,
            }),
        })
    }

    fn key(&self, kind: &str, id: &str) -> String {
        format!("{}{kind}:{}", self.inner.prefix, hashed(id))
    }

    /// Runs `f` on a connection within the timeout.
    async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.inner.manager.clone();
        match tokio::time::timeout(self.inner.timeout, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(format!("{:?}", e.kind()))),
            Err(_) => Err(unavailable("timed out")),
        }
    }

    /// Round trip to Redis.
    ///
    /// # Errors
    ///
    /// When Redis does not answer within the timeout.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.run(|mut c| async move { redis::cmd("PING").query_async::<String>(&mut c).await })
            .await
            .map(|_| ())
    }

    /// The issued-token store.
    #[must_use]
    pub fn token_store(&self) -> RedisTokenStore {
        RedisTokenStore {
            redis: self.clone(),
        }
    }

    /// The revocation list.
    #[must_use]
    pub fn revocation_list(&self) -> RedisRevocationList {
        RedisRevocationList {
            redis: self.clone(),
        }
    }

    /// The failure counter store.
    #[must_use]
    pub fn attempt_store(&self) -> RedisAttemptStore {
        RedisAttemptStore {
            redis: self.clone(),
        }
    }
}

// --- issued tokens -------------------------------------------------------------------------------

/// A token record as stored: everything to rebuild its `AuthContext`, never the token.
#[derive(Serialize, Deserialize)]
struct StoredRecord {
    sub: String,
    method: String,
    scopes: Vec<String>,
    roles: Vec<String>,
    client_id: Option<String>,
    issuer: Option<String>,
    audience: Vec<String>,
    id: Option<String>,
    exp_ms: u64,
}

impl StoredRecord {
    fn of(record: &TokenRecord) -> Self {
        let c = record.context();
        Self {
            sub: c.subject().to_owned(),
            method: c.method().as_str().to_owned(),
            scopes: c.scopes().iter().map(String::from).collect(),
            roles: c.roles().map(String::from).collect(),
            client_id: c.client_id().map(String::from),
            issuer: c.issuer().map(String::from),
            audience: c.audience().to_vec(),
            id: c.credential_id().map(String::from),
            exp_ms: unix_ms(record.expires_at()),
        }
    }

    fn into_record(self, revoked: bool) -> TokenRecord {
        let method = match self.method.as_str() {
            "api_key" => AuthMethod::ApiKey,
            "bearer" => AuthMethod::Bearer,
            "jwt" => AuthMethod::Jwt,
            "introspection" => AuthMethod::Introspection,
            other => AuthMethod::Custom(other.into()),
        };
        let expires_at = UNIX_EPOCH + Duration::from_millis(self.exp_ms);
        let mut b = AuthContext::builder(self.sub, method)
            .scopes(self.scopes)
            .roles(self.roles)
            .audience(self.audience)
            .expires_at(expires_at);
        if let Some(c) = self.client_id {
            b = b.client_id(c);
        }
        if let Some(i) = self.issuer {
            b = b.issuer(i);
        }
        if let Some(id) = self.id {
            b = b.credential_id(id);
        }
        let record = TokenRecord::new(b.build(), expires_at);
        if revoked {
            record.into_revoked()
        } else {
            record
        }
    }
}

/// Marks one record revoked (its `v` field), keeping its expiry. Returns 1 when the record
/// existed.
const REVOKE: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'v', '1')
return 1";

/// Issued tokens in Redis (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct RedisTokenStore {
    redis: Redis,
}

impl RedisTokenStore {
    fn record_key(&self, digest: &TokenDigest) -> String {
        let hex: String = digest
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{}tok:{hex}", self.redis.inner.prefix)
    }

    /// Revokes every record listed in the set at `index`; returns how many existed.
    async fn revoke_index(&self, index: String) -> Result<usize, StoreError> {
        let script = redis::Script::new(REVOKE);
        self.redis
            .run(|mut c| async move {
                let members: Vec<String> = c.smembers(&index).await?;
                let mut n = 0usize;
                for key in members {
                    let done: i64 = script.key(&key).invoke_async(&mut c).await?;
                    n += usize::try_from(done).unwrap_or(0);
                }
                Ok(n)
            })
            .await
    }
}

impl TokenStore for RedisTokenStore {
    async fn get(&self, digest: &TokenDigest) -> Result<Option<TokenRecord>, StoreError> {
        let key = self.record_key(digest);
        let (raw, revoked): (Option<String>, Option<String>) = self
            .redis
            .run(|mut c| async move {
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("r")
                    .arg("v")
                    .query_async(&mut c)
                    .await
            })
            .await?;
        match raw {
            None => Ok(None),
            Some(json) => serde_json::from_str::<StoredRecord>(&json)
                .map(|r| Some(r.into_record(revoked.as_deref() == Some("1"))))
                .map_err(|_| StoreError::unavailable("redis: a token record does not parse")),
        }
    }

    async fn insert(&self, digest: TokenDigest, record: TokenRecord) -> Result<(), StoreError> {
        let key = self.record_key(&digest);
        let stored = StoredRecord::of(&record);
        let record_revoked = record.is_revoked();
        let exp_ms = stored.exp_ms;
        if exp_ms <= unix_ms(SystemTime::now()) {
            return Ok(());
        }
        let json = serde_json::to_string(&stored)
            .map_err(|_| StoreError::unavailable("redis: cannot encode a token record"))?;
        let by_id = stored.id.as_deref().map(|id| self.redis.key("tok-id", id));
        let by_sub = self.redis.key("tok-sub", &stored.sub);
        self.redis
            .run(|mut c| async move {
                let mut pipe = redis::pipe();
                let revoked = if record_revoked { "1" } else { "0" };
                pipe.atomic()
                    .cmd("HSET")
                    .arg(&key)
                    .arg("r")
                    .arg(json)
                    .arg("v")
                    .arg(revoked)
                    .ignore()
                    .cmd("PEXPIREAT")
                    .arg(&key)
                    .arg(exp_ms)
                    .ignore();
                for index in by_id.iter().chain(std::iter::once(&by_sub)) {
                    pipe.sadd(index, &key).ignore();
                    // The index lives as long as its longest-lived token.
                    pipe.cmd("PEXPIREAT")
                        .arg(index)
                        .arg(exp_ms)
                        .arg("GT")
                        .ignore();
                    pipe.cmd("PEXPIREAT")
                        .arg(index)
                        .arg(exp_ms)
                        .arg("NX")
                        .ignore();
                }
                pipe.query_async::<()>(&mut c).await
            })
            .await
    }

    async fn revoke(&self, digest: &TokenDigest) -> Result<bool, StoreError> {
        let key = self.record_key(digest);
        let script = redis::Script::new(REVOKE);
        let done: i64 = self
            .redis
            .run(|mut c| async move { script.key(&key).invoke_async(&mut c).await })
            .await?;
        Ok(done == 1)
    }

    async fn revoke_id(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self.revoke_index(self.redis.key("tok-id", id)).await? > 0)
    }

    async fn revoke_subject(&self, subject: &str) -> Result<usize, StoreError> {
        self.revoke_index(self.redis.key("tok-sub", subject)).await
    }
}

// --- revocation list ------------------------------------------------------------------------------

/// Sets a principal's "revoked before" time to the later of the stored and the given one, and
/// its expiry to the later of the two.
const REVOKE_BEFORE: &str = r"
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local before = tonumber(ARGV[1])
if cur > before then before = cur end
local ttl = tonumber(ARGV[2])
local left = redis.call('PTTL', KEYS[1])
if left > ttl then ttl = left end
redis.call('SET', KEYS[1], tostring(before), 'PX', ttl)
return 1";

/// JWT revocations in Redis (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct RedisRevocationList {
    redis: Redis,
}

impl RevocationList for RedisRevocationList {
    fn revoke_token_id(
        &self,
        token_id: &str,
        expires_at: SystemTime,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let key = self.redis.key("rev-jti", token_id);
        let exp_ms = unix_ms(expires_at);
        let redis = self.redis.clone();
        async move {
            if exp_ms <= unix_ms(SystemTime::now()) {
                return Ok(());
            }
            redis
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
    }

    fn revoke_before(
        &self,
        principal: Principal<'_>,
        before: SystemTime,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        let key = self.redis.key("rev-p", &principal.key());
        let before_ms = unix_ms(before);
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let redis = self.redis.clone();
        async move {
            let script = redis::Script::new(REVOKE_BEFORE);
            redis
                .run(|mut c| async move {
                    script
                        .key(&key)
                        .arg(before_ms)
                        .arg(ttl_ms)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await
                .map(|_| ())
        }
    }

    fn revoked(&self, facts: &TokenFacts) -> impl Future<Output = Result<bool, StoreError>> + Send {
        let jti = facts
            .token_id
            .as_deref()
            .map(|id| self.redis.key("rev-jti", id));
        let principals: Vec<String> = facts
            .principal_keys
            .iter()
            .map(|k| self.redis.key("rev-p", k))
            .collect();
        let issued_ms = facts.issued_at.map_or(0, unix_ms);
        let redis = self.redis.clone();
        async move {
            let mut keys = principals;
            if let Some(j) = &jti {
                keys.push(j.clone());
            }
            if keys.is_empty() {
                return Ok(false);
            }
            let values: Vec<Option<String>> = redis
                .run(|mut c| async move { c.mget(&keys).await })
                .await?;
            let (principal_values, jti_value) = if jti.is_some() {
                let (p, j) = values.split_at(values.len() - 1);
                (p.to_vec(), j[0].clone())
            } else {
                (values, None)
            };
            if jti_value.is_some() {
                return Ok(true);
            }
            Ok(principal_values.iter().flatten().any(|before| {
                before
                    .parse::<u64>()
                    .is_ok_and(|before_ms| issued_ms < before_ms)
            }))
        }
    }
}

// --- failure counters ------------------------------------------------------------------------------

/// Counts one failure: the first opens the window (its expiry); returns count and time left.
const RECORD_FAILURE: &str = r"
local c = redis.call('INCR', KEYS[1])
local t = redis.call('PTTL', KEYS[1])
if t < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  t = tonumber(ARGV[1])
end
return {c, t}";

/// Failure counters in Redis (see the [module docs](self)).
#[derive(Clone, Debug)]
pub struct RedisAttemptStore {
    redis: Redis,
}

impl AttemptStore for RedisAttemptStore {
    fn failures(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<Attempts>, StoreError>> + Send {
        let key = self.redis.key("fail", key);
        let redis = self.redis.clone();
        async move {
            let (count, ttl): (Option<u32>, i64) =
                redis
                    .run(|mut c| async move {
                        redis::pipe().get(&key).pttl(&key).query_async(&mut c).await
                    })
                    .await?;
            Ok(count.filter(|_| ttl > 0).map(|count| Attempts {
                count,
                resets_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
            }))
        }
    }

    fn record_failure(
        &self,
        key: &str,
        window: Duration,
    ) -> impl Future<Output = Result<Attempts, StoreError>> + Send {
        let key = self.redis.key("fail", key);
        let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let redis = self.redis.clone();
        async move {
            let script = redis::Script::new(RECORD_FAILURE);
            let (count, ttl): (u32, i64) =
                redis
                    .run(|mut c| async move {
                        script.key(&key).arg(window_ms).invoke_async(&mut c).await
                    })
                    .await?;
            Ok(Attempts {
                count,
                resets_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_and_bad_ones_refused() {
        assert_eq!(
            redact("redis://user:pw@host:6379/0"),
            "redis://<redacted>@host:6379/0"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        let err = Redis::new(RedisConfig::new("redis://127.0.0.1:1")).unwrap_err();
        assert!(
            err.to_string().contains("Tokio runtime"),
            "no panic outside a runtime"
        );
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let err = Redis::new(RedisConfig::new("http://:pw@host")).unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }
}
