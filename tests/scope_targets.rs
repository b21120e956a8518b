//! Review finding M3: the MCP methods that name a prompt or resource besides `tools/call`,
//! `prompts/get` and `resources/read` (rmcp 3.9 / MCP 2026-07-28): `resources/directory/read`,
//! `skills/get`, `subscriptions/listen`, `completion/complete`, `resources/(un)subscribe`,
//! and the listings `resources/templates/list`, `skills/list`.
//!
//! A real rmcp server implementing all of them runs on a loopback port behind the real API
//! key layer, wrapped in `ScopedServer`, once without `ScopeLayer` (so `ScopedServer` alone
//! must check and filter: the backstop) and once with it (refusals are 403 before rmcp).
//! Requests are raw JSON-RPC over HTTP, as a client (or an attacker) sends them. Every
//! handler counts its calls, so a refusal is shown not to reach it.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use mcp_auth::integrations::rmcp::ScopedServer;
use mcp_auth::scope::{Requirement, ScopeLayer, ScopePolicy, Unlisted};
use mcp_auth::{ApiKeyAuthenticator, ApiKeyLayer, Credential};
use rmcp::model::*;
use rmcp::service::{RequestContext, RoleServer, SubscriptionContext};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, ServerHandler};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

/// `files:read` only.
const READER: &str = "key-reader-0123456789abcdef";
/// `files:read files:secret prompts:secret`.
const ADMIN: &str = "key-admin-0123456789abcdef";

const PUBLIC: &str = "file:///public/a.txt";
const SECRET: &str = "file:///secret/k";
const PUBLIC_SKILL: &str = "file:///public/skills/pub/SKILL.md";
const SECRET_SKILL: &str = "file:///secret/skills/ops/SKILL.md";

/// The review's policy: protocol methods open, `file:///` needs `files:read`,
/// `file:///secret/` needs `files:secret`, prompt `secret_prompt` needs `prompts:secret`.
fn policy() -> ScopePolicy {
    ScopePolicy::new(Unlisted::Deny)
        .unlisted_methods(Unlisted::Allow)
        .resource_prefix("file:///", Requirement::all(["files:read"]))
        .resource_prefix("file:///secret/", Requirement::all(["files:secret"]))
        .prompt("open", Requirement::default())
        .prompt("secret_prompt", Requirement::all(["prompts:secret"]))
}

