//! One-call configuration: the whole authentication stack of an MCP server from the
//! environment and/or a TOML file, as one tower layer plus the metadata routes.
//!
//! [`load`] reads every setting below from the environment and from the TOML file named by
//! `MCP_AUTH_CONFIG` (the environment wins), checks them all, and reports every problem at
//! once, naming the setting and never its value. The [`Config`] it returns builds the stack in
//! this order, outermost first ([`Config::layer`]): client address, `Origin` check, HTTPS check,
//! failed-attempt limit, authentication (API keys, then static and issued bearer tokens, then
//! JWTs, then token introspection), the limit's release, session binding, and per-tool scopes.
//! [`Config::router`] (feature `axum`) mounts a service at the path of `MCP_PUBLIC_URL` behind
//! that layer, with the RFC 9728 metadata routes beside it.
//!
//! ```no_run
//! # #[cfg(all(feature = "axum", feature = "rmcp"))]
//! # async fn run(my_mcp_service: axum::routing::Router) -> Result<(), Box<dyn std::error::Error>> {
//! let config = mcp_auth::config::load()?; // environment + MCP_AUTH_CONFIG
//! let app = config.router(my_mcp_service); // the MCP endpoint behind the stack, and metadata
//! let listener = tokio::net::TcpListener::bind(config.bind).await?;
//! axum::serve(listener, app.into_make_service_with_connect_info::<std::net::SocketAddr>()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! An application sets its own defaults and reads its own settings through the same layers
//! with a [`Loader`]:
//!
//! ```
//! use mcp_auth::config::Loader;
//! use mcp_auth::env::EnvReader;
//!
//! let env = EnvReader::from_pairs([("MCP_AUTH_TOKENS", "tok-alice-0123456789abcdef;sub=alice")]);
//! let (config, upstream) = Loader::from_env(env)
//!     .default_value("MCP_TOOL_SCOPES", "whoami=;read_data=data:read")
//!     .load_with(&["MCP_UPSTREAM_URL"], |env| env.raw("MCP_UPSTREAM_URL"))
//!     .unwrap();
//! assert!(config.generated_token.is_none());
//! assert!(upstream.is_none());
//! ```
//!
//! # Environment
//!
//! Every variable may instead be a key of the TOML file: its name without `MCP_`, in lower
//! case (`MCP_JWT_AUDIENCE` → `jwt_audience`); lists are arrays of strings there, flags
//! booleans, `tool_scopes` may be a table, and `issuers` is an array of tables
//! (`[[issuers]]`). Secret settings (marked †) also accept
//! `<NAME>_FILE`, the path of a file holding the value, and in the TOML file only that form
//! (`jwt_secret_file`): a secret written in the configuration file is refused. A setting and
//! its `_FILE` form count as one, so either in the environment overrides both in the file.
//!
//! | variable | meaning |
//! |---|---|
//! | `MCP_AUTH_CONFIG` | path of the TOML file (at most 1 MiB) read under the environment |
//! | `MCP_BIND` | address to listen on (default `127.0.0.1:8080`) |
//! | `MCP_PUBLIC_URL` | this server's public MCP URL (default `http://<MCP_BIND>/mcp`; no credentials, query or fragment); its path is where [`Config::router`] mounts the endpoint (the root path: every path no other route takes) |
//! | `MCP_ALLOWED_HOSTS` | `Host` values an rmcp transport should accept ([`Config::allowed_hosts`]; default: rmcp's, loopback only); the stack itself does not check `Host`: pass it to your transport |
//! | `MCP_API_KEYS` † | API keys accepted in `X-API-Key` (comma-separated `SECRET;sub=…;scopes=…;roles=…`; a file has one per line) |
//! | `MCP_AUTH_TOKENS` † | static bearer tokens accepted in `Authorization: Bearer` (same syntax) |
//! | `MCP_DEFAULT_SCOPES` | scopes a static or generated credential carries when it names none (space- or comma-separated; default none) |
//! | `MCP_JWT_SECRET` † | HS256 secret (at least 32 bytes) for JWT access tokens; its tokens carry `iss` = `MCP_JWT_ISSUER` (any `iss` when that is unset), or, beside `MCP_JWKS_URL`/`MCP_OIDC_ISSUER`, `iss` = this server's own URL (the first `MCP_JWT_AUDIENCE`) |
//! | `MCP_JWKS_URL` | JWKS URL for JWT access tokens (https, or http on loopback); needs `MCP_JWT_ISSUER` |
//! | `MCP_OIDC_ISSUER` | issuer to discover the JWKS from; also the expected `iss`. Several, comma-separated: each a trusted issuer (its keys discovered, its tokens routed to them by `iss`; other issuers refused) |
//! | `MCP_JWT_ISSUER` | expected `iss` (comma-separated for several); required with `MCP_JWKS_URL` |
//! | `MCP_JWT_AUDIENCE` | expected `aud` (comma-separated; default `MCP_PUBLIC_URL`) |
//! | `MCP_ISSUERS` | trusted issuers with settings of their own ([`TrustedIssuer`](crate::authenticators::jwt::TrustedIssuer)): a JSON array of objects, in the TOML file an array of tables `[[issuers]]`, at most 64. Keys: `issuer` (required; an exact `iss`, or a template with one `{tenant}`), `jwks_url` (default: discovery from the issuer; for a template, per allowed tenant), `audience` (default `MCP_JWT_AUDIENCE`), `leeway` (seconds), `roles_claims`, `permissions_as_scopes`, and for templates `tenants` (at most 256), `any_tenant`, `tenant_claim` (Entra: `tid`). Problems are named `MCP_ISSUERS[<i>].<key>`, `i` from 0 |
//! | `MCP_AUTHORIZATION_SERVERS` | issuers listed in the protected resource metadata (comma-separated; default: every `MCP_OIDC_ISSUER` and `MCP_ISSUERS` issuer, each allowed tenant's for a template); setting any serves the metadata |
//! | `MCP_BASIC_SCOPES` | the scopes a 401 challenge asks for, with authorization servers configured (default none; scopes that are not valid scope tokens are left out) |
//! | `MCP_RESOURCE_NAME` | `resource_name` in the metadata |
//! | `MCP_INTROSPECTION_URL` | RFC 7662 introspection endpoint for opaque tokens (default: from the first authorization server's metadata) |
//! | `MCP_INTROSPECTION_CLIENT_ID`, `MCP_INTROSPECTION_CLIENT_SECRET` † | this server's credentials at the introspection endpoint (setting them turns introspection on) |
//! | `MCP_DPOP` | `optional` (default): unbound tokens of the authorization server may come as `Bearer`, DPoP-bound ones (`cnf.jkt`) only as `DPoP` with a valid proof; `required`: every such token must be DPoP-bound. Proofs must name `MCP_PUBLIC_URL` in `htu` |
//! | `MCP_DPOP_ALGS` | proof algorithms accepted (default `ES256,ES384,EdDSA,PS256,RS256`; never HMAC or `none`) |
//! | `MCP_DPOP_IAT_WINDOW` | seconds a proof's `iat` may be from now, either way (default 300, at most 600) |
//! | `MCP_DPOP_NONCE` | `true`: proofs must carry a server nonce (`use_dpop_nonce`, `DPoP-Nonce`) |
//! | `MCP_DPOP_NONCE_KEY` † | at least 32 bytes, the same on every instance: the HMAC key of the nonces (default: random per process) |
//! | `MCP_DPOP_NONCE_LIFETIME` | seconds a nonce stays valid (default 300) |
//! | `MCP_DPOP_REPLAY_CAPACITY` | proof ids remembered in memory to refuse replays (default 1,000,000; full → 503); with `MCP_REDIS_URL`, Redis remembers them instead |
//! | `MCP_TOOL_SCOPES` | per-tool requirements, `tool=requirement;…` ([`tool_policy`]; `acr:VALUE` and `max_age:SECONDS` for step-up); unset: every tool open to any authenticated caller; set: tools it does not name are refused |
//! | `MCP_SCOPE_IMPLIES` | scope implications, `broader>narrower,…` (`data:write>data:read`); `prefix:*` always implies every `prefix:` scope |
//! | `MCP_TRUSTED_PROXIES` | reverse proxies (comma-separated addresses or CIDR blocks): from these peers only, the right-most `X-Forwarded-For` address that is not a listed proxy is the client |
//! | `MCP_TRUST_FORWARDED_HOST` | `true`: from trusted proxies, believe `X-Forwarded-Host`/`-Proto` for the metadata URL, challenges and `MCP_REQUIRE_HTTPS` |
//! | `MCP_TRUST_PROXY` | `true`: a proxy on this host: adds `127.0.0.0/8,::1` to the trusted proxies and sets `MCP_TRUST_FORWARDED_HOST` |
//! | `MCP_FAILURE_LIMIT` | failed authentications allowed per client address and window, `failures/seconds`, or `off`. Default `10/300` when addresses tell clients apart (trusted proxies set, or a non-loopback `MCP_BIND`), else `off`; setting it with a loopback bind and no trusted proxies is refused |
//! | `MCP_ALLOWED_ORIGINS` | browser origins allowed to call (comma-separated; `:*` = any port; default `http://localhost:*,http://127.0.0.1:*`) |
//! | `MCP_REQUIRE_HTTPS` | `true`: refuse requests that did not come over HTTPS (behind trusted proxies with `MCP_TRUST_FORWARDED_HOST`, as they report it) |
//! | `MCP_REDIS_URL` † | (feature `redis`) keep issued tokens, revocations, failure counters and session bindings in Redis (`redis://`, `rediss://` for TLS) |
//! | `MCP_REDIS_CA_FILE`, `MCP_REDIS_CLIENT_CERT_FILE`, `MCP_REDIS_CLIENT_KEY` † | TLS to Redis: the CA(s) of its certificate, a client certificate chain and key (PEM) |
//! | `MCP_REDIS_RECORD_KEY` † | at least 32 bytes, the same on every instance: token records in Redis carry an HMAC-SHA256 under it |
//! | `MCP_TLS_CERT`, `MCP_TLS_KEY` | (feature `mtls`, read only by an application that serves TLS itself: [`Loader::serve_tls`]) PEM files of the certificate chain and its private key: serve HTTPS; `MCP_PUBLIC_URL` then defaults to `https://<MCP_BIND>/mcp` |
//! | `MCP_TLS_CLIENT_CA` | (with `MCP_TLS_CERT`) PEM bundle of the CA(s) client certificates are verified against: ask clients for a certificate |
//! | `MCP_TLS_CLIENT_AUTH` | `optional` (default: clients without a certificate still connect, OAuth clients keep working) or `required` (a handshake without a valid certificate fails) |
//! | `MCP_TLS_HANDSHAKE_TIMEOUT` | seconds a TLS handshake may take before the connection is dropped (default 10, at most 300) |
//! | `MCP_CLIENT_CERT_HEADER` | (feature `mtls`) `nginx` (`X-SSL-Client-Cert` with `$ssl_client_escaped_cert`), `envoy` (`X-Forwarded-Client-Cert`), or a header name holding a URL-encoded PEM certificate: the client certificate a trusted proxy verified (needs `MCP_TRUSTED_PROXIES`; default off) |
//! | `MCP_CLIENT_CERT_SUBJECTS` | (feature `mtls`) accept client certificates as credentials: comma-separated `SUBJECT;scopes=…;roles=…` (`*`: any other subject; without it unknown subjects get 401); tried last, for requests with no credential in a header |
//! | `MCP_CLIENT_CERT_SUBJECT_FROM` | where a certificate names its subject, in order: `san-uri,san-dns,san-email,cn` (the default; any subset). The first source the certificate has decides |
//!
//! Certificate-bound access tokens (`cnf.x5t#S256`, RFC 8705) are accepted only with the
//! certificate they name, whichever of these put it in the request.
//!
//! With no credential of any kind configured, a bearer token is generated
//! ([`Config::generated_token`], subject `local-admin`) and required: the stack never serves
//! unauthenticated.

