//! API keys from the environment: an MCP server that accepts only callers presenting one of
//! the keys in `MCP_API_KEYS`, in the `X-API-Key` header.
//!
//! ```text
//! MCP_API_KEYS='k_alice_0123456789;sub=alice;scopes=data:write, k_bob_0123456789;sub=bob' \
//!   cargo run --example api_key --features axum,rmcp
//! ```
//!
//! Environment:
//!
//! - `MCP_API_KEYS` (or `MCP_API_KEYS_FILE`, a file with one key per line): comma-separated
//!   `SECRET[;sub=NAME][;scopes=A B][;roles=R][;exp=WHEN][;id=ID]`, secrets of at least 16
//!   visible ASCII characters (the syntax is in the README).
//! - `PORT`: the port to listen on, on 127.0.0.1 (default 8080).
//!
//! Then call the `whoami` tool with a key (200, the tool answers with the key's subject and
//! scopes), and without one (401 with `WWW-Authenticate: ApiKey header="x-api-key"`):
//!
//! ```text
//! curl -i http://127.0.0.1:8080/mcp -H 'X-API-Key: k_alice_0123456789' \
//!   -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
//!   -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
//! ```

use mcp_auth::env::EnvReader;
use mcp_auth::integrations::rmcp::Auth;
use mcp_auth::{ApiKeyAuthenticator, ApiKeyLayer, ConfigError};
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};

/// A one-tool MCP server.
#[derive(Clone)]
struct WhoAmI;

#[tool_router]
impl WhoAmI {
    /// `Auth(ctx)` is the context the auth layer put into the request: who called, and with
    /// which scopes. The key itself never reaches the tool.
    #[tool(description = "Show the caller's subject and scopes")]
    async fn whoami(&self, Auth(ctx): Auth) -> Result<CallToolResult, ErrorData> {
        let text = format!(
            "subject={} scopes=[{}]",
            ctx.subject(),
            ctx.scopes().to_space_separated()
        );
        Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
    }
}

#[tool_handler]
impl ServerHandler for WhoAmI {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // `ApiKeyLayer::from_env()` is the one-line version. Reading through `EnvReader` instead
    // lets us add settings of our own (PORT) and still report every problem in one message,
    // naming the variable and the entry but never the secret.
    let mut env = EnvReader::new();
    let port = env
        .optional("PORT", |name, v| {
            v.trim()
                .parse::<u16>()
                .map_err(|_| ConfigError::new(name, "is not a port number"))
        })
        .unwrap_or(8080);
    // `required_secret` also accepts MCP_API_KEYS_FILE, and hands the parser the value and
    // where it came from (a variable is comma-separated, a file holds one key per line).
    let keys = env.required_secret("MCP_API_KEYS", |name, value, origin| {
        ApiKeyAuthenticator::new()
            // Keys whose entry has no `;scopes=` get these.
            .default_scopes(["data:read"])
            .with_setting(name, value, origin)
    });
    if let Err(e) = env.finish() {
        eprintln!("{e}");
        std::process::exit(2);
    }
    let keys = keys.unwrap_or_default(); // `finish` succeeded, so the keys were read

    // rmcp's streamable HTTP transport, stateless with JSON answers, so that each curl
    // request stands alone (no `initialize` handshake or session id to carry along). MCP
    // clients work either way; a server that sends requests or notifications to its clients
    // keeps rmcp's default session mode, as `examples/mcp_server.rs` does.
    let mcp = StreamableHttpService::new(
        || Ok(WhoAmI),
        LocalSessionManager::default().into(),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    println!("{} API key(s) loaded", keys.len());
    // Every request to /mcp must carry a valid key; the layer answers 401 itself otherwise,
    // so the MCP service only ever sees authenticated requests.
    let app = axum::Router::new()
        .nest_service("/mcp", mcp)
        .layer(ApiKeyLayer::new(keys));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("MCP server on http://{addr}/mcp; try:");
    println!(
        "  curl -i http://{addr}/mcp -H 'X-API-Key: <a key from MCP_API_KEYS>' \
         -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
         -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"whoami\",\"arguments\":{{}}}}}}'"
    );
    axum::serve(listener, app).await?;
    Ok(())
}
