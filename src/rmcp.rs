//! rmcp integration (feature `rmcp`): read the caller's [`AuthContext`] in tool handlers.
//!
//! rmcp's `StreamableHttpService` copies the HTTP request head (`http::request::Parts`,
//! extensions included) into every request's context, so the context an auth layer inserted
//! is there. Take [`Auth`] (or [`OptionalAuth`]) as a tool argument, or call
//! [`auth_context`] on a `RequestContext`.
//!
//! A tool reached without an auth layer in front is a wiring bug: [`Auth`] then fails the
//! call with an internal error that says so, never a silent pass.
//!
//! # Example
//!
//! ```
//! use mcp_auth::rmcp::Auth;
//! use rmcp::{ErrorData, model::CallToolResult, model::ContentBlock};
//!
//! // Inside a `#[tool_router] impl`:
//! // #[tool(description = "Who am I?")]
//! async fn whoami(Auth(ctx): Auth) -> Result<CallToolResult, ErrorData> {
//!     Ok(CallToolResult::success(vec![ContentBlock::text(ctx.subject().to_owned())]))
//! }
//!
//! // A context carrying the request head, as rmcp builds it behind an auth layer:
//! use mcp_auth::{AuthContext, AuthMethod};
//! let mut head = http::Request::new(()).into_parts().0;
//! head.extensions.insert(AuthContext::builder("alice", AuthMethod::ApiKey).build());
//! let mut ext = rmcp::model::Extensions::new();
//! ext.insert(head);
//! assert_eq!(mcp_auth::rmcp::from_extensions(&ext).unwrap().subject(), "alice");
//! ```

use http::request::Parts;
use rmcp::ErrorData;
use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::model::Extensions;
use rmcp::service::{RequestContext, RoleServer};

use crate::context::{Anonymous, AuthContext};

const MISSING: &str =
    "no AuthContext for this request: is an mcp-auth layer in front of the MCP service?";

/// The caller's context, read from the MCP request extensions.
#[must_use]
pub fn from_extensions(extensions: &Extensions) -> Option<&AuthContext> {
    extensions.get::<Parts>()?.extensions.get::<AuthContext>()
}

/// The caller's context of an rmcp request.
#[must_use]
pub fn auth_context(ctx: &RequestContext<RoleServer>) -> Option<&AuthContext> {
    from_extensions(&ctx.extensions)
}

/// Tool-handler extractor: the caller's [`AuthContext`].
#[derive(Debug, Clone)]
pub struct Auth(pub AuthContext);

impl<C: AsRequestContext> FromContextPart<C> for Auth {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        auth_context(context.as_request_context())
            .cloned()
            .map(Auth)
            .ok_or_else(|| {
                tracing::error!(target: crate::service::REJECTION_TARGET, "{MISSING}");
                ErrorData::internal_error(MISSING, None)
            })
    }
}

/// Tool-handler extractor behind an optional layer: `None` for an anonymous caller.
#[derive(Debug, Clone)]
pub struct OptionalAuth(pub Option<AuthContext>);

impl<C: AsRequestContext> FromContextPart<C> for OptionalAuth {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        let ctx = context.as_request_context();
        let parts = ctx.extensions.get::<Parts>();
        match parts.and_then(|p| p.extensions.get::<AuthContext>()) {
            Some(c) => Ok(OptionalAuth(Some(c.clone()))),
            None if parts.is_some_and(|p| p.extensions.get::<Anonymous>().is_some()) => {
                Ok(OptionalAuth(None))
            }
            None => Err(ErrorData::internal_error(MISSING, None)),
        }
    }
}

/// Checks inside a tool handler that the caller holds `scope`; the error is an rmcp
/// `invalid_request` naming the scope (tool-level checks that depend on arguments).
///
/// # Errors
///
/// When the scope is missing.
pub fn require_scope(ctx: &AuthContext, scope: &str) -> Result<(), ErrorData> {
    if ctx.has_scope(scope) {
        Ok(())
    } else {
        Err(ErrorData::invalid_request(
            format!("insufficient scope: this operation needs `{scope}`"),
            Some(serde_json::json!({ "error": "insufficient_scope", "scope": scope })),
        ))
    }
}