mod client_cert;
mod credentials;
mod dpop;
mod file;
mod hardening;
mod jwt;
mod oauth;
#[cfg(feature = "outbound")]
mod outbound;
mod policy;
mod redis;
mod stack;
mod stores;
mod tls;

pub use self::file::MAX_CONFIG_FILE;
pub use self::hardening::Guards;
pub use self::policy::tool_policy;
pub use self::stack::{AuthStack, AuthStackLayer};
pub use self::stores::{Counters, Replays, Sessions, Tokens};
#[cfg(feature = "mtls")]
pub use self::tls::{ClientAuth, DEFAULT_HANDSHAKE_TIMEOUT, TlsSettings};

use std::net::SocketAddr;
use std::sync::Arc;

use crate::authenticators::bearer::TokenManager;
#[cfg(feature = "mtls")]
use crate::authenticators::client_cert::ClientCertAuthenticator;
use crate::authenticators::dpop::DpopAuthenticator;
use crate::authenticators::introspection::{IntrospectionAuthenticator, IntrospectionBuilder};
use crate::authenticators::jwt::{JwtAuthenticator, JwtBuilder};
use crate::env::EnvReader;
use crate::oauth::{ProtectedResource, ReqwestFetcher};
use crate::scope::ScopePolicy;
use crate::store::MemoryTokenStore;
use crate::{ApiKeyAuthenticator, Authenticator, BearerAuthenticator, Chain, ConfigError, Secret};

