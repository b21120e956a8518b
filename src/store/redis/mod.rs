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
//! | `fail:<h>` | string | attempts counted in the current window: failures, and attempts reserved while they authenticate (refunded when they succeed) | with the window (set by its first attempt, never extended) |
//! | `replay:<h>` | string | a one-time value already used (a DPoP proof's `jti`; `<h>`: the hex SHA-256 of the key thumbprint and `jti`) | when the value would be too old to accept anyway |
//! | `session:<h>` | string | the MCP session's owner: the hex [`Owner`](crate::store::Owner) digest (domain-separated SHA-256 of its principal key, or the anonymous owner); here `<h>` is the hex SHA-256 of the hex SHA-256 of the `Mcp-Session-Id` ([`RedisSessionStore`](crate::store::RedisSessionStore)) | after the idle timeout (default 1 hour), restarted by every use |
//!
//! A token record hash also holds `m`, the record's HMAC-SHA256, when a
//! [record key](RedisConfig::record_key) is configured.
//!
//! Writes that touch several keys are Lua scripts (atomic, one round trip): revoking every
//! token of a subject or id is one script, so it happens entirely or not at all (a caller
//! that times out may not learn that it happened; retrying is harmless). A single Redis
//! server (with or without replicas behind its URL) is supported, not Redis Cluster; Redis
//! 6.2 or newer.
//!
//! # Security
//!
//! - `rediss://` URLs connect with TLS (rustls): the certificate is checked against the
//!   system's roots or the CA given with [`RedisConfig::ca_cert_pem`]; the check cannot be
//!   turned off. Use TLS whenever Redis is reached over a network: records and revocations
//!   travel in them, and the URL's password too.
//! - Anyone who can write to Redis can plant a record for a token of their choosing, unless a
//!   [record key](RedisConfig::record_key) is configured: records then carry an HMAC bound to
//!   their key and are refused (401, a warning logged) when it does not verify. No MAC can
//!   stop deletions: such a writer can still undo revocations (clear `v`, delete `rev-*`
//!   entries), reset failure counters, or delete records. Restrict Redis write access (ACLs,
//!   network) to the servers.
//! - Errors name their category (timeout, connection refused, TLS certificate refused, …),
//!   never the URL, its password or a key.
//!
//! # Example
//!
//! Building the handle needs neither a server nor a runtime:
//!
//! ```
//! use std::time::Duration;
//! use mcp_auth::store::redis::{Redis, RedisAttemptStore, RedisConfig, RedisRevocationList, RedisTokenStore};
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
//! use mcp_auth::authenticators::bearer::{BearerAuthenticator, BearerLayer, TokenManager, TokenSpec};
//! use mcp_auth::hardening::FailureLimitLayer;
//! use mcp_auth::store::redis::{Redis, RedisConfig};
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

mod attempts;
mod config;
mod connection;
mod replay;
mod revocations;
// Its one public path is `crate::store::RedisSessionStore`, beside the other session types.
pub(super) mod sessions;
mod tokens;

pub use self::attempts::RedisAttemptStore;
pub use self::config::{MIN_RECORD_KEY_LEN, RedisConfig};
pub use self::replay::RedisReplayCache;
pub use self::revocations::RedisRevocationList;
pub use self::tokens::RedisTokenStore;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script, ToRedisArgs};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use self::config::redact;
use self::connection::unavailable;
use crate::Secret;
use crate::error::ConfigError;
use crate::store::StoreError;
use crate::store::hex::hex;

/// The arguments of a script that takes none ([`Redis::eval`]).
const NO_ARGS: Option<u8> = None;
/// At most one integrity warning per this many milliseconds (per handle); the next one
/// counts the refusals in between.
const WARN_EVERY_MS: u64 = 60_000;

struct Inner {
    client: redis::Client,
    /// Created on first use, inside the runtime that then drives it.
    manager: OnceCell<ConnectionManager>,
    prefix: String,
    timeout: Duration,
    /// The URL, credentials redacted (for `Debug`).
    redacted_url: String,
    tls: bool,
    record_key: Option<Secret>,
    /// Integrity failures not yet reported, and when the last warning was logged (Unix ms).
    refused: AtomicU64,
    warned_at: AtomicU64,
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
            .field("tls", &self.inner.tls)
            .field(
                "record_key",
                &self.inner.record_key.as_ref().map(|_| "<set>"),
            )
            .finish()
    }
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time `ms` after the epoch; `None` when the platform cannot represent it.
fn from_unix_ms(ms: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(ms))
}

fn now_ms() -> u64 {
    unix_ms(SystemTime::now())
}

