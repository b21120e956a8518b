//! Unit tests of [`ScopePolicy`](super::ScopePolicy).

use super::*;
use crate::context::AuthMethod;
use crate::scope::PrefixWildcard;
use crate::scope::fixtures::with_data_tools;

fn ctx(scopes: &[&str], roles: &[&str]) -> AuthContext {
    AuthContext::builder("u", AuthMethod::Jwt)
        .scopes(scopes.iter().copied())
        .roles(roles.iter().copied())
        .build()
}

fn call(tool: &str) -> Operation {
    Operation::new("tools/call", Some(tool.into()), None)
}

fn policy() -> ScopePolicy {
    with_data_tools(
        ScopePolicy::new(Unlisted::Deny)
            .method("tools/list", Requirement::default())
            .tool("whoami", Requirement::default()),
    )
}

#[test]
fn write_implies_read_but_not_admin() {
    let p = policy();
    let c = ctx(&["data:write"], &[]);
    assert!(p.check(&c, &[call("read_data")]).is_ok());
    assert!(p.check(&c, &[call("write_data")]).is_ok());
    let err = p.check(&c, &[call("delete_data")]).unwrap_err();
    assert_eq!(err.required_scopes(), ["data:admin"]);
}

#[test]
fn prefix_wildcards_imply_narrower_scopes_only() {
    let w = PrefixWildcard;
    assert!(w.implies("data:*", "data:read"));
    assert!(!w.implies("data:*", "data:"));
    assert!(!w.implies("data:*", "database:read"));
    assert!(!w.implies("*", "data:read"));
    assert!(!w.implies("files:re", "files:read"));
    assert!(
        policy()
            .check(&ctx(&["data:*"], &[]), &[call("delete_data")])
            .is_ok()
    );
}

#[test]
fn a_batch_needs_the_union_and_names_it_in_one_challenge() {
    let p = policy();
    let c = ctx(&["data:read"], &[]);
    let err = p
        .check(
            &c,
            &[call("read_data"), call("delete_data"), call("write_data")],
        )
        .unwrap_err();
    assert_eq!(
        err.required_scopes(),
        ["data:read", "data:admin", "data:write"]
    );
}

#[test]
fn unlisted_operations_follow_the_stated_default() {
    let c = ctx(&["data:admin"], &[]);
    let err = policy().check(&c, &[call("format_disk")]).unwrap_err();
    assert_eq!(err.detail(), Some("unlisted_operation"));
    let open = ScopePolicy::new(Unlisted::Allow);
    assert!(open.check(&c, &[call("format_disk")]).is_ok());
}

#[test]
fn roles_follow_the_hierarchy() {
    let p = ScopePolicy::new(Unlisted::Deny)
        .tool("publish", Requirement::role("editor"))
        .roles(
            RoleHierarchy::new()
                .include("admin", "editor")
                .include("editor", "viewer"),
        );
    assert!(p.check(&ctx(&[], &["admin"]), &[call("publish")]).is_ok());
    assert!(p.check(&ctx(&[], &["editor"]), &[call("publish")]).is_ok());
    let err = p
        .check(&ctx(&[], &["viewer"]), &[call("publish")])
        .unwrap_err();
    assert_eq!(err.detail(), Some("missing_role"));
}

#[test]
fn any_of_needs_one_and_every_request_rules_always_apply() {
    let p = ScopePolicy::new(Unlisted::Allow)
        .every_request(Requirement::all(["mcp"]))
        .tool("t", Requirement::any(["a", "b"]));
    assert!(p.check(&ctx(&["mcp", "b"], &[]), &[call("t")]).is_ok());
    assert!(p.check(&ctx(&["mcp"], &[]), &[call("t")]).is_err());
    assert!(
        p.check(&ctx(&["b"], &[]), &[]).is_err(),
        "GET/DELETE still need `mcp`"
    );
}