/// The variable naming the TOML configuration file.
pub const CONFIG_FILE_VAR: &str = "MCP_AUTH_CONFIG";

/// Every variable the configuration reads (without the `_FILE` forms of secret settings), in
/// the order of the [module docs](self#environment).
pub const SETTINGS: &[&str] = &[
    "MCP_BIND",
    "MCP_PUBLIC_URL",
    "MCP_ALLOWED_HOSTS",
    "MCP_API_KEYS",
    "MCP_AUTH_TOKENS",
    "MCP_DEFAULT_SCOPES",
    "MCP_JWT_SECRET",
    "MCP_JWKS_URL",
    "MCP_OIDC_ISSUER",
    "MCP_JWT_ISSUER",
    "MCP_JWT_AUDIENCE",
    "MCP_ISSUERS",
    "MCP_AUTHORIZATION_SERVERS",
    "MCP_BASIC_SCOPES",
    "MCP_RESOURCE_NAME",
    "MCP_INTROSPECTION_URL",
    "MCP_INTROSPECTION_CLIENT_ID",
    "MCP_INTROSPECTION_CLIENT_SECRET",
    "MCP_DPOP",
    "MCP_DPOP_ALGS",
    "MCP_DPOP_IAT_WINDOW",
    "MCP_DPOP_NONCE",
    "MCP_DPOP_NONCE_KEY",
    "MCP_DPOP_NONCE_LIFETIME",
    "MCP_DPOP_REPLAY_CAPACITY",
    "MCP_TOOL_SCOPES",
    "MCP_SCOPE_IMPLIES",
    "MCP_TRUSTED_PROXIES",
    "MCP_TRUST_FORWARDED_HOST",
    "MCP_TRUST_PROXY",
    "MCP_FAILURE_LIMIT",
    "MCP_ALLOWED_ORIGINS",
    "MCP_REQUIRE_HTTPS",
    "MCP_REDIS_URL",
    "MCP_REDIS_CA_FILE",
    "MCP_REDIS_CLIENT_CERT_FILE",
    "MCP_REDIS_CLIENT_KEY",
    "MCP_REDIS_RECORD_KEY",
    "MCP_TLS_CERT",
    "MCP_TLS_KEY",
    "MCP_TLS_CLIENT_CA",
    "MCP_TLS_CLIENT_AUTH",
    "MCP_TLS_HANDSHAKE_TIMEOUT",
    "MCP_CLIENT_CERT_HEADER",
    "MCP_CLIENT_CERT_SUBJECTS",
    "MCP_CLIENT_CERT_SUBJECT_FROM",
];

