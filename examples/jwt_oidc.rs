//! JWT access tokens from an OpenID Connect provider: the server finds the provider's signing
//! keys by discovery from its issuer URL, and accepts only tokens issued **for this server**
//! (their `aud` names its public URL).
//!
//! ```text
//! MCP_OIDC_ISSUER=https://login.example.com/realms/mcp \
//! MCP_PUBLIC_URL=http://127.0.0.1:8080/mcp \
//!   cargo run --example jwt_oidc --features axum,rmcp
//! ```
//!
//! Environment:
//!
//! - `MCP_OIDC_ISSUER`: the provider's issuer (https, or http on a loopback host). The server
//!   reads `<issuer>/.well-known/openid-configuration` (or the OAuth metadata), then the JWKS
//!   it names, and expects `iss` to be exactly this issuer.
//! - `MCP_PUBLIC_URL`: the URL clients call, and so the audience tokens must carry. Register
//!   it at the provider (Keycloak: an audience mapper; Auth0: the API identifier; Okta: the
//!   authorization server's audience) so that its tokens for this server say so.
//! - `PORT`: the port to listen on, on 127.0.0.1 (default 8080).
//!
//! Then, with an access token from the provider in `$TOKEN`:
//!
//! ```text
//! curl -i http://127.0.0.1:8080/mcp -H "Authorization: Bearer $TOKEN" \
//!   -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
//!   -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
//! ```
//!
//! 200 with a valid token; 401 without one; 401 `invalid_token` for a token that is expired,
//! signed by another key, from another issuer or for another audience; 503 with `Retry-After`
//! while the provider's keys cannot be fetched (never a 401 for a token that may be good).

use mcp_auth::env::EnvReader;
use mcp_auth::integrations::rmcp::Auth;
use mcp_auth::{ConfigError, JwtAuthenticator, JwtLayer};
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};

/// A one-tool MCP server (`#[tool_handler]` finds the tools with `Self::tool_router()`).
#[derive(Clone)]
struct WhoAmI;

#[tool_router]
impl WhoAmI {
    /// What the token said, as checked: `sub`, `scope`/`scp`, `iss` and `client_id`/`azp`.
    #[tool(description = "Show the caller's subject, scopes, issuer and client")]
    async fn whoami(&self, Auth(ctx): Auth) -> Result<CallToolResult, ErrorData> {
        let text = serde_json::json!({
            "subject": ctx.subject(),
            "scopes": ctx.scopes().to_space_separated(),
            "issuer": ctx.issuer(),
            "client_id": ctx.client_id(),
        });
        Ok(CallToolResult::success(vec![ContentBlock::text(
            text.to_string(),
        )]))
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
    // Both settings are required, and a missing one is reported with the other problems.
    let mut env = EnvReader::new();
    let issuer = env.required("MCP_OIDC_ISSUER", |_, v| Ok(v.trim().to_owned()));
    let audience = env.required("MCP_PUBLIC_URL", |_, v| Ok(v.trim().to_owned()));
    let port = env.optional("PORT", |name, v| {
        v.parse::<u16>()
            .map_err(|_| ConfigError::new(name, "is not a port number"))
    });
    if let Err(e) = env.finish() {
        eprintln!("{e}");
        std::process::exit(2);
    }
    let (issuer, audience) = (issuer.unwrap_or_default(), audience.unwrap_or_default());

    // `build` checks the configuration (https or loopback URLs, an audience) but does not
    // touch the network: the server starts even while the provider is down.
    let jwt = JwtAuthenticator::builder()
        .oidc_issuer(&issuer) // discovery; also the expected `iss`
        .audience(&audience) // required: a token for another server is refused
        // .roles_claims(["realm_access.roles"]) // Keycloak roles, for example
        .build()?;
    // Fetch the keys in the background now rather than on the first request.
    jwt.prefetch();

    let mcp = StreamableHttpService::new(
        || Ok(WhoAmI),
        LocalSessionManager::default().into(),
        // Stateless with JSON answers: each curl request stands alone.
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    let app = axum::Router::new()
        .nest_service("/mcp", mcp)
        .layer(JwtLayer::new(jwt));

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port.unwrap_or(8080))).await?;
    println!("MCP server on http://{}/mcp", listener.local_addr()?);
    println!("accepting JWTs from {issuer} with aud = {audience}");
    axum::serve(listener, app).await?;
    Ok(())
}