/// Calls that reached the wrapped handler, per method.
#[derive(Clone, Default)]
struct Calls(Arc<std::sync::Mutex<HashMap<&'static str, usize>>>);

impl Calls {
    fn hit(&self, method: &'static str) {
        *self.0.lock().unwrap().entry(method).or_default() += 1;
    }
    fn get(&self, method: &str) -> usize {
        self.0.lock().unwrap().get(method).copied().unwrap_or(0)
    }
}

#[derive(Clone)]
struct Files {
    calls: Calls,
}

fn skill(uri: &str) -> Skill {
    let name = uri
        .trim_end_matches("/SKILL.md")
        .rsplit('/')
        .next()
        .unwrap();
    Skill::new(
        uri,
        SkillFrontmatter::new(name, "a skill"),
        SkillResources::Dynamic,
    )
}

impl ServerHandler for Files {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_completions()
                .enable_prompts()
                .enable_resources()
                .enable_resources_subscribe()
                .enable_skills_with_directory_read()
                .build(),
        )
    }

    async fn list_resources(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.calls.hit("resources/list");
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(PUBLIC, "a"),
            Resource::new(SECRET, "k"),
        ]))
    }

    async fn list_resource_templates(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.calls.hit("resources/templates/list");
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new("file:///public/{name}", "public"),
            ResourceTemplate::new("file:///secret/{name}", "secret"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.calls.hit("resources/read");
        Ok(ReadResourceResult::new(vec![ResourceContents::text("contents", request.uri)]).into())
    }

    async fn read_resource_directory(
        &self,
        _: ReadResourceDirectoryRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<ReadResourceDirectoryResult, ErrorData> {
        self.calls.hit("resources/directory/read");
        Ok(ListResourcesResult::with_all_items(vec![
            Resource::new(PUBLIC, "a"),
            Resource::new(SECRET, "k"),
            Resource::new("file:///public/../secret/k", "sneaky"),
        ]))
    }

    async fn list_skills(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListSkillsResult, ErrorData> {
        self.calls.hit("skills/list");
        Ok(ListSkillsResult::with_all_items(vec![
            skill(PUBLIC_SKILL),
            skill(SECRET_SKILL),
        ]))
    }

    async fn get_skill(
        &self,
        request: GetSkillRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<GetSkillResult, ErrorData> {
        self.calls.hit("skills/get");
        Ok(GetSkillResult::new(skill(&request.uri)))
    }

    async fn complete(
        &self,
        _: CompleteRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.calls.hit("completion/complete");
        Ok(CompleteResult::new(
            CompletionInfo::new(vec!["completed".into()]).unwrap(),
        ))
    }

    async fn list_prompts(
        &self,
        _: Option<PaginatedRequestParams>,
        _: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.calls.hit("prompts/list");
        Ok(ListPromptsResult::with_all_items(vec![
            Prompt::new("open", None::<String>, None),
            Prompt::new("secret_prompt", None::<String>, None),
        ]))
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    async fn listen(&self, _: SubscriptionContext) -> Result<(), ErrorData> {
        // Ends at once: the final result closes the stream.
        self.calls.hit("subscriptions/listen");
        Ok(())
    }

    async fn subscribe(
        &self,
        _: SubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.calls.hit("resources/subscribe");
        Ok(())
    }

    async fn unsubscribe(
        &self,
        _: UnsubscribeRequestParams,
        _: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.calls.hit("resources/unsubscribe");
        Ok(())
    }

    async fn on_custom_request(
        &self,
        _: CustomRequest,
        _: RequestContext<RoleServer>,
    ) -> Result<CustomResult, ErrorData> {
        self.calls.hit("custom");
        Ok(CustomResult::new(json!({})))
    }
}

struct Server {
    addr: SocketAddr,
    calls: Calls,
    stop: CancellationToken,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The test server on a loopback port: API keys, then `ScopeLayer` when `with_layer`, then
/// rmcp serving `ScopedServer<Files>`, all with [`policy`].
async fn start(with_layer: bool) -> Server {
    let policy = Arc::new(policy());
    let calls = Calls::default();
    let keys = ApiKeyAuthenticator::new()
        .with_key(
            Credential::new(READER)
                .subject("reader")
                .scopes(["files:read"]),
        )
        .unwrap()
        .with_key(Credential::new(ADMIN).subject("admin").scopes([
            "files:read",
            "files:secret",
            "prompts:secret",
        ]))
        .unwrap();
    let stop = CancellationToken::new();
    let mut config = StreamableHttpServerConfig::default();
    config.cancellation_token = stop.child_token();
    let handler_calls = calls.clone();
    let handler_policy = policy.clone();
    let mcp = StreamableHttpService::new(
        move || {
            Ok(ScopedServer::new(
                Files {
                    calls: handler_calls.clone(),
                },
                handler_policy.clone(),
            ))
        },
        Arc::new(LocalSessionManager::default()),
        config,
    );
    let auth = ApiKeyLayer::new(keys);
    let app = if with_layer {
        let layer = ScopeLayer::new((*policy).clone());
        Router::new().nest_service(
            "/mcp",
            tower::ServiceBuilder::new()
                .layer(auth)
                .layer(layer)
                .service(mcp),
        )
    } else {
        Router::new().nest_service(
            "/mcp",
            tower::ServiceBuilder::new().layer(auth).service(mcp),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = stop.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { s.cancelled().await })
            .await
            .unwrap();
    });
    Server { addr, calls, stop }
}

#[derive(Debug)]
struct Reply {
    status: u16,
    body: String,
}

impl Reply {
    /// The JSON-RPC messages of the reply (a JSON body, or the `data:` lines of SSE).
    fn messages(&self) -> Vec<Value> {
        if let Ok(v) = serde_json::from_str::<Value>(&self.body) {
            return vec![v];
        }
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str(d.trim()).ok())
            .collect()
    }

    /// The JSON-RPC response (result or error) for request `id`.
    fn response(&self, id: u64) -> Value {
        self.messages()
            .into_iter()
            .find(|m| m["id"] == id && (m.get("result").is_some() || m.get("error").is_some()))
            .unwrap_or_else(|| panic!("no response to {id}: {self:?}"))
    }

    fn result(&self, id: u64) -> Value {
        let r = self.response(id);
        assert!(r.get("result").is_some(), "expected a result: {self:?}");
        r["result"].clone()
    }

    /// The reply is a refusal by `ScopeLayer` (403 `insufficient_scope`) when `by_layer`, else
    /// by `ScopedServer` (an rmcp error naming `scope`).
    fn assert_refused(&self, by_layer: bool, id: u64, scope: &str) {
        if by_layer {
            assert_eq!(self.status, 403, "{self:?}");
            assert!(self.body.contains("insufficient_scope"), "{self:?}");
            return;
        }
        assert_eq!(self.status, 200, "{self:?}");
        let r = self.response(id);
        assert_eq!(
            r["error"]["data"]["error"], "insufficient_scope",
            "{self:?}"
        );
        assert!(
            r["error"]["data"]["scope"]
                .as_str()
                .unwrap()
                .contains(scope),
            "{self:?}"
        );
    }
}

/// One JSON-RPC request with the 2026-07-28 inline lifecycle (no session).
async fn rpc(srv: &Server, key: &str, id: u64, method: &str, params: Value) -> Reply {
    let mut params = params;
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "raw", "version": "1"},
    });
    let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
    let mut req = reqwest::Client::new()
        .post(format!("http://{}/mcp", srv.addr))
        .header("x-api-key", key)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", method);
    if let Some(name) = params.get("name").or_else(|| params.get("uri")) {
        req = req.header("mcp-name", name.as_str().unwrap());
    }
    let res = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let res = req.body(body.to_string()).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.text().await.unwrap())
    })
    .await
    .expect("a reply within 10 s");
    Reply {
        status: res.0,
        body: res.1,
    }
}