/// The request headers a browser MCP client sends to the endpoint, for a CORS layer around
/// [`Config::mcp_router`]: preflights must allow them (they carry no credentials themselves).
pub const CORS_ALLOW_HEADERS: [http::HeaderName; 10] = [
    http::header::AUTHORIZATION,
    http::header::CONTENT_TYPE,
    http::header::ACCEPT,
    http::HeaderName::from_static("x-api-key"),
    http::HeaderName::from_static("mcp-protocol-version"),
    http::HeaderName::from_static("mcp-session-id"),
    http::HeaderName::from_static("last-event-id"),
    http::HeaderName::from_static("mcp-method"),
    http::HeaderName::from_static("mcp-name"),
    http::HeaderName::from_static("dpop"),
];

/// The response headers a browser MCP client's scripts must read: the challenge, when to
/// retry (429, 503), the session id and the DPoP nonce.
pub const CORS_EXPOSE_HEADERS: [http::HeaderName; 4] = [
    http::header::WWW_AUTHENTICATE,
    http::header::RETRY_AFTER,
    http::HeaderName::from_static("mcp-session-id"),
    http::HeaderName::from_static("dpop-nonce"),
];

/// The secret settings: each also read from the file named by `<NAME>_FILE`.
const SECRET_SETTINGS: &[&str] = &[
    "MCP_API_KEYS",
    "MCP_AUTH_TOKENS",
    "MCP_JWT_SECRET",
    "MCP_INTROSPECTION_CLIENT_SECRET",
    "MCP_DPOP_NONCE_KEY",
    "MCP_REDIS_URL",
    "MCP_REDIS_CLIENT_KEY",
    "MCP_REDIS_RECORD_KEY",
];

/// The authenticators of a configured stack, in the order a request's credential is tried:
/// the credentials in headers ([`HeaderAuth`]), then (feature `mtls`) the client certificate.
/// Each is `None` when not configured.
#[cfg(feature = "mtls")]
pub type ConfiguredAuth = Chain<HeaderAuth, Option<ClientCertAuthenticator>>;

/// The authenticators of a configured stack (with feature `mtls`, a client certificate
/// authenticator follows them).
#[cfg(not(feature = "mtls"))]
pub type ConfiguredAuth = HeaderAuth;

/// The authenticators of credentials in headers, in the order a request's credential is
/// tried: API keys, static and issued bearer tokens, then the authorization server's tokens
/// (JWTs, token introspection) behind DPoP. Each is `None` when not configured.
pub type HeaderAuth = Chain<
    Option<ApiKeyAuthenticator>,
    Chain<Option<BearerAuthenticator<Tokens>>, Option<DpopAuthenticator<OAuthTokens, Replays>>>,
>;

/// The authorization server's access tokens: JWTs, then opaque tokens by introspection.
pub type OAuthTokens = Chain<Option<JwtAuthenticator>, Option<IntrospectionAuthenticator>>;

/// A checked configuration with its authenticators and stores built: see the
/// [module docs](self).
#[non_exhaustive]
pub struct Config {
    /// The address to listen on (`MCP_BIND`).
    pub bind: SocketAddr,
    /// This server's public MCP URL (`MCP_PUBLIC_URL`).
    pub public_url: String,
    /// `Host` values an rmcp transport should accept (`MCP_ALLOWED_HOSTS`; `None`: rmcp's
    /// default, loopback).
    pub allowed_hosts: Option<Vec<String>>,
    /// The authenticators, in the order a request's credential is tried (shared by every
    /// [`Config::layer`]).
    pub auth: Arc<ConfiguredAuth>,
    /// Issues, rotates and revokes bearer tokens at run time, in the configured store
    /// (accepted by [`Config::auth`] whenever bearer tokens are enabled).
    pub tokens: TokenManager<Tokens>,
    /// Set when no credential was configured and this one was generated: the only way in.
    pub generated_token: Option<Secret>,
    /// Which tools need which scopes.
    pub policy: Arc<ScopePolicy>,
    /// The protected resource metadata, when authorization servers are configured.
    pub resource: Option<ProtectedResource>,
    /// Transport guards, failure limits and where counters and session bindings live.
    pub guards: Guards,
    /// TLS served by the application itself (`MCP_TLS_*`), when it asked for it with
    /// [`Loader::serve_tls`] and `MCP_TLS_CERT` is set.
    #[cfg(feature = "mtls")]
    pub tls: Option<TlsSettings>,
    /// The header a trusted proxy passes verified client certificates in
    /// (`MCP_CLIENT_CERT_HEADER`); [`Config::layer`] reads it.
    #[cfg(feature = "mtls")]
    pub client_cert_header: Option<crate::hardening::CertHeader>,
    /// The client for the upstream API (`MCP_OUTBOUND_MODE`, `MCP_UPSTREAM_*`), when
    /// configured: it adds the upstream's credential and never forwards the caller's token.
    #[cfg(feature = "outbound")]
    pub outbound: Option<crate::outbound::OutboundClient>,
    /// The upstream API's URL (`MCP_UPSTREAM_API_URL`), with [`Config::outbound`].
    #[cfg(feature = "outbound")]
    pub upstream_api_url: Option<String>,
    jwt: Option<JwtAuthenticator>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bind", &self.bind)
            .field("public_url", &self.public_url)
            .field("schemes", &self.scheme_names())
            .field("generated_token", &self.generated_token)
            .field("guards", &self.guards)
            .field("tls", &self.serves_tls())
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The JWT authenticator, when JWTs are accepted.
    #[must_use]
    pub fn jwt(&self) -> Option<&JwtAuthenticator> {
        self.jwt.as_ref()
    }

