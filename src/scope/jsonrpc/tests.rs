//! Unit tests of the JSON-RPC reading: strictness, caps and linear time.

use super::*;

fn codes(body: &str) -> &'static str {
    parse_operations(body.as_bytes()).unwrap_err().reason()
}

#[test]
fn duplicate_keys_anywhere_that_matters_are_refused() {
    assert_eq!(
        codes(r#"{"method":"tools/call","method":"tools/list","params":{"name":"a"}}"#),
        "duplicate_key"
    );
    assert_eq!(
        codes(r#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#),
        "duplicate_key"
    );
    assert_eq!(
        codes(r#"{"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}"#),
        "duplicate_key"
    );
    assert_eq!(
        codes(r#"{"method":"tools/call","params":{"n\u0061me":"a","name":"b"}}"#),
        "duplicate_key"
    );
}

#[test]
fn tool_calls_need_a_string_name() {
    assert_eq!(
        codes(r#"{"method":"tools/call","params":{}}"#),
        "missing_name"
    );
    assert_eq!(
        codes(r#"{"method":"tools/call","params":{"name":null}}"#),
        "bad_name"
    );
    assert_eq!(
        codes(r#"{"method":"tools/call","params":{"name":5}}"#),
        "bad_name"
    );
    assert_eq!(codes(r#"{"method":"tools/call"}"#), "missing_name");
}

#[test]
fn batches_report_every_operation() {
    let ops = parse_operations(
        br#"[{"method":"tools/call","params":{"name":"read_data"}},{"method":"tools/call","params":{"name":"delete_data"}}]"#,
    )
    .unwrap();
    let names: Vec<_> = ops.iter().map(|o| o.name().unwrap()).collect();
    assert_eq!(names, ["read_data", "delete_data"]);
    assert_eq!(codes("[]"), "empty_batch");
}

#[test]
fn responses_are_not_operations_and_garbage_is_invalid() {
    assert!(
        parse_operations(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#)
            .unwrap()
            .is_empty()
    );
    assert_eq!(codes("{"), "invalid_json");
    assert_eq!(codes(r#"{"method":"a"} x"#), "invalid_json");
    assert_eq!(codes(r#"{"method":7}"#), "bad_method");
    assert_eq!(
        codes(r#"{"method":"resources/read","params":{}}"#),
        "missing_uri"
    );
}

fn targets(body: &str) -> Vec<(String, Option<String>, Option<String>)> {
    parse_operations(body.as_bytes())
        .unwrap()
        .into_iter()
        .map(|o| (o.method.into_owned(), o.name, o.uri))
        .collect()
}

fn t(
    method: &str,
    name: Option<&str>,
    uri: Option<&str>,
) -> (String, Option<String>, Option<String>) {
    (
        method.to_owned(),
        name.map(str::to_owned),
        uri.map(str::to_owned),
    )
}

/// A body of `{head}"k0":0,"k1":0,…{tail}` with `n` distinct short keys.
fn many_keys(head: &str, n: usize, tail: &str) -> String {
    let mut body = String::from(head);
    for i in 0..n {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&format!("\"{i:x}\":0"));
    }
    body.push_str(tail);
    body
}

#[test]
fn two_hundred_thousand_distinct_keys_parse_in_linear_time() {
    // Quadratic duplicate detection took minutes on this (H1); linear takes milliseconds.
    for (head, tail) in [
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"#,
            "}}",
        ),
        (r#"{"jsonrpc":"2.0","id":1,"method":"ping","#, "}"),
    ] {
        let body = many_keys(head, 200_000, tail);
        let start = std::time::Instant::now();
        let ops = parse_operations(body.as_bytes()).unwrap();
        let took = start.elapsed();
        assert_eq!(ops[0].method(), "ping");
        // Quadratic detection needed 2·10¹⁰ comparisons here (minutes in a debug build);
        // linear reading takes a fraction of a second. Loose for shared, loaded machines.
        assert!(took < std::time::Duration::from_secs(10), "{took:?}");
    }
}

#[test]
fn duplicates_of_members_not_read_are_left_to_the_server() {
    // rmcp's derived structs ignore unknown members, repeated or not.
    assert_eq!(
        targets(r#"{"method":"tools/call","x":1,"x":2,"params":{"name":"a","y":1,"y":2}}"#),
        [t("tools/call", Some("a"), None)]
    );
    // The members rmcp reads are refused when repeated, escaped or not.
    for dup in [
        r#"{"jsonrpc":"2.0","jsonrpc":"2.0","method":"ping"}"#,
        r#"{"id":1,"i\u0064":2,"method":"ping"}"#,
        r#"{"method":"tools/call","params":{"name":"a","arguments":{},"arguments":{}}}"#,
        r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","name":"b"}}}"#,
        r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","type":"ref/resource","name":"a"}}}"#,
        r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["a"],"resourceSubscriptions":["b"]}}}"#,
        r#"{"method":"resources/directory/read","params":{"uri":"a","uri":"b"}}"#,
    ] {
        assert_eq!(codes(dup), "duplicate_key", "{dup}");
    }
}

#[test]
fn every_method_that_names_a_target_yields_it() {
    assert_eq!(
        targets(
            r#"{"jsonrpc":"2.0","id":1,"method":"resources/directory/read","params":{"uri":"file:///secret/"}}"#
        ),
        [t("resources/directory/read", None, Some("file:///secret/"))]
    );
    assert_eq!(
        targets(
            r#"{"jsonrpc":"2.0","id":1,"method":"skills/get","params":{"uri":"skill://ops/SKILL.md"}}"#
        ),
        [t("skills/get", None, Some("skill://ops/SKILL.md"))]
    );
    assert_eq!(
        targets(
            r#"{"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["file:///a","file:///secret/k"]}}}"#
        ),
        [
            t("subscriptions/listen", None, Some("file:///a")),
            t("subscriptions/listen", None, Some("file:///secret/k"))
        ]
    );
    // No URI subscribed: the method alone.
    for none in [
        r#"{"method":"subscriptions/listen","params":{"notifications":{}}}"#,
        r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":null}}}"#,
        r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":[]}}}"#,
    ] {
        assert_eq!(
            targets(none),
            [t("subscriptions/listen", None, None)],
            "{none}"
        );
    }
    assert_eq!(
        targets(
            r#"{"method":"completion/complete","params":{"argument":{"name":"x","value":"y"},"ref":{"type":"ref/prompt","name":"secret_prompt"}}}"#
        ),
        [t("completion/complete", Some("secret_prompt"), None)]
    );
    assert_eq!(
        targets(
            r#"{"method":"completion/complete","params":{"ref":{"uri":"file:///secret/{x}","type":"ref/resource"}}}"#
        ),
        [t("completion/complete", None, Some("file:///secret/{x}"))]
    );
    assert_eq!(
        targets(r#"{"method":"resources/subscribe","params":{"uri":"file:///a"}}"#),
        [t("resources/subscribe", None, Some("file:///a"))]
    );
    // Unknown methods keep their name/uri for the policy.
    assert_eq!(
        targets(r#"{"method":"vendor/thing","params":{"uri":"file:///a","name":"n"}}"#),
        [t("vendor/thing", Some("n"), Some("file:///a"))]
    );
    // `ref`/`notifications` of other methods are not targets (and need not be valid).
    assert_eq!(
        targets(r#"{"method":"tools/call","params":{"name":"a","ref":5,"notifications":[1]}}"#),
        [t("tools/call", Some("a"), None)]
    );
}

#[test]
fn malformed_targets_of_the_new_methods_are_refused() {
    for (body, code) in [
        (r#"{"method":"skills/get","params":{}}"#, "missing_uri"),
        (r#"{"method":"resources/directory/read"}"#, "missing_uri"),
        (
            r#"{"method":"resources/unsubscribe","params":{"uri":7}}"#,
            "bad_uri",
        ),
        (
            r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["a",7]}}}"#,
            "bad_subscriptions",
        ),
        (
            r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":"a"}}}"#,
            "bad_subscriptions",
        ),
        (
            r#"{"method":"subscriptions/listen","params":{"notifications":null}}"#,
            "bad_subscriptions",
        ),
        (
            r#"{"method":"subscriptions/listen","params":{}}"#,
            "bad_subscriptions",
        ),
        (
            r#"{"method":"subscriptions/listen","params":{"uri":"x","notifications":{}}}"#,
            "ambiguous_target",
        ),
        (r#"{"method":"completion/complete","params":{}}"#, "bad_ref"),
        (
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt"}}}"#,
            "bad_ref",
        ),
        (
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":5}}}"#,
            "bad_ref",
        ),
        (
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/other","name":"a"}}}"#,
            "bad_ref",
        ),
        (
            r#"{"method":"completion/complete","params":{"ref":{"type":0,"uri":"a"}}}"#,
            "bad_ref",
        ),
        (
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","uri":"b"}}}"#,
            "bad_ref",
        ),
        (
            r#"{"method":"completion/complete","params":{"ref":"ref/prompt"}}"#,
            "bad_ref",
        ),
        (
            r#"{"method":"completion/complete","params":{"name":"a","ref":{"type":"ref/prompt","name":"a"}}}"#,
            "ambiguous_target",
        ),
    ] {
        assert_eq!(codes(body), code, "{body}");
    }
}

#[test]
fn batches_and_subscriptions_are_capped() {
    let msg = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    let batch = |n: usize| format!("[{}]", vec![msg; n].join(","));
    assert_eq!(parse_operations(batch(100).as_bytes()).unwrap().len(), 100);
    assert_eq!(codes(&batch(101)), "batch_too_large");
    assert_eq!(codes(&batch(10_000)), "batch_too_large");
    assert_eq!(
        parse_operations_limited(batch(3).as_bytes(), 2)
            .unwrap_err()
            .reason(),
        "batch_too_large"
    );
    let uris = |n: usize| {
        let list: Vec<String> = (0..n).map(|i| format!("\"file:///{i}\"")).collect();
        format!(
            r#"{{"method":"subscriptions/listen","params":{{"notifications":{{"resourceSubscriptions":[{}]}}}}}}"#,
            list.join(",")
        )
    };
    assert_eq!(parse_operations(uris(1000).as_bytes()).unwrap().len(), 1000);
    assert_eq!(codes(&uris(1001)), "too_many_targets");
    // Refused at once, even for a method that does not read them.
    let other = uris(5000).replace("subscriptions/listen", "tools/list");
    assert_eq!(codes(&other), "too_many_targets");
    // A body that is not UTF-8 is refused whole, even inside a skimmed value.
    assert_eq!(
        parse_operations(b"{\"method\":\"ping\",\"x\":\"\xff\"}")
            .unwrap_err()
            .reason(),
        "invalid_json"
    );
    // Across a batch too.
    let two = format!("[{},{}]", uris(600), uris(600));
    assert_eq!(codes(&two), "too_many_targets");
}

#[test]
fn batches_of_responses_and_null_params_are_read() {
    use crate::scope::parse_operations;
    let ops = parse_operations(br#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#).unwrap();
    assert!(ops.is_empty());
    assert!(parse_operations(b"[]").is_err());
    let ops =
        parse_operations(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":null}"#).unwrap();
    assert_eq!(ops[0].method(), "ping");
}
#[test]
fn values_the_decision_does_not_use_are_skipped_not_decoded() {
    use crate::scope::parse_operations;
    // Found by fuzzing: a lone surrogate inside `arguments`. The parser skips values it
    // does not decide on (as fast as a serde skim); rmcp refuses such a body itself, so it
    // is never dispatched. What the decision uses (method, name, uri) is decoded strictly.
    let lone = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"k":"\ud800"}}}"#;
    assert!(serde_json::from_slice::<serde_json::Value>(lone).is_err());
    assert_eq!(parse_operations(lone).unwrap()[0].name(), Some("a"));
    let bad_name = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\ud800"}}"#;
    assert!(parse_operations(bad_name).is_err());
}

#[test]
fn params_that_are_neither_object_array_nor_null_are_invalid() {
    for params in ["5", "\"x\"", "true", "1.5"] {
        let body = format!(r#"{{"method":"tools/call","params":{params}}}"#);
        assert_eq!(codes(&body), "invalid_json", "{body}");
    }
    // Positional params carry no target: the name is then missing.
    assert_eq!(
        codes(r#"{"method":"tools/call","params":[{"name":"a"}]}"#),
        "missing_name"
    );
}
