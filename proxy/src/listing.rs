//! Listings filtered per caller: `tools/list`, `prompts/list` and `resources/list` results
//! show only what the caller's scopes let it use, as the scope policy decides
//! ([`ScopePolicy::permits`] on `tools/call`, `prompts/get` and `resources/read`).
//!
//! The request body says which JSON-RPC ids ask for a listing ([`Pending::from_request`]);
//! the answers to those ids are rewritten (and marked `cacheScope: "private"`: they vary per
//! caller), everything else passes untouched.

use std::sync::Arc;

use mcp_auth::AuthContext;
use mcp_auth::scope::{Operation, ScopePolicy};
use serde_json::Value;

/// Which listing a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tools,
    Prompts,
    Resources,
}

impl Kind {
    fn of(method: &str) -> Option<Self> {
        match method {
            "tools/list" => Some(Self::Tools),
            "prompts/list" => Some(Self::Prompts),
            "resources/list" => Some(Self::Resources),
            _ => None,
        }
    }

    /// The result array, the item's key, and the operation a listed item stands for.
    fn fields(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Tools => ("tools", "name", "tools/call"),
            Self::Prompts => ("prompts", "name", "prompts/get"),
            Self::Resources => ("resources", "uri", "resources/read"),
        }
    }
}

/// Whether `body` could hold a listing method's name: literally (it contains `list`), or
/// through a JSON escape such as `tools\/list` or `\u006cist` (it contains a backslash).
/// Other bodies, most tool calls among them, are not parsed a second time here.
fn may_name_a_listing(body: &[u8]) -> bool {
    body.contains(&b'\\') || body.windows(4).any(|w| w == b"list")
}

/// The listing requests of one POST whose answers are still to come, and who asked.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    ids: Vec<(Value, Kind)>,
    ctx: AuthContext,
    policy: Arc<ScopePolicy>,
}

impl Pending {
    /// The listing requests in a JSON-RPC body (one message or a batch); `None` when there
    /// are none (or the body is not JSON: the scope layer has already refused such bodies).
    pub(crate) fn from_request(
        body: &[u8],
        ctx: &AuthContext,
        policy: &Arc<ScopePolicy>,
    ) -> Option<Self> {
        if !may_name_a_listing(body) {
            return None;
        }
        let value: Value = serde_json::from_slice(body).ok()?;
        let mut ids = Vec::new();
        let mut note = |m: &Value| {
            let kind = m.get("method").and_then(Value::as_str).and_then(Kind::of);
            if let (Some(kind), Some(id)) = (kind, m.get("id"))
                && !id.is_null()
            {
                ids.push((id.clone(), kind));
            }
        };
        match &value {
            Value::Array(batch) => batch.iter().for_each(&mut note),
            single => note(single),
        }
        (!ids.is_empty()).then(|| Self {
            ids,
            ctx: ctx.clone(),
            policy: policy.clone(),
        })
    }

    /// Whether every listing has been answered.
    pub(crate) fn is_done(&self) -> bool {
        self.ids.is_empty()
    }

    /// Filters a JSON body (one message or a batch). `Ok(None)`: nothing to change.
    ///
    /// # Errors
    ///
    /// When the body is not JSON: a listing answer that cannot be read cannot be filtered.
    pub(crate) fn filter_json(&mut self, body: &[u8]) -> Result<Option<Vec<u8>>, NotJson> {
        let mut value: Value = serde_json::from_slice(body).map_err(|_| NotJson)?;
        let changed = match &mut value {
            Value::Array(batch) => {
                let mut any = false;
                for m in batch {
                    any |= self.filter_message(m);
                }
                any
            }
            single => self.filter_message(single),
        };
        Ok(changed.then(|| value.to_string().into_bytes()))
    }

    /// Filters one message if it answers a pending listing (then no longer pending); returns
    /// whether it was rewritten.
    pub(crate) fn filter_message(&mut self, message: &mut Value) -> bool {
        let Some(id) = message.get("id") else {
            return false;
        };
        if message.get("method").is_some() {
            return false; // a request or notification from the server, not an answer
        }
        let Some(at) = self.ids.iter().position(|(i, _)| i == id) else {
            return false;
        };
        let (_, kind) = self.ids.swap_remove(at);
        let (array, key, method) = kind.fields();
        let Some(items) = message
            .get_mut("result")
            .and_then(|r| r.get_mut(array))
            .and_then(Value::as_array_mut)
        else {
            return false; // an error answer, or no list: nothing to hide
        };
        let before = items.len();
        items.retain(|item| {
            // An item without a readable name or uri is hidden: nothing could authorize it.
            item.get(key).and_then(Value::as_str).is_some_and(|target| {
                let (name, uri) = match kind {
                    Kind::Resources => (None, Some(target.to_owned())),
                    _ => (Some(target.to_owned()), None),
                };
                self.policy
                    .permits(&self.ctx, &Operation::new(method, name, uri))
            })
        });
        let hidden = before - items.len();
        if hidden > 0 {
            tracing::debug!(
                target: "mcp_auth_proxy::listing",
                method,
                hidden,
                "listing filtered for the caller"
            );
        }
        // Filtered per caller: never shared across authorization contexts (MCP 2026-07-28
        // caching), whatever the upstream said.
        if let Some(result) = message.get_mut("result").and_then(Value::as_object_mut) {
            result.insert("cacheScope".into(), Value::from("private"));
        }
        // Rewritten even when nothing was hidden: the answer was parsed either way.
        true
    }
}

