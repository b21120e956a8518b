//! Property tests (proptest): the tool ScopeLayer authorizes is the tool rmcp dispatches;
//! `ScopePolicy::permits` agrees with `check`; requirement text never panics the parser;
//! canonical resource URIs are stable.

use mcp_auth::resource::canonical_resource;
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
