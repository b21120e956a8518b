//! An authenticated MCP server: rmcp's streamable HTTP transport on axum, behind mcp-auth.
//!
//! ```text
//! cargo run --example mcp_server
//! ```
//!
//! Configured through `MCP_*` environment variables and/or a TOML file (`MCP_AUTH_CONFIG`;
//! `examples/config/` has one per common setup): API keys (`MCP_API_KEYS`), static bearer
//! tokens (`MCP_AUTH_TOKENS`), JWTs (`MCP_JWT_SECRET`, `MCP_OIDC_ISSUER`, `MCP_JWKS_URL`),
//! token introspection, the OAuth protected resource metadata, per-tool scopes, Redis-backed
//! shared state and transport hardening, all read by `mcp_auth::config`; HTTPS with client
//! certificates (`MCP_TLS_CERT`, `MCP_TLS_KEY`, `MCP_TLS_CLIENT_CA`) served by the server itself. The tools and the
//! few lines that put them behind the stack are in the `mcp-auth-example-server` crate
//! (`examples/server/`); this file runs it.
//! With no credential configured, a bearer token is generated and printed on a line
//! starting with `token: `: the server never serves unauthenticated.

use std::net::SocketAddr;

use mcp_auth::Secret;
use mcp_auth::env::EnvReader;
use mcp_auth_example_server as server;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rmcp=warn,mcp_auth=debug".into()),
        )
        .init();

    // Every problem in the environment is reported at once, by name, never with its value.
    let config = match server::load_config(EnvReader::new()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    if let Some(token) = &config.generated_token {
        let scheme = if config.serves_tls() { "https" } else { "http" };
        print_generated(token, scheme, config.bind);
    }
    // Fetch JWKS keys in the background now rather than on the first request. If the
    // identity provider is down, startup still succeeds and JWT requests get 503 until it is up.
    config.prefetch();

    let listener = tokio::net::TcpListener::bind(config.bind).await?;
    let address = listener.local_addr()?;
    let schemes = config.scheme_names();
    let path = config.mcp_path();
    let tls = config.serves_tls();
    tracing::info!(%address, ?schemes, %path, tls, "MCP server listening");
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    server::serve(listener, config, shutdown).await?;
    Ok(())
}

/// Printed once, to stdout, because the operator asked for no credential: it is the only way
/// to reach this server. It is never logged.
fn print_generated(token: &Secret, scheme: &str, bind: SocketAddr) {
    println!("No MCP_API_KEYS or MCP_AUTH_TOKENS set; generated a bearer token for this run.");
    println!("token: {}", token.expose());
    println!(
        "try:   curl -s {scheme}://{bind}/mcp -H 'Authorization: Bearer {}' -H 'Content-Type: application/json' \
         -H 'Accept: application/json, text/event-stream' \
         -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":{{\"protocolVersion\":\"2025-06-18\",\
         \"capabilities\":{{}},\"clientInfo\":{{\"name\":\"curl\",\"version\":\"1\"}}}}}}'",
        token.expose()
    );
}
