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
                tracing::error!(target: crate::telemetry::REJECTION_TARGET, "{MISSING}");
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

/// An rmcp service wrapper that applies a [`ScopePolicy`] at the MCP level, to every request
/// rmcp 3.9 dispatches: the backstop should [`ScopeLayer`](crate::scope::ScopeLayer) be left
/// out of a route, and the place where listings are filtered per caller.
///
/// **Checked** (a refusal is [`insufficient_scope_error`]; the wrapped handler is not called):
///
/// - every request, with the same operation `ScopeLayer` sees for it: the method rule (or
///   the unlisted-method default) and the every-request rule, for `initialize`, `discover`,
///   `ping`, `logging/setLevel`, the listings, `tasks/*` and custom methods alike (a custom
///   method whose `params` carry `name` or `uri` needs a [`method`](ScopePolicy::method)
///   rule, see [`ScopePolicy`]);
/// - the target's rule: `tools/call` (tool), `prompts/get` (prompt), `completion/complete`
///   (its `ref/prompt` prompt or its `ref/resource` URI), `resources/read`,
///   `resources/subscribe`, `resources/unsubscribe`, `resources/directory/read` and
///   `skills/get` (resource URI), and `subscriptions/listen` (every URI of
///   `resourceSubscriptions`).
///
/// **Filtered** to what the caller may use: `tools/list` (by `tools/call`), `prompts/list`
/// (by `prompts/get`), `resources/list` and the children `resources/directory/read`
/// returns (by `resources/read` of each URI), `resources/templates/list` (by `resources/read`
/// of the template's text: cover templates with prefix rules, e.g. `file:///{path}` by
/// `file:///`), and `skills/list` (by `skills/get` of each `SKILL.md` URI).
///
/// **Not covered:** notifications cannot be refused, so the standard ones are forwarded and a
/// custom notification the policy refuses is dropped; `tasks/get`, `tasks/update` and
/// `tasks/cancel` are checked by method only (binding a task to the caller that created it is
/// the handler's job); what a completion *returns* is the handler's.
///
/// rmcp sends the `subscriptions/listen` acknowledgment before this wrapper sees the
/// caller ([`accepted_subscription_filter`](ServerHandler::accepted_subscription_filter) has
/// no request context), so a refused subscription is acknowledged, then ends at once with the
/// error and no notification; with `ScopeLayer` in front it is refused with 403 before that.
///
/// Use it with `ScopeLayer` and the same policy: the layer answers refusals with HTTP 403
/// challenges that clients act on. A request without an [`AuthContext`] (no auth layer in
/// front) fails with an internal error.
///
/// ```
/// use std::sync::Arc;
/// use mcp_auth::integrations::rmcp::ScopedServer;
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

fn resource_op(method: &str, uri: &str) -> Operation {
    Operation::new(method, None, Some(uri.to_owned()))
}

fn method_op(method: &str) -> Operation {
    Operation::new(method, None, None)
}

/// The operation of a custom request or notification: its method, and the `name` / `uri` of
/// its `params` as [`parse_operations`](crate::scope::parse_operations) reads them. A
/// non-string `name` or `uri` still counts as naming something (empty), so the policy's
/// rule for methods that name a target applies.
fn custom_op(method: &str, params: Option<&serde_json::Value>) -> Operation {
    let field = |key: &str| {
        params
            .and_then(|p| p.get(key))
            .map(|v| v.as_str().unwrap_or_default().to_owned())
    };
    Operation::new(method, field("name"), field("uri"))
}

/// The operation of `completion/complete`: the prompt name or the resource template URI.
fn completion_op(reference: &Reference) -> Operation {
    Operation::new(
        "completion/complete",
        reference.as_prompt_name().map(str::to_owned),
        reference.as_resource_uri().map(str::to_owned),
    )
}

/// The operations of `subscriptions/listen`: one per subscribed resource URI, or the bare
/// method when there is none.
fn listen_ops(filter: &SubscriptionFilter) -> Vec<Operation> {
    match filter.resource_subscriptions.as_deref() {
        Some(uris) if !uris.is_empty() => uris
            .iter()
            .map(|u| resource_op("subscriptions/listen", u))
            .collect(),
        _ => vec![method_op("subscriptions/listen")],
    }
}

/// The caller's context, or the internal error for a missing auth layer.
fn caller(context: &RequestContext<RoleServer>) -> Result<AuthContext, ErrorData> {
    auth_context(context).cloned().ok_or_else(|| {
        tracing::error!(target: crate::telemetry::REJECTION_TARGET, "{MISSING}");
        ErrorData::internal_error(MISSING, None)
    })
}

