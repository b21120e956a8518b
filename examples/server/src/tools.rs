//! The MCP server itself: four tools over an in-memory key-value map, written with rmcp's
//! tool macros. Authentication is already done when a call arrives: a tool reads the caller
//! with mcp-auth's [`Auth`] extractor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mcp_auth::integrations::rmcp::{Auth, outbound_caller, require};
use mcp_auth::outbound::OutboundClient;
use mcp_auth::scope::{Requirement, ScopePolicy};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};

/// Arguments of `read_data` and `delete_data`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct KeyArgs {
    /// The key to read or delete.
    pub key: String,
}

/// Arguments of `write_data`.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct WriteArgs {
    /// The key to write.
    pub key: String,
    /// The value to store.
    pub value: String,
}

/// The MCP server: `whoami`, `read_data`, `write_data` and `delete_data` over a map shared by
/// every session. Scopes are checked before a call arrives here (by `ScopeLayer` and
/// `ScopedServer`, from the same policy); `write_data` adds one check that depends on its
/// arguments.
#[derive(Clone)]
pub struct DataServer {
    data: Arc<Mutex<HashMap<String, String>>>,
    policy: Arc<ScopePolicy>,
    upstream: Option<Upstream>,
    tool_router: ToolRouter<Self>,
}

/// The upstream API `call_upstream` calls, and the client that adds its credential.
#[derive(Clone, Debug)]
pub struct Upstream {
    /// Adds the upstream's credential (by token exchange for the caller, when so
    /// configured); never forwards the caller's own token.
    pub client: OutboundClient,
    /// `MCP_UPSTREAM_API_URL`.
    pub url: String,
}

impl std::fmt::Debug for DataServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataServer").finish_non_exhaustive()
    }
}

fn text(s: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![ContentBlock::text(s.into())])
}

fn lock_failed() -> ErrorData {
    ErrorData::internal_error("data store unavailable", None)
}

#[tool_router]
impl DataServer {
    /// A server over `data`; `policy` is the one the layers enforce, used for the
    /// argument-dependent check in `write_data`.
    pub fn new(data: Arc<Mutex<HashMap<String, String>>>, policy: Arc<ScopePolicy>) -> Self {
        let mut tool_router = Self::tool_router();
        // Only offered when an upstream API is configured (`with_upstream`).
        tool_router.remove_route("call_upstream");
        Self {
            data,
            policy,
            upstream: None,
            tool_router,
        }
    }

    /// Offers `call_upstream`, calling `upstream`.
    #[must_use]
    pub fn with_upstream(mut self, upstream: Upstream) -> Self {
        self.upstream = Some(upstream);
        self.tool_router = Self::tool_router();
        self
    }

    /// Calls the upstream API (`MCP_UPSTREAM_API_URL`) for the caller: its credential comes
    /// from the configured source (RFC 8693 token exchange of the caller's token, with
    /// `MCP_OUTBOUND_MODE=exchange`), never the caller's own token. Returns the upstream's
    /// answer (the test upstream echoes the `sub`, `aud` and `act` it saw).
    #[tool(description = "Call the upstream API on behalf of the caller and show its answer")]
    async fn call_upstream(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let Some(up) = &self.upstream else {
            return Ok(CallToolResult::error(vec![ContentBlock::text(
                "no upstream API is configured",
            )]));
        };
        let caller = outbound_caller(&context);
        match up.client.send(up.client.get(&up.url), &caller).await {
            Ok(res) => {
                let status = res.status();
                let body = res.text().await.unwrap_or_default();
                if status.is_success() {
                    Ok(text(body))
                } else {
                    Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                        "the upstream API answered {status}"
                    ))]))
                }
            }
            // The error names what failed (never a token).
            Err(e) => Ok(CallToolResult::error(vec![ContentBlock::text(format!(
                "the upstream API could not be called: {e}"
            ))])),
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
            "issuer": ctx.issuer(),
            "tenant": ctx.tenant(),
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

    /// Keys under `admin/` also need `data:admin`: a check that depends on the arguments, so
    /// it is made here rather than by the scope layer.
    #[tool(description = "Store a value under a key (keys under admin/ need data:admin)")]
    async fn write_data(
        &self,
        Auth(ctx): Auth,
        Parameters(WriteArgs { key, value }): Parameters<WriteArgs>,
    ) -> Result<CallToolResult, ErrorData> {
        if key.starts_with("admin/") {
            require(&self.policy, &ctx, &Requirement::all(["data:admin"]))?;
        }
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
