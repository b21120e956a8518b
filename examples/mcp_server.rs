//! An authenticated MCP server: rmcp's streamable HTTP transport on axum, behind mcp-auth.
//!
//! ```text
//! cargo run --example mcp_server
//! ```
//!
//! Environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `MCP_BIND` | address to listen on (default `127.0.0.1:8080`) |
//! | `MCP_API_KEYS` | API keys accepted in `X-API-Key` (comma-separated; syntax in the README) |
//! | `MCP_AUTH_TOKENS` | static bearer tokens accepted in `Authorization: Bearer` |
//! | `MCP_API_KEYS_FILE`, `MCP_AUTH_TOKENS_FILE` | instead of the variable: a file with one credential per line (`SECRET sub=…;scopes=…`; the secret may hold `,` and `;`) |
//! | `MCP_ALLOWED_HOSTS` | `Host` values rmcp accepts (default: loopback only) |
//! | `MCP_JWT_SECRET` (or `MCP_JWT_SECRET_FILE`) | HS256 secret (at least 32 bytes) for JWT access tokens; its tokens carry `iss` = `MCP_JWT_ISSUER` (any `iss` when that is unset), or, beside `MCP_JWKS_URL`/`MCP_OIDC_ISSUER`, `iss` = this server's own URL (the first `MCP_JWT_AUDIENCE`, default `MCP_PUBLIC_URL`) |
//! | `MCP_JWKS_URL` | JWKS URL for JWT access tokens (https, or http on loopback); needs `MCP_JWT_ISSUER` |
//! | `MCP_OIDC_ISSUER` | issuer to discover the JWKS from; also the expected `iss` |
//! | `MCP_JWT_ISSUER` | expected `iss` (comma-separated for several); required with `MCP_JWKS_URL` |
//! | `MCP_JWT_AUDIENCE` | expected `aud` (comma-separated; default `MCP_PUBLIC_URL`) |
//! | `MCP_PUBLIC_URL` | this server's public URL (default `http://<MCP_BIND>/mcp`) |
//! | `MCP_TOOL_SCOPES` | per-tool requirements replacing the built-in table (syntax below) |
//! | `MCP_AUTHORIZATION_SERVERS` | issuers listed in the protected resource metadata (comma-separated; default `MCP_OIDC_ISSUER`) |
//! | `MCP_INTROSPECTION_URL` | RFC 7662 introspection endpoint for opaque tokens (default: from the first authorization server's metadata) |
//! | `MCP_INTROSPECTION_CLIENT_ID` / `MCP_INTROSPECTION_CLIENT_SECRET` (or `MCP_INTROSPECTION_CLIENT_SECRET_FILE`) | this server's credentials at the introspection endpoint (setting them turns introspection on) |
//! | `MCP_TRUSTED_PROXIES` | reverse proxies (comma-separated addresses or CIDR blocks, such as `127.0.0.1` or `10.0.0.0/8`): from these peers only, the right-most `X-Forwarded-For` address that is not a listed proxy is the client |
//! | `MCP_TRUST_FORWARDED_HOST` | `true`: from `MCP_TRUSTED_PROXIES` peers, believe `X-Forwarded-Host`/`X-Forwarded-Proto` for the metadata URL, challenges and `MCP_REQUIRE_HTTPS` |
//! | `MCP_TRUST_PROXY` | `true`: shorthand for a proxy on this host: adds `127.0.0.0/8,::1` to `MCP_TRUSTED_PROXIES` and sets `MCP_TRUST_FORWARDED_HOST=true` |
//! | `MCP_FAILURE_LIMIT` | failed authentications allowed per client address and window, as `failures/seconds` (window at most a year), or `off`. Default `10/300` when client addresses tell clients apart (`MCP_TRUSTED_PROXIES` set, or a non-loopback `MCP_BIND`), otherwise `off`; setting it with a loopback `MCP_BIND` and no `MCP_TRUSTED_PROXIES` is refused |
//! | `MCP_ALLOWED_ORIGINS` | browser origins allowed to call (comma-separated; `:*` = any port; default `http://localhost:*,http://127.0.0.1:*`); other `Origin`s get 403 |
//! | `MCP_REDIS_URL` (or `MCP_REDIS_URL_FILE`) | keep issued tokens, revocations, failure counters and session bindings in Redis, shared by every instance (`redis://host:6379/0`; `rediss://` for TLS) |
//! | `MCP_REDIS_CA_FILE` | PEM file of the CA(s) that signed the Redis server's certificate (`rediss://` only; default: the system's roots) |
//! | `MCP_REDIS_CLIENT_CERT_FILE`, `MCP_REDIS_CLIENT_KEY` (or `MCP_REDIS_CLIENT_KEY_FILE`) | client certificate chain and key (PEM) for a `rediss://` server that asks for one |
//! | `MCP_REDIS_RECORD_KEY` (or `MCP_REDIS_RECORD_KEY_FILE`) | at least 32 bytes, the same on every instance: token records in Redis carry an HMAC-SHA256 under it; records planted or edited without it are refused |
//! | `MCP_REQUIRE_HTTPS` | `true`: refuse requests that did not come over HTTPS (with `MCP_TRUST_FORWARDED_HOST`, as a trusted proxy reports in `X-Forwarded-Proto`) |
//!
//! With authorization servers configured, the server is an OAuth protected resource: it
//! serves RFC 9728 metadata at `/.well-known/oauth-protected-resource/mcp` and
//! `/.well-known/oauth-protected-resource` (resource = `MCP_PUBLIC_URL`, scopes from the
//! tool table), and every 401/403 challenge carries `resource_metadata`; 401s ask for
//! `data:read` (basic use), 403s for what the refused call needs.
//!
//! Per-tool scopes: `whoami` needs authentication only, `read_data` needs `data:read`,
//! `write_data` needs `data:write` and `delete_data` needs `data:admin`; `data:write` implies
//! `data:read` and `data:*` implies every `data:` scope. A refused call gets HTTP 403 with an
//! `insufficient_scope` challenge naming the scopes, and `tools/list` shows each caller only
//! the tools it may call. Static API keys and tokens carry all three `data:` scopes unless
//! their configuration names others (`;scopes=data:read`).
//!
//! `MCP_TOOL_SCOPES` replaces the table: `tool=requirement` entries separated by `;`, where a
//! requirement is space-separated scopes all required, one `a|b` set of alternatives, and an
//! optional `role:NAME`; an empty requirement means authentication only. Tools it does not
//! name are refused. Example:
//! `MCP_TOOL_SCOPES="whoami=;read_data=data:read;write_data=data:write;delete_data=data:admin role:admin"`.
//!
//! With several set, any valid credential works: API keys in `X-API-Key`; in
//! `Authorization: Bearer`, static and issued tokens first (by digest), then JWTs. With none set, the server generates a bearer
//! token, prints it on a line starting with `token: `, and requires it: it never serves
//! unauthenticated.
//!
//! Each MCP session belongs to the caller whose `initialize` created it: a request with another
//! caller's (or an unknown) `Mcp-Session-Id` gets rmcp's own 404 "session not found" and never
//! reaches rmcp (`mcp_auth::session`; bindings in memory, or in Redis with `MCP_REDIS_URL`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderName, Method, Request, header};
use mcp_auth::bearer::{
    MemoryTokenStore, TokenDigest, TokenManager, TokenRecord, TokenStore, generate_token,
};
use mcp_auth::env::EnvReader;
use mcp_auth::http::ReqwestFetcher;
use mcp_auth::introspection::IntrospectionAuthenticator;
use mcp_auth::jwt::{Algorithm, JwtAuthenticator, JwtKey};
use mcp_auth::limit::{AttemptStore, Attempts, FailureLimitLayer, MemoryAttemptStore, Reservation};
use mcp_auth::redis::{Redis, RedisAttemptStore, RedisConfig, RedisTokenStore};
use mcp_auth::resource::ProtectedResource;
use mcp_auth::rmcp::{Auth, ScopedServer, require};
use mcp_auth::scope::{
    ImpliedScopes, Requirement, ScopeLayer, ScopePolicy, Unlisted, WildcardAndPairs,
};
use mcp_auth::session::{
    MemorySessionStore, Owner, RedisSessionStore, SessionBindingLayer, SessionDigest, SessionStore,
};
use mcp_auth::store::StoreError;
use mcp_auth::transport::{ClientAddrLayer, HttpsOnlyLayer, OriginLayer, TrustedProxies};
use mcp_auth::{
    ApiKeyAuthenticator, AuthLayer, Authenticator, BearerAuthenticator, Chain, ConfigError,
    Credential, Secret,
};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};
use tower::{Service, ServiceBuilder};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Scopes a static credential carries when its configuration names none.
pub const DEFAULT_SCOPES: [&str; 3] = ["data:read", "data:write", "data:admin"];

