//! The environment contract (the table in the [crate docs](crate#environment)), read into a
//! [`Config`] by [`load_config`].
//!
//! Each concern has its own module: static credentials, JWTs, OAuth (the protected resource
//! metadata and token introspection), shared stores in Redis, and hardening (proxies, the
//! failure limit, origins, HTTPS); the tool table is read here. Every problem in the
//! environment is reported at once, by variable name and never with its value.

mod credentials;
mod hardening;
mod jwt;
mod oauth;
mod stores;

pub use hardening::Guards;

use std::net::SocketAddr;
use std::sync::Arc;

use mcp_auth::authenticators::introspection::IntrospectionBuilder;
use mcp_auth::authenticators::jwt::{JwtAuthenticator, JwtBuilder};
use mcp_auth::env::EnvReader;
use mcp_auth::oauth::ProtectedResource;
use mcp_auth::oauth::ReqwestFetcher;
use mcp_auth::scope::ScopePolicy;
use mcp_auth::store::redis::Redis;
use mcp_auth::{
    ApiKeyAuthenticator, Authenticator, BearerAuthenticator, Chain, ConfigError, Secret,
};
use mcp_auth::{authenticators::bearer::TokenManager, store::MemoryTokenStore};

use crate::policy::{DEFAULT_TOOL_SCOPES, scope_policy};
use crate::router::ServerAuth;
use crate::stores::Tokens;

/// Everything the server needs, read from the environment by [`load_config`].
pub struct Config {
    /// The address to listen on (`MCP_BIND`).
    pub bind: SocketAddr,
    /// `Host` values rmcp accepts (`MCP_ALLOWED_HOSTS`; `None`: rmcp's default, loopback).
    pub allowed_hosts: Option<Vec<String>>,
    /// The authenticators, in the order a request's credential is tried.
    pub auth: ServerAuth,
    /// Issues, rotates and revokes bearer tokens at run time (accepted whenever bearer tokens
    /// are enabled). This example issues none itself; an admin tool or endpoint would.
    pub tokens: TokenManager<Tokens>,
    /// Set when no credential was configured and one was generated.
    pub generated_token: Option<Secret>,
    /// Which tools need which scopes.
    pub policy: Arc<ScopePolicy>,
    /// The protected resource metadata, when authorization servers are configured.
    pub resource: Option<ProtectedResource>,
    /// Transport guards and failure limits.
    pub guards: Guards,
    jwt: Option<JwtAuthenticator>,
}

impl Config {
    /// The JWT authenticator, when JWTs are accepted.
    pub fn jwt(&self) -> Option<&JwtAuthenticator> {
        self.jwt.as_ref()
    }

    /// The names of the authentication schemes the server accepts, for its startup log.
    pub fn scheme_names(&self) -> Vec<String> {
        self.auth
            .schemes()
            .iter()
            .map(|s| s.name().to_owned())
            .collect()
    }
}

/// Reads the whole configuration from `env`; every problem is reported at once.
///
/// ```
/// use mcp_auth::env::EnvReader;
///
/// let env = EnvReader::from_pairs([("MCP_API_KEYS", "key-alice-0123456789abcdef;sub=alice")]);
/// let config = mcp_auth_example_server::load_config(env).unwrap();
/// assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
/// assert!(config.generated_token.is_none());
/// ```
pub fn load_config(mut env: EnvReader) -> Result<Config, ConfigError> {
    let bind = env
        .optional("MCP_BIND", |name, v| {
            v.trim()
                .parse::<SocketAddr>()
                .map_err(|_| ConfigError::new(name, "is not an address such as 127.0.0.1:8080"))
        })
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let allowed_hosts = env.optional("MCP_ALLOWED_HOSTS", |_, v| Ok(list(v)));
    let (api_keys, tokens) = credentials::load_credentials(&mut env);
    let public_url = env
        .raw("MCP_PUBLIC_URL")
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| format!("http://{bind}/mcp"));
    let audiences = env
        .raw("MCP_JWT_AUDIENCE")
        .map(|v| list(&v))
        .unwrap_or_else(|| vec![public_url.clone()]);
    // One HTTP client for JWKS, discovery and introspection.
    let fetcher = ReqwestFetcher::new()?;
    let jwt = jwt::load_jwt(&mut env, &audiences, &fetcher);
    let authorization_servers = oauth::load_authorization_servers(&mut env);
    let introspection =
        oauth::load_introspection(&mut env, &audiences, &authorization_servers, &fetcher);
    let redis = stores::load_redis(&mut env);
    let guards = hardening::load_guards(&mut env, bind, redis.as_ref());
    let policy = load_policy(&mut env)?;
    env.finish()?;
    build(Settings {
        bind,
        allowed_hosts,
        api_keys,
        tokens,
        public_url,
        jwt,
        authorization_servers,
        introspection,
        redis,
        guards,
        policy,
    })
}

