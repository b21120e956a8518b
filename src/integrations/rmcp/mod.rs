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
//! use mcp_auth::integrations::rmcp::Auth;
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
//! assert_eq!(mcp_auth::integrations::rmcp::from_extensions(&ext).unwrap().subject(), "alice");
//! ```
//!
//! Inside this module: the extractors and the checks for tool handlers here, and
//! `scoped_server.rs` ([`ScopedServer`], the policy applied to every MCP request).

use http::request::Parts;
use rmcp::ErrorData;
use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
use rmcp::model::Extensions;
use rmcp::service::{RequestContext, RoleServer};

use crate::context::{Anonymous, AuthContext};
use crate::error::AuthError;
use crate::rejection::join_scopes;
use crate::scope::{Requirement, ScopePolicy};

mod scoped_server;

pub use self::scoped_server::ScopedServer;

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

/// The caller's inbound token of an rmcp request, when
/// [`KeepInboundTokenLayer`](crate::outbound::KeepInboundTokenLayer) kept it (feature
/// `outbound`): for token exchange only, never to be sent upstream.
#[cfg(feature = "outbound")]
#[must_use]
pub fn inbound_token(ctx: &RequestContext<RoleServer>) -> Option<&crate::outbound::InboundToken> {
    ctx.extensions
        .get::<Parts>()?
        .extensions
        .get::<crate::outbound::InboundToken>()
}

/// The [`Caller`](crate::outbound::Caller) of an rmcp request (its [`AuthContext`] and kept
/// inbound token), to pass to an outbound client (feature `outbound`);
/// [`Caller::service`](crate::outbound::Caller::service) without an auth layer in front.
#[cfg(feature = "outbound")]
#[must_use]
pub fn outbound_caller(ctx: &RequestContext<RoleServer>) -> crate::outbound::Caller {
    ctx.extensions
        .get::<Parts>()
        .map_or_else(crate::outbound::Caller::service, |p| {
            crate::outbound::Caller::from_extensions(&p.extensions)
        })
}

/// Tool-handler extractor: the caller's [`AuthContext`].
#[derive(Debug, Clone)]
pub struct Auth(pub AuthContext);

impl<C: AsRequestContext> FromContextPart<C> for Auth {
    fn from_context_part(context: &mut C) -> Result<Self, ErrorData> {
        caller(context.as_request_context()).map(Auth)
    }
}

/// The caller's context, or the internal error (logged) for a missing auth layer.
fn caller(context: &RequestContext<RoleServer>) -> Result<AuthContext, ErrorData> {
    auth_context(context).cloned().ok_or_else(|| {
        log_missing_layer();
        ErrorData::internal_error(MISSING, None)
    })
}

/// Logs a request that reached rmcp without an auth layer in front (a wiring bug).
fn log_missing_layer() {
    tracing::error!(target: crate::telemetry::REJECTION_TARGET, "{MISSING}");
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

/// The rmcp error for a refused check: `invalid_request` (-32600) whose message and `data`
/// name the missing scopes (`{"error": "insufficient_scope", "scope": "a b"}`), or, for a
/// step-up refusal, what to authenticate with
/// (`{"error": "insufficient_user_authentication", "acr_values": "…", "max_age": 300}`).
#[must_use]
pub fn insufficient_scope_error(err: &AuthError) -> ErrorData {
    if err.kind() == crate::AuthErrorKind::InsufficientUserAuthentication {
        let mut data = serde_json::Map::new();
        data.insert("error".into(), "insufficient_user_authentication".into());
        if !err.acr_values().is_empty() {
            data.insert(
                "acr_values".into(),
                join_scopes(err.acr_values().iter()).into(),
            );
        }
        if let Some(max_age) = err.max_age() {
            data.insert("max_age".into(), max_age.into());
        }
        return ErrorData::invalid_request(
            "insufficient user authentication: authenticate again as the challenge asks",
            Some(serde_json::Value::Object(data)),
        );
    }
    let scope = join_scopes(err.required_scopes().iter());
    ErrorData::invalid_request(
        format!("insufficient scope: this operation needs `{scope}`"),
        Some(serde_json::json!({ "error": "insufficient_scope", "scope": scope })),
    )
}

/// Checks inside a tool handler that the caller holds `scope` exactly (no implication, no
/// roles: use [`require`] for those).
///
/// # Errors
///
/// [`insufficient_scope_error`] when the scope is missing.
pub fn require_scope(ctx: &AuthContext, scope: &str) -> Result<(), ErrorData> {
    if ctx.has_scope(scope) {
        Ok(())
    } else {
        Err(insufficient_scope_error(&AuthError::insufficient_scope([
            scope,
        ])))
    }
}

/// Checks a [`Requirement`] inside a tool handler with `policy`'s scope implication and role
/// hierarchy, for decisions that depend on the tool's arguments.
///
/// ```
/// use mcp_auth::integrations::rmcp::require;
/// use mcp_auth::scope::{ImpliedScopes, Requirement, RoleHierarchy, ScopePolicy, Unlisted};
/// use mcp_auth::{AuthContext, AuthMethod};
///
/// let policy = ScopePolicy::new(Unlisted::Deny)
///     .implication(ImpliedScopes::new().pair("data:admin", "data:write"))
///     .roles(RoleHierarchy::new().include("admin", "editor"));
/// let ctx = AuthContext::builder("ann", AuthMethod::Jwt).scopes(["data:admin"]).roles(["admin"]).build();
/// // e.g. writing under `/shared/` needs data:write and the editor role:
/// assert!(require(&policy, &ctx, &Requirement::all(["data:write"]).and_role("editor")).is_ok());
/// let err = require(&policy, &ctx, &Requirement::all(["billing:write"])).unwrap_err();
/// assert_eq!(err.data.unwrap()["scope"], "billing:write");
/// ```
///
/// # Errors
///
/// [`insufficient_scope_error`] when the requirement is not met.
pub fn require(
    policy: &ScopePolicy,
    ctx: &AuthContext,
    requirement: &Requirement,
) -> Result<(), ErrorData> {
    policy
        .require(ctx, requirement)
        .map_err(|e| insufficient_scope_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_up_refusal_tells_the_client_how_to_authenticate_and_a_scope_refusal_what_to_hold() {
        let err = insufficient_scope_error(&AuthError::insufficient_user_authentication(
            ["urn:mfa", "urn:hwk"],
            Some(300),
        ));
        assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_REQUEST);
        assert_eq!(
            err.data,
            Some(serde_json::json!({
                "error": "insufficient_user_authentication",
                "acr_values": "urn:mfa urn:hwk",
                "max_age": 300
            }))
        );
        // Only what the rule asks for is named.
        let err = insufficient_scope_error(&AuthError::insufficient_user_authentication(
            ["urn:mfa"],
            None,
        ));
        assert_eq!(
            err.data,
            Some(
                serde_json::json!({"error": "insufficient_user_authentication", "acr_values": "urn:mfa"})
            )
        );
        let err =
            insufficient_scope_error(&AuthError::insufficient_scope(["data:write", "data:admin"]));
        assert_eq!(err.code, rmcp::model::ErrorCode::INVALID_REQUEST);
        assert_eq!(
            err.data,
            Some(
                serde_json::json!({"error": "insufficient_scope", "scope": "data:write data:admin"})
            )
        );
    }
}