impl<H> ScopedServer<H> {
    /// Checks `ops` (one request) for the caller of `context`; returns the caller.
    fn check_all(
        &self,
        context: &RequestContext<RoleServer>,
        ops: &[Operation],
    ) -> Result<AuthContext, ErrorData> {
        let ctx = caller(context)?;
        self.policy.check(&ctx, ops).map_err(|e| {
            tracing::debug!(
                target: crate::telemetry::REJECTION_TARGET,
                method = ops.first().map(Operation::method),
                principal = ctx.principal(),
                "MCP request refused by the scope policy"
            );
            insufficient_scope_error(&e)
        })?;
        Ok(ctx)
    }

    fn check(
        &self,
        context: &RequestContext<RoleServer>,
        op: Operation,
    ) -> Result<AuthContext, ErrorData> {
        self.check_all(context, std::slice::from_ref(&op))
    }

    fn check_method(
        &self,
        context: &RequestContext<RoleServer>,
        method: &str,
    ) -> Result<AuthContext, ErrorData> {
        self.check(context, method_op(method))
    }
}

// Every `ServerHandler` method of rmcp 3.9 is written out (none falls back to a default that
// would bypass the wrapped handler or the policy): requests are checked, listings filtered,
// notifications forwarded. The list follows rmcp's own wrapper impls for `Box` and `Arc`.
#[allow(deprecated)]
impl<H: ServerHandler> ServerHandler for ScopedServer<H> {
    async fn ping(&self, context: RequestContext<RoleServer>) -> Result<(), ErrorData> {
        self.check_method(&context, "ping")?;
        self.inner.ping(context).await
    }

    async fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<InitializeResult, ErrorData> {
        self.check_method(&context, "initialize")?;
        self.inner.initialize(request, context).await
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

    async fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> Result<DiscoverResult, ErrorData> {
        self.check_method(&context, "server/discover")?;
        self.inner.discover(context).await
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.check(&context, completion_op(&request.r#ref))?;
        self.inner.complete(request, context).await
    }

    async fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.check_method(&context, "logging/setLevel")?;
        self.inner.set_level(request, context).await
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
        let caller = self.check_method(&context, "prompts/list")?;
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
        let caller = self.check_method(&context, "resources/list")?;
        let mut result = self.inner.list_resources(request, context).await?;
        result.resources.retain(|r| {
            self.policy
                .permits(&caller, &resource_op("resources/read", &r.uri))
        });
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let caller = self.check_method(&context, "resources/templates/list")?;
        let mut result = self.inner.list_resource_templates(request, context).await?;
        result.resource_templates.retain(|t| {
            self.policy
                .permits(&caller, &resource_op("resources/read", &t.uri_template))
        });
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.check(&context, resource_op("resources/read", &request.uri))?;
        self.inner.read_resource(request, context).await
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        // No request context here: the caller is checked in `listen`.
        self.inner.accepted_subscription_filter(requested)
    }

    async fn listen(&self, context: SubscriptionContext) -> Result<(), ErrorData> {
        // Every URI the client asked for, not only those accepted: the same operations
        // `ScopeLayer` checks.
        self.check_all(context.request_context(), &listen_ops(context.requested()))?;
        self.inner.listen(context).await
    }

    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.check(&context, resource_op("resources/subscribe", &request.uri))?;
        self.inner.subscribe(request, context).await
    }

    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.check(&context, resource_op("resources/unsubscribe", &request.uri))?;
        self.inner.unsubscribe(request, context).await
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
        let caller = self.check_method(&context, "tools/list")?;
        let mut result = self.inner.list_tools(request, context).await?;
        result
            .tools
            .retain(|t| self.policy.permits(&caller, &tool_call(&t.name)));
        Ok(result)
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.get_tool(name)
    }

    async fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        self.check(
            &context,
            custom_op(&request.method, request.params.as_ref()),
        )?;
        self.inner.on_custom_request(request, context).await
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