#[test]
fn longest_resource_prefix_applies() {
    let p = ScopePolicy::new(Unlisted::Deny)
        .resource_prefix("file:///", Requirement::all(["files:read"]))
        .resource_prefix("file:///secret/", Requirement::all(["files:secret"]));
    let read = |uri: &str| Operation::new("resources/read", None, Some(uri.into()));
    let c = ctx(&["files:read"], &[]);
    assert!(p.check(&c, &[read("file:///a.txt")]).is_ok());
    assert_eq!(
        p.check(&c, &[read("file:///secret/k")])
            .unwrap_err()
            .required_scopes(),
        ["files:secret"]
    );
}

fn res(method: &str, uri: &str) -> Operation {
    Operation::new(method, None, Some(uri.into()))
}

/// The policy of the review's M3 attack: protocol methods open, `file:///secret/` needs
/// `files:secret`, the rest of `file:///` needs `files:read`, one prompt needs `p:x`.
fn targets_policy() -> ScopePolicy {
    ScopePolicy::new(Unlisted::Deny)
        .unlisted_methods(Unlisted::Allow)
        .resource_prefix("file:///", Requirement::all(["files:read"]))
        .resource_prefix("file:///secret/", Requirement::all(["files:secret"]))
        .prompt("secret_prompt", Requirement::all(["p:x"]))
}

#[test]
fn every_resource_method_needs_the_resource_rule() {
    let p = targets_policy();
    let reader = ctx(&["files:read"], &[]);
    let both = ctx(&["files:read", "files:secret"], &[]);
    for method in [
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
        "resources/directory/read",
        "skills/get",
        "subscriptions/listen",
        "completion/complete",
    ] {
        let secret = res(method, "file:///secret/ops/SKILL.md");
        let err = p.check(&reader, std::slice::from_ref(&secret)).unwrap_err();
        assert_eq!(err.required_scopes(), ["files:secret"], "{method}");
        assert!(!p.permits(&reader, &secret), "{method}");
        assert!(
            p.check(&both, std::slice::from_ref(&secret)).is_ok(),
            "{method}"
        );
        assert!(
            p.check(&reader, &[res(method, "file:///public/a")]).is_ok(),
            "{method}"
        );
        // No rule names `mem://`: an unlisted target, denied even with open methods.
        let err = p.check(&both, &[res(method, "mem://x")]).unwrap_err();
        assert_eq!(err.detail(), Some("unlisted_operation"), "{method}");
    }
}

#[test]
fn subscriptions_listen_needs_the_rule_of_every_uri() {
    let p = targets_policy();
    let reader = ctx(&["files:read"], &[]);
    let listen = |uri: &str| res("subscriptions/listen", uri);
    // One operation per subscribed URI, as the parser yields them.
    let ops = [listen("file:///a"), listen("file:///secret/k")];
    assert_eq!(
        p.check(&reader, &ops).unwrap_err().required_scopes(),
        ["files:read", "files:secret"]
    );
    assert!(
        p.check(&ctx(&["files:read", "files:secret"], &[]), &ops)
            .is_ok()
    );
    // Without resource URIs (list-changed notifications only) it is a plain method.
    let bare = Operation::new("subscriptions/listen", None, None);
    assert!(p.check(&ctx(&[], &[]), std::slice::from_ref(&bare)).is_ok());
    let closed = ScopePolicy::new(Unlisted::Deny);
    assert!(closed.check(&reader, &[bare]).is_err());
}

#[test]
fn completion_of_a_prompt_needs_the_prompt_rule() {
    let p = targets_policy();
    let complete = |name: &str| Operation::new("completion/complete", Some(name.into()), None);
    let err = p
        .check(&ctx(&[], &[]), &[complete("secret_prompt")])
        .unwrap_err();
    assert_eq!(err.required_scopes(), ["p:x"]);
    assert!(
        p.check(&ctx(&["p:x"], &[]), &[complete("secret_prompt")])
            .is_ok()
    );
    let err = p
        .check(&ctx(&["p:x"], &[]), &[complete("other")])
        .unwrap_err();
    assert_eq!(err.detail(), Some("unlisted_operation"));
    // Both a name and a URI: no single rule applies, refused.
    let both = Operation::new(
        "completion/complete",
        Some("secret_prompt".into()),
        Some("file:///a".into()),
    );
    assert!(p.check(&ctx(&["p:x", "files:read"], &[]), &[both]).is_err());
}

