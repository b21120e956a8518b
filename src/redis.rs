//! Redis-backed shared state (feature `redis`): issued tokens ([`RedisTokenStore`]),
//! revocations ([`RedisRevocationList`]) and failure counters ([`RedisAttemptStore`]), so they
//! hold across every instance of a server.
//!
//! [`Redis::new`] only checks the URL: nothing connects until the first operation, so a
//! server starts even while Redis is down. The connection (one multiplexed connection per
//! [`Redis`] handle, shared by its clones and stores) reconnects by itself after failures.
//! Every operation, connecting included, is bounded by the timeout (default 500 ms); while
//! Redis cannot answer, operations fail with [`StoreError`] and the callers fail closed (503)
//! unless configured to fail open. Operations must run inside a Tokio runtime.
//!
//! # Keys
//!
//! All under the configured prefix (default `mcp-auth:`). `<digest>` is the hex SHA-256 of
//! the token; `<h>` is the hex SHA-256 of an id, subject, principal or client key, so neither
//! tokens nor client-chosen text become Redis keys.
//!
//! | key | type | content | expires |
//! |---|---|---|---|
//! | `tok:<digest>` | hash | `r`: the record (JSON: the caller's context, never the token), `v`: revoked (`0`/`1`) | with the token |
//! | `tok-id:<h>` | sorted set | `tok:` keys of the tokens with that id, scored by their expiry | with its last token |
//! | `tok-sub:<h>` | sorted set | `tok:` keys of the subject's tokens, likewise | with its last token |
//! | `rev-jti:<h>` | string | a revoked token id | with the revoked token |
//! | `rev-p:<h>` | string | a subject's or client's "revoked before" time (Unix ms) | after the `ttl` given, the longest asked for |
//! | `fail:<h>` | string | failures in the current window | with the window |
//!
//! Writes that touch several keys are Lua scripts (atomic, one round trip). A single Redis
//! server (with or without replicas behind its URL) is supported, not Redis Cluster; Redis
//! 6.2 or newer. TLS (`rediss://`) is not compiled in: such URLs are refused.
//!
//! # Example
//!
//! Building the handle needs neither a server nor a runtime:
//!
//! ```
//! use std::time::Duration;
//! use mcp_auth::redis::{Redis, RedisAttemptStore, RedisConfig, RedisRevocationList, RedisTokenStore};
//!
//! let redis = Redis::new(
//!     RedisConfig::new("redis://:secret@127.0.0.1:6379/0")
//!         .key_prefix("my-app:")
//!         .timeout(Duration::from_millis(300)),
//! )
//! .expect("a valid URL; nothing is connected yet");
//! assert!(!format!("{redis:?}").contains("secret"), "the password is redacted");
//!
//! let _tokens: RedisTokenStore = redis.token_store();
//! let _revocations: RedisRevocationList = redis.revocation_list();
//! let _attempts: RedisAttemptStore = redis.attempt_store();
//!
//! assert!(Redis::new(RedisConfig::new("http://127.0.0.1:6379")).is_err());
//! ```
//!
//! Wiring it into a server (this part needs a Redis server):
//!
//! ```no_run
//! use std::time::Duration;
//! use mcp_auth::bearer::{BearerAuthenticator, BearerLayer, TokenManager, TokenSpec};
//! use mcp_auth::limit::FailureLimitLayer;
//! use mcp_auth::redis::{Redis, RedisConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let redis = Redis::new(RedisConfig::new("redis://127.0.0.1:6379/0")).unwrap();
//! if let Err(e) = redis.ping().await {
//!     eprintln!("Redis is not answering yet ({e}); requests get 503 until it does");
//! }
//! let tokens = TokenManager::new(redis.token_store());
//! let issued = tokens.issue(TokenSpec::new("ci-bot", Duration::from_secs(3600))).await.unwrap();
//! // Every instance built this way accepts the token, and refuses it once revoked anywhere.
//! let auth = BearerLayer::new(BearerAuthenticator::new().with_store(redis.token_store()));
//! let limit = FailureLimitLayer::new(redis.attempt_store());
//! # let _ = (issued, auth, limit);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::bearer::{TokenDigest, TokenRecord, TokenStore};
use crate::context::{AuthContext, AuthMethod};
use crate::error::ConfigError;
use crate::limit::{AttemptStore, Attempts};
use crate::revocation::{Principal, RevocationList, TokenFacts};
use crate::store::StoreError;

/// Default key prefix.
const DEFAULT_PREFIX: &str = "mcp-auth:";
/// Default per-operation timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// Where and how to reach Redis. Its `Debug` redacts the URL's credentials.
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

