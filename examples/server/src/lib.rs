//! The mcp-auth example MCP server as a library: rmcp's streamable HTTP transport on axum,
//! behind the stack [`mcp_auth::config`] builds. `examples/mcp_server.rs` runs it:
//!
//! ```text
//! cargo run --example mcp_server
//! ```
//!
//! The whole server is three steps, each a few lines:
//!
//! 1. **Configuration** ([`load_config`]): `mcp_auth::config` reads every `MCP_*` variable (and
//!    the TOML file named by `MCP_AUTH_CONFIG`, under the environment), checks them all, and
//!    builds the authenticators, stores and metadata. This server adds its own defaults below
//!    the file: the tool table, the scopes static credentials carry, and what a 401 asks for.
//! 2. **The MCP service** ([`mcp_service`]): rmcp serving [`DataServer`]'s four tools, wrapped
//!    in [`ScopedServer`] so `tools/list` shows each caller only what it may call.
//! 3. **The router** ([`app`]): [`Config::router`] mounts the service behind the whole
//!    stack (client address → a trusted proxy's client certificate → Origin → HTTPS →
//!    failure limit → authentication → session binding → scopes) with the protected resource
//!    metadata beside it, and CORS goes around everything so browser clients work.
//!
//! [`serve`] serves it over plain HTTP, or over HTTPS when `MCP_TLS_CERT` and `MCP_TLS_KEY`
//! are set ([`tls`]: rustls, client certificates verified against `MCP_TLS_CLIENT_CA`, each
//! request carrying its connection's certificate for certificate-bound tokens and
//! `MCP_CLIENT_CERT_SUBJECTS`).
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
//! The variables are those of [`mcp_auth::config`] (its module docs have the table; the
//! README has it too), with these defaults of this server's own:
//!
//! | variable | this server's default |
//! |---|---|
//! | `MCP_TOOL_SCOPES` | [`DEFAULT_TOOL_SCOPES`]: `whoami` needs authentication only, `read_data` `data:read`, `write_data` `data:write`, `delete_data` `data:admin` |
//! | `MCP_SCOPE_IMPLIES` | `data:write>data:read` (and `data:*` implies every `data:` scope) |
//! | `MCP_DEFAULT_SCOPES` | `data:read data:write data:admin`: what a static API key or token carries unless its configuration names scopes (`;scopes=data:read`) |
//! | `MCP_BASIC_SCOPES` | `data:read`: what a 401 challenge asks for |
//! | `MCP_RESOURCE_NAME` | `mcp-auth example data server` |
//!
//! A refused call gets HTTP 403 with an `insufficient_scope` challenge naming the scopes it
//! needs. With no credential configured, the server generates a bearer token
//! ([`Config::generated_token`]; `mcp_server` prints it on a line starting with `token: `)
//! and requires it: it never serves unauthenticated. Each MCP session belongs to the caller
//! whose `initialize` created it: another caller's `Mcp-Session-Id` gets rmcp's own 404.

#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms, unreachable_pub)]

pub mod router;
pub mod tls;
pub mod tools;

pub use mcp_auth::config::{Config, Counters, Guards, Sessions, Tokens};
pub use router::{app, cors, mcp_service, router, serve, serve_app, upstream};
pub use tools::{DataServer, Upstream};

use mcp_auth::ConfigError;
use mcp_auth::config::{Loader, tool_policy};
use mcp_auth::env::EnvReader;
use mcp_auth::scope::ScopePolicy;

#[doc(no_inline)]
pub use mcp_auth::integrations::rmcp::ScopedServer;

/// The built-in per-tool table (`MCP_TOOL_SCOPES` replaces it).
pub const DEFAULT_TOOL_SCOPES: &str = "whoami=;read_data=data:read;write_data=data:write;\
     delete_data=data:admin;call_upstream=data:read";

/// The built-in scope implications (`MCP_SCOPE_IMPLIES` replaces them).
pub const DEFAULT_SCOPE_IMPLIES: &str = "data:write>data:read";

/// Scopes a static credential carries when its configuration names none.
pub const DEFAULT_SCOPES: [&str; 3] = ["data:read", "data:write", "data:admin"];

/// The scopes a 401 asks for: enough for basic use (`whoami`, `read_data`).
pub const BASIC_SCOPES: [&str; 1] = ["data:read"];

/// Reads the whole configuration from `env` (and the file named by `MCP_AUTH_CONFIG`) with
/// this server's defaults under both; every problem is reported at once. This server serves
/// TLS itself when `MCP_TLS_CERT` is set ([`Loader::serve_tls`]).
///
/// ```
/// use mcp_auth::env::EnvReader;
///
/// let env = EnvReader::from_pairs([("MCP_API_KEYS", "key-alice-0123456789abcdef;sub=alice")]);
/// let config = mcp_auth_example_server::load_config(env).unwrap();
/// assert_eq!(config.bind.to_string(), "127.0.0.1:8080");
/// assert!(config.generated_token.is_none());
/// ```
///
/// # Errors
///
/// Every problem found, each naming its setting and never its value.
pub fn load_config(env: EnvReader) -> Result<Config, ConfigError> {
    Loader::from_env(env)
        .default_value("MCP_TOOL_SCOPES", DEFAULT_TOOL_SCOPES)
        .default_value("MCP_SCOPE_IMPLIES", DEFAULT_SCOPE_IMPLIES)
        .default_value("MCP_DEFAULT_SCOPES", DEFAULT_SCOPES.join(" "))
        .default_value("MCP_BASIC_SCOPES", BASIC_SCOPES.join(" "))
        .default_value("MCP_RESOURCE_NAME", "mcp-auth example data server")
        .serve_tls()
        .load()
}

/// The scope policy for a `tool=requirement;…` table with this server's implications.
///
/// ```
/// use mcp_auth_example_server::{DEFAULT_TOOL_SCOPES, scope_policy};
///
/// assert!(scope_policy(DEFAULT_TOOL_SCOPES).is_ok());
/// assert!(scope_policy("whoami").is_err()); // not tool=requirement
/// ```
///
/// # Errors
///
/// A message naming the entry at fault.
pub fn scope_policy(table: &str) -> Result<ScopePolicy, String> {
    tool_policy(Some(table), Some(DEFAULT_SCOPE_IMPLIES))
}