/// A legacy (2025-06-18) session, for `resources/subscribe` and `resources/unsubscribe`.
async fn session(srv: &Server, key: &str) -> String {
    support::raw::raw_session(&format!("http://{}/mcp", srv.addr), key).await
}

async fn legacy(srv: &Server, key: &str, session: &str, id: u64, method: &str, uri: &str) -> Reply {
    let body = json!({"jsonrpc":"2.0","id":id,"method":method,"params":{"uri":uri}});
    let res = reqwest::Client::new()
        .post(format!("http://{}/mcp", srv.addr))
        .header("x-api-key", key)
        .header("mcp-session-id", session)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    Reply {
        status: res.status().as_u16(),
        body: res.text().await.unwrap(),
    }
}

/// A listing filtered per caller is marked never to be shared (MCP 2026-07-28 caching).
fn private(list: &Value, method: &str) {
    assert_eq!(list["cacheScope"], "private", "{method}: {list}");
}

fn uris(list: &Value, key: &str, field: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key} in {list}"))
        .iter()
        .map(|r| r[field].as_str().unwrap().to_owned())
        .collect()
}

/// Builds a request's `params` for a URI.
type Params = fn(&str) -> Value;

/// Each targeted method: the reader (no `files:secret`) is refused on the secret URI and the
/// handler is not called; the admin gets through; the reader gets through on a public URI.
async fn targeted_methods_need_the_resource_rule(with_layer: bool) {
    let srv = start(with_layer).await;
    let cases: [(&str, Params, &str); 4] = [
        (
            "resources/directory/read",
            |u| json!({"uri": u}),
            "file:///secret/",
        ),
        ("skills/get", |u| json!({"uri": u}), SECRET_SKILL),
        (
            "completion/complete",
            |u| json!({"ref": {"type": "ref/resource", "uri": u}, "argument": {"name": "name", "value": ""}}),
            "file:///secret/{name}",
        ),
        ("resources/read", |u| json!({"uri": u}), SECRET),
    ];
    for (method, params, secret_uri) in cases {
        let public_uri = secret_uri.replace("/secret/", "/public/");
        let before = srv.calls.get(method);
        let reply = rpc(&srv, READER, 1, method, params(secret_uri)).await;
        reply.assert_refused(with_layer, 1, "files:secret");
        assert_eq!(
            srv.calls.get(method),
            before,
            "{method} reached the handler"
        );
        let reply = rpc(&srv, ADMIN, 2, method, params(secret_uri)).await;
        reply.result(2);
        let reply = rpc(&srv, READER, 3, method, params(&public_uri)).await;
        reply.result(3);
        assert_eq!(srv.calls.get(method), before + 2, "{method}");
    }
}