/// The built-in per-tool table (see the module docs).
pub const DEFAULT_TOOL_SCOPES: &str =
    "whoami=;read_data=data:read;write_data=data:write;delete_data=data:admin";

/// The scope policy for a `tool=requirement;…` table: protocol methods (`initialize`,
/// `tools/list`, `ping`, …) are open to any authenticated caller, tools the table does not
/// name are refused, `data:write` implies `data:read` and `data:*` every `data:` scope.
pub fn scope_policy(table: &str) -> Result<ScopePolicy, String> {
    let mut policy = ScopePolicy::new(Unlisted::Deny)
        .unlisted_methods(Unlisted::Allow)
        .implication(WildcardAndPairs(
            ImpliedScopes::new().pair("data:write", "data:read"),
        ));
    for entry in table.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (tool, requirement) = entry
            .split_once('=')
            .ok_or_else(|| format!("entry {entry:?} is not tool=requirement"))?;
        let tool = tool.trim();
        if tool.is_empty() {
            return Err("an entry has no tool name".to_owned());
        }
        let requirement: Requirement = requirement
            .parse()
            .map_err(|e| format!("the requirement for {tool:?}: {e}"))?;
        policy = policy.tool(tool, requirement);
    }
    Ok(policy)
}

// ---------------------------------------------------------------------------------------------
// The MCP server: four tools over an in-memory map.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct KeyArgs {
    /// The key to read or delete.
    pub key: String,
}