/// A listing answer that is not JSON.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NotJson;

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_auth::AuthMethod;
    use mcp_auth::scope::{Requirement, Unlisted};
    use serde_json::json;

    fn policy() -> Arc<ScopePolicy> {
        Arc::new(
            ScopePolicy::new(Unlisted::Deny)
                .unlisted_methods(Unlisted::Allow)
                .tool("read_data", Requirement::all(["data:read"]))
                .tool("delete_data", Requirement::all(["data:admin"]))
                .tool("whoami", Requirement::all(Vec::<String>::new())),
        )
    }

    fn reader() -> AuthContext {
        AuthContext::builder("r", AuthMethod::Bearer)
            .scopes(["data:read"])
            .build()
    }

    fn tools_answer(id: Value) -> Value {
        json!({"jsonrpc":"2.0","id":id,"result":{"tools":[
            {"name":"whoami"},{"name":"read_data"},{"name":"delete_data"},{"name":"unlisted"},
            {"title":"no name"}, {"name": 5}
        ]}})
    }

    #[test]
    fn listings_are_found_however_their_method_is_spelt_and_others_skip_the_parse() {
        let p = policy();
        let ctx = reader();
        for body in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools\/list"}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/\u006cist"}"#,
            r#"[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"prompts\u002flist"}]"#,
        ] {
            assert!(
                Pending::from_request(body.as_bytes(), &ctx, &p).is_some(),
                "{body}"
            );
        }
        let call =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_data"}}"#;
        assert!(!may_name_a_listing(call.as_bytes()));
        assert!(Pending::from_request(call.as_bytes(), &ctx, &p).is_none());
    }

    fn names(v: &Value) -> Vec<&str> {
        v["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect()
    }

    #[test]
    fn a_tools_list_answer_shows_only_what_the_caller_may_call() {
        let req = json!({"jsonrpc":"2.0","id":7,"method":"tools/list"}).to_string();
        let mut p = Pending::from_request(req.as_bytes(), &reader(), &policy()).unwrap();
        let out = p
            .filter_json(tools_answer(json!(7)).to_string().as_bytes())
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(names(&v), ["whoami", "read_data"]);
        assert_eq!(v["result"]["cacheScope"], "private");
        assert!(p.is_done());
    }

    #[test]
    fn only_answers_to_listing_ids_are_touched() {
        let req = json!([
            {"jsonrpc":"2.0","id":"a","method":"tools/list"},
            {"jsonrpc":"2.0","id":"b","method":"tools/call","params":{"name":"whoami"}},
            {"jsonrpc":"2.0","method":"notifications/initialized"}
        ])
        .to_string();
        let mut p = Pending::from_request(req.as_bytes(), &reader(), &policy()).unwrap();
        // Same id, other type: not the listing's answer.
        let other = tools_answer(json!(1)).to_string();
        assert!(p.filter_json(other.as_bytes()).unwrap().is_none());
        let batch = json!([tools_answer(json!("b")), tools_answer(json!("a"))]).to_string();
        let v: Value =
            serde_json::from_slice(&p.filter_json(batch.as_bytes()).unwrap().unwrap()).unwrap();
        assert_eq!(
            v[0],
            tools_answer(json!("b")),
            "the tools/call answer is untouched"
        );
        assert_eq!(names(&v[1]), ["whoami", "read_data"]);
        assert!(p.is_done());
    }

    #[test]
    fn bodies_without_listings_need_no_filtering() {
        for body in [
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"}}).to_string(),
            json!({"jsonrpc":"2.0","method":"tools/list"}).to_string(), // a notification
            json!({"jsonrpc":"2.0","id":null,"method":"tools/list"}).to_string(),
            "not json".to_owned(),
        ] {
            assert!(Pending::from_request(body.as_bytes(), &reader(), &policy()).is_none());
        }
    }

    #[test]
    fn prompts_and_resources_are_filtered_by_their_own_operations() {
        let policy = Arc::new(
            ScopePolicy::new(Unlisted::Deny)
                .unlisted_methods(Unlisted::Allow)
                .prompt("summary", Requirement::all(["data:read"]))
                .prompt("admin_report", Requirement::all(["data:admin"]))
                .resource_prefix("data://public/", Requirement::all(["data:read"]))
                .resource_prefix("data://secret/", Requirement::all(["data:admin"])),
        );
        let req = json!([
            {"jsonrpc":"2.0","id":1,"method":"prompts/list"},
            {"jsonrpc":"2.0","id":2,"method":"resources/list"}
        ])
        .to_string();
        let mut p = Pending::from_request(req.as_bytes(), &reader(), &policy).unwrap();
        let mut prompts = json!({"jsonrpc":"2.0","id":1,"result":{"prompts":[
            {"name":"summary"},{"name":"admin_report"}]}});
        assert!(p.filter_message(&mut prompts));
        assert_eq!(prompts["result"]["prompts"], json!([{"name":"summary"}]));
        let mut resources = json!({"jsonrpc":"2.0","id":2,"result":{"resources":[
            {"uri":"data://public/a","name":"a"},{"uri":"data://secret/b","name":"b"}]}});
        assert!(p.filter_message(&mut resources));
        assert_eq!(
            resources["result"]["resources"],
            json!([{"uri":"data://public/a","name":"a"}])
        );
        assert!(p.is_done());
    }

    #[test]
    fn an_unreadable_listing_answer_is_an_error() {
        let req = json!({"jsonrpc":"2.0","id":7,"method":"tools/list"}).to_string();
        let mut p = Pending::from_request(req.as_bytes(), &reader(), &policy()).unwrap();
        assert!(p.filter_json(b"{\"tools\": [").is_err());
    }
}
