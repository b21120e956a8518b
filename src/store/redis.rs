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

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::Secret;
use crate::context::{AuthContext, AuthMethod};
use crate::error::ConfigError;
use crate::store::StoreError;
use crate::store::{AttemptStore, Attempts, Reservation};
use crate::store::{Principal, RevocationList, TokenFacts};
use crate::store::{TokenDigest, TokenRecord, TokenStore};

/// Default key prefix.
const DEFAULT_PREFIX: &str = "mcp-auth:";
/// Default per-operation timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
/// Shortest record key accepted (bytes): HMAC-SHA256 keys should carry 256 bits.
pub const MIN_RECORD_KEY_LEN: usize = 32;
/// At most one integrity warning per this many milliseconds (per handle); the next one
/// counts the refusals in between.
const WARN_EVERY_MS: u64 = 60_000;

type HmacSha256 = Hmac<Sha256>;

/// Where and how to reach Redis. Its `Debug` redacts the URL's credentials and never shows
/// the record key.
#[derive(Clone)]
#[must_use]
pub struct RedisConfig {
    url: String,
    prefix: String,
    timeout: Duration,
    ca_pem: Option<Vec<u8>>,
    client_cert: Option<(Vec<u8>, Secret)>,
    record_key: Option<Secret>,
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redact(&self.url))
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("ca_cert", &self.ca_pem.as_ref().map(|_| "<set>"))
            .field("client_cert", &self.client_cert.as_ref().map(|_| "<set>"))
            .field("record_key", &self.record_key.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Query parameters whose values are shown by [`redact`]; every other value is hidden.
const SHOWN_PARAMS: [&str; 2] = ["db", "protocol"];

/// The URL for logs and `Debug`: the user information (`user:password@`) and the value of
/// every query parameter other than `db` and `protocol` (`pass=`, `password=`, `user=` of
/// `redis+unix://` URLs, and anything unknown, percent-encoded names included) are replaced
/// by `<redacted>`. Text that is not a URL at all is not shown.
fn redact(url: &str) -> String {
    const HIDDEN: &str = "<redacted>";
    let Some((scheme, rest)) = url.split_once("://") else {
        return "<not a URL; not shown>".to_owned();
    };
    let mut out = format!("{scheme}://");
    // Everything up to the last `@` is user information (an `@` later in the URL only makes
    // this hide more).
    let rest = match rest.rsplit_once('@') {
        Some((_, after)) => {
            out.push_str(HIDDEN);
            out.push('@');
            after
        }
        None => rest,
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, f)) => (r, Some(f)),
        None => (rest, None),
    };
    match rest.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some((k, v)) if SHOWN_PARAMS.contains(&k) => format!("{k}={v}"),
                    Some((k, _)) if k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                        format!("{k}={HIDDEN}")
                    }
                    _ => HIDDEN.to_owned(),
                })
                .collect();
            out.push_str(&params.join("&"));
        }
        None => out.push_str(rest),
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(if fragment == "insecure" {
            fragment
        } else {
            HIDDEN
        });
    }
    out
}

impl RedisConfig {
    /// A Redis URL: `redis://[[user]:password@]host[:port][/db]`,
    /// `rediss://[[user]:password@]host[:port][/db]` (TLS), or
    /// `redis+unix:///path/to/socket[?db=N&user=U&pass=P]`.
    ///
    /// With `rediss://` the server's certificate must chain to a root of the system's trust
    /// store (or to [`ca_cert_pem`](Self::ca_cert_pem)) and name the URL's host (an IP
    /// address host needs an IP address in the certificate). There is no way to turn the
    /// check off: `rediss://…#insecure` is refused.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: DEFAULT_PREFIX.into(),
            timeout: DEFAULT_TIMEOUT,
            ca_pem: None,
            client_cert: None,
            record_key: None,
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

    /// Trusts only these CA certificates (PEM, one or more) for a `rediss://` server, instead
    /// of the system's trust store: for a deployment with its own CA or a self-signed
    /// certificate. [`Redis::new`] refuses it with a `redis://` URL, or when it holds no
    /// certificate.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents this client certificate (PEM chain, leaf first) and private key (PEM) to a
    /// `rediss://` server that asks for one (`tls-auth-clients yes`). [`Redis::new`] refuses it
    /// with a `redis://` URL, or when either does not parse.
    pub fn client_cert_pem(
        mut self,
        cert_chain: impl Into<Vec<u8>>,
        key: impl Into<Secret>,
    ) -> Self {
        self.client_cert = Some((cert_chain.into(), key.into()));
        self
    }