/// What [`load_config`] read, before the authenticators are built.
struct Settings {
    bind: SocketAddr,
    allowed_hosts: Option<Vec<String>>,
    api_keys: Option<ApiKeyAuthenticator>,
    tokens: Option<BearerAuthenticator>,
    public_url: String,
    jwt: Option<JwtBuilder>,
    authorization_servers: Vec<String>,
    introspection: Option<IntrospectionBuilder>,
    redis: Option<Redis>,
    guards: Guards,
    policy: ScopePolicy,
}

/// Builds the authenticators and the metadata, and generates a token when no credential of
/// any kind is configured.
fn build(s: Settings) -> Result<Config, ConfigError> {
    let opaque_too = s.introspection.is_some();
    let jwt = s
        .jwt
        .map(|b| {
            if opaque_too {
                b.defer_opaque_tokens()
            } else {
                b
            }
        })
        .map(|b| b.build())
        .transpose()?;
    let introspection = s.introspection.map(|b| b.build()).transpose()?;
    let resource =
        oauth::protected_resource(s.public_url, &s.authorization_servers, &s.policy, &s.guards)?;
    let mut tokens = s.tokens;
    let mut generated_token = None;
    if s.api_keys.is_none() && tokens.is_none() && jwt.is_none() && introspection.is_none() {
        let (auth, token) = credentials::generated_credential()?;
        tokens = Some(auth);
        generated_token = Some(token);
    }
    let store = match &s.redis {
        Some(r) => Tokens::Redis(r.token_store()),
        None => Tokens::Memory(MemoryTokenStore::new()),
    };
    // With JWTs also accepted, a bearer token that is not a static or issued token is left
    // to the JWT authenticator.
    let tokens = tokens.map(|t| {
        let t = t.with_store(store.clone());
        if jwt.is_some() || introspection.is_some() {
            t.defer_unknown()
        } else {
            t
        }
    });
    Ok(Config {
        bind: s.bind,
        allowed_hosts: s.allowed_hosts,
        auth: Chain::new(
            s.api_keys,
            Chain::new(tokens, Chain::new(jwt.clone(), introspection)),
        ),
        tokens: TokenManager::new(store),
        generated_token,
        policy: Arc::new(s.policy),
        resource,
        guards: s.guards,
        jwt,
    })
}

/// Comma-separated values, trimmed, empty ones dropped.
fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`; empty is false).
fn flag(name: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" | "" => Ok(false),
        _ => Err(ConfigError::new(name, "must be true or false")),
    }
}

/// The tool table: `MCP_TOOL_SCOPES`, or the built-in [`DEFAULT_TOOL_SCOPES`].
fn load_policy(env: &mut EnvReader) -> Result<ScopePolicy, ConfigError> {
    match env.optional("MCP_TOOL_SCOPES", |name, v| {
        scope_policy(v).map_err(|e| ConfigError::new(name, e))
    }) {
        Some(policy) => Ok(policy),
        None => scope_policy(DEFAULT_TOOL_SCOPES)
            .map_err(|e| ConfigError::new("MCP_TOOL_SCOPES", format!("built-in table: {e}"))),
    }
}