#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct WriteArgs {
    /// The key to write.
    pub key: String,
    /// The value to store.
    pub value: String,
}

#[derive(Clone)]
pub struct DataServer {
    data: Arc<Mutex<HashMap<String, String>>>,
    policy: Arc<ScopePolicy>,
    tool_router: ToolRouter<Self>,
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s.into())])
}

fn lock_failed() -> ErrorData {
    ErrorData::internal_error("data store unavailable", None)
}

#[tool_router]
impl DataServer {
    pub fn new(data: Arc<Mutex<HashMap<String, String>>>, policy: Arc<ScopePolicy>) -> Self {
        Self {
            data,
            policy,
            tool_router: Self::tool_router(),
        }
    }

    /// The caller, as the auth layer saw it. `Auth(ctx)` is all a tool needs.
    #[tool(description = "Show who is calling: subject, auth method, scopes and roles")]
    async fn whoami(&self, Auth(ctx): Auth) -> Result<CallToolResult, ErrorData> {
        let body = serde_json::json!({
            "subject": ctx.subject(),
            "method": ctx.method().as_str(),
            "scopes": ctx.scopes().iter().collect::<Vec<_>>(),
            "roles": ctx.roles().collect::<Vec<_>>(),
            "principal": ctx.principal(),
        });
        Ok(text(body.to_string()))
    }

