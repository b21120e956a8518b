//! The mcp-auth example MCP server as a library: rmcp's streamable HTTP transport on axum,
//! behind mcp-auth's layers. `examples/mcp_server.rs` runs it:
//!
//! ```text
//! cargo run --example mcp_server
//! ```
//!
//! The crate is split by concern, each module readable on its own:
//!
//! - [`config`]: the environment contract below, read by [`load_config`] into a [`Config`]
//!   (credentials, JWT, OAuth metadata and introspection, hardening, shared stores);
//! - [`tools`]: the MCP server, four tools over an in-memory map;
//! - [`policy`]: which tool needs which scopes ([`scope_policy`]);
//! - [`stores`]: in-memory or Redis-backed issued tokens, failure counters and session
//!   bindings;
//! - [`router`](mod@router): the layer stack and routes ([`app`], [`router()`]), and [`serve`].
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use mcp_auth::env::EnvReader;
//!
//! let config = mcp_auth_example_server::load_config(EnvReader::new())?;
//! let listener = tokio::net::TcpListener::bind(config.bind).await?;
//! mcp_auth_example_server::serve(listener, config, std::future::pending()).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The integration tests of mcp-auth start this server on loopback ports, and the load driver
//! (`tools/load`) measures it.
//!
//! # Environment
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
//! # OAuth protected resource
//!
//! With authorization servers configured, the server is an OAuth protected resource: it
//! serves RFC 9728 metadata at `/.well-known/oauth-protected-resource/mcp` and
//! `/.well-known/oauth-protected-resource` (resource = `MCP_PUBLIC_URL`, scopes from the
//! tool table), and every 401/403 challenge carries `resource_metadata`; 401s ask for
//! `data:read` (basic use), 403s for what the refused call needs.
//!
//! # Scopes
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
//! # Credentials
//!
//! With several set, any valid credential works: API keys in `X-API-Key`; in
//! `Authorization: Bearer`, static and issued tokens first (by digest), then JWTs. With none
//! set, the server generates a bearer token ([`Config::generated_token`]; `mcp_server` prints
//! it on a line starting with `token: `), and requires it: it never serves unauthenticated.
//!
//! # Sessions
//!
//! Each MCP session belongs to the caller whose `initialize` created it: a request with another
//! caller's (or an unknown) `Mcp-Session-Id` gets rmcp's own 404 "session not found" and never
//! reaches rmcp (`mcp_auth::session`; bindings in memory, or in Redis with `MCP_REDIS_URL`).

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod config;
pub mod policy;
pub mod router;
pub mod stores;
pub mod tools;

pub use config::{Config, Guards, load_config};
pub use policy::{BASIC_SCOPES, DEFAULT_SCOPES, DEFAULT_TOOL_SCOPES, scope_policy};
pub use router::{ServerAuth, app, mcp_service, router, serve};
pub use stores::{Counters, Sessions, Tokens};
pub use tools::DataServer;