#[tokio::test]
async fn scoped_server_alone_checks_directory_read_skills_get_and_resource_completion() {
    targeted_methods_need_the_resource_rule(false).await;
}

#[tokio::test]
async fn scope_layer_refuses_directory_read_skills_get_and_resource_completion() {
    targeted_methods_need_the_resource_rule(true).await;
}

async fn prompt_completion_needs_the_prompt_rule(with_layer: bool) {
    let srv = start(with_layer).await;
    let complete = |name: &str| json!({"ref": {"type": "ref/prompt", "name": name}, "argument": {"name": "a", "value": ""}});
    rpc(
        &srv,
        READER,
        1,
        "completion/complete",
        complete("secret_prompt"),
    )
    .await
    .assert_refused(with_layer, 1, "prompts:secret");
    assert_eq!(srv.calls.get("completion/complete"), 0);
    rpc(
        &srv,
        ADMIN,
        2,
        "completion/complete",
        complete("secret_prompt"),
    )
    .await
    .result(2);
    rpc(&srv, READER, 3, "completion/complete", complete("open"))
        .await
        .result(3);
    assert_eq!(srv.calls.get("completion/complete"), 2);
}

#[tokio::test]
async fn scoped_server_alone_checks_prompt_completion() {
    prompt_completion_needs_the_prompt_rule(false).await;
}

#[tokio::test]
async fn scope_layer_refuses_prompt_completion() {
    prompt_completion_needs_the_prompt_rule(true).await;
}

async fn listen_needs_the_rule_of_every_uri(with_layer: bool) {
    let srv = start(with_layer).await;
    let listen = |uris: &[&str]| json!({"notifications": {"resourceSubscriptions": uris}});
    rpc(
        &srv,
        READER,
        1,
        "subscriptions/listen",
        listen(&[PUBLIC, SECRET]),
    )
    .await
    .assert_refused(with_layer, 1, "files:secret");
    assert_eq!(srv.calls.get("subscriptions/listen"), 0);
    rpc(
        &srv,
        ADMIN,
        2,
        "subscriptions/listen",
        listen(&[PUBLIC, SECRET]),
    )
    .await
    .result(2);
    rpc(&srv, READER, 3, "subscriptions/listen", listen(&[PUBLIC]))
        .await
        .result(3);
    assert_eq!(srv.calls.get("subscriptions/listen"), 2);
}

#[tokio::test]
async fn scoped_server_alone_checks_every_uri_of_subscriptions_listen() {
    listen_needs_the_rule_of_every_uri(false).await;
}

#[tokio::test]
async fn scope_layer_refuses_subscriptions_listen_naming_a_secret_uri() {
    listen_needs_the_rule_of_every_uri(true).await;
}

async fn legacy_subscriptions_need_the_resource_rule(with_layer: bool) {
    let srv = start(with_layer).await;
    let reader = session(&srv, READER).await;
    let admin = session(&srv, ADMIN).await;
    for method in ["resources/subscribe", "resources/unsubscribe"] {
        legacy(&srv, READER, &reader, 1, method, SECRET)
            .await
            .assert_refused(with_layer, 1, "files:secret");
        assert_eq!(srv.calls.get(method), 0, "{method}");
        legacy(&srv, ADMIN, &admin, 2, method, SECRET)
            .await
            .result(2);
        legacy(&srv, READER, &reader, 3, method, PUBLIC)
            .await
            .result(3);
        assert_eq!(srv.calls.get(method), 2, "{method}");
    }
}

#[tokio::test]
async fn scoped_server_alone_checks_subscribe_and_unsubscribe() {
    legacy_subscriptions_need_the_resource_rule(false).await;
}

#[tokio::test]
async fn scope_layer_refuses_subscribe_and_unsubscribe() {
    legacy_subscriptions_need_the_resource_rule(true).await;
}