impl Redis {
    /// Checks the configuration and prepares the handle; does not connect and needs no
    /// runtime. The first operation connects (inside the Tokio runtime it runs on); later
    /// ones reconnect after failures.
    ///
    /// With a `rediss://` URL, this installs aws-lc-rs as rustls's process-wide crypto
    /// provider unless one is installed already: an application that installs its own
    /// should do so before.
    ///
    /// # Errors
    ///
    /// A URL the `redis` client cannot use (not `redis://`, `rediss://` or `redis+unix://`,
    /// or malformed), `rediss://…#insecure`, a CA or client certificate (or key) that is not
    /// PEM or given with a URL that is not `rediss://`, a record key shorter than
    /// [`MIN_RECORD_KEY_LEN`]. The message never contains the URL or a key.
    pub fn new(config: RedisConfig) -> Result<Self, ConfigError> {
        let (client, tls) = connection::client(&config)?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                manager: OnceCell::new(),
                prefix: config.prefix,
                timeout: config.timeout,
                redacted_url: redact(&config.url),
                tls,
                record_key: config.record_key,
                refused: AtomicU64::new(0),
                warned_at: AtomicU64::new(0),
            }),
        })
    }

    /// Counts a record refused by the integrity check, logging a warning (no secret, no
    /// key) at most once a minute per handle, with the number refused since the last one.
    fn integrity_failure(&self, why: &'static str) {
        self.inner.refused.fetch_add(1, Ordering::Relaxed);
        let now = now_ms().max(1);
        let last = self.inner.warned_at.load(Ordering::Relaxed);
        if (last == 0 || now.saturating_sub(last) >= WARN_EVERY_MS)
            && self
                .inner
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let refused = self.inner.refused.swap(0, Ordering::Relaxed).max(1);
            tracing::warn!(
                reason = why,
                refused,
                "redis: token record(s) failed the integrity check (HMAC) and were refused as unknown tokens: written without the record key, altered, or moved"
            );
        }
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

    /// Runs the Lua `script` on the one key `key` with `args` (one value, or a tuple of values,
    /// each one argument), as [`run`](Self::run) runs any command.
    pub(crate) async fn eval<T, A>(
        &self,
        script: &Script,
        key: &str,
        args: A,
    ) -> Result<T, StoreError>
    where
        T: FromRedisValue + Send,
        A: ToRedisArgs + Send,
    {
        self.run(|mut c| async move { script.key(key).arg(args).invoke_async(&mut c).await })
            .await
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

    /// The replay cache of one-time values (DPoP proof `jti`s).
    #[must_use]
    pub fn replay_cache(&self) -> RedisReplayCache {
        RedisReplayCache {
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

#[cfg(test)]
mod live_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_built_without_a_runtime_and_bad_configs_refused() {
        let redis = Redis::new(RedisConfig::new("redis://:pw@127.0.0.1:1/0")).unwrap();
        let shown = format!("{:?}", redis.token_store());
        assert!(
            !shown.contains("pw") && shown.contains("127.0.0.1:1"),
            "{shown}"
        );
        assert!(!format!("{:?}", RedisConfig::new("redis://:pw@h")).contains("pw"));
        let tls = Redis::new(RedisConfig::new("rediss://:pw@127.0.0.1:1/0")).unwrap();
        assert!(tls.inner.tls && !format!("{tls:?}").contains("pw"));
        let key = "k".repeat(MIN_RECORD_KEY_LEN);
        let keyed = RedisConfig::new("redis://h").record_key(key.as_str());
        assert!(!format!("{keyed:?}").contains(&key));
        assert!(!format!("{:?}", Redis::new(keyed).unwrap()).contains(&key));
        for (bad, what) in [
            (RedisConfig::new("http://:pw@host"), "redis url"),
            (RedisConfig::new("not a url pw"), "redis url"),
            (RedisConfig::new("rediss://:pw@host/#insecure"), "redis url"),
            (RedisConfig::new("rediss://:pw@host/#INSECURE"), "redis url"),
            (
                RedisConfig::new("redis://:pw@host").ca_cert_pem(b"x".to_vec()),
                "redis ca certificate",
            ),
            (
                RedisConfig::new("rediss://:pw@host").ca_cert_pem(b"not pem pw".to_vec()),
                "redis ca certificate",
            ),
            (
                RedisConfig::new("rediss://:pw@host").ca_cert_pem(Vec::new()),
                "redis ca certificate",
            ),
            (
                RedisConfig::new("redis://:pw@host").record_key("pw-too-short"),
                "redis record key",
            ),
            (
                RedisConfig::new("redis://:pw@host").client_cert_pem(Vec::new(), "pw"),
                "redis client certificate",
            ),
            (
                RedisConfig::new("rediss://:pw@host").client_cert_pem(b"pw".to_vec(), "pw"),
                "redis client certificate",
            ),
        ] {
            let err = Redis::new(bad).unwrap_err();
            let text = err.to_string();
            assert!(!text.contains("pw"), "{text}");
            assert!(text.contains(what), "{text}");
        }
    }

    #[test]
    fn integrity_warnings_are_rate_limited_and_count_what_they_skip() {
        let redis = Redis::new(RedisConfig::new("redis://127.0.0.1:1")).unwrap();
        redis.integrity_failure("wrong MAC");
        let first = redis.inner.warned_at.load(Ordering::Relaxed);
        assert!(first > 0, "the first refusal is logged");
        assert_eq!(redis.inner.refused.load(Ordering::Relaxed), 0);
        redis.integrity_failure("wrong MAC");
        redis.integrity_failure("no MAC");
        assert_eq!(redis.inner.warned_at.load(Ordering::Relaxed), first);
        assert_eq!(
            redis.inner.refused.load(Ordering::Relaxed),
            2,
            "counted for the next warning, not logged"
        );
        // A minute later the next refusal is logged, with the count.
        redis
            .inner
            .warned_at
            .store(first.saturating_sub(WARN_EVERY_MS), Ordering::Relaxed);
        redis.integrity_failure("no MAC");
        assert_eq!(redis.inner.refused.load(Ordering::Relaxed), 0);
        assert!(redis.inner.warned_at.load(Ordering::Relaxed) >= first);
    }
}