    #[tool(description = "Read the value stored under a key")]
    async fn read_data(
        &self,
        Parameters(KeyArgs { key }): Parameters<KeyArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let data = self.data.lock().map_err(|_| lock_failed())?;
        match data.get(&key) {
            Some(v) => Ok(text(v.clone())),
            None => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "no value for key {key:?}"
            ))])),
        }
    }

    /// Keys under `admin/` also need `data:admin`: a check that depends on the arguments, so
    /// it is made here rather than by the scope layer.
    #[tool(description = "Store a value under a key (keys under admin/ need data:admin)")]
    async fn write_data(
        &self,
        Auth(ctx): Auth,
        Parameters(WriteArgs { key, value }): Parameters<WriteArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if key.starts_with("admin/") {
            require(&self.policy, &ctx, &Requirement::all(["data:admin"]))?;
        }
        self.data
            .lock()
            .map_err(|_| lock_failed())?
            .insert(key.clone(), value);
        Ok(text(format!("stored {key:?}")))
    }

    #[tool(description = "Delete the value stored under a key")]
    async fn delete_data(
        &self,
        Parameters(KeyArgs { key }): Parameters<KeyArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        let removed = self
            .data
            .lock()
            .map_err(|_| lock_failed())?
            .remove(&key)
            .is_some();
        Ok(text(if removed {
            format!("deleted {key:?}")
        } else {
            format!("no value for key {key:?}")
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DataServer {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_instructions("A key-value store. Every request is authenticated by mcp-auth.")
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration: every problem in the environment is reported at once.
// ---------------------------------------------------------------------------------------------

/// API keys, then bearer tokens (static or issued), then JWTs, then introspection: the
/// first credential the request carries decides.
pub type ServerAuth = Chain<
    Option<ApiKeyAuthenticator>,
    Chain<
        Option<BearerAuthenticator<Tokens>>,
        Chain<Option<JwtAuthenticator>, Option<IntrospectionAuthenticator>>,
    >,
>;

/// Issued tokens: in memory, or in Redis when `MCP_REDIS_URL` is set.
#[derive(Clone, Debug)]
pub enum Tokens {
    /// This process only.
    Memory(MemoryTokenStore),
    /// Shared by every instance.
    Redis(RedisTokenStore),
}

impl TokenStore for Tokens {
    async fn get(&self, digest: &TokenDigest) -> Result<Option<TokenRecord>, StoreError> {
        match self {
            Self::Memory(s) => s.get(digest).await,
            Self::Redis(s) => s.get(digest).await,
        }
    }
    fn get_now(&self, digest: &TokenDigest) -> Option<Result<Option<TokenRecord>, StoreError>> {
        match self {
            Self::Memory(s) => s.get_now(digest),
            Self::Redis(s) => s.get_now(digest),
        }
    }
    async fn insert(&self, digest: TokenDigest, record: TokenRecord) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.insert(digest, record).await,
            Self::Redis(s) => s.insert(digest, record).await,
        }
    }
    async fn revoke(&self, digest: &TokenDigest) -> Result<bool, StoreError> {
        match self {
            Self::Memory(s) => s.revoke(digest).await,
            Self::Redis(s) => s.revoke(digest).await,
        }
    }
    async fn revoke_id(&self, id: &str) -> Result<bool, StoreError> {
        match self {
            Self::Memory(s) => s.revoke_id(id).await,
            Self::Redis(s) => s.revoke_id(id).await,
        }
    }
    async fn revoke_subject(&self, subject: &str) -> Result<usize, StoreError> {
        match self {
            Self::Memory(s) => s.revoke_subject(subject).await,
            Self::Redis(s) => s.revoke_subject(subject).await,
        }
    }
}

/// Failure counters: in memory, or in Redis when `MCP_REDIS_URL` is set.
#[derive(Clone, Debug)]
pub enum Counters {
    /// This process only.
    Memory(MemoryAttemptStore),
    /// Shared by every instance.
    Redis(RedisAttemptStore),
}

impl AttemptStore for Counters {
    async fn failures(&self, key: &str) -> Result<Option<Attempts>, StoreError> {
        match self {
            Self::Memory(s) => s.failures(key).await,
            Self::Redis(s) => s.failures(key).await,
        }
    }
    async fn record_failure(
        &self,
        key: &str,
        window: std::time::Duration,
    ) -> Result<Attempts, StoreError> {
        match self {
            Self::Memory(s) => s.record_failure(key, window).await,
            Self::Redis(s) => s.record_failure(key, window).await,
        }
    }
    async fn reserve(
        &self,
        key: &str,
        window: std::time::Duration,
        max_failures: u32,
    ) -> Result<Reservation, StoreError> {
        match self {
            Self::Memory(s) => s.reserve(key, window, max_failures).await,
            Self::Redis(s) => s.reserve(key, window, max_failures).await,
        }
    }
    async fn refund(&self, key: &str) -> Result<(), StoreError> {
        match self {
            Self::Memory(s) => s.refund(key).await,
            Self::Redis(s) => s.refund(key).await,
        }
    }
}

/// Session bindings (each MCP session belongs to the principal that created it): in memory,
/// or in Redis when `MCP_REDIS_URL` is set.
#[derive(Clone, Debug)]
pub enum Sessions {
    /// This process only.
    Memory(MemorySessionStore),
    /// Shared by every instance.
    Redis(RedisSessionStore),
}

impl SessionStore for Sessions {
    async fn owner(&self, session: &SessionDigest) -> Result<Option<Owner>, StoreError> {
        match self {
            Self::Memory(s) => s.owner(session).await,
            Self::Redis(s) => s.owner(session).await,
        }
    }
    async fn bind(&self, session: &SessionDigest, owner: &Owner) -> Result<Owner, StoreError> {
        match self {
            Self::Memory(s) => s.bind(session, owner).await,
            Self::Redis(s) => s.bind(session, owner).await,
        }
    }
    async fn unbind(&self, session: &SessionDigest, owner: &Owner) -> Result<bool, StoreError> {
        match self {
            Self::Memory(s) => s.unbind(session, owner).await,
            Self::Redis(s) => s.unbind(session, owner).await,
        }
    }
}

/// Transport guards and failed-attempt limits (see the module docs for the variables).
#[derive(Debug, Clone)]
pub struct Guards {
    /// `(failures, window)`, or `None` when limiting is off.
    pub failure_limit: Option<(u32, std::time::Duration)>,
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

impl Default for Guards {
    fn default() -> Self {
        Self {
            failure_limit: Some((10, std::time::Duration::from_secs(300))),
            allowed_origins: vec!["http://localhost:*".into(), "http://127.0.0.1:*".into()],
            require_https: false,
            trusted_proxies: TrustedProxies::none(),
            forwarded_host: false,
            counters: Counters::Memory(MemoryAttemptStore::new()),
            sessions: Sessions::Memory(MemorySessionStore::new()),
        }
    }
}

fn flag(name: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim() {
        "1" | "true" | "yes" => Ok(true),
        "0" | "false" | "no" | "" => Ok(false),
        _ => Err(ConfigError::new(name, "must be true or false")),
    }
}

/// The scopes a 401 asks for: enough for basic use (`whoami`, `read_data`).
pub const BASIC_SCOPES: [&str; 1] = ["data:read"];

impl Config {
    /// The JWT authenticator, when JWTs are accepted.
    pub fn jwt(&self) -> Option<&JwtAuthenticator> {
        self.jwt.as_ref()
    }
}

pub struct Config {
    pub bind: SocketAddr,
    pub allowed_hosts: Option<Vec<String>>,
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

pub fn load_config(mut env: EnvReader) -> Result<Config, ConfigError> {
    let bind = env
        .optional("MCP_BIND", |name, v| {
            v.trim()
                .parse::<SocketAddr>()
                .map_err(|_| ConfigError::new(name, "is not an address such as 127.0.0.1:8080"))
        })
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let allowed_hosts = env.optional("MCP_ALLOWED_HOSTS", |_, v| {
        Ok(v.split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .map(String::from)
            .collect())
    });
    // Each also as `<NAME>_FILE`: one credential per line, the secret may hold `,` and `;`.
    let api_keys = env.optional_secret("MCP_API_KEYS", |name, v, origin| {
        ApiKeyAuthenticator::new()
            .default_scopes(DEFAULT_SCOPES)
            .with_setting(name, v, origin)
    });
    let mut tokens = env.optional_secret("MCP_AUTH_TOKENS", |name, v, origin| {
        BearerAuthenticator::new()
            .default_scopes(DEFAULT_SCOPES)
            .with_setting(name, v, origin)
    });
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
    let jwt = load_jwt(&mut env, &audiences, &fetcher);
    let authorization_servers = env
        .raw("MCP_AUTHORIZATION_SERVERS")
        .map(|v| list(&v))
        .or_else(|| {
            env.raw("MCP_OIDC_ISSUER")
                .map(|v| vec![v.trim().to_owned()])
        })
        .unwrap_or_default();
    let introspection = load_introspection(&mut env, &audiences, &authorization_servers, &fetcher);
    // The URL may carry a password: a secret setting (also MCP_REDIS_URL_FILE). TLS with
    // rediss://; MCP_REDIS_CA_FILE trusts a private CA; MCP_REDIS_RECORD_KEY(_FILE) makes
    // every instance authenticate token records with HMAC-SHA256.
    let redis_url = env.secret("MCP_REDIS_URL");
    let redis_ca = env.optional("MCP_REDIS_CA_FILE", |name, path| {
        std::fs::read(path.trim())
            .map_err(|e| ConfigError::new(name, format!("cannot read the CA file ({})", e.kind())))
    });
    let redis_client_cert = env.optional("MCP_REDIS_CLIENT_CERT_FILE", |name, path| {
        std::fs::read(path.trim()).map_err(|e| {
            ConfigError::new(
                name,
                format!("cannot read the certificate file ({})", e.kind()),
            )
        })
    });
    let redis_client_key = env.secret("MCP_REDIS_CLIENT_KEY");
    let redis_record_key = env.secret("MCP_REDIS_RECORD_KEY");
    let redis = match redis_url {
        Some(url) => {
            let mut config = RedisConfig::new(url.expose());
            if let Some(pem) = redis_ca {
                config = config.ca_cert_pem(pem);
            }
            match (redis_client_cert, redis_client_key) {
                (Some(cert), Some(key)) => config = config.client_cert_pem(cert, key),
                (None, None) => {}
                _ => env.problem(
                    "MCP_REDIS_CLIENT_CERT_FILE",
                    "and MCP_REDIS_CLIENT_KEY (or MCP_REDIS_CLIENT_KEY_FILE) go together",
                ),
            }
            if let Some(key) = redis_record_key {
                config = config.record_key(key);
            }
            match Redis::new(config) {
                Ok(redis) => Some(redis),
                Err(e) => {
                    for p in e.problems() {
                        let name = match p.setting() {
                            "redis ca certificate" => "MCP_REDIS_CA_FILE",
                            "redis client certificate" | "redis tls" => {
                                "MCP_REDIS_CLIENT_CERT_FILE"
                            }
                            "redis client key" => "MCP_REDIS_CLIENT_KEY",
                            "redis record key" => "MCP_REDIS_RECORD_KEY",
                            _ => "MCP_REDIS_URL",
                        };
                        env.problem(name, p.message());
                    }
                    None
                }
            }
        }
        None => {
            if redis_ca.is_some() {
                env.problem("MCP_REDIS_CA_FILE", "needs MCP_REDIS_URL");
            }
            if redis_record_key.is_some() {
                env.problem("MCP_REDIS_RECORD_KEY", "needs MCP_REDIS_URL");
            }
            if redis_client_cert.is_some() || redis_client_key.is_some() {
                env.problem("MCP_REDIS_CLIENT_CERT_FILE", "needs MCP_REDIS_URL");
            }
            None
        }
    };
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
        failure_limit: addresses_distinguish_clients
            .then_some((10, std::time::Duration::from_secs(300))),
        trusted_proxies,
        forwarded_host,
        ..Guards::default()
    };
    if let Some(limit) = env.optional("MCP_FAILURE_LIMIT", |name, v| {
        let v = v.trim();
        if v == "off" {
            return Ok(None);
        }
        let parsed = v.split_once('/').and_then(|(n, secs)| {
            Some((
                n.trim().parse::<u32>().ok().filter(|n| *n > 0)?,
                std::time::Duration::from_secs(secs.trim().parse::<u64>().ok().filter(|s| *s > 0)?),
            ))
        });
        parsed.map(Some).ok_or_else(|| {
            ConfigError::new(name, "must be failures/seconds (such as 10/300) or off")
        })
    }) {
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
    if let Some(r) = &redis {
        guards.counters = Counters::Redis(r.attempt_store());
        guards.sessions = Sessions::Redis(RedisSessionStore::new(r));
    }
    let policy = env
        .optional("MCP_TOOL_SCOPES", |name, v| {
            scope_policy(v).map_err(|e| ConfigError::new(name, e))
        })
        .unwrap_or_else(|| scope_policy(DEFAULT_TOOL_SCOPES).expect("the built-in table parses"));
    env.finish()?;
    let opaque_too = introspection.is_some();
    let jwt = jwt
        .map(|b| {
            if opaque_too {
                b.defer_opaque_tokens()
            } else {
                b
            }
        })
        .map(|b| b.build())
        .transpose()?;
    let introspection = introspection.map(|b| b.build()).transpose()?;
    let resource = if authorization_servers.is_empty() {
        None
    } else {
        let mut b = ProtectedResource::builder(public_url)
            .scopes_from_policy(&policy)
            .basic_scopes(BASIC_SCOPES)
            .resource_name("mcp-auth example data server");
        for issuer in &authorization_servers {
            b = b.authorization_server(issuer);
        }
        if guards.forwarded_host {
            b = b.trust_forwarded_headers(guards.trusted_proxies.clone());
        }
        Some(b.build()?)
    };

    let mut generated_token = None;
    if api_keys.is_none() && tokens.is_none() && jwt.is_none() && introspection.is_none() {
        let token = generate_token("mcp_")?;
        let auth = BearerAuthenticator::new()
            .default_scopes(DEFAULT_SCOPES)
            .with_token(Credential::new(token.clone()).subject("local-admin"))?;
        tokens = Some(auth);
        generated_token = Some(token);
    }
    let jwt_handle = jwt.clone();
    let store = match &redis {
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
        bind,
        allowed_hosts,
        auth: Chain::new(api_keys, Chain::new(tokens, Chain::new(jwt, introspection))),
        tokens: TokenManager::new(store),
        generated_token,
        policy: Arc::new(policy),
        resource,
        guards,
        jwt: jwt_handle,
    })
}

fn list(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// JWT settings; `None` when no JWT variable is set.
fn load_jwt(
    env: &mut EnvReader,
    audiences: &[String],
    fetcher: &ReqwestFetcher,
) -> Option<mcp_auth::jwt::JwtBuilder> {
    // `MCP_JWT_SECRET`, or the file named by `MCP_JWT_SECRET_FILE`.
    let secret = env.optional_secret("MCP_JWT_SECRET", |name, v, _| {
        JwtKey::hmac(v.trim(), Algorithm::HS256).map_err(|e| {
            let message = e.problems().first().map_or_else(
                || "is not a usable HS256 secret".to_owned(),
                |p| p.message().to_owned(),
            );
            ConfigError::new(name, message)
        })
    });
    let jwks_url = env.raw("MCP_JWKS_URL").map(|v| v.trim().to_owned());
    let oidc_issuer = env.raw("MCP_OIDC_ISSUER").map(|v| v.trim().to_owned());
    let issuers = env
        .raw("MCP_JWT_ISSUER")
        .map(|v| list(&v))
        .unwrap_or_default();
    if secret.is_none() && jwks_url.is_none() && oidc_issuer.is_none() {
        return None;
    }
    if jwks_url.is_some() && oidc_issuer.is_some() {
        env.problem(
            "MCP_JWKS_URL",
            "set either MCP_JWKS_URL or MCP_OIDC_ISSUER, not both",
        );
    }
    // Every key source is bound to an issuer: the keys at MCP_JWKS_URL to MCP_JWT_ISSUER
    // (a JWKS shared by many tenants would otherwise vouch for all of them).
    if jwks_url.is_some() && oidc_issuer.is_none() && issuers.is_empty() {
        env.problem(
            "MCP_JWKS_URL",
            "needs MCP_JWT_ISSUER (the `iss` of the tokens its keys sign), or set \
             MCP_OIDC_ISSUER instead to discover the keys and the issuer",
        );
    }
    let remote = jwks_url.is_some() || oidc_issuer.is_some();
    let mut b = JwtAuthenticator::builder()
        .verified_token_cache(10_000)
        .fetcher(fetcher.clone());
    if let Some(key) = secret {
        // MCP_JWT_SECRET tokens are this server's own: beside an identity provider they must
        // carry `iss` = this server's resource URI (the first audience, MCP_PUBLIC_URL by
        // default), so whoever holds the secret cannot mint tokens in the provider's name.
        // Alone, they carry MCP_JWT_ISSUER, or any `iss` when that is not set.
        b = match (remote, audiences.first()) {
            (true, Some(own)) => b.key(key.issuer(own.clone())),
            (false, _) if issuers.is_empty() => b.key(key).allow_any_issuer(),
            _ => b.key(key),
        };
    }
    if let Some(url) = jwks_url {
        b = b.jwks_url(url);
    }
    if let Some(issuer) = oidc_issuer {
        b = b.oidc_issuer(issuer);
    }
    for i in issuers {
        b = b.issuer(i);
    }
    for a in audiences {
        b = b.audience(a);
    }
    Some(b)
}

/// Introspection settings; `None` unless a client id is set.
fn load_introspection(
    env: &mut EnvReader,
    audiences: &[String],
    authorization_servers: &[String],
    fetcher: &ReqwestFetcher,
) -> Option<mcp_auth::introspection::IntrospectionBuilder> {
    let url = env
        .raw("MCP_INTROSPECTION_URL")
        .map(|v| v.trim().to_owned());
    let id = env
        .raw("MCP_INTROSPECTION_CLIENT_ID")
        .map(|v| v.trim().to_owned());
    // `MCP_INTROSPECTION_CLIENT_SECRET` or the file named by `…_FILE`, trimmed, in a
    // zeroizing `Secret`.
    let secret = env.secret("MCP_INTROSPECTION_CLIENT_SECRET");
    let (id, secret) = match (id, secret, &url) {
        (None, None, None) => return None,
        (Some(id), Some(secret), _) => (id, secret),
        _ => {
            env.problem(
                "MCP_INTROSPECTION_CLIENT_ID",
                "introspection needs MCP_INTROSPECTION_CLIENT_ID and MCP_INTROSPECTION_CLIENT_SECRET",
            );
            return None;
        }
    };
    // Client-credentials tokens have no `sub` at oidc-provider: their client is the subject
    // (its principal still differs from a user's, as it carries the client id).
    let mut b = IntrospectionAuthenticator::builder()
        .client_credentials(id, secret)
        .client_id_as_subject()
        .fetcher(fetcher.clone());
    match (url, authorization_servers.first()) {
        (Some(url), _) => b = b.endpoint(url),
        (None, Some(issuer)) => b = b.issuer(issuer),
        (None, None) => {
            env.problem(
                "MCP_INTROSPECTION_URL",
                "set it, or MCP_AUTHORIZATION_SERVERS to find it from metadata",
            );
            return None;
        }
    }
    for issuer in authorization_servers {
        b = b.accept_issuer(issuer);
    }
    for a in audiences {
        b = b.audience(a);
    }
    Some(b)
}

// ---------------------------------------------------------------------------------------------
// The router. Layer order, outermost first: CORS, Origin check, HTTPS check (optional), failure
// limit, auth, session binding, scopes, then the MCP service.
// CORS sits outside auth so browser preflights (which carry no credentials) are answered,
// and so 401s carry the CORS headers that let scripts read `WWW-Authenticate`.
// ---------------------------------------------------------------------------------------------

/// The MCP service: rmcp's streamable HTTP transport serving [`DataServer`], whose
/// `tools/list` shows each caller only the tools `policy` lets it call.
pub fn mcp_service(
    allowed_hosts: Option<Vec<String>>,
    policy: Arc<ScopePolicy>,
) -> StreamableHttpService<ScopedServer<DataServer>, LocalSessionManager> {
    let data = Arc::new(Mutex::new(HashMap::new()));
    let mut mcp_config = StreamableHttpServerConfig::default();
    if let Some(hosts) = allowed_hosts {
        mcp_config.allowed_hosts = hosts;
    }
    StreamableHttpService::new(
        move || {
            Ok(ScopedServer::new(
                DataServer::new(data.clone(), policy.clone()),
                policy.clone(),
            ))
        },
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    )
}

/// The whole application.
pub fn app(config: Config) -> Router {
    let mcp = mcp_service(config.allowed_hosts, config.policy.clone());
    router(
        config.auth,
        &config.policy,
        config.resource.as_ref(),
        &config.guards,
        mcp,
    )
}

/// Mounts `mcp` at `/mcp` behind the auth layer and the scope layer, and CORS around
/// everything.
pub fn router<S, B>(
    auth: ServerAuth,
    policy: &ScopePolicy,
    resource: Option<&ProtectedResource>,
    guards: &Guards,
    mcp: S,
) -> Router
where
    S: Service<Request<Body>, Response = http::Response<B>, Error = Infallible>
        + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            HeaderName::from_static("x-api-key"),
            HeaderName::from_static("mcp-protocol-version"),
            HeaderName::from_static("mcp-session-id"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static("mcp-method"),
            HeaderName::from_static("mcp-name"),
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
        ]);

    let mut auth_layer = AuthLayer::new(auth);
    let mut scope_layer = ScopeLayer::new(policy.clone());
    if let Some(pr) = resource {
        auth_layer = auth_layer.protected_resource(pr);
        scope_layer = scope_layer.protected_resource(pr);
    }
    // Limits off: a key function that never names a client.
    let (failures, window) = guards
        .failure_limit
        .unwrap_or((u32::MAX, std::time::Duration::from_secs(1)));
    let mut limit = FailureLimitLayer::new(guards.counters.clone())
        .max_failures(failures)
        .window(window);
    if guards.failure_limit.is_none() {
        limit = limit.key_fn(|_| None);
    }
    // Refunds a request's reserved attempt as soon as it has authenticated.
    let release = limit.release();
    let mut https = HttpsOnlyLayer::new();
    if !guards.require_https {
        https = https.allow_plain_http();
    } else if guards.forwarded_host {
        https = https.trust_forwarded_proto(guards.trusted_proxies.clone());
    }
    // The client address (the socket's, or behind MCP_TRUSTED_PROXIES the one they report)
    // for the failure limit and audit events.
    let mcp = ServiceBuilder::new()
        .layer(ClientAddrLayer::new(guards.trusted_proxies.clone()))
        .layer(OriginLayer::new(&guards.allowed_origins))
        .layer(https)
        .layer(limit)
        .layer(auth_layer)
        .layer(release)
        .layer(SessionBindingLayer::new(guards.sessions.clone()))
        .layer(scope_layer)
        .service(mcp);
    let mut app = Router::new().nest_service("/mcp", mcp).layer(cors);
    // The metadata is public, answers its own CORS preflights, and is added after the CORS
    // layer so its `Access-Control-Allow-Origin: *` is not doubled.
    if let Some(pr) = resource {
        let [path_form, root_form] = pr.well_known_paths();
        app = app.route_service(path_form, pr.service());
        if root_form != path_form {
            app = app.route_service(root_form, pr.service());
        }
    }
    app
}

fn print_generated(token: &Secret, bind: SocketAddr) {
    // Printed once, to stdout, because the operator asked for no credential: it is the only
    // way to reach this server. It is never logged.
    println!("No MCP_API_KEYS or MCP_AUTH_TOKENS set; generated a bearer token for this run.");
    println!("token: {}", token.expose());
    println!(
        "try:   curl -s http://{bind}/mcp -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' \
         -H 'Accept: application/json, text/event-stream' \
         -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-06-18\",\
         \"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}'",
        token.expose()
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rmcp=warn,mcp_auth=debug".into()),
        )
        .init();

    let config = match load_config(EnvReader::new()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let bind = config.bind;
    let schemes: Vec<String> = config
        .auth
        .schemes()
        .iter()
        .map(|s| s.name().to_owned())
        .collect();
    if let Some(token) = &config.generated_token {
        print_generated(token, bind);
    }
    // Fetch JWKS keys in the background now rather than on the first request. If the
    // identity provider is down, startup still succeeds and JWT requests get 503 until it is up.
    if let Some(jwt) = config.jwt() {
        jwt.prefetch();
    }

    let listener = tokio::net::TcpListener::bind(bind).await?;
    let address = listener.local_addr()?;
    // Small streamed (SSE) responses must not wait for delayed ACKs.
    let listener = {
        use axum::serve::ListenerExt;
        listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        })
    };
    tracing::info!(%address, ?schemes, "MCP server listening on /mcp");
    // Connection info gives the failure limit and audit events the client address.
    axum::serve(
        listener,
        app(config).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
