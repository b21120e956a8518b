//! Property tests (proptest): the tool ScopeLayer authorizes is the tool rmcp dispatches;
//! `ScopePolicy::permits` agrees with `check`; requirement text never panics the parser;
//! canonical resource URIs are stable.

use mcp_auth::oauth::canonical_resource;
use mcp_auth::scope::{
    ImpliedScopes, Operation, Requirement, ScopePolicy, Unlisted, WildcardAndPairs,
    parse_operations,
};
use mcp_auth::{AuthContext, AuthMethod};
use proptest::prelude::*;
use rmcp::model::{ClientJsonRpcMessage, ClientRequest, JsonRpcMessage};

fn policy() -> ScopePolicy {
    ScopePolicy::new(Unlisted::Deny)
        .unlisted_methods(Unlisted::Allow)
        .tool("read_data", Requirement::all(["data:read"]))
        .tool("write_data", Requirement::all(["data:write"]))
        .tool("delete_data", Requirement::all(["data:admin"]))
        .tool("whoami", Requirement::default())
        .implication(WildcardAndPairs(
            ImpliedScopes::new().pair("data:write", "data:read"),
        ))
}

/// A JSON string literal for `s`, sometimes with an escape a naive reader would miss.
fn literal(s: &str, escape_first: bool) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if i == 0 && escape_first && c.is_ascii() {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
        }
    }
    out.push('"');
    out
}

fn tool_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("read_data".to_owned()),
        Just("write_data".to_owned()),
        Just("delete_data".to_owned()),
        Just("whoami".to_owned()),
        "[a-z_]{1,12}",
        "\\PC{0,8}",
    ]
}

prop_compose! {
    /// A `tools/call` body with fields in any order, optional extras, escaped keys, and
    /// sometimes a second `name`.
    fn tools_call()(
        name in tool_name(),
        decoy in tool_name(),
        escape_key in any::<bool>(),
        escape_value in any::<bool>(),
        duplicate in any::<bool>(),
        params_first in any::<bool>(),
        extra in any::<bool>(),
    ) -> (String, String) {
        let name_key = if escape_key { "\"n\\u0061me\"" } else { "\"name\"" };
        let mut params = format!("{name_key}:{}", literal(&name, escape_value));
        if duplicate {
            params.push_str(&format!(",\"name\":{}", literal(&decoy, false)));
        }
        params.push_str(",\"arguments\":{\"key\":\"k\"}");
        if extra {
            params.push_str(",\"_meta\":{\"progressToken\":1}");
        }
        let body = if params_first {
            format!(r#"{{"params":{{{params}}},"jsonrpc":"2.0","id":1,"method":"tools/call"}}"#)
        } else {
            format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{{params}}}}}"#)
        };
        (body, name)
    }
}

fn scopes() -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(
        vec!["data:read", "data:write", "data:admin", "data:*", "other"],
        0..=3,
    )
}

proptest! {
    #[test]
    fn what_scope_layer_authorizes_is_what_rmcp_dispatches(
        (body, _intended) in tools_call(),
        granted in scopes(),
    ) {
        let Ok(ops) = parse_operations(body.as_bytes()) else {
            // Refused here (400): rmcp never sees it.
            return Ok(());
        };
        prop_assert_eq!(ops.len(), 1);
        let message: ClientJsonRpcMessage = serde_json::from_str(&body).expect("rmcp reads what we accept");
        let JsonRpcMessage::Request(req) = message else {
            return Err(TestCaseError::fail("not a request"));
        };
        let ClientRequest::CallToolRequest(call) = req.request else {
            return Err(TestCaseError::fail("not tools/call"));
        };
        prop_assert_eq!(ops[0].name(), Some(call.params.name.as_ref()));
        let ctx = AuthContext::builder("u", AuthMethod::Jwt).scopes(granted).build();
        let dispatched = Operation::new("tools/call", Some(call.params.name.to_string()), None);
        prop_assert_eq!(policy().check(&ctx, &ops).is_ok(), policy().permits(&ctx, &dispatched));
    }

    #[test]
    fn permits_agrees_with_check(tool in tool_name(), granted in scopes()) {
        let ctx = AuthContext::builder("u", AuthMethod::Jwt).scopes(granted).build();
        let op = Operation::new("tools/call", Some(tool), None);
        let p = policy();
        prop_assert_eq!(p.permits(&ctx, &op), p.check(&ctx, std::slice::from_ref(&op)).is_ok());
    }

    #[test]
    fn requirement_text_never_panics_and_is_order_insensitive(text in "\\PC{0,40}") {
        if let Ok(req) = text.parse::<Requirement>() {
            let mut tokens: Vec<&str> = text.split_ascii_whitespace().collect();
            tokens.reverse();
            let reversed: Requirement = tokens.join(" ").parse().expect("same tokens");
            prop_assert_eq!(req, reversed);
        }
    }

    #[test]
    fn canonical_resource_is_idempotent(uri in "(https?|HTTPS)://[A-Za-z0-9.-]{1,20}(:[0-9]{1,5})?(/[A-Za-z0-9._~-]{0,10}){0,3}/?(\\?[a-z=&]{0,10})?") {
        let once = canonical_resource(&uri);
        prop_assert_eq!(canonical_resource(&once), once.clone());
        prop_assert_eq!(canonical_resource(&uri.to_uppercase()).to_lowercase(), once.to_lowercase());
    }
}

