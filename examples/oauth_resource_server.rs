//! An OAuth 2.1 resource server, as the MCP authorization spec asks: protected resource
//! metadata (RFC 9728) at its well-known URL, open to all; `resource_metadata` in every 401
//! challenge, so a client without a token can find the authorization server; and JWT access
//! tokens bound to this server's URL (audience, RFC 8707).
//!
//! ```text
//! cargo run --example oauth_resource_server --features axum,rmcp               # demo mode
//! MCP_OIDC_ISSUER=https://login.example.com/realms/mcp \
//! MCP_PUBLIC_URL=https://mcp.example.com/mcp \
//!   cargo run --example oauth_resource_server --features axum,rmcp             # your provider
//! ```
//!
//! Environment: `MCP_OIDC_ISSUER`, your authorization server (its keys are found by
//! discovery); `MCP_PUBLIC_URL`, the URL clients call (default `http://127.0.0.1:$PORT/mcp`),
//! which is the `resource` of the metadata and the audience tokens must carry; `PORT` (8080).
//! Without `MCP_OIDC_ISSUER`, demo mode: tokens are signed here with a random HS256 key, and
//! the server prints one for itself and one for another server, to try both.
//!
//! ```text
//! curl -i http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp  # 200, no token
//! curl -i -X POST http://127.0.0.1:8080/mcp   # 401, WWW-Authenticate: Bearer scope="data:read",
//!   # resource_metadata="http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"
//! curl -i http://127.0.0.1:8080/mcp -H "Authorization: Bearer $TOKEN" \
//!   -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
//!   -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
//! ```
//!
//! The token for this server gets 200; the one for another server gets 401 `invalid_token`,
//! although its signature is good: a token is only accepted where it was meant to be used.

use mcp_auth::authenticators::bearer::generate_token;
use mcp_auth::authenticators::jwt::{Algorithm, JwtKey, JwtMinter};
use mcp_auth::integrations::rmcp::Auth;
use mcp_auth::oauth::ProtectedResource;
use mcp_auth::{JwtAuthenticator, JwtLayer};
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};

/// Demo mode's stand-in for an authorization server: listed in the metadata, and the `iss`
/// of the tokens this example signs itself.
const DEMO_ISSUER: &str = "https://auth.example.com";

/// A one-tool MCP server (`#[tool_handler]` finds the tools with `Self::tool_router()`).
#[derive(Clone)]
struct WhoAmI;

#[tool_router]
impl WhoAmI {
    #[tool(description = "Show the caller's subject, scopes and the token's audience")]
    async fn whoami(&self, Auth(ctx): Auth) -> Result<CallToolResult, ErrorData> {
        let (scopes, aud) = (ctx.scopes().to_space_separated(), ctx.audience().join(" "));
        let text = format!("{} [{scopes}] aud={aud}", ctx.subject());
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
    let port: u16 = std::env::var("PORT").map_or(Ok(8080), |p| p.parse())?;
    // The public URL is configuration, never guessed from requests.
    let public_url =
        std::env::var("MCP_PUBLIC_URL").unwrap_or_else(|_| format!("http://127.0.0.1:{port}/mcp"));

    // Audience binding: tokens whose `aud` does not name this server are refused.
    let mut jwt = JwtAuthenticator::builder().audience(&public_url);
    let issuer = match std::env::var("MCP_OIDC_ISSUER") {
        Ok(issuer) => {
            jwt = jwt.oidc_issuer(&issuer); // keys by discovery; `iss` must be this issuer
            issuer
        }
        Err(_) => {
            let secret = generate_token("hs256_")?; // 32 random bytes
            jwt = jwt.key(JwtKey::hmac(secret.clone(), Algorithm::HS256)?.issuer(DEMO_ISSUER));
            let minter = JwtMinter::hmac(secret, Algorithm::HS256)?.issuer(DEMO_ISSUER);
            let mint = |aud: &str| minter.clone().audience(aud).mint("alice", ["data:read"]);
            println!("token for this server:    {}", mint(&public_url)?);
            println!(
                "token for another server: {}",
                mint("https://other.example.com/mcp")?
            );
            DEMO_ISSUER.to_owned()
        }
    };
    let jwt = jwt.build()?;
    jwt.prefetch(); // with discovery, fetch the keys now rather than on the first request

    // What a client reads to find the authorization server; 401s ask for `data:read` first.
    let pr = ProtectedResource::builder(&public_url)
        .authorization_server(issuer)
        .scopes_supported(["data:read", "data:write"])
        .basic_scopes(["data:read"])
        .build()?;

    let mcp = StreamableHttpService::new(
        || Ok(WhoAmI),
        LocalSessionManager::default().into(),
        // Stateless with JSON answers: each curl request stands alone.
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    // `.protected_resource(&pr)` puts `resource_metadata` (and `scope`) into every challenge.
    let auth = JwtLayer::new(jwt).protected_resource(&pr);
    let [path_form, root_form] = pr.well_known_paths();
    let mut app = axum::Router::new()
        .nest_service("/mcp", mcp)
        .layer(auth) // wraps the routes above it only
        // Added after `.layer`, so outside it: clients fetch this before they hold a token.
        .route_service(path_form, pr.service());
    if root_form != path_form {
        app = app.route_service(root_form, pr.service());
    }

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("MCP server on http://{}/mcp", listener.local_addr()?);
    println!("metadata at {}", pr.metadata_url());
    axum::serve(listener, app).await?;
    Ok(())
}