/// The URL with its user information (`user:password@`) and any `user`/`pass`/`password`
/// query parameter (Unix socket URLs) replaced.
fn redact(url: &str) -> String {
    let (main, query) = match url.split_once('?') {
        Some((m, q)) => (m, Some(q)),
        None => (url, None),
    };
    let mut out = match (main.find("://"), main.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}<redacted>{}", &main[..s + 3], &main[at..]),
        _ => main.to_owned(),
    };
    if let Some(query) = query {
        out.push('?');
        let params: Vec<String> = query
            .split('&')
            .map(|p| match p.split_once('=') {
                Some((k, _))
                    if ["pass", "password", "user", "username"]
                        .iter()
                        .any(|s| k.eq_ignore_ascii_case(s)) =>
                {
                    format!("{k}=<redacted>")
                }
                _ => p.to_owned(),
            })
            .collect();
        out.push_str(&params.join("&"));
    }
    out
}

impl RedisConfig {
    /// A Redis URL: `redis://[[user]:password@]host[:port][/db]`, or
    /// `redis+unix:///path/to/socket[?db=N&pass=P]`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Key prefix (default `mcp-auth:`), to share one Redis between deployments.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Timeout of every operation, connecting included (default 500 ms; at least 1 ms).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.max(Duration::from_millis(1));
        self
    }
}

struct Inner {
    client: redis::Client,
    /// Created on first use, inside the runtime that then drives it.
    manager: OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    /// The URL, credentials redacted (for `Debug`).
    redacted_url: String,
}

/// A lazily connected, self-reconnecting Redis handle (see the [module docs](self)). Cheap to
/// clone: clones share one connection. Its `Debug` redacts the URL's credentials.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.inner.redacted_url)
            .field("prefix", &self.inner.prefix)
            .field("timeout", &self.inner.timeout)
            .finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

/// A Redis error as a [`StoreError`]: its category only (never the URL or a key).
fn unavailable(e: &redis::RedisError) -> StoreError {
    let what = if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_connection_dropped() {
        "connection lost".to_owned()
    } else {
        format!("{:?}", e.kind())
    };
    StoreError::unavailable(format!("redis: {what}"))
}

impl Redis {
    /// Checks the URL and prepares the handle; does not connect and needs no runtime. The
    /// first operation connects (inside the Tokio runtime it runs on); later ones reconnect
    /// after failures.
    ///
    /// # Errors
    ///
    /// A URL the `redis` client cannot use: not `redis://` or `redis+unix://` (`rediss://`,
    /// TLS, is not compiled in), or malformed. The message never contains the URL.
    pub fn new(config: RedisConfig) -> Result<Self, ConfigError> {
        let scheme = config.url.split_once("://").map(|(s, _)| s);
        if scheme.is_some_and(|s| s.eq_ignore_ascii_case("rediss")) {
            return Err(ConfigError::new(
                "redis url",
                "rediss:// (TLS) is not supported by this build; use redis:// (e.g. through a TLS tunnel)",
            ));
        }
        let client = redis::Client::open(config.url.as_str()).map_err(|_| {
            ConfigError::new("redis url", "is not a valid redis:// or redis+unix:// URL")
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                manager: OnceCell::new(),
                prefix: config.prefix,
                timeout: config.timeout,
                redacted_url: redact(&config.url),
            }),
        })
    }

    /// The connection manager, created on first use (it connects lazily itself).
    fn manager(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(m) = self.inner.manager.get() {
            return Ok(m.clone());
        }
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.inner.timeout))
            .set_response_timeout(Some(self.inner.timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100));
        let manager = ConnectionManager::new_lazy_with_config(self.inner.client.clone(), config)
            .map_err(|e| unavailable(&e))?;
        // Two first uses may race: one manager wins, the other is dropped unused.
        let _ = self.inner.manager.set(manager.clone());
        Ok(self.inner.manager.get().cloned().unwrap_or(manager))
    }

    /// The Redis key `<prefix><kind>:<hex sha256(id)>`: `id` (client-chosen text) never
    /// becomes part of a key itself. For other modules' stores on this handle (e.g. sessions);
    /// pick a `kind` not in the module's key table.
    pub(crate) fn key(&self, kind: &str, id: &str) -> String {
        format!(
            "{}{kind}:{}",
            self.inner.prefix,
            hex(&Sha256::digest(id.as_bytes()))
        )
    }

    /// Runs `f` on the shared connection within the handle's timeout (connecting first if
    /// needed); any Redis error or the timeout becomes [`StoreError::unavailable`] naming only
    /// the error's category. For other modules' stores on this handle (e.g. sessions).
    pub(crate) async fn run<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.manager()?;
        match tokio::time::timeout(self.inner.timeout, f(conn)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(unavailable(&e)),
            Err(_) => Err(StoreError::unavailable("redis: timed out")),
        }
    }

    /// One round trip to Redis (`PING`): for readiness checks.
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
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audience: Vec<String>,
    /// The context's own expiry (Unix ms), when it has one.
    #[serde(default)]
    ctx_exp_ms: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    claims: Option<serde_json::Map<String, serde_json::Value>>,
    /// The record's expiry (Unix ms).
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
            ctx_exp_ms: c.expires_at().map(unix_ms),
            id: c.credential_id().map(String::from),
            claims: c.claims().cloned(),
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
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        let mut b = AuthContext::builder(self.sub, method)
            .scopes(self.scopes)
            .roles(self.roles)
            .audience(self.audience);
        if let Some(ms) = self.ctx_exp_ms {
            b = b.expires_at(at(ms));
        }
        if let Some(c) = self.client_id {
            b = b.client_id(c);
        }
        if let Some(i) = self.issuer {
            b = b.issuer(i);
        }
        if let Some(id) = self.id {
            b = b.credential_id(id);
        }
        if let Some(claims) = self.claims {
            b = b.claims(claims);
        }
        let record = TokenRecord::new(b.build(), at(self.exp_ms));
        if revoked {
            record.into_revoked()
        } else {
            record
        }
    }
}

