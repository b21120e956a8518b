//! Shared state in Redis (`MCP_REDIS_*`): issued tokens, revocations, failure counters and
//! session bindings, over TLS with `rediss://`.

use crate::env::EnvReader;
#[cfg(feature = "redis")]
pub(super) use crate::store::redis::Redis;
#[cfg(feature = "redis")]
use crate::store::redis::RedisConfig;
#[cfg(feature = "redis")]
use crate::{ConfigError, Secret};

/// Without the `redis` feature there is no Redis handle.
#[cfg(not(feature = "redis"))]
pub(super) enum Redis {}

/// The variables that configure Redis.
#[cfg_attr(feature = "redis", allow(dead_code))]
pub(super) const REDIS_SETTINGS: [&str; 5] = [
    "MCP_REDIS_URL",
    "MCP_REDIS_CA_FILE",
    "MCP_REDIS_CLIENT_CERT_FILE",
    "MCP_REDIS_CLIENT_KEY",
    "MCP_REDIS_RECORD_KEY",
];

/// Without the `redis` feature, any Redis setting is a problem: state would silently stay in
/// this process.
#[cfg(not(feature = "redis"))]
pub(super) fn load_redis(env: &mut EnvReader) -> Option<Redis> {
    for name in REDIS_SETTINGS {
        if env.raw(name).is_some() || env.raw(&format!("{name}_FILE")).is_some() {
            env.problem(name, "needs mcp-auth's `redis` feature");
        }
    }
    None
}

/// The settings that go with `MCP_REDIS_URL`.
#[cfg(feature = "redis")]
struct RedisSettings {
    ca: Option<Vec<u8>>,
    client_cert: Option<Vec<u8>>,
    client_key: Option<Secret>,
    record_key: Option<Secret>,
}

/// The shared Redis, when `MCP_REDIS_URL` is set. The URL may carry a password: a secret
/// setting (also `MCP_REDIS_URL_FILE`). TLS with `rediss://`; `MCP_REDIS_CA_FILE` trusts a
/// private CA; `MCP_REDIS_RECORD_KEY(_FILE)` makes every instance authenticate token records
/// with HMAC-SHA256.
#[cfg(feature = "redis")]
pub(super) fn load_redis(env: &mut EnvReader) -> Option<Redis> {
    let url = env.secret("MCP_REDIS_URL");
    let s = RedisSettings {
        ca: env.optional("MCP_REDIS_CA_FILE", |name, path| {
            read_file(name, path, "the CA file")
        }),
        client_cert: env.optional("MCP_REDIS_CLIENT_CERT_FILE", |name, path| {
            read_file(name, path, "the certificate file")
        }),
        client_key: env.secret("MCP_REDIS_CLIENT_KEY"),
        record_key: env.secret("MCP_REDIS_RECORD_KEY"),
    };
    match url {
        Some(url) => connect_redis(env, url.expose(), s),
        None => {
            if s.ca.is_some() {
                env.problem("MCP_REDIS_CA_FILE", "needs MCP_REDIS_URL");
            }
            if s.record_key.is_some() {
                env.problem("MCP_REDIS_RECORD_KEY", "needs MCP_REDIS_URL");
            }
            if s.client_cert.is_some() || s.client_key.is_some() {
                env.problem("MCP_REDIS_CLIENT_CERT_FILE", "needs MCP_REDIS_URL");
            }
            None
        }
    }
}

/// The contents of the file at `path` (a `…_FILE` setting), at most
/// [`MAX_SECRET_FILE`](crate::env::MAX_SECRET_FILE) bytes.
#[cfg(feature = "redis")]
fn read_file(name: &str, path: &str, what: &str) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let limit = crate::env::MAX_SECRET_FILE as u64;
    let mut bytes = Vec::new();
    std::fs::File::open(path.trim())
        .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
        .map_err(|e| ConfigError::new(name, format!("cannot read {what} ({})", e.kind())))?;
    if bytes.len() as u64 > limit {
        return Err(ConfigError::new(
            name,
            format!("{what} is larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// A Redis handle (connected on first use); its problems are named by the variable at fault.
#[cfg(feature = "redis")]
fn connect_redis(env: &mut EnvReader, url: &str, s: RedisSettings) -> Option<Redis> {
    let mut config = RedisConfig::new(url);
    if let Some(pem) = s.ca {
        config = config.ca_cert_pem(pem);
    }
    match (s.client_cert, s.client_key) {
        (Some(cert), Some(key)) => config = config.client_cert_pem(cert, key),
        (None, None) => {}
        _ => env.problem(
            "MCP_REDIS_CLIENT_CERT_FILE",
            "and MCP_REDIS_CLIENT_KEY (or MCP_REDIS_CLIENT_KEY_FILE) go together",
        ),
    }
    if let Some(key) = s.record_key {
        config = config.record_key(key);
    }
    match Redis::new(config) {
        Ok(redis) => Some(redis),
        Err(e) => {
            for p in e.problems() {
                env.problem(redis_variable(p.setting()), p.message());
            }
            None
        }
    }
}

#[cfg(feature = "redis")]
/// The variable behind a [`RedisConfig`] setting.
fn redis_variable(setting: &str) -> &'static str {
    match setting {
        "redis ca certificate" => "MCP_REDIS_CA_FILE",
        "redis client certificate" | "redis tls" => "MCP_REDIS_CLIENT_CERT_FILE",
        "redis client key" => "MCP_REDIS_CLIENT_KEY",
        "redis record key" => "MCP_REDIS_RECORD_KEY",
        _ => "MCP_REDIS_URL",
    }
}
