//! [`RedisConfig`]: where and how to reach Redis, and the URL redaction its `Debug` and
//! the handle's use.

use std::fmt;
use std::time::Duration;

use crate::Secret;

/// Default key prefix.
const DEFAULT_PREFIX: &str = "mcp-auth:";
/// Default per-operation timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
/// Shortest record key accepted (bytes): HMAC-SHA256 keys should carry 256 bits.
pub const MIN_RECORD_KEY_LEN: usize = 32;

/// Where and how to reach Redis. Its `Debug` redacts the URL's credentials and never shows
/// the record key.
#[derive(Clone)]
#[must_use]
pub struct RedisConfig {
    pub(super) url: String,
    pub(super) prefix: String,
    pub(super) timeout: Duration,
    pub(super) ca_pem: Option<Vec<u8>>,
    pub(super) client_cert: Option<(Vec<u8>, Secret)>,
    pub(super) record_key: Option<Secret>,
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
pub(super) fn redact(url: &str) -> String {
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
    /// certificate. [`Redis::new`](super::Redis::new) refuses it with a `redis://` URL, or when it holds no
    /// certificate.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Presents this client certificate (PEM chain, leaf first) and private key (PEM) to a
    /// `rediss://` server that asks for one (`tls-auth-clients yes`). [`Redis::new`](super::Redis::new) refuses it
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
}