/// Stores a record and lists it in its indexes. KEYS: the record, then the indexes. ARGV: the
/// record JSON, its revoked flag, its expiry and now (Unix ms). Each index drops members that
/// expired and lives as long as its last member.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], 'r', ARGV[1], 'v', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
for i = 2, #KEYS do
  redis.call('ZADD', KEYS[i], ARGV[3], KEYS[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[4])
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', KEYS[i], string.format('%.0f', tonumber(last[2])))
  end
end
return 1",
    )
});

/// Marks one record revoked, keeping its expiry; 1 when the record exists (revoked before or
/// not), 0 when unknown (never creates a key).
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'v', '1')
return 1",
    )
});

/// Marks every live, not yet revoked record of an index revoked; returns how many. KEYS: the
/// index. ARGV: now (Unix ms). The record keys come from the index itself (so this needs a
/// single Redis, not Cluster).
static REVOKE_INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local n = 0
for _, k in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if redis.call('HGET', k, 'v') == '0' then
    redis.call('HSET', k, 'v', '1')
    n = n + 1
  end
end
return n",
    )
});

/// Issued tokens in Redis (see the [module docs](self)): records expire with their tokens;
/// revoked ones stay (flagged) until then, so the authenticator can tell "revoked".
#[derive(Clone, Debug)]
pub struct RedisTokenStore {
    redis: Redis,
}

impl RedisTokenStore {
    fn record_key(&self, digest: &TokenDigest) -> String {
        format!("{}tok:{}", self.redis.inner.prefix, hex(digest.as_bytes()))
    }