#[test]
fn unlisted_methods_naming_a_target_are_denied_unless_listed() {
    let c = ctx(&["files:read", "files:secret"], &[]);
    let p = targets_policy();
    let custom_uri = res("acme/files/read", "file:///secret/k");
    let custom_name = Operation::new("acme/run", Some("format_disk".into()), None);
    let plain = Operation::new("acme/ping", None, None);
    for op in [&custom_uri, &custom_name] {
        let err = p.check(&c, std::slice::from_ref(op)).unwrap_err();
        assert_eq!(err.detail(), Some("unlisted_operation"), "{op:?}");
        assert!(!p.permits(&c, op));
    }
    assert!(p.check(&c, std::slice::from_ref(&plain)).is_ok());
    // A known untargeted method with a stray `name` is no exception.
    assert!(
        p.check(&c, &[Operation::new("tools/list", Some("x".into()), None)])
            .is_err()
    );
    // Listing the method lets it through, with its method rule.
    let listed = targets_policy().method("acme/files/read", Requirement::all(["acme"]));
    assert!(listed.check(&c, std::slice::from_ref(&custom_uri)).is_err());
    assert!(
        listed
            .check(&ctx(&["acme"], &[]), std::slice::from_ref(&custom_uri))
            .is_ok()
    );
    // A policy open to unlisted methods and targets alike stays open.
    let open = ScopePolicy::new(Unlisted::Allow);
    assert!(open.check(&c, &[custom_uri, custom_name]).is_ok());
}

#[test]
fn prefix_wildcards_are_bounded_at_a_colon() {
    let w = PrefixWildcard;
    assert!(w.implies("data:*", "data:read"));
    assert!(w.implies("data:*", "data:x:y"));
    assert!(w.implies("data:x:*", "data:x:y"));
    assert!(!w.implies("data:x:*", "data:y"));
    for granted in ["data*", "d*", "*", ":*", "data:**"] {
        for required in ["data:read", "database:drop", "data:admin", "d"] {
            assert!(
                !w.implies(granted, required),
                "{granted} implies {required}"
            );
        }
    }
    let p = policy();
    assert!(
        p.check(&ctx(&["data*"], &[]), &[call("delete_data")])
            .is_err()
    );
    assert!(p.check(&ctx(&["d*"], &[]), &[call("read_data")]).is_err());
}

#[test]
fn dot_segments_and_encoded_separators_do_not_get_a_prefix_rule() {
    let p = ScopePolicy::new(Unlisted::Allow)
        .resource_prefix("file:///public/", Requirement::default())
        .resource_prefix("file:///secret/", Requirement::all(["files:secret"]));
    let anyone = ctx(&[], &[]);
    let read = |uri: &str| res("resources/read", uri);
    assert!(p.check(&anyone, &[read("file:///public/x")]).is_ok());
    for uri in [
        "file:///public/../secret/x",
        "file:///public/./x",
        "file:///public/..",
        "file:///public/%2e%2e/secret/x",
        "file:///public/%2E%2E/secret/x",
        "file:///public/.%2e/secret/x",
        "file:///public%2f..%2fsecret/x",
        "file:///public/%2F/x",
        "file:///public/..%5csecret/x",
        "file:///public/..\\secret/x",
        "file:///public/%252e%252e/secret/x",
        "file:///public/%73ecret",
        "file:///public/%zz",
        "file:///public/%2",
        "file:///public//x",
        "file:///public/\u{0}x",
        "file:///public/x?..%2f",
        "https://user@host/public/",
    ] {
        let err = p.check(&anyone, &[read(uri)]).unwrap_err();
        assert_eq!(err.detail(), Some("ambiguous_uri"), "{uri}");
        assert!(!p.permits(&anyone, &read(uri)), "{uri}");
    }
    // A policy with no resource rule does not judge URIs.
    assert!(
        ScopePolicy::new(Unlisted::Allow)
            .check(&anyone, &[read("file:///a/../b")])
            .is_ok()
    );
}

