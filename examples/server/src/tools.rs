//! The MCP server itself: four tools over an in-memory key-value map, written with rmcp's
//! tool macros. Authentication is already done when a call arrives: a tool reads the caller
//! with mcp-auth's [`Auth`] extractor.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mcp_auth::integrations::rmcp::{Auth, require};
use mcp_auth::scope::{Requirement, ScopePolicy};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::{ErrorData, ServerHandler, schemars, tool, tool_handler, tool_router};

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
    tool_router: ToolRouter<Self>,
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
        Self {
            data,
            policy,
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
