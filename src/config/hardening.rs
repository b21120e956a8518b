//! Hardening: trusted reverse proxies, the failed-attempt limit, allowed browser origins and
//! HTTPS.

use std::net::SocketAddr;
use std::time::Duration;

use crate::ConfigError;
use crate::env::EnvReader;
use crate::request_info::TrustedProxies;
#[cfg(feature = "redis")]
use crate::store::RedisSessionStore;
use crate::store::{MemoryAttemptStore, MemorySessionStore};

use super::redis::Redis;
use super::stores::{Counters, Sessions};
use super::{flag, list};

/// Transport guards and failed-attempt limits (the variables are in the [module docs](super#environment)).
#[derive(Debug, Clone)]
pub struct Guards {
    /// `(failures, window)`, or `None` when limiting is off.
    pub failure_limit: Option<(u32, Duration)>,
    /// Allowed browser origins.
    pub allowed_origins: Vec<String>,
    /// Refuse plain HTTP.
    pub require_https: bool,
    /// Where failure counters live.
    pub counters: Counters,
    /// Where session bindings live.
    pub sessions: Sessions,
    /// Reverse proxies whose `X-Forwarded-For` names the client (`MCP_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Believe `X-Forwarded-Host`/`-Proto` from those proxies (`MCP_TRUST_FORWARDED_HOST`).
    pub forwarded_host: bool,
}

/// The failure limit where client addresses tell clients apart: 10 failures per 300 s.
const DEFAULT_FAILURE_LIMIT: (u32, Duration) = (10, Duration::from_secs(300));

impl Default for Guards {
    fn default() -> Self {
        Self {
            failure_limit: Some(DEFAULT_FAILURE_LIMIT),
            allowed_origins: vec!["http://localhost:*".into(), "http://127.0.0.1:*".into()],
            require_https: false,
            trusted_proxies: TrustedProxies::none(),
            forwarded_host: false,
            counters: Counters::Memory(MemoryAttemptStore::new()),
            sessions: Sessions::Memory(MemorySessionStore::new()),
        }
    }
}

/// Proxies, the failure limit, origins and HTTPS; counters and session bindings go to `redis`
/// when it is set.
pub(super) fn load_guards(env: &mut EnvReader, bind: SocketAddr, redis: Option<&Redis>) -> Guards {
    #[cfg(not(feature = "redis"))]
    let _ = redis;
    // Forwarded headers count only from MCP_TRUSTED_PROXIES peers; MCP_TRUST_PROXY=true is
    // the shorthand for a proxy on this host that also forwards the public host and scheme.
    let trust_proxy = env.optional("MCP_TRUST_PROXY", flag) == Some(true);
    let mut trusted_proxies = env
        .optional("MCP_TRUSTED_PROXIES", TrustedProxies::parse)
        .unwrap_or_default();
    if trust_proxy {
        trusted_proxies = trusted_proxies.with(&TrustedProxies::loopback());
    }
    let forwarded_host =
        trust_proxy || env.optional("MCP_TRUST_FORWARDED_HOST", flag) == Some(true);
    if forwarded_host && trusted_proxies.is_empty() {
        env.problem(
            "MCP_TRUST_FORWARDED_HOST",
            "needs MCP_TRUSTED_PROXIES: forwarded headers are believed only from trusted proxies",
        );
    }
    // Failures are counted per client address: on by default only where addresses tell
    // clients apart. Behind a proxy on this host that is not trusted, every client would be
    // 127.0.0.1, and one stranger's failures would lock out everyone.
    let addresses_distinguish_clients = !trusted_proxies.is_empty() || !bind.ip().is_loopback();
    let mut guards = Guards {
        failure_limit: addresses_distinguish_clients.then_some(DEFAULT_FAILURE_LIMIT),
        trusted_proxies,
        forwarded_host,
        ..Guards::default()
    };
    if let Some(limit) = env.optional("MCP_FAILURE_LIMIT", parse_failure_limit) {
        if limit.is_some() && !addresses_distinguish_clients {
            env.problem(
                "MCP_FAILURE_LIMIT",
                "with a loopback MCP_BIND and no MCP_TRUSTED_PROXIES, clients cannot be told apart \
                 (behind a proxy on this host every client is 127.0.0.1, so one stranger's failures \
                 would lock out everyone): set MCP_TRUSTED_PROXIES to the proxy's address (such as \
                 127.0.0.1), or MCP_FAILURE_LIMIT=off",
            );
        }
        guards.failure_limit = limit;
    }
    if let Some(origins) = env.raw("MCP_ALLOWED_ORIGINS") {
        guards.allowed_origins = list(&origins);
    }
    if let Some(https) = env.optional("MCP_REQUIRE_HTTPS", flag) {
        guards.require_https = https;
    }
    #[cfg(feature = "redis")]
    if let Some(r) = redis {
        guards.counters = Counters::Redis(r.attempt_store());
        guards.sessions = Sessions::Redis(RedisSessionStore::new(r));
    }
    guards
}

/// `MCP_FAILURE_LIMIT`: `failures/seconds` (both positive), or `off` (`None`).
fn parse_failure_limit(name: &str, v: &str) -> Result<Option<(u32, Duration)>, ConfigError> {
    let v = v.trim();
    if v == "off" {
        return Ok(None);
    }
    let parsed = v.split_once('/').and_then(|(n, secs)| {
        Some((
            n.trim().parse::<u32>().ok().filter(|n| *n > 0)?,
            Duration::from_secs(secs.trim().parse::<u64>().ok().filter(|s| *s > 0)?),
        ))
    });
    parsed
        .map(Some)
        .ok_or_else(|| ConfigError::new(name, "must be failures/seconds (such as 10/300) or off"))
}