    /// Whether the application serves TLS itself with [`Config::tls`] (feature `mtls`).
    #[must_use]
    pub fn serves_tls(&self) -> bool {
        #[cfg(feature = "mtls")]
        return self.tls.is_some();
        #[cfg(not(feature = "mtls"))]
        false
    }

    /// Starts fetching JWKS keys in the background now rather than on the first request
    /// (needs a Tokio runtime). If the identity provider is down, requests with JWTs get 503
    /// until it is up.
    pub fn prefetch(&self) {
        if let Some(jwt) = &self.jwt {
            jwt.prefetch();
        }
    }

    /// The names of the authentication schemes accepted (each once, as challenges list
    /// them), for a startup log.
    #[must_use]
    pub fn scheme_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for scheme in self.auth.schemes() {
            if !names.iter().any(|n| n == scheme.name()) {
                names.push(scheme.name().to_owned());
            }
        }
        names
    }

    /// The path of [`Config::public_url`] (`/mcp` by default), where the endpoint is served.
    #[must_use]
    pub fn mcp_path(&self) -> String {
        url::Url::parse(&self.public_url)
            .map(|u| u.path().to_owned())
            .unwrap_or_else(|_| "/mcp".to_owned())
    }
}

/// Reads the configuration from the process environment and the TOML file named by
/// `MCP_AUTH_CONFIG`, with no application defaults: [`Loader::new`]`.load()`.
///
/// # Errors
///
/// Every problem found, each naming its setting (and the file, for a value from it).
pub fn load() -> Result<Config, ConfigError> {
    Loader::new().load()
}

/// Reads a configuration: from the environment (or given pairs), the TOML file named by
/// `MCP_AUTH_CONFIG`, and an application's built-in defaults, in that order of precedence.
pub struct Loader {
    env: EnvReader,
    defaults: Vec<(String, String)>,
    serve_tls: bool,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Default values may be secrets: names only.
        let defaults: Vec<&str> = self.defaults.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("Loader")
            .field("defaults", &defaults)
            .field("serve_tls", &self.serve_tls)
            .finish_non_exhaustive()
    }
}

impl Default for Loader {
    fn default() -> Self {
        Self::new()
    }
}

impl Loader {
    /// Reads the process environment.
    #[must_use]
    pub fn new() -> Self {
        Self::from_env(EnvReader::new())
    }

    /// Reads `env` instead of the process environment (tests: [`EnvReader::from_pairs`]).
    #[must_use]
    pub fn from_env(env: EnvReader) -> Self {
        Self {
            env,
            defaults: Vec::new(),
            serve_tls: false,
        }
    }

    /// Reads the `MCP_TLS_*` settings into [`Config::tls`] (feature `mtls`): call it when the
    /// application serves TLS itself with them (the example server does). Without this call,
    /// setting any of them is a problem: a server that would ignore `MCP_TLS_CERT` and speak
    /// plain HTTP must not start.
    #[must_use]
    pub fn serve_tls(mut self) -> Self {
        self.serve_tls = true;
        self
    }

    /// A built-in default for `name`, used when neither the environment nor the file sets
    /// it (a problem with it reads `NAME (from built-in defaults)`). Set twice, the last
    /// value counts.
    #[must_use]
    pub fn default_value(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.defaults.push((name.into(), value.into()));
        self
    }

    /// Reads and checks the configuration.
    ///
    /// # Errors
    ///
    /// Every problem found, at once.
    pub fn load(self) -> Result<Config, ConfigError> {
        self.load_with(&[], |_| ()).map(|(config, ())| config)
    }

