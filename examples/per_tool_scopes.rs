//! Per-tool scopes: a `ScopeLayer` with a `ScopePolicy` that gives each tool its own
//! requirement, and three bearer tokens with different scopes to try it with.
//!
//! ```text
//! cargo run --example per_tool_scopes --features axum,rmcp     # PORT=8080 by default
//! ```
//!
//! At start it prints a reader, a writer and an admin token (random, valid for this run) and a
//! curl command. Calling a tool the token's scopes do not cover is refused **before** the tool
//! runs, with HTTP 403 and `WWW-Authenticate: Bearer error="insufficient_scope",
//! error_description="this operation needs more scope", scope="data:admin"`, naming the scopes
//! the refused call needs. An MCP client reads that, asks the authorization server for a token
//! with those scopes (step-up), and retries. A 401 means "who are you?"; a 403 means "I know
//! who you are, and you may not do this".
//!
//! | tool | needs | reader | writer | admin |
//! |---|---|---|---|---|
//! | `whoami` | a valid token | 200 | 200 | 200 |
//! | `read_data` | `data:read` | 200 | 200 (`data:write` implies it) | 200 |
//! | `write_data` | `data:write` | 403 | 200 | 200 |
//! | `delete_data` | `data:admin` | 403 | 403 | 200 |

use mcp_auth::authenticators::bearer::generate_token;
use mcp_auth::integrations::rmcp::Auth;
use mcp_auth::scope::{
    ImpliedScopes, Requirement, ScopeLayer, ScopePolicy, Unlisted, WildcardAndPairs,
};
use mcp_auth::{BearerAuthenticator, BearerLayer, Credential};
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use tower::ServiceBuilder;

#[derive(Clone)]
struct Data;

fn text(s: impl Into<String>) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::text(s.into())]))
}

/// The tools check nothing themselves: by the time a call reaches them, the scope layer has
/// already decided it is allowed.
#[tool_router]
impl Data {
    #[tool(description = "Show the caller's subject and scopes")]
    async fn whoami(&self, Auth(ctx): Auth) -> Result<CallToolResult, ErrorData> {
        let scopes = ctx.scopes().to_space_separated();
        text(format!("{} [{scopes}]", ctx.subject()))
    }
    #[tool(description = "Read the data (needs data:read)")]
    async fn read_data(&self) -> Result<CallToolResult, ErrorData> {
        text("the data")
    }
    #[tool(description = "Write the data (needs data:write)")]
    async fn write_data(&self) -> Result<CallToolResult, ErrorData> {
        text("written")
    }
    #[tool(description = "Delete the data (needs data:admin)")]
    async fn delete_data(&self) -> Result<CallToolResult, ErrorData> {
        text("deleted")
    }
}

#[tool_handler]
impl ServerHandler for Data {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Deny what no rule names (a tool added later is refused until it gets a rule), but let
    // protocol methods without a target (initialize, tools/list, ping…) through for anyone
    // authenticated. `data:write` implies `data:read`; `data:*` would imply every `data:` scope.
    let implied = ImpliedScopes::new().pair("data:write", "data:read");
    let policy = ScopePolicy::new(Unlisted::Deny)
        .unlisted_methods(Unlisted::Allow)
        .tool("whoami", Requirement::default())
        .tool("read_data", Requirement::all(["data:read"]))
        .tool("write_data", Requirement::all(["data:write"]))
        .tool("delete_data", Requirement::all(["data:admin"]))
        .implication(WildcardAndPairs(implied));

    // Three static tokens with different scopes (any authenticator works the same way: the
    // scope layer only reads the AuthContext's scopes).
    let mut tokens = BearerAuthenticator::new();
    for (who, scopes) in [
        ("reader", "data:read"),
        ("writer", "data:write"),
        ("admin", "data:read data:write data:admin"),
    ] {
        let token = generate_token("mcp_")?;
        println!("{who:>6} token: {}", token.expose());
        let credential = Credential::new(token).subject(who);
        tokens = tokens.with_token(credential.scopes(scopes.split(' ')))?;
    }

    let mcp = StreamableHttpService::new(
        || Ok(Data),
        LocalSessionManager::default().into(),
        // Stateless with JSON answers: each curl request stands alone.
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    // Outermost first: authenticate (401), then authorize the JSON-RPC body (403). The scope
    // layer reads the body to find the tool, then hands the same bytes to rmcp.
    let mcp = ServiceBuilder::new()
        .layer(BearerLayer::new(tokens))
        .layer(ScopeLayer::new(policy))
        .service(mcp);
    // (Wrapping `Data` in `mcp_auth::integrations::rmcp::ScopedServer` would also hide from
    // `tools/list` the tools a caller may not call.)
    let app = axum::Router::new().nest_service("/mcp", mcp);

    // Loopback only; PORT picks the port (default 8080).
    let port: u16 = std::env::var("PORT").map_or(Ok(8080), |p| p.parse())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    println!("MCP server on http://{addr}/mcp; try each token with each tool:");
    println!(
        "  curl -i http://{addr}/mcp -H \"Authorization: Bearer $TOKEN\" \
         -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
         -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\",\"params\":{{\"name\":\"delete_data\",\"arguments\":{{}}}}}}'"
    );
    axum::serve(listener, app).await?;
    Ok(())
}
