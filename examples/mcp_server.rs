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
//! | `MCP_ALLOWED_HOSTS` | `Host` values rmcp accepts (default: loopback only) |
//!
//! With several set, any valid credential works. With none set, the server generates a bearer
//! token, prints it on a line starting with `token: `, and requires it: it never serves
//! unauthenticated.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use std::convert::Infallible;

use axum::Router;
use axum::body::Body;
use bytes::Bytes;
use http::{HeaderName, Method, Request, header};
use mcp_auth::bearer::{MemoryTokenStore, TokenManager, generate_token};
use mcp_auth::env::EnvReader;
use mcp_auth::rmcp::Auth;
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
    pub fn new(data: Arc<Mutex<HashMap<String, String>>>) -> Self {
        Self {
            data,
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

    #[tool(description = "Store a value under a key")]
    async fn write_data(
        &self,
        Parameters(WriteArgs { key, value }): Parameters<WriteArgs>,
    ) -> Result<CallToolResult, ErrorData> {
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

/// API keys or bearer tokens: the first that the request carries decides.
pub type ServerAuth =
    Chain<Option<ApiKeyAuthenticator>, Option<BearerAuthenticator<MemoryTokenStore>>>;

pub struct Config {
    pub bind: SocketAddr,
    pub allowed_hosts: Option<Vec<String>>,
    pub auth: ServerAuth,
    /// Issues, rotates and revokes bearer tokens at run time (accepted whenever bearer tokens
    /// are enabled). This example issues none itself; an admin tool or endpoint would.
    pub tokens: TokenManager<MemoryTokenStore>,
    /// Set when no credential was configured and one was generated.
    pub generated_token: Option<Secret>,
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
    let api_keys = env.optional("MCP_API_KEYS", |name, v| {
        ApiKeyAuthenticator::new()
            .default_scopes(DEFAULT_SCOPES)
            .with_list(name, v)
    });
    let mut tokens = env.optional("MCP_AUTH_TOKENS", |name, v| {
        BearerAuthenticator::new()
            .default_scopes(DEFAULT_SCOPES)
            .with_list(name, v)
    });
    env.finish()?;

    let mut generated_token = None;
    if api_keys.is_none() && tokens.is_none() {
        let token = generate_token("mcp_")?;
        let auth = BearerAuthenticator::new()
            .default_scopes(DEFAULT_SCOPES)
            .with_token(Credential::new(token.clone()).subject("local-admin"))?;
        tokens = Some(auth);
        generated_token = Some(token);
    }
    let store = MemoryTokenStore::new();
    Ok(Config {
        bind,
        allowed_hosts,
        auth: Chain::new(api_keys, tokens.map(|t| t.with_store(store.clone()))),
        tokens: TokenManager::new(store),
        generated_token,
    })
}

// ---------------------------------------------------------------------------------------------
// The router. Layer order, outermost first: CORS, then auth, then the MCP service.
// CORS sits outside auth so browser preflights (which carry no credentials) are answered,
// and so 401s carry the CORS headers that let scripts read `WWW-Authenticate`.
// ---------------------------------------------------------------------------------------------

/// The MCP service: rmcp's streamable HTTP transport serving [`DataServer`].
pub fn mcp_service(
    allowed_hosts: Option<Vec<String>>,
) -> StreamableHttpService<DataServer, LocalSessionManager> {
    let data = Arc::new(Mutex::new(HashMap::new()));
    let mut mcp_config = StreamableHttpServerConfig::default();
    if let Some(hosts) = allowed_hosts {
        mcp_config.allowed_hosts = hosts;
    }
    StreamableHttpService::new(
        move || Ok(DataServer::new(data.clone())),
        Arc::new(LocalSessionManager::default()),
        mcp_config,
    )
}

/// The whole application.
pub fn app(config: Config) -> Router {
    let mcp = mcp_service(config.allowed_hosts);
    router(config.auth, mcp)
}

/// Mounts `mcp` at `/mcp` behind the auth layer, and CORS around everything.
pub fn router<S, B>(auth: ServerAuth, mcp: S) -> Router
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
        ])
        .expose_headers([
            header::WWW_AUTHENTICATE,
            HeaderName::from_static("mcp-session-id"),
        ]);

    Router::new()
        .nest_service(
            "/mcp",
            ServiceBuilder::new()
                .layer(AuthLayer::new(auth))
                .service(mcp),
        )
        .layer(cors)
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
                .unwrap_or_else(|_| "info,mcp_auth=debug".into()),
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

    let listener = tokio::net::TcpListener::bind(bind).await?;
    tracing::info!(address = %listener.local_addr()?, ?schemes, "MCP server listening on /mcp");
    axum::serve(listener, app(config))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