    /// Reads the configuration and, through the same layers, the application's own settings:
    /// every problem of both is reported at once. `app_settings` names the variables `read`
    /// reads, each starting with `MCP_`, so the TOML file may set them too (keyed without
    /// `MCP_`, in lower case); list a secret's `_FILE` form beside it (`MCP_APP_SECRET`,
    /// `MCP_APP_SECRET_FILE`): the file may then name a file holding it, never the secret
    /// itself. `read` runs before the configuration is built, so it sees settings as written
    /// (read `MCP_PUBLIC_URL` raw if it needs it).
    ///
    /// # Errors
    ///
    /// Every problem found, at once.
    pub fn load_with<T>(
        self,
        app_settings: &[&str],
        read: impl FnOnce(&mut EnvReader) -> T,
    ) -> Result<(Config, T), ConfigError> {
        let mut env = self.env;
        let mut known: Vec<&str> = SETTINGS.iter().chain(app_settings).copied().collect();
        let file_forms: Vec<String> = SECRET_SETTINGS
            .iter()
            .map(|s| format!("{s}{}", crate::env::FILE_SUFFIX))
            .collect();
        known.extend(file_forms.iter().map(String::as_str));
        #[cfg(feature = "outbound")]
        known.extend(outbound::OUTBOUND_SETTINGS);
        if let Some(path) = env.raw(CONFIG_FILE_VAR) {
            let path = path.trim().to_owned();
            match file::read(&path, &known) {
                Ok((pairs, problems)) => {
                    for p in problems {
                        env.problem(p.setting(), p.message());
                    }
                    env = env.with_fallback(pairs, &path);
                }
                Err(e) => {
                    for p in e.problems() {
                        env.problem(p.setting(), p.message());
                    }
                }
            }
        }
        let env = env.with_fallback(self.defaults, "built-in defaults");
        read_config(env, self.serve_tls, read)
    }
}

/// Reads every setting, then builds.
fn read_config<T>(
    mut env: EnvReader,
    serve_tls: bool,
    read_app: impl FnOnce(&mut EnvReader) -> T,
) -> Result<(Config, T), ConfigError> {
    let bind = env
        .optional("MCP_BIND", |name, v| {
            v.trim()
                .parse::<SocketAddr>()
                .map_err(|_| ConfigError::new(name, "is not an address such as 127.0.0.1:8080"))
        })
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
    let allowed_hosts = env.optional("MCP_ALLOWED_HOSTS", |_, v| Ok(list(v)));
    let default_scopes = env
        .raw("MCP_DEFAULT_SCOPES")
        .map(|v| policy::scope_list(&v))
        .unwrap_or_default();
    let (api_keys, tokens) = credentials::load_credentials(&mut env, &default_scopes);
    let tls = tls::load_tls(&mut env, serve_tls);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = env
        .optional("MCP_PUBLIC_URL", |name, v| {
            let v = v.trim();
            match url::Url::parse(v) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                    check_public_url(name, &u)?;
                    Ok(v.to_owned())
                }
                _ => Err(ConfigError::new(name, "is not an http(s) URL")),
            }
        })
        .unwrap_or_else(|| format!("{scheme}://{bind}/mcp"));
    let audiences = env
        .raw("MCP_JWT_AUDIENCE")
        .map(|v| list(&v))
        .unwrap_or_else(|| vec![public_url.clone()]);
    // One HTTP client for JWKS, discovery and introspection.
    let fetcher = match ReqwestFetcher::new() {
        Ok(f) => f,
        Err(e) => {
            for p in e.problems() {
                env.problem(p.setting(), p.message());
            }
            let _ = read_app(&mut env);
            env.finish()?;
            return Err(e);
        }
    };
    let jwt = jwt::load_jwt(&mut env, &audiences, &fetcher);
    let authorization_servers =
        oauth::load_authorization_servers(&mut env, jwt.authorization_servers);
    let introspection =
        oauth::load_introspection(&mut env, &audiences, &authorization_servers, &fetcher);
    let dpop = dpop::load_dpop(&mut env);
    let metadata = oauth::Metadata {
        public_url: public_url.clone(),
        basic_scopes: env
            .raw("MCP_BASIC_SCOPES")
            .map(|v| policy::scope_list(&v))
            .unwrap_or_default(),
        resource_name: env.raw("MCP_RESOURCE_NAME").map(|v| v.trim().to_owned()),
    };
    let redis = redis::load_redis(&mut env);
    let guards = hardening::load_guards(&mut env, bind, redis.as_ref());
    let client_certs =
        client_cert::load_client_certs(&mut env, &guards.trusted_proxies, &default_scopes);
    check_certificate_source(&mut env, serve_tls, tls.as_ref(), &client_certs);
    let table = env.raw("MCP_TOOL_SCOPES");
    let implies = env.raw("MCP_SCOPE_IMPLIES");
    // Each checked alone first, so a problem in both is reported for both.
    if let Err(e) = tool_policy(table.as_deref(), None) {
        env.problem("MCP_TOOL_SCOPES", e);
    }
    if let Err(e) = tool_policy(None, implies.as_deref()) {
        env.problem("MCP_SCOPE_IMPLIES", e);
    }
    let policy = tool_policy(table.as_deref(), implies.as_deref()).ok();
    #[cfg(feature = "outbound")]
    let outbound = outbound::load_outbound(&mut env, redis.as_ref());
    let app = read_app(&mut env);
    // Where the settings the builders check came from, to name them in their problems.
    let origins: Vec<(&str, String)> = BUILDER_SETTINGS
        .iter()
        .chain([&("trusted issuers", jwt::ISSUERS_VAR)])
        .filter_map(|(_, var)| {
            let file_form = format!("{var}{}", crate::env::FILE_SUFFIX);
            let origin = env.origin(var).or_else(|| env.origin(&file_form))?;
            Some((*var, origin.to_owned()))
        })
        .collect();
    env.finish()?;
    let config = build(Settings {
        bind,
        allowed_hosts,
        api_keys,
        tokens,
        default_scopes,
        public_url,
        metadata,
        jwt: jwt.builder,
        authorization_servers,
        introspection,
        dpop,
        #[cfg(feature = "redis")]
        redis,
        guards,
        tls,
        client_certs,
        #[cfg(feature = "outbound")]
        outbound,
        // A policy problem was reported by `finish` above; this only keeps the types honest.
        policy: policy.ok_or_else(|| ConfigError::new("MCP_TOOL_SCOPES", "is invalid"))?,
    })
    .map_err(|e| by_variable(&e, &origins, &jwt.trusted_names))?;
    Ok((config, app))
}

