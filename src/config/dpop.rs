//! DPoP for the configured OAuth token authenticators (JWT, introspection): `MCP_DPOP` and its
//! companions. DPoP-bound tokens are always checked; `MCP_DPOP=required` refuses plain
//! bearer tokens from the authorization server.

use std::time::Duration;

use super::stores::Replays;
use crate::ConfigError;
use crate::Secret;
use crate::authenticators::dpop::{
    Algorithm, DEFAULT_ALGORITHMS, DEFAULT_IAT_WINDOW, DEFAULT_NONCE_LIFETIME, DpopAuthenticator,
    DpopMode, MIN_NONCE_KEY_LEN,
};
use crate::env::EnvReader;
use crate::store::{DEFAULT_REPLAY_CAPACITY, MemoryReplayCache};

/// What the `MCP_DPOP*` settings say.
pub(super) struct DpopSettings {
    mode: DpopMode,
    algs: Vec<Algorithm>,
    window: Duration,
    nonce: Option<(Option<Secret>, Duration)>,
    capacity: usize,
}

impl DpopSettings {
    /// The proof algorithms, for the metadata.
    pub(super) fn algorithm_names(&self) -> Vec<String> {
        self.algs.iter().map(|a| format!("{a:?}")).collect()
    }

    /// Whether every token must be DPoP-bound.
    pub(super) fn required(&self) -> bool {
        self.mode == DpopMode::Required
    }
}

fn seconds(name: &str, v: &str) -> Result<Duration, ConfigError> {
    v.trim()
        .parse::<u64>()
        .ok()
        .filter(|s| *s > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| ConfigError::new(name, "must be a whole number of seconds above 0"))
}

/// Reads the `MCP_DPOP*` settings.
pub(super) fn load_dpop(env: &mut EnvReader) -> DpopSettings {
    let mode = env
        .optional("MCP_DPOP", |name, v| match v.trim() {
            "optional" | "" => Ok(DpopMode::Optional),
            "required" => Ok(DpopMode::Required),
            _ => Err(ConfigError::new(name, "must be optional or required")),
        })
        .unwrap_or_default();
    let algs = env
        .optional("MCP_DPOP_ALGS", |name, v| {
            super::list(&v.replace(' ', ","))
                .iter()
                .map(|a| {
                    a.parse::<Algorithm>().map_err(|_| {
                        ConfigError::new(
                            name,
                            "names an unknown algorithm (ES256, ES384, EdDSA, PS256, RS256, …)",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .unwrap_or_else(|| DEFAULT_ALGORITHMS.to_vec());
    let window = env
        .optional("MCP_DPOP_IAT_WINDOW", seconds)
        .unwrap_or(DEFAULT_IAT_WINDOW);
    let nonce_on = env.optional("MCP_DPOP_NONCE", super::flag) == Some(true);
    let key = env.secret("MCP_DPOP_NONCE_KEY");
    let lifetime = env
        .optional("MCP_DPOP_NONCE_LIFETIME", seconds)
        .unwrap_or(DEFAULT_NONCE_LIFETIME);
    if !nonce_on && key.is_some() {
        env.problem(
            "MCP_DPOP_NONCE_KEY",
            "is set but MCP_DPOP_NONCE is not true",
        );
    }
    if key.as_ref().is_some_and(|k| k.len() < MIN_NONCE_KEY_LEN) {
        env.problem("MCP_DPOP_NONCE_KEY", "must be at least 32 bytes");
    }
    let capacity = env
        .optional("MCP_DPOP_REPLAY_CAPACITY", |name, v| {
            v.trim()
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| ConfigError::new(name, "must be a whole number above 0"))
        })
        .unwrap_or(DEFAULT_REPLAY_CAPACITY);
    DpopSettings {
        mode,
        algs,
        window,
        nonce: nonce_on.then_some((key, lifetime)),
        capacity,
    }
}

/// DPoP around `verifier`: proofs must name `public_url`; `jti`s are remembered in `replays`
/// (Redis when configured, else memory).
pub(super) fn build_dpop<V: crate::TokenVerifier>(
    s: &DpopSettings,
    verifier: V,
    public_url: &str,
    redis: Option<Replays>,
) -> Result<DpopAuthenticator<V, Replays>, ConfigError> {
    let replays =
        redis.unwrap_or_else(|| Replays::Memory(MemoryReplayCache::with_capacity(s.capacity)));
    let mut b = DpopAuthenticator::builder(verifier)
        .resource_url(public_url)
        .mode(s.mode)
        .algorithms(s.algs.iter().copied())
        .iat_window(s.window)
        .replay_cache(replays);
    if let Some((key, lifetime)) = &s.nonce {
        // Without a configured key, one per process: nonces then hold on this instance only.
        let key = match key {
            Some(k) => k.expose().as_bytes().to_vec(),
            None => random_key()?,
        };
        b = b.nonces(key, *lifetime);
    }
    // Its problems are named by the variables behind them with the other builders'
    // (`BUILDER_SETTINGS`).
    b.build()
}

fn random_key() -> Result<Vec<u8>, ConfigError> {
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|_| ConfigError::new("MCP_DPOP_NONCE_KEY", "no random source to make one"))?;
    Ok(key)
}