    async fn revoke_index(&self, index: String) -> Result<usize, StoreError> {
        let now = now_ms();
        let n: i64 = self
            .redis
            .run(
                |mut c| async move { REVOKE_INDEX.key(&index).arg(now).invoke_async(&mut c).await },
            )
            .await?;
        Ok(usize::try_from(n).unwrap_or(0))
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

    /// Stores the record until it expires (an already expired record is not stored).
    async fn insert(&self, digest: TokenDigest, record: TokenRecord) -> Result<(), StoreError> {
        let stored = StoredRecord::of(&record);
        let exp_ms = stored.exp_ms;
        let now = now_ms();
        if exp_ms <= now {
            return Ok(());
        }
        let key = self.record_key(&digest);
        let mut indexes = vec![self.redis.key("tok-sub", &stored.sub)];
        if let Some(id) = &stored.id {
            indexes.push(self.redis.key("tok-id", id));
        }
        let json = serde_json::to_string(&stored)
            .map_err(|_| StoreError::unavailable("redis: cannot encode a token record"))?;
        let revoked = if record.is_revoked() { "1" } else { "0" };
        self.redis
            .run(|mut c| async move {
                let mut inv = INSERT.key(&key);
                for index in &indexes {
                    inv.key(index);
                }
                inv.arg(json)
                    .arg(revoked)
                    .arg(exp_ms)
                    .arg(now)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await
            .map(|_| ())
    }

    async fn revoke(&self, digest: &TokenDigest) -> Result<bool, StoreError> {
        let key = self.record_key(digest);
        let done: i64 = self
            .redis
            .run(|mut c| async move { REVOKE.key(&key).invoke_async(&mut c).await })
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

/// JWT revocations in Redis (see the [module docs](self)): entries expire with what they
/// cover.
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
            if exp_ms <= now_ms() {
                // Already expired: nothing left to refuse.
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
        let ttl_ms = u64::try_from(ttl.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(1, 1 << 52);
        let redis = self.redis.clone();
        async move {
            redis
                .run(|mut c| async move {
                    REVOKE_BEFORE
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
        let redis = self.redis.clone();
        async move {
            if keys.is_empty() {
                return Ok(false);
            }
            let mut values: Vec<Option<String>> = redis
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
}

// --- failure counters ------------------------------------------------------------------------------

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

/// Failure counters in Redis (see the [module docs](self)): fixed windows, counted across
/// every instance.
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
            let (count, ttl): (Option<u32>, i64) = redis
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
    }

    fn record_failure(
        &self,
        key: &str,
        window: Duration,
    ) -> impl Future<Output = Result<Attempts, StoreError>> + Send {
        let key = self.redis.key("fail", key);
        let window_ms = u64::try_from(window.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(1, 1 << 52);
        let redis = self.redis.clone();
        async move {
            let (count, ttl): (u32, i64) = redis
                .run(|mut c| async move {
                    RECORD_FAILURE
                        .key(&key)
                        .arg(window_ms)
                        .invoke_async(&mut c)
                        .await
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
    fn urls_are_redacted() {
        assert_eq!(
            redact("redis://user:pw@host:6379/0"),
            "redis://<redacted>@host:6379/0"
        );
        assert_eq!(redact("redis://:p@w@host"), "redis://<redacted>@host");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
        assert_eq!(
            redact("redis+unix:///run/redis.sock?db=1&pass=pw"),
            "redis+unix:///run/redis.sock?db=1&pass=<redacted>"
        );
    }

    #[test]
    fn handles_are_built_without_a_runtime_and_bad_urls_refused() {
        let redis = Redis::new(RedisConfig::new("redis://:pw@127.0.0.1:1/0")).unwrap();
        let shown = format!("{:?}", redis.token_store());
        assert!(
            !shown.contains("pw") && shown.contains("127.0.0.1:1"),
            "{shown}"
        );
        assert!(!format!("{:?}", RedisConfig::new("redis://:pw@h")).contains("pw"));
        for bad in ["http://:pw@host", "rediss://:pw@host", "not a url pw"] {
            let err = Redis::new(RedisConfig::new(bad)).unwrap_err();
            assert!(!err.to_string().contains("pw"), "{err}");
        }
    }

    #[test]
    fn keys_hash_what_clients_choose() {
        let redis = Redis::new(RedisConfig::new("redis://127.0.0.1:1").key_prefix("p:")).unwrap();
        let k = redis.key("tok-sub", "alice\r\n*");
        assert!(
            k.starts_with("p:tok-sub:") && k.len() == "p:tok-sub:".len() + 64,
            "{k}"
        );
        let d = TokenDigest::of("a-token");
        let tk = redis.token_store().record_key(&d);
        assert!(!tk.contains("a-token") && tk.starts_with("p:tok:"), "{tk}");
    }

    #[test]
    fn records_round_trip() {
        let exp = UNIX_EPOCH + Duration::from_millis(4_000_000_000_123);
        let mut claims = serde_json::Map::new();
        claims.insert("team".into(), "blue".into());
        let ctx = AuthContext::builder("alice", AuthMethod::Custom("mtls".into()))
            .scopes(["a", "b"])
            .roles(["r"])
            .client_id("app")
            .issuer("https://as")
            .audience(["x"])
            .expires_at(exp)
            .credential_id("id-1")
            .claims(claims)
            .build();
        let json = serde_json::to_string(&StoredRecord::of(&TokenRecord::new(ctx, exp))).unwrap();
        assert!(!json.contains("a-token"));
        let back = serde_json::from_str::<StoredRecord>(&json)
            .unwrap()
            .into_record(true);
        let c = back.context();
        assert!(back.is_revoked());
        assert_eq!(back.expires_at(), exp);
        assert_eq!(c.subject(), "alice");
        assert_eq!(c.method().as_str(), "mtls");
        assert!(c.has_scope("a") && c.has_scope("b") && c.has_role("r"));
        assert_eq!(
            (c.client_id(), c.issuer(), c.credential_id()),
            (Some("app"), Some("https://as"), Some("id-1"))
        );
        assert_eq!(c.audience(), ["x"]);
        assert_eq!(c.expires_at(), Some(exp));
        assert_eq!(c.claims().unwrap()["team"], "blue");
        for m in [
            AuthMethod::ApiKey,
            AuthMethod::Bearer,
            AuthMethod::Jwt,
            AuthMethod::Introspection,
        ] {
            let r = TokenRecord::new(AuthContext::builder("s", m.clone()).build(), exp);
            let json = serde_json::to_string(&StoredRecord::of(&r)).unwrap();
            let back = serde_json::from_str::<StoredRecord>(&json).unwrap();
            assert_eq!(back.into_record(false).context().method(), &m);
        }
    }
}