/// The settings of the builders' problems (`JwtBuilder`, `IntrospectionBuilder`,
/// `ProtectedResource`, `DpopBuilder`) and the variables behind them.
const BUILDER_SETTINGS: &[(&str, &str)] = &[
    ("jwks url", "MCP_JWKS_URL"),
    ("oidc issuer", "MCP_OIDC_ISSUER"),
    ("jwt issuer", "MCP_JWT_ISSUER"),
    ("jwt audience", "MCP_JWT_AUDIENCE"),
    ("jwt key", "MCP_JWT_SECRET"),
    ("introspection endpoint", "MCP_INTROSPECTION_URL"),
    ("introspection client", "MCP_INTROSPECTION_CLIENT_ID"),
    ("issuer", "MCP_AUTHORIZATION_SERVERS"),
    ("audience", "MCP_JWT_AUDIENCE"),
    ("resource", "MCP_PUBLIC_URL"),
    ("authorization_servers", "MCP_AUTHORIZATION_SERVERS"),
    ("dpop_htu", "MCP_PUBLIC_URL"),
    ("dpop_algs", "MCP_DPOP_ALGS"),
    ("dpop_iat_window", "MCP_DPOP_IAT_WINDOW"),
    ("dpop_nonce_key", "MCP_DPOP_NONCE_KEY"),
    ("dpop_nonce_lifetime", "MCP_DPOP_NONCE_LIFETIME"),
];

/// A builder's problems renamed to the variables behind them, with the layer a value came
/// from (`MCP_OIDC_ISSUER (from mcp.toml)`). A trusted issuer's (`trusted issuer <i>
/// <field>`) names the setting in `trusted_names` (`MCP_ISSUERS[1].tenants`, or
/// `MCP_OIDC_ISSUER`).
fn by_variable(
    e: &ConfigError,
    origins: &[(&str, String)],
    trusted_names: &[String],
) -> ConfigError {
    let with_origin = |var: &str, shown: String| match origins.iter().find(|(v, _)| *v == var) {
        Some((_, origin)) => format!("{shown} (from {origin})"),
        None => shown,
    };
    let problems = e
        .problems()
        .iter()
        .map(|p| {
            let trusted = p
                .setting()
                .strip_prefix("trusted issuer ")
                .and_then(|rest| rest.split_once(' '))
                .and_then(|(i, field)| {
                    let name = trusted_names.get(i.parse::<usize>().ok()?)?;
                    Some(match name.strip_prefix(jwt::ISSUERS_VAR) {
                        Some(_) => with_origin(jwt::ISSUERS_VAR, format!("{name}.{field}")),
                        None => with_origin(name, name.clone()),
                    })
                });
            let setting = trusted.unwrap_or_else(|| {
                BUILDER_SETTINGS
                    .iter()
                    .chain([&("trusted issuers", jwt::ISSUERS_VAR)])
                    .find(|(lib, _)| *lib == p.setting())
                    .map_or_else(
                        || p.setting().to_owned(),
                        |(_, var)| with_origin(var, (*var).to_owned()),
                    )
            });
            crate::ConfigProblem::new(setting, p.message())
        })
        .collect();
    ConfigError::from_problems(problems).unwrap_or_else(|| e.clone())
}

