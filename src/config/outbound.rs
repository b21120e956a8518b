//! Outbound credentials (feature `outbound`): `MCP_OUTBOUND_MODE` and the upstream it serves,
//! built into an [`OutboundClient`].

use std::time::Duration;

use crate::ConfigError;
use crate::env::EnvReader;
use crate::outbound::{
    ClientCredentials, DEFAULT_TOKEN_TIMEOUT, OutboundClient, StaticCredential, TokenEndpoint,
    TokenExchange, Upstreams,
};

/// The settings this module reads (the secret ones also as `…_FILE`), for the keys a TOML
/// file may hold.
pub(super) const OUTBOUND_SETTINGS: [&str; 13] = [
    "MCP_OUTBOUND_MODE",
    "MCP_UPSTREAM_API_URL",
    "MCP_UPSTREAM_AUDIENCE",
    "MCP_UPSTREAM_SCOPES",
    "MCP_OUTBOUND_CLIENT_ID",
    "MCP_OUTBOUND_CLIENT_SECRET",
    "MCP_OUTBOUND_CLIENT_SECRET_FILE",
    "MCP_OUTBOUND_TOKEN_URL",
    "MCP_OUTBOUND_STATIC_TOKEN",
    "MCP_OUTBOUND_STATIC_TOKEN_FILE",
    "MCP_OUTBOUND_TIMEOUT_SECS",
    "MCP_OUTBOUND_CACHE_KEY",
    "MCP_OUTBOUND_CACHE_KEY_FILE",
];

/// How the upstream's credential is obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Exchange,
    Obo,
    ClientCredentials,
    Static,
}

/// Reads `MCP_OUTBOUND_*` and `MCP_UPSTREAM_*`: the client and the upstream API's URL, `None`
/// when `MCP_OUTBOUND_MODE` is unset. Problems are recorded in `env`.
pub(super) fn load_outbound(
    env: &mut EnvReader,
    redis: Option<&super::redis::Redis>,
) -> Option<(OutboundClient, String)> {
    let mode = env.optional("MCP_OUTBOUND_MODE", |name, v| match v.trim() {
        "exchange" => Ok(Mode::Exchange),
        "obo" => Ok(Mode::Obo),
        "client_credentials" => Ok(Mode::ClientCredentials),
        "static" => Ok(Mode::Static),
        _ => Err(ConfigError::new(
            name,
            "must be exchange, obo, client_credentials or static",
        )),
    })?;
    let api = env.required("MCP_UPSTREAM_API_URL", |name, v| {
        let url = url::Url::parse(v.trim())
            .map_err(|_| ConfigError::new(name, "is not an absolute URL"))?;
        let host = url
            .host_str()
            .ok_or_else(|| ConfigError::new(name, "has no host"))?;
        let host = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        Ok((v.trim().to_owned(), host))
    });
    let audience = env.optional("MCP_UPSTREAM_AUDIENCE", |_, v| Ok(v.trim().to_owned()));
    let scopes: Vec<String> = env
        .optional("MCP_UPSTREAM_SCOPES", |_, v| {
            Ok(v.split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect())
        })
        .unwrap_or_default();
    let timeout = env
        .optional("MCP_OUTBOUND_TIMEOUT_SECS", |name, v| {
            v.trim()
                .parse::<u64>()
                .ok()
                .filter(|s| *s > 0 && *s <= 300)
                .map(Duration::from_secs)
                .ok_or_else(|| ConfigError::new(name, "must be whole seconds from 1 to 300"))
        })
        .unwrap_or(DEFAULT_TOKEN_TIMEOUT);
    if mode == Mode::Static {
        let token = env.required_secret("MCP_OUTBOUND_STATIC_TOKEN", |_, v, _| {
            Ok(crate::Secret::new(v.trim()))
        })?;
        let (url, host) = api?;
        return Some((
            OutboundClient::new(
                reqwest::Client::new(),
                Upstreams::new().host(&host, StaticCredential::bearer(token)),
            ),
            url,
        ));
    }
    let client_id = env.required("MCP_OUTBOUND_CLIENT_ID", |_, v| Ok(v.trim().to_owned()));
    let secret = env.secret("MCP_OUTBOUND_CLIENT_SECRET");
    if secret.is_none() {
        env.problem(
            "MCP_OUTBOUND_CLIENT_SECRET",
            "is not set (nor MCP_OUTBOUND_CLIENT_SECRET_FILE)",
        );
    }
    let token_url = env.required("MCP_OUTBOUND_TOKEN_URL", |_, v| Ok(v.trim().to_owned()));
    // Exchanged tokens shared by every instance through Redis, encrypted under this key.
    let cache_key = env.secret("MCP_OUTBOUND_CACHE_KEY");
    if let Some(key) = &cache_key {
        if redis.is_none() {
            env.problem(
                "MCP_OUTBOUND_CACHE_KEY",
                "needs MCP_REDIS_URL (the cache it encrypts)",
            );
        } else if key.len() < 32 {
            env.problem("MCP_OUTBOUND_CACHE_KEY", "must be at least 32 bytes");
        } else if !matches!(mode, Mode::Exchange | Mode::Obo) {
            env.problem(
                "MCP_OUTBOUND_CACHE_KEY",
                "only exchanged tokens are shared (MCP_OUTBOUND_MODE=exchange or obo)",
            );
        }
    }
    let (Some((url, host)), Some(client_id), Some(secret), Some(token_url)) =
        (api, client_id, secret, token_url)
    else {
        return None;
    };
    let endpoint = match TokenEndpoint::new(&token_url, &client_id, secret) {
        Ok(e) => e.timeout(timeout),
        Err(e) => {
            env.problem("MCP_OUTBOUND_TOKEN_URL", e.to_string());
            return None;
        }
    };
    let audience = audience.unwrap_or_else(|| url.clone());
    let share = |exchange: TokenExchange| -> TokenExchange {
        #[cfg(feature = "redis")]
        if let (Some(redis), Some(key)) = (redis, &cache_key) {
            return match crate::outbound::RedisExchangeCache::new(redis, key) {
                Ok(cache) => exchange.shared_cache(cache),
                Err(_) => exchange,
            };
        }
        #[cfg(not(feature = "redis"))]
        let _ = (redis, &cache_key);
        exchange
    };
    let upstreams = match mode {
        Mode::Exchange => Upstreams::new().host(
            &host,
            share(
                TokenExchange::new(endpoint, &audience)
                    .resource(&url)
                    .scopes(&scopes),
            ),
        ),
        Mode::Obo => Upstreams::new().host(
            &host,
            share(TokenExchange::on_behalf_of(endpoint, &audience).scopes(&scopes)),
        ),
        Mode::ClientCredentials | Mode::Static => {
            let mut cc = ClientCredentials::new(endpoint)
                .scopes(&scopes)
                .resource(&url);
            if audience != url {
                cc = cc.audience(&audience);
            }
            Upstreams::new().host(&host, cc)
        }
    };
    Some((OutboundClient::new(reqwest::Client::new(), upstreams), url))
}