    /// Authenticates every token record with HMAC-SHA256 under this key (at least
    /// [`MIN_RECORD_KEY_LEN`] bytes; every instance needs the same key). The MAC covers the
    /// record (subject, scopes, expiry, everything the caller's context is rebuilt from) and
    /// the Redis key it is stored under, so a record planted or edited by someone who can
    /// write to Redis but does not hold the key, or moved to another token's key, is refused
    /// as an unknown token (401), with a warning logged.
    ///
    /// It cannot stop deletions, nor replays of an earlier genuine record: clearing a
    /// record's revoked flag, or deleting a revocation entry, undoes that revocation. Keep
    /// write access to Redis to the servers.
    ///
    /// Records written without a key (or under another key) are refused once it is set:
    /// tokens issued before must be issued again.
    pub fn record_key(mut self, key: impl Into<Secret>) -> Self {
        self.record_key = Some(key.into());
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

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    let mut s = String::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Lower-case or upper-case hex to bytes; `None` for anything else.
fn unhex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| match pair {
            [hi, lo] => Some(nibble(*hi)? << 4 | nibble(*lo)?),
            _ => None,
        })
        .collect()
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

/// `err` itself as a TLS error: a `rustls::Error`, or one inside an `io::Error` (as
/// tokio-rustls reports them), or either inside an `Arc` (as `redis` keeps them).
fn as_tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let err = match err.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>() {
        Some(shared) => &**shared,
        None => err,
    };
    err.downcast_ref::<rustls::Error>().or_else(|| {
        err.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

/// The TLS error somewhere in `e`'s chain.
fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    // Bounded: a chain is short, and this never loops on a cyclic one.
    for _ in 0..16 {
        let err = cur?;
        if let Some(tls) = as_tls_error(err) {
            return Some(tls);
        }
        cur = err.source();
    }
    None
}

/// At most `max` characters of `s`.
fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// What went wrong, for a [`StoreError`]: the category (timeout, refused, lost, TLS
/// certificate or handshake, authentication, …), never the URL, a password or a key.
fn describe(e: &redis::RedisError) -> String {
    if let Some(tls) = tls_error(e) {
        let what = match tls {
            rustls::Error::InvalidCertificate(_) => "TLS: the server's certificate is refused",
            rustls::Error::AlertReceived(_) => "TLS: the server refused the handshake",
            _ => "TLS handshake failed",
        };
        return format!("{what} ({})", bounded(&tls.to_string(), 160));
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_connection_dropped() {
        "connection lost".to_owned()
    } else if e.kind() == redis::ErrorKind::AuthenticationFailed {
        "authentication failed (user or password refused)".to_owned()
    } else if let Some(code) = e.code() {
        // Server error codes (`WRONGPASS`, `NOAUTH`, `NOPERM`, …) carry no secret.
        format!("{:?} ({})", e.kind(), bounded(code, 40))
    } else if e.kind() == redis::ErrorKind::Io {
        "I/O error".to_owned()
    } else {
        format!("{:?}", e.kind())
    }
}

/// A Redis error as a [`StoreError`] (see [`describe`]).
fn unavailable(e: &redis::RedisError) -> StoreError {
    StoreError::unavailable(format!("redis: {}", describe(e)))
}

/// Makes sure rustls has a process-wide crypto provider before `redis` builds a TLS
/// configuration with `rustls::ClientConfig::builder()` (which panics when none is installed
/// and the crate features name none, or two). Installs aws-lc-rs only when none is installed.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: then that one is the default.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// The MAC of a token record stored at `redis_key`. Domain-separated, and the key's length
/// is prefixed so key and record cannot trade bytes.
fn record_mac(key: &Secret, redis_key: &str, json: &str) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key.expose().as_bytes()).ok()?;
    mac.update(b"mcp-auth redis token record v1\0");
    mac.update(&u64::try_from(redis_key.len()).ok()?.to_be_bytes());
    mac.update(redis_key.as_bytes());
    mac.update(json.as_bytes());
    Some(mac)
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
        let scheme = config
            .url
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        let tls = scheme.as_deref() == Some("rediss");
        if tls
            && config
                .url
                .rsplit_once('#')
                .is_some_and(|(_, f)| f.eq_ignore_ascii_case("insecure"))
        {
            return Err(ConfigError::new(
                "redis url",
                "#insecure (no certificate check) is not supported; give the server's CA with \
                 RedisConfig::ca_cert_pem instead",
            ));
        }
        if let Some(key) = &config.record_key
            && key.len() < MIN_RECORD_KEY_LEN
        {
            return Err(ConfigError::new(
                "redis record key",
                format!(
                    "must be at least {MIN_RECORD_KEY_LEN} bytes (e.g. `openssl rand -base64 32`)"
                ),
            ));
        }
        let bad_url = || {
            ConfigError::new(
                "redis url",
                "is not a valid redis://, rediss:// or redis+unix:// URL",
            )
        };
        if tls {
            ensure_crypto_provider();
        }
        let client = if config.ca_pem.is_none() && config.client_cert.is_none() {
            redis::Client::open(config.url.as_str()).map_err(|_| bad_url())?
        } else {
            use rustls::pki_types::pem::PemObject as _;
            use rustls::pki_types::{CertificateDer, PrivateKeyDer};
            let certs = |pem: &[u8]| {
                CertificateDer::pem_slice_iter(pem)
                    .collect::<Result<Vec<_>, _>>()
                    .is_ok_and(|c| !c.is_empty())
            };
            let mut problem = None;
            if let Some(pem) = &config.ca_pem {
                if !tls {
                    problem = Some(("redis ca certificate", "is only used with a rediss:// URL"));
                } else if !certs(pem) {
                    problem = Some((
                        "redis ca certificate",
                        "is not one or more PEM certificates",
                    ));
                }
            }
            if let Some((chain, key)) = &config.client_cert {
                if !tls {
                    problem = Some((
                        "redis client certificate",
                        "is only used with a rediss:// URL",
                    ));
                } else if !certs(chain) {
                    problem = Some((
                        "redis client certificate",
                        "is not one or more PEM certificates",
                    ));
                } else if PrivateKeyDer::from_pem_slice(key.expose().as_bytes()).is_err() {
                    problem = Some(("redis client key", "is not a PEM private key"));
                }
            }
            if let Some((setting, message)) = problem {
                return Err(ConfigError::new(setting, message));
            }
            // Validate the URL first: `build_with_tls`'s error cannot tell the causes apart.
            redis::Client::open(config.url.as_str()).map_err(|_| bad_url())?;
            redis::Client::build_with_tls(
                config.url.as_str(),
                redis::TlsCertificates {
                    client_tls: config.client_cert.as_ref().map(|(chain, key)| {
                        redis::ClientTlsConfig {
                            client_cert: chain.clone(),
                            client_key: key.expose().as_bytes().to_vec(),
                        }
                    }),
                    root_cert: config.ca_pem.clone(),
                },
            )
            .map_err(|_| {
                ConfigError::new("redis tls", "the CA or client certificate is not usable")
            })?
        };
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

    /// The record, or `None` when a time in it is out of the platform's range.
    fn into_record(self, revoked: bool) -> Option<TokenRecord> {
        let method = AuthMethod::from_name(&self.method);
        let mut b = AuthContext::builder(self.sub, method)
            .scopes(self.scopes)
            .roles(self.roles)
            .audience(self.audience);
        if let Some(ms) = self.ctx_exp_ms {
            b = b.expires_at(from_unix_ms(ms)?);
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
        let record = TokenRecord::new(b.build(), from_unix_ms(self.exp_ms)?);
        Some(if revoked {
            record.into_revoked()
        } else {
            record
        })
    }
}

/// Stores a record and lists it in its indexes. KEYS: the record, then the indexes. ARGV: the
/// record JSON, its revoked flag, its expiry and now (Unix ms), its MAC (hex; empty: none).
/// Each index drops members that expired and lives as long as its last member.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('HSET', KEYS[1], 'r', ARGV[1], 'v', ARGV[2])
if ARGV[5] == '' then
  redis.call('HDEL', KEYS[1], 'm')
else
  redis.call('HSET', KEYS[1], 'm', ARGV[5])
end
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
        let (raw, revoked, mac): (Option<String>, Option<String>, Option<String>) = self
            .redis
            .run(|mut c| {
                let key = key.clone();
                async move {
                    redis::cmd("HMGET")
                        .arg(&key)
                        .arg("r")
                        .arg("v")
                        .arg("m")
                        .query_async(&mut c)
                        .await
                }
            })
            .await?;
        let Some(json) = raw else {
            return Ok(None);
        };
        if let Some(record_key) = &self.redis.inner.record_key {
            let Some(expected) = record_mac(record_key, &key, &json) else {
                return Err(StoreError::unavailable(
                    "redis: cannot compute a record MAC",
                ));
            };
            let verdict = match mac.as_deref().map(unhex) {
                None => Err("no MAC"),
                Some(None) => Err("malformed MAC"),
                // Constant-time comparison.
                Some(Some(tag)) => expected.verify_slice(&tag).map_err(|_| "wrong MAC"),
            };
            if let Err(why) = verdict {
                self.redis.integrity_failure(why);
                return Ok(None);
            }
        }
        match serde_json::from_str::<StoredRecord>(&json)
            .ok()
            .and_then(|r| r.into_record(revoked.as_deref() == Some("1")))
        {
            Some(record) => Ok(Some(record)),
            None => Err(StoreError::unavailable(
                "redis: a token record does not parse",
            )),
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
        let mac = match &self.redis.inner.record_key {
            None => String::new(),
            Some(record_key) => record_mac(record_key, &key, &json)
                .map(|m| hex(&m.finalize().into_bytes()))
                .ok_or_else(|| StoreError::unavailable("redis: cannot compute a record MAC"))?,
        };
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
                    .arg(mac)
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

/// Failure counters in Redis (see the [module docs](self)): fixed windows, counted across
/// every instance. Attempts are reserved before authenticating and refunded on success in
/// one atomic script each, so parallel requests, on any instance, cannot overtake the limit.
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
        let window_ms = window_ms(window);
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

    fn reserve(
        &self,
        key: &str,
        window: Duration,
        max_failures: u32,
    ) -> impl Future<Output = Result<Reservation, StoreError>> + Send {
        let key = self.redis.key("fail", key);
        let window_ms = window_ms(window);
        let redis = self.redis.clone();
        async move {
            // The count comes back as a string when refused: it may exceed any integer type
            // (anyone who can write to Redis can set it).
            let (reserved, count, ttl): (i64, String, i64) = redis
                .run(|mut c| async move {
                    RESERVE
                        .key(&key)
                        .arg(window_ms)
                        .arg(max_failures)
                        .invoke_async(&mut c)
                        .await
                })
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
    }

    fn refund(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send {
        let key = self.redis.key("fail", key);
        let redis = self.redis.clone();
        async move {
            redis
                .run(|mut c| async move { REFUND.key(&key).invoke_async::<i64>(&mut c).await })
                .await
                .map(|_| ())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_redacted_in_every_form() {
        for (url, shown) in [
            (
                "redis://user:S3CR3T@host:6379/0",
                "redis://<redacted>@host:6379/0",
            ),
            ("redis://:S3@CR3T@host", "redis://<redacted>@host"),
            ("redis://S3CR3T@host", "redis://<redacted>@host"),
            ("redis://host:6379", "redis://host:6379"),
            (
                "rediss://default:S3CR3T@redis.example.com:6380/2",
                "rediss://<redacted>@redis.example.com:6380/2",
            ),
            (
                "rediss://:S3CR3T@host/0?protocol=resp3#insecure",
                "rediss://<redacted>@host/0?protocol=resp3#insecure",
            ),
            (
                "redis+unix:///run/redis.sock?db=1&pass=S3CR3T",
                "redis+unix:///run/redis.sock?db=1&pass=<redacted>",
            ),
            (
                "redis+unix:///s?user=S3CR3T&password=S3CR3T&PASS=S3CR3T",
                "redis+unix:///s?user=<redacted>&password=<redacted>&PASS=<redacted>",
            ),
            (
                "unix:///s?%70ass=S3CR3T&S3CR3T&db=3",
                "unix:///s?<redacted>&<redacted>&db=3",
            ),
            ("redis://:S3?CR3T@host", "redis://<redacted>@host"),
            ("redis://:S3#CR3T@host", "redis://<redacted>@host"),
            ("redis://host/#S3CR3T", "redis://host/#<redacted>"),
            ("S3CR3T", "<not a URL; not shown>"),
        ] {
            let got = redact(url);
            assert_eq!(got, shown, "{url}");
            assert!(!got.contains("S3") && !got.contains("CR3T"), "{got}");
        }
    }

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
    fn tls_errors_are_found_inside_io_errors() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        let e = redis::RedisError::from(io);
        let text = describe(&e);
        assert!(
            text.starts_with("TLS: the server's certificate is refused"),
            "{text}"
        );
        let refused =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(describe(&refused), "connection refused");
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

    #[test]
    fn record_macs_bind_the_record_to_its_key() {
        let k = Secret::new("k".repeat(32));
        let tag = |key: &Secret, at: &str, json: &str| {
            record_mac(key, at, json)
                .unwrap()
                .finalize()
                .into_bytes()
                .to_vec()
        };
        let genuine = tag(&k, "p:tok:aa", "{}");
        assert_eq!(unhex(&hex(&genuine)).unwrap(), genuine);
        assert!(
            record_mac(&k, "p:tok:aa", "{}")
                .unwrap()
                .verify_slice(&genuine)
                .is_ok()
        );
        assert_ne!(genuine, tag(&k, "p:tok:ab", "{}"), "moved to another key");
        assert_ne!(genuine, tag(&k, "p:tok:aa", "{ }"), "edited record");
        assert_ne!(
            genuine,
            tag(&k, "p:tok:a", "a{}"),
            "key and record trade bytes"
        );
        assert_ne!(genuine, tag(&Secret::new("j".repeat(32)), "p:tok:aa", "{}"));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
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
            .into_record(true)
            .unwrap();
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
            assert_eq!(back.into_record(false).unwrap().context().method(), &m);
        }
    }
}