/// What [`read_config`] read, before the authenticators are built.
struct Settings {
    bind: SocketAddr,
    allowed_hosts: Option<Vec<String>>,
    api_keys: Option<ApiKeyAuthenticator>,
    tokens: Option<BearerAuthenticator>,
    default_scopes: Vec<String>,
    public_url: String,
    metadata: oauth::Metadata,
    jwt: Option<JwtBuilder>,
    authorization_servers: Vec<String>,
    introspection: Option<IntrospectionBuilder>,
    dpop: dpop::DpopSettings,
    #[cfg(feature = "redis")]
    redis: Option<redis::Redis>,
    guards: Guards,
    #[cfg_attr(not(feature = "mtls"), allow(dead_code))]
    tls: Option<tls::TlsSettings>,
    #[cfg_attr(not(feature = "mtls"), allow(dead_code))]
    client_certs: client_cert::ClientCerts,
    #[cfg(feature = "outbound")]
    outbound: Option<(crate::outbound::OutboundClient, String)>,
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
        .map(JwtBuilder::build)
        .transpose()?;
    let introspection = s
        .introspection
        .map(IntrospectionBuilder::build)
        .transpose()?;
    let oauth_tokens = jwt.is_some() || introspection.is_some();
    let dpop_metadata = oauth_tokens.then(|| (s.dpop.algorithm_names(), s.dpop.required()));
    let resource = oauth::protected_resource(
        s.metadata,
        &s.authorization_servers,
        &s.policy,
        &s.guards,
        dpop_metadata,
    )?;
    let mut tokens = s.tokens;
    let mut generated_token = None;
    #[cfg(feature = "mtls")]
    let certificates = s.client_certs.auth.is_some();
    #[cfg(not(feature = "mtls"))]
    let certificates = false;
    if s.api_keys.is_none()
        && tokens.is_none()
        && jwt.is_none()
        && introspection.is_none()
        && !certificates
    {
        let (auth, token) = credentials::generated_credential(&s.default_scopes)?;
        tokens = Some(auth);
        generated_token = Some(token);
    }
    #[cfg(feature = "redis")]
    let store = match &s.redis {
        Some(r) => Tokens::Redis(r.token_store()),
        None => Tokens::Memory(MemoryTokenStore::new()),
    };
    #[cfg(not(feature = "redis"))]
    let store = Tokens::Memory(MemoryTokenStore::new());
    // With JWTs or introspection too, a bearer token that is not a static or issued token is
    // left to them.
    let tokens = tokens.map(|t| {
        let t = t.with_store(store.clone());
        if jwt.is_some() || introspection.is_some() {
            t.defer_unknown()
        } else {
            t
        }
    });
    #[cfg(feature = "redis")]
    let replays = s.redis.as_ref().map(|r| Replays::Redis(r.replay_cache()));
    #[cfg(not(feature = "redis"))]
    let replays = None;
    let oauth = if oauth_tokens {
        let verifier = Chain::new(jwt.clone(), introspection);
        Some(dpop::build_dpop(&s.dpop, verifier, &s.public_url, replays)?)
    } else {
        None
    };
    let auth = Chain::new(s.api_keys, Chain::new(tokens, oauth));
    // The certificate last: credentials in headers decide first.
    #[cfg(feature = "mtls")]
    let auth = Chain::new(auth, s.client_certs.auth);
    Ok(Config {
        bind: s.bind,
        public_url: s.public_url,
        allowed_hosts: s.allowed_hosts,
        auth: Arc::new(auth),
        tokens: TokenManager::new(store),
        generated_token,
        policy: Arc::new(s.policy),
        resource,
        guards: s.guards,
        #[cfg(feature = "mtls")]
        tls: s.tls,
        #[cfg(feature = "mtls")]
        client_cert_header: s.client_certs.header,
        #[cfg(feature = "outbound")]
        upstream_api_url: s.outbound.as_ref().map(|(_, url)| url.clone()),
        #[cfg(feature = "outbound")]
        outbound: s.outbound.map(|(client, _)| client),
        jwt,
    })
}

/// In a server that serves TLS itself, listed certificate subjects need a way for
/// certificates to arrive: the server's own handshake (`MCP_TLS_CLIENT_CA`) or a proxy's
/// header (`MCP_CLIENT_CERT_HEADER`).
#[cfg(feature = "mtls")]
fn check_certificate_source(
    env: &mut EnvReader,
    serve_tls: bool,
    tls: Option<&TlsSettings>,
    certs: &client_cert::ClientCerts,
) {
    let handshake = tls.is_some_and(|t| t.client_auth() != ClientAuth::Off);
    if serve_tls && certs.auth.is_some() && certs.header.is_none() && !handshake {
        env.problem(
            "MCP_CLIENT_CERT_SUBJECTS",
            "no client certificate can reach this server: set MCP_TLS_CLIENT_CA (with \
             MCP_TLS_CERT) or MCP_CLIENT_CERT_HEADER (behind a proxy)",
        );
    }
}

/// Without the `mtls` feature there are no certificate settings to check.
#[cfg(not(feature = "mtls"))]
fn check_certificate_source(
    _env: &mut EnvReader,
    _serve_tls: bool,
    _tls: Option<&tls::TlsSettings>,
    _certs: &client_cert::ClientCerts,
) {
}

/// What a public URL must not hold: credentials (they would be logged and become the default
/// audience), a query or fragment, or a path a router reads as a pattern (`{name}`, or a
/// segment starting with `:` or `*`).
fn check_public_url(name: &str, u: &url::Url) -> Result<(), ConfigError> {
    if !u.username().is_empty() || u.password().is_some() {
        return Err(ConfigError::new(name, "must not hold credentials"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(ConfigError::new(name, "must have no query or fragment"));
    }
    let pattern = u
        .path_segments()
        .into_iter()
        .flatten()
        .any(|s| s.starts_with([':', '*']) || s.contains(['{', '}']));
    if pattern {
        return Err(ConfigError::new(
            name,
            "its path must be plain segments (no `{`, `}`, or segments starting with `:` or `*`)",
        ));
    }
    Ok(())
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

#[cfg(test)]
mod tests;