/// A key literal, its first letter sometimes escaped.
fn key(k: &str, escape: bool) -> String {
    literal(k, escape)
}

prop_compose! {
    /// A body for one of the methods that name a target outside `params.name`/`params.uri`
    /// (or a `uri` rmcp 3.9 added): members in any order, escaped keys, sometimes a second
    /// copy of the target member. Returns the body and the targets it names.
    fn targeted()(
        which in 0..4usize,
        target in tool_name(),
        decoy in tool_name(),
        more in proptest::collection::vec(tool_name(), 0..3),
        escape_key in any::<bool>(),
        escape_value in any::<bool>(),
        duplicate in any::<bool>(),
        swap in any::<bool>(),
        prompt in any::<bool>(),
    ) -> (String, &'static str, Vec<String>, bool) {
        let pair = |k: &str, v: &str| format!("{}:{}", key(k, escape_key), literal(v, escape_value));
        let order = |a: String, b: String| if swap { format!("{b},{a}") } else { format!("{a},{b}") };
        let dup = |k: &str| if duplicate { format!(",{}", pair(k, &decoy)) } else { String::new() };
        let (method, params, targets) = match which {
            0 => {
                let (kind, field) = if prompt { ("ref/prompt", "name") } else { ("ref/resource", "uri") };
                let reference = format!(
                    "{{{}{}}}",
                    order(pair("type", kind), pair(field, &target)),
                    dup(field)
                );
                let params = order(
                    format!("{}:{reference}", key("ref", escape_key)),
                    r#""argument":{"name":"a","value":"v"}"#.to_owned(),
                );
                ("completion/complete", params, vec![target])
            }
            1 | 2 => {
                let method = if which == 1 { "resources/directory/read" } else { "skills/get" };
                let params = format!("{}{}", order(pair("uri", &target), r#""_meta":{}"#.to_owned()), dup("uri"));
                (method, params, vec![target])
            }
            _ => {
                let mut uris = vec![target];
                uris.extend(more);
                let list: Vec<String> = uris.iter().map(|u| literal(u, escape_value)).collect();
                let member = format!("{}:[{}]", key("resourceSubscriptions", escape_key), list.join(","));
                let second = if duplicate {
                    format!(",\"resourceSubscriptions\":[{}]", literal(&decoy, false))
                } else {
                    String::new()
                };
                let filter = format!("{{{}{second}}}", order(member, r#""toolsListChanged":true"#.to_owned()));
                let params = format!("{}:{filter}", key("notifications", escape_key));
                ("subscriptions/listen", params, uris)
            }
        };
        let body = order(
            format!(r#""jsonrpc":"2.0","id":1,"method":"{method}""#),
            format!(r#""params":{{{params}}}"#),
        );
        (format!("{{{body}}}"), method, targets, duplicate)
    }
}

proptest! {
    #[test]
    fn targets_scope_layer_reads_are_the_ones_rmcp_reads((body, method, intended, duplicate) in targeted()) {
        let Ok(ops) = parse_operations(body.as_bytes()) else {
            // Refused here (400): rmcp never sees it. Only a repeated target member is.
            prop_assert!(duplicate, "refused: {}", body);
            return Ok(());
        };
        prop_assert!(!duplicate, "a repeated target member was accepted: {}", body);
        let named: Vec<&str> = ops.iter().map(|o| o.name().or(o.uri()).unwrap()).collect();
        prop_assert_eq!(named, intended.iter().map(String::as_str).collect::<Vec<_>>());
        let message: ClientJsonRpcMessage = serde_json::from_str(&body).expect("rmcp reads what we accept");
        let JsonRpcMessage::Request(req) = message else {
            return Err(TestCaseError::fail("not a request"));
        };
        let ours: Vec<(Option<&str>, Option<&str>)> = ops.iter().map(|o| (o.name(), o.uri())).collect();
        prop_assert!(ops.iter().all(|o| o.method() == method));
        let theirs: Vec<(Option<&str>, Option<&str>)> = match &req.request {
            ClientRequest::CompleteRequest(r) => {
                vec![(r.params.r#ref.as_prompt_name(), r.params.r#ref.as_resource_uri())]
            }
            ClientRequest::ReadResourceDirectoryRequest(r) => vec![(None, Some(r.params.uri.as_str()))],
            ClientRequest::GetSkillRequest(r) => vec![(None, Some(r.params.uri.as_str()))],
            ClientRequest::SubscriptionsListenRequest(r) => r
                .params
                .notifications
                .resource_subscriptions
                .iter()
                .flatten()
                .map(|u| (None, Some(u.as_str())))
                .collect(),
            other => return Err(TestCaseError::fail(format!("rmcp read another request: {}", other.method()))),
        };
        prop_assert_eq!(ours, theirs);
    }
}
