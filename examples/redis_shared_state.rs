//! State shared by every instance of a server, through Redis: a token issued by one instance
//! is valid on all of them (`RedisTokenStore`), and failed attempts are counted across all of
//! them (`RedisAttemptStore`), so spreading guesses over instances gains nothing.
//!
//! ```text
//! MCP_REDIS_URL=redis://127.0.0.1:6379/0 PORT=8080 \
//!   cargo run --example redis_shared_state --features axum,rmcp,redis
//! MCP_REDIS_URL=redis://127.0.0.1:6379/0 PORT=8081 \
//!   cargo run --example redis_shared_state --features axum,rmcp,redis   # a second instance
//! ```
//!
//! Environment: `MCP_REDIS_URL` (or `MCP_REDIS_URL_FILE`; `rediss://` for TLS, which you want
//! whenever Redis is reached over a network); `MCP_REDIS_RECORD_KEY` (optional, at least 32
//! bytes, the same on every instance: token records then carry an HMAC, and records written
//! without the key are refused); `PORT` (default 8080, on 127.0.0.1).
//!
//! Each instance issues a token at start (valid for an hour) and prints it: either token
//! works on both instances. After 5 refused tokens from one address within a minute, on any
//! instance, every instance answers that address 429 with `Retry-After` until the minute is
//! over, valid token or not.
//!
//! ```text
//! curl -i http://127.0.0.1:8081/mcp -H "Authorization: Bearer $TOKEN_FROM_8080" \
//!   -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
//!   -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use mcp_auth::authenticators::bearer::{TokenManager, TokenSpec};
use mcp_auth::env::EnvReader;
use mcp_auth::hardening::FailureLimitLayer;
use mcp_auth::integrations::rmcp::Auth;
use mcp_auth::store::redis::{Redis, RedisConfig};
use mcp_auth::{BearerAuthenticator, BearerLayer};
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use tower::ServiceBuilder;

/// A one-tool MCP server (`#[tool_handler]` finds the tools with `Self::tool_router()`).
#[derive(Clone)]
struct WhoAmI;

#[tool_router]
impl WhoAmI {
    #[tool(description = "Show the caller's subject, scopes and token id")]
    async fn whoami(&self, Auth(ctx): Auth) -> Result<CallToolResult, ErrorData> {
        let (id, scopes) = (ctx.credential_id(), ctx.scopes().to_space_separated());
        let text = format!(
            "{} [{scopes}] token id {}",
            ctx.subject(),
            id.unwrap_or("-")
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
    // The URL may carry a password: read it as a secret (which also accepts `…_FILE`).
    let mut env = EnvReader::new();
    let url = env.required_secret("MCP_REDIS_URL", |_, v, _| Ok(v.trim().to_owned()));
    let record_key = env.secret("MCP_REDIS_RECORD_KEY");
    if let Err(e) = env.finish() {
        eprintln!("{e}");
        std::process::exit(2);
    }
    let port: u16 = std::env::var("PORT").map_or(Ok(8080), |p| p.parse())?;

    let mut config = RedisConfig::new(url.unwrap_or_default());
    if let Some(key) = record_key {
        config = config.record_key(key);
    }
    // Checks the URL only: it connects on first use, and reconnects by itself. While Redis is
    // down, requests get 503 (fail closed), never a silent accept.
    let redis = Redis::new(config)?;

    // Issue a token into Redis. Only its SHA-256 digest is stored, with the caller's context;
    // the token itself is shown here once.
    let tokens = TokenManager::new(redis.token_store());
    let spec = TokenSpec::new(format!("client-of-{port}"), Duration::from_secs(3600));
    match tokens.issue(spec.scopes(["data:read"])).await {
        Ok(issued) => println!("token (1 h, any instance): {}", issued.token.expose()),
        Err(e) => eprintln!("no token issued: Redis is not answering ({e})"),
    }
    // `tokens.revoke(…)`, `revoke_id` or `revoke_subject` would refuse it on every instance.

    // Every instance reads the same store and counts failures in the same place.
    let auth = BearerLayer::new(BearerAuthenticator::new().with_store(redis.token_store()));
    let limit = FailureLimitLayer::new(redis.attempt_store())
        .max_failures(5)
        .window(Duration::from_secs(60));
    let release = limit.release(); // refunds an attempt as soon as it has authenticated

    let mcp = StreamableHttpService::new(
        || Ok(WhoAmI),
        LocalSessionManager::default().into(),
        // Stateless with JSON answers: each curl request stands alone.
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    // Outermost first: count failures per client address, authenticate, refund on success.
    // Behind a reverse proxy every client has the proxy's address: add
    // `.trust_forwarded_for(proxies)`, or they would all share one counter.
    let mcp = ServiceBuilder::new()
        .layer(limit)
        .layer(auth)
        .layer(release)
        .service(mcp);
    let app = axum::Router::new().nest_service("/mcp", mcp);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("MCP server on http://{}/mcp", listener.local_addr()?);
    // The failure limit reads the client address from the connection info.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}
