//! A scheme of your own: implement `Authenticator` for `Authorization: Device <id>.<secret>`,
//! checked against a table of devices, and serve it through `AuthLayer` like any built-in one.
//!
//! ```text
//! cargo run --example custom_authenticator --features axum,rmcp     # PORT=8080 by default
//! ```
//!
//! It prints the `Authorization` headers of two devices (random secrets, for this run only):
//! `kiosk` (enabled) and `old-kiosk` (disabled). Then:
//!
//! | request | answer |
//! |---|---|
//! | `Authorization: Device kiosk.<its secret>` | 200, `whoami` names the device |
//! | no `Authorization`, or another scheme | 401 `WWW-Authenticate: Device` |
//! | `Device kiosk.<wrong secret>`, an unknown device | 401 `error="invalid_token"` |
//! | `Device old-kiosk.<its secret>` | 401 `error="invalid_token"`, "device disabled" |
//! | `Device kiosk` (no secret), two `Authorization` headers | 400 `error="invalid_request"` |
//!
//! ```text
//! curl -i http://127.0.0.1:8080/mcp -H 'Authorization: Device kiosk.<secret>' \
//!   -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
//!   -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
//! ```

use std::collections::HashMap;

use http::header::AUTHORIZATION;
use http::request::Parts;
use mcp_auth::Scheme;
use mcp_auth::authenticators::bearer::generate_token;
use mcp_auth::authenticators::header::single_header;
use mcp_auth::integrations::rmcp::Auth;
use mcp_auth::{AuthContext, AuthError, AuthLayer, AuthMethod, Authenticator};
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler, tool, tool_handler, tool_router};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// One row of the table: the SHA-256 digest of the device's secret (a leaked table reveals no
/// secret), its scopes, and whether it is enabled.
struct Device([u8; 32], &'static str, bool);

struct Devices(HashMap<String, Device>);

impl Authenticator for Devices {
    // Plain `async fn`: a table in a database works the same, returning
    // `AuthError::unavailable(e)` while it is down (503, not 401). A check that never waits,
    // like this one, may also implement `authenticate_now`, sparing the layer a boxed future.
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        // `single_header` refuses a repeated header (400): two values, two possible readings.
        let value = single_header(parts, &AUTHORIZATION)?;
        // Not our scheme: "missing credentials". It gives a plain 401 challenge, and lets a
        // chain (`devices.or(api_keys)`) ask the next authenticator.
        let Some(rest) = value.and_then(|v| v.to_str().ok()?.strip_prefix("Device ")) else {
            return Err(AuthError::missing_credentials());
        };
        // Ours but malformed: 400. Descriptions reach the client: never echo the credential.
        let Some((id, secret)) = rest.split_once('.') else {
            return Err(AuthError::invalid_request("expected Device <id>.<secret>"));
        };
        // Compare digests in constant time, and do the same work for unknown ids.
        let digest: [u8; 32] = Sha256::digest(secret).into();
        let device = self.0.get(id);
        let expected = device.map_or([0; 32], |d| d.0);
        let secret_ok = bool::from(digest.ct_eq(&expected));
        match device {
            // What every layer and tool downstream sees; the secret is not in it.
            Some(Device(_, scopes, true)) if secret_ok => {
                let method = AuthMethod::Custom("device".into());
                let ctx = AuthContext::builder(id, method).scopes(scopes.split(' '));
                Ok(ctx.credential_id(id).build())
            }
            // Told only to whoever proved the secret: a guesser learns nothing about a device.
            Some(_) if secret_ok => Err(AuthError::revoked("device disabled")),
            _ => Err(AuthError::invalid_token("unknown device or wrong secret")),
        }
    }

    // The scheme 401 responses offer in `WWW-Authenticate` ("Device" is a valid name).
    fn schemes(&self) -> Vec<Scheme> {
        Scheme::custom("Device").into_iter().collect()
    }
}

/// A one-tool MCP server (`#[tool_handler]` finds the tools with `Self::tool_router()`).
#[derive(Clone)]
struct WhoAmI;

#[tool_router]
impl WhoAmI {
    #[tool(description = "Show the calling device, its auth method and scopes")]
    async fn whoami(&self, Auth(ctx): Auth) -> Result<CallToolResult, ErrorData> {
        let scopes = ctx.scopes().to_space_separated();
        let text = format!("{} via {} [{scopes}]", ctx.subject(), ctx.method());
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
    let mut devices = Devices(HashMap::new());
    for (id, enabled) in [("kiosk", true), ("old-kiosk", false)] {
        let secret = generate_token("dev_")?;
        println!("Authorization: Device {id}.{}", secret.expose());
        let digest = Sha256::digest(secret.expose()).into();
        devices
            .0
            .insert(id.into(), Device(digest, "data:read", enabled));
    }

    let mcp = StreamableHttpService::new(
        || Ok(WhoAmI),
        LocalSessionManager::default().into(),
        // Stateless with JSON answers: each curl request stands alone.
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true),
    );
    // `AuthLayer` turns every `AuthError` into the right status and `WWW-Authenticate`.
    let auth = AuthLayer::new(devices);
    let app = axum::Router::new().nest_service("/mcp", mcp).layer(auth);

    // Loopback only; PORT picks the port (default 8080).
    let port: u16 = std::env::var("PORT").map_or(Ok(8080), |p| p.parse())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("MCP server on http://{}/mcp", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
