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

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use http::request::Parts;
use rmcp::ErrorData;
use rmcp::ServerHandler;
use rmcp::handler::server::common::{AsRequestContext, FromContextPart};
#[allow(deprecated)]
use rmcp::model::*;
use rmcp::service::{
    MaybeSendFuture, NotificationContext, RequestContext, RoleServer, SubscriptionContext,
};

use crate::context::{Anonymous, AuthContext};
use crate::error::AuthError;
use crate::scope::{Operation, Requirement, ScopePolicy};

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

/// The rmcp error for a refused check: `invalid_request` (-32600) whose message and `data`
/// name the missing scopes (`{"error": "insufficient_scope", "scope": "a b"}`).
#[must_use]
pub fn insufficient_scope_error(err: &AuthError) -> ErrorData {
    let scope = err.required_scopes().join(" ");
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
/// use mcp_auth::rmcp::require;
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

/// An rmcp service wrapper that applies a [`ScopePolicy`] at the MCP level: `tools/list`,
/// `prompts/list` and `resources/list` show each caller only what the policy lets it use,
/// and `tools/call`, `prompts/get`, `resources/read` and `resources/subscribe` are checked
/// again (a refusal here is [`insufficient_scope_error`]).
///
/// Use it with [`ScopeLayer`](crate::scope::ScopeLayer) and the same policy: the layer answers
/// refusals with HTTP 403 challenges that clients act on; this wrapper hides what a caller
/// cannot use and is the backstop should the layer be left out of a route. A request
/// without an [`AuthContext`] (no auth layer in front) fails with an internal error.
///
/// ```
/// use std::sync::Arc;
/// use mcp_auth::rmcp::ScopedServer;
/// use mcp_auth::scope::{Requirement, ScopePolicy, Unlisted};
/// use rmcp::ServerHandler;
///
/// #[derive(Clone)]
/// struct MyServer;
/// impl ServerHandler for MyServer {}
///
/// let policy = Arc::new(
///     ScopePolicy::new(Unlisted::Deny)
///         .unlisted_methods(Unlisted::Allow)
///         .tool("read_data", Requirement::all(["data:read"])),
/// );
/// // In `StreamableHttpService::new(move || Ok(ScopedServer::new(MyServer, policy.clone())), ..)`:
/// let server = ScopedServer::new(MyServer, policy.clone());
/// assert!(Arc::ptr_eq(server.policy(), &policy));
/// ```
#[derive(Clone)]
pub struct ScopedServer<S> {
    inner: S,
    policy: Arc<ScopePolicy>,
}

impl<S> fmt::Debug for ScopedServer<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopedServer")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<S> ScopedServer<S> {
    /// Wraps `inner` with `policy`.
    pub fn new(inner: S, policy: impl Into<Arc<ScopePolicy>>) -> Self {
        Self {
            inner,
            policy: policy.into(),
        }
    }

    /// The wrapped service.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The policy applied.
    pub fn policy(&self) -> &Arc<ScopePolicy> {
        &self.policy
    }
}

fn tool_call(name: &str) -> Operation {
    Operation::new("tools/call", Some(name.to_owned()), None)
}

/// The caller's context, or the internal error for a missing auth layer.
fn caller(context: &RequestContext<RoleServer>) -> Result<AuthContext, ErrorData> {
    auth_context(context).cloned().ok_or_else(|| {
        tracing::error!(target: crate::service::REJECTION_TARGET, "{MISSING}");
        ErrorData::internal_error(MISSING, None)
    })
}

impl<H> ScopedServer<H> {
    fn check(&self, context: &RequestContext<RoleServer>, op: Operation) -> Result<(), ErrorData> {
        let ctx = caller(context)?;
        self.policy
            .check(&ctx, std::slice::from_ref(&op))
            .map_err(|e| {
                tracing::debug!(
                    target: crate::service::REJECTION_TARGET,
                    method = op.method(),
                    principal = ctx.principal(),
                    "MCP request refused by the scope policy"
                );
                insufficient_scope_error(&e)
            })
    }
}

// Every method forwards to the wrapped handler; the listing and targeted methods apply the
// policy first. The list follows rmcp's own wrapper impls for `Box` and `Arc`.
#[allow(deprecated)]
impl<H: ServerHandler> ServerHandler for ScopedServer<H> {
    fn ping(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.ping(context)
    }

    fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<InitializeResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.initialize(request, context)
    }

    fn negotiate_initialize(
        &self,
        request: &InitializeRequestParams,
    ) -> Result<InitializeResult, ErrorData> {
        self.inner.negotiate_initialize(request)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }

    fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.discover(context)
    }

    fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CompleteResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.complete(request, context)
    }

    fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.set_level(request, context)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.check(
            &context,
            Operation::new("prompts/get", Some(request.name.clone()), None),
        )?;
        self.inner.get_prompt(request, context).await
    }

    async fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let caller = caller(&context)?;
        let mut result = self.inner.list_prompts(request, context).await?;
        result.prompts.retain(|p| {
            self.policy.permits(
                &caller,
                &Operation::new("prompts/get", Some(p.name.clone()), None),
            )
        });
        Ok(result)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let caller = caller(&context)?;
        let mut result = self.inner.list_resources(request, context).await?;
        result.resources.retain(|r| {
            self.policy.permits(
                &caller,
                &Operation::new("resources/read", None, Some(r.uri.clone())),
            )
        });
        Ok(result)
    }

    fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourceTemplatesResult, ErrorData>> + MaybeSendFuture + '_
    {
        self.inner.list_resource_templates(request, context)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.check(
            &context,
            Operation::new("resources/read", None, Some(request.uri.clone())),
        )?;
        self.inner.read_resource(request, context).await
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }

    fn listen(
        &self,
        context: SubscriptionContext,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.listen(context)
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.check(
            &context,
            Operation::new("resources/subscribe", None, Some(request.uri.clone())),
        )?;
        self.inner.subscribe(request, context).await
    }

    fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.unsubscribe(request, context)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.check(&context, tool_call(&request.name))?;
        self.inner.call_tool(request, context).await
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = caller(&context)?;
        let mut result = self.inner.list_tools(request, context).await?;
        result
            .tools
            .retain(|t| self.policy.permits(&caller, &tool_call(&t.name)));
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.get_tool(name)
    }

    fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CustomResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.on_custom_request(request, context)
    }

    fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_cancelled(notification, context)
    }

    fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_progress(notification, context)
    }

    fn on_initialized(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_initialized(context)
    }

    fn on_roots_list_changed(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_roots_list_changed(context)
    }

    fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_custom_notification(notification, context)
    }

    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetTaskResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.get_task(request, context)
    }

    fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.update_task(request, context)
    }

    fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), ErrorData>> + MaybeSendFuture + '_ {
        self.inner.cancel_task(request, context)
    }

    fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListSkillsResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.list_skills(request, context)
    }

    fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetSkillResult, ErrorData>> + MaybeSendFuture + '_ {
        self.inner.get_skill(request, context)
    }

    fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceDirectoryResult, ErrorData>> + MaybeSendFuture + '_
    {
        self.inner.read_resource_directory(request, context)
    }
}