/// Listings show the reader only what it may read: resources, templates, skills, prompts,
/// and the children of a directory (including one whose URI hides a `..`).
async fn listings_are_filtered_per_caller(with_layer: bool) {
    let srv = start(with_layer).await;
    let list = rpc(&srv, READER, 1, "resources/list", json!({}))
        .await
        .result(1);
    assert_eq!(uris(&list, "resources", "uri"), [PUBLIC]);
    private(&list, "resources/list");
    let list = rpc(&srv, READER, 2, "resources/templates/list", json!({}))
        .await
        .result(2);
    assert_eq!(
        uris(&list, "resourceTemplates", "uriTemplate"),
        ["file:///public/{name}"]
    );
    private(&list, "resources/templates/list");
    let list = rpc(&srv, READER, 3, "skills/list", json!({}))
        .await
        .result(3);
    assert_eq!(uris(&list, "skills", "uri"), [PUBLIC_SKILL]);
    private(&list, "skills/list");
    let list = rpc(&srv, READER, 4, "prompts/list", json!({}))
        .await
        .result(4);
    assert_eq!(uris(&list, "prompts", "name"), ["open"]);
    private(&list, "prompts/list");
    let dir = rpc(
        &srv,
        READER,
        5,
        "resources/directory/read",
        json!({"uri": "file:///"}),
    )
    .await
    .result(5);
    assert_eq!(uris(&dir, "resources", "uri"), [PUBLIC]);

    // The admin sees everything but the ambiguous child.
    let list = rpc(&srv, ADMIN, 6, "resources/templates/list", json!({}))
        .await
        .result(6);
    assert_eq!(uris(&list, "resourceTemplates", "uriTemplate").len(), 2);
    let list = rpc(&srv, ADMIN, 7, "skills/list", json!({}))
        .await
        .result(7);
    assert_eq!(uris(&list, "skills", "uri"), [PUBLIC_SKILL, SECRET_SKILL]);
    let dir = rpc(
        &srv,
        ADMIN,
        8,
        "resources/directory/read",
        json!({"uri": "file:///"}),
    )
    .await
    .result(8);
    assert_eq!(uris(&dir, "resources", "uri"), [PUBLIC, SECRET]);
}

#[tokio::test]
async fn scoped_server_filters_templates_skills_and_directory_children() {
    listings_are_filtered_per_caller(false).await;
}

#[tokio::test]
async fn listings_are_filtered_behind_the_scope_layer_too() {
    listings_are_filtered_per_caller(true).await;
}

/// A custom method naming a URI is refused, though unlisted methods are allowed; one naming
/// nothing passes.
async fn custom_methods_naming_a_target_are_refused(with_layer: bool) {
    let srv = start(with_layer).await;
    let reply = rpc(&srv, ADMIN, 1, "acme/files/read", json!({"uri": PUBLIC})).await;
    reply.assert_refused(with_layer, 1, "");
    assert_eq!(srv.calls.get("custom"), 0);
    rpc(&srv, ADMIN, 2, "acme/ping", json!({})).await.result(2);
    assert_eq!(srv.calls.get("custom"), 1);
}

#[tokio::test]
async fn scoped_server_refuses_custom_methods_that_name_a_target() {
    custom_methods_naming_a_target_are_refused(false).await;
}

#[tokio::test]
async fn scope_layer_refuses_custom_methods_that_name_a_target() {
    custom_methods_naming_a_target_are_refused(true).await;
}

/// L6 end to end: a dot segment or an encoded one does not get the public rule.
async fn dot_segments_are_refused(with_layer: bool) {
    let srv = start(with_layer).await;
    for uri in [
        "file:///public/../secret/k",
        "file:///public/%2e%2e/secret/k",
    ] {
        let reply = rpc(&srv, READER, 1, "resources/read", json!({"uri": uri})).await;
        reply.assert_refused(with_layer, 1, "");
    }
    assert_eq!(srv.calls.get("resources/read"), 0);
}

#[tokio::test]
async fn scoped_server_refuses_dot_segments_in_resource_uris() {
    dot_segments_are_refused(false).await;
}

#[tokio::test]
async fn scope_layer_refuses_dot_segments_in_resource_uris() {
    dot_segments_are_refused(true).await;
}