    async fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) {
        // A notification cannot be answered with an error: one the policy refuses (or that
        // arrives without an auth layer in front) is dropped.
        let op = custom_op(&notification.method, notification.params.as_ref());
        let allowed = match from_extensions(&context.extensions) {
            Some(ctx) => self.policy.check(ctx, std::slice::from_ref(&op)).is_ok(),
            None => {
                tracing::error!(target: crate::telemetry::REJECTION_TARGET, "{MISSING}");
                false
            }
        };
        if allowed {
            self.inner
                .on_custom_notification(notification, context)
                .await;
        } else {
            tracing::debug!(
                target: crate::telemetry::REJECTION_TARGET,
                method = op.method(),
                "MCP notification dropped by the scope policy"
            );
        }
    }

    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }

    async fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetTaskResult, ErrorData> {
        self.check_method(&context, "tasks/get")?;
        self.inner.get_task(request, context).await
    }

    async fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.check_method(&context, "tasks/update")?;
        self.inner.update_task(request, context).await
    }

    async fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.check_method(&context, "tasks/cancel")?;
        self.inner.cancel_task(request, context).await
    }

    async fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListSkillsResult, ErrorData> {
        let caller = self.check_method(&context, "skills/list")?;
        let mut result = self.inner.list_skills(request, context).await?;
        result.skills.retain(|s| {
            self.policy
                .permits(&caller, &resource_op("skills/get", &s.uri))
        });
        Ok(result)
    }

    async fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetSkillResult, ErrorData> {
        self.check(&context, resource_op("skills/get", &request.uri))?;
        self.inner.get_skill(request, context).await
    }

    async fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceDirectoryResult, ErrorData> {
        let caller = self.check(
            &context,
            resource_op("resources/directory/read", &request.uri),
        )?;
        let mut result = self.inner.read_resource_directory(request, context).await?;
        result.resources.retain(|r| {
            self.policy
                .permits(&caller, &resource_op("resources/read", &r.uri))
        });
        Ok(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The method names the checks use are rmcp's own (a rename in rmcp would otherwise
    /// silently move a method to the unlisted default).
    #[test]
    fn method_names_match_rmcp() {
        let names = [
            (PingRequestMethod::VALUE, "ping"),
            (InitializeResultMethod::VALUE, "initialize"),
            (DiscoverRequestMethod::VALUE, "server/discover"),
            (CompleteRequestMethod::VALUE, "completion/complete"),
            (SetLevelRequestMethod::VALUE, "logging/setLevel"),
            (GetPromptRequestMethod::VALUE, "prompts/get"),
            (ListPromptsRequestMethod::VALUE, "prompts/list"),
            (ListResourcesRequestMethod::VALUE, "resources/list"),
            (
                ListResourceTemplatesRequestMethod::VALUE,
                "resources/templates/list",
            ),
            (ReadResourceRequestMethod::VALUE, "resources/read"),
            (
                SubscriptionsListenRequestMethod::VALUE,
                "subscriptions/listen",
            ),
            (SubscribeRequestMethod::VALUE, "resources/subscribe"),
            (UnsubscribeRequestMethod::VALUE, "resources/unsubscribe"),
            (CallToolRequestMethod::VALUE, "tools/call"),
            (ListToolsRequestMethod::VALUE, "tools/list"),
            (GetTaskMethod::VALUE, "tasks/get"),
            (UpdateTaskMethod::VALUE, "tasks/update"),
            (CancelTaskMethod::VALUE, "tasks/cancel"),
            (ListSkillsRequestMethod::VALUE, "skills/list"),
            (GetSkillRequestMethod::VALUE, "skills/get"),
            (
                ReadResourceDirectoryRequestMethod::VALUE,
                "resources/directory/read",
            ),
        ];
        for (rmcp, ours) in names {
            assert_eq!(rmcp, ours);
        }
    }

    #[test]
    fn custom_and_completion_operations_carry_their_targets() {
        let op = custom_op("acme/x", Some(&serde_json::json!({"name": "t", "uri": 5})));
        assert_eq!(op.name(), Some("t"));
        assert_eq!(op.uri(), Some(""), "a non-string uri still names something");
        assert_eq!(custom_op("acme/x", None).name(), None);
        let op = completion_op(&Reference::for_prompt("p"));
        assert_eq!((op.name(), op.uri()), (Some("p"), None));
        let op = completion_op(&Reference::for_resource("file:///{x}"));
        assert_eq!((op.name(), op.uri()), (None, Some("file:///{x}")));
        let filter = SubscriptionFilter::builder()
            .resource_subscriptions(["a:/1", "a:/2"])
            .build();
        let ops = listen_ops(&filter);
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[1].uri(), Some("a:/2"));
        let ops = listen_ops(&SubscriptionFilter::builder().tools_list_changed().build());
        assert_eq!((ops.len(), ops[0].uri()), (1, None));
    }
}