#[test]
fn scheme_host_and_hex_case_do_not_escape_a_rule() {
    let p = ScopePolicy::new(Unlisted::Allow)
        .resource_prefix("https://Example.com/secret/", Requirement::all(["s"]))
        .resource("file:///a%c3%a9", Requirement::all(["e"]));
    let anyone = ctx(&[], &[]);
    let read = |uri: &str| res("resources/read", uri);
    let needs = |uri: &str, scope: &str| {
        assert_eq!(
            p.check(&anyone, &[read(uri)])
                .unwrap_err()
                .required_scopes(),
            [scope],
            "{uri}"
        );
    };
    for uri in [
        "HTTPS://EXAMPLE.COM/secret/k",
        "https://example.com/secret/k",
        "hTTps://example.COM/secret/",
    ] {
        needs(uri, "s");
    }
    // The path stays case-sensitive.
    assert!(
        p.check(&anyone, &[read("https://example.com/SECRET/k")])
            .is_ok()
    );
    for uri in ["file:///a%C3%A9", "FILE:///a%c3%A9"] {
        needs(uri, "e");
    }
    // Templates (`{…}`) and non-hierarchical URIs are fine.
    assert!(
        p.check(
            &anyone,
            &[read("file:///{path}"), read("urn:isbn:0451450523")]
        )
        .is_ok()
    );
}

#[test]
fn unlisted_methods_and_targets_have_separate_defaults() {
    let p = ScopePolicy::new(Unlisted::Deny)
        .unlisted_methods(Unlisted::Allow)
        .method("tools/call", Requirement::all(["mcp"]))
        .tool("t", Requirement::default());
    let c = ctx(&["mcp"], &[]);
    let op = |m: &str| Operation::new(m, None, None);
    assert!(p.check(&c, &[op("initialize"), op("tools/list")]).is_ok());
    assert!(p.check(&c, &[call("t")]).is_ok());
    // A rule on `tools/call` does not list every tool.
    let err = p.check(&c, &[call("other")]).unwrap_err();
    assert_eq!(err.detail(), Some("unlisted_operation"));
    // The method rule still applies to listed tools.
    assert!(p.check(&ctx(&[], &[]), &[call("t")]).is_err());
    let read = Operation::new("resources/read", None, Some("file:///x".into()));
    assert!(
        p.check(&c, &[read]).is_err(),
        "an unnamed resource is a target"
    );
    let closed = ScopePolicy::new(Unlisted::Allow).unlisted_methods(Unlisted::Deny);
    assert!(closed.check(&c, &[op("ping")]).is_err());
    assert!(closed.check(&c, &[call("anything")]).is_ok());
}

#[test]
fn permits_matches_check_for_single_operations() {
    let p = policy().every_request(Requirement::any(["data:read", "data:admin"]));
    for scopes in [&["data:read"][..], &["data:write"], &["data:admin"], &[]] {
        let c = ctx(scopes, &[]);
        for tool in ["read_data", "write_data", "delete_data", "whoami", "nope"] {
            let op = call(tool);
            assert_eq!(
                p.permits(&c, &op),
                p.check(&c, std::slice::from_ref(&op)).is_ok(),
                "{scopes:?} {tool}"
            );
        }
    }
}

#[test]
fn require_uses_implication_and_roles() {
    let p = policy().roles(RoleHierarchy::new().include("admin", "editor"));
    let c = ctx(&["data:write"], &["admin"]);
    assert!(
        p.require(&c, &Requirement::all(["data:read"]).and_role("editor"))
            .is_ok()
    );
    let err = p
        .require(&c, &Requirement::all(["data:read"]).and_role("owner"))
        .unwrap_err();
    assert_eq!(err.detail(), Some("missing_role"));
    let err = p
        .require(&c, &Requirement::any(["x:a", "x:b"]))
        .unwrap_err();
    assert_eq!(err.required_scopes(), ["x:a"]);
}
