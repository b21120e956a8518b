use std::time::{Duration, Instant};

use http::HeaderValue;
use proptest::prelude::*;

use super::*;

fn one(value: &str) -> Vec<ParsedChallenge> {
    parse_challenges(value).unwrap_or_else(|e| panic!("{value:?}: {e}"))
}

fn c(scheme: &str, params: &[(&str, &str)]) -> ParsedChallenge {
    ParsedChallenge {
        scheme: scheme.to_owned(),
        params: params
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect(),
        token68: None,
    }
}

fn t68(scheme: &str, token: &str) -> ParsedChallenge {
    ParsedChallenge {
        scheme: scheme.to_owned(),
        params: Vec::new(),
        token68: Some(token.to_owned()),
    }
}

#[test]
fn valid_headers_parse_as_the_grammar_says() {
    let table: Vec<(&str, Vec<ParsedChallenge>)> = vec![
        // RFC 9110 §11.6.1's example.
        (
            r#"Newauth realm="apps", type=1, title="Login to \"apps\"", Basic realm="simple""#,
            vec![
                c(
                    "Newauth",
                    &[
                        ("realm", "apps"),
                        ("type", "1"),
                        ("title", "Login to \"apps\""),
                    ],
                ),
                c("Basic", &[("realm", "simple")]),
            ],
        ),
        // What this crate renders.
        (
            r#"Bearer error="invalid_token", error_description="invalid access token", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#,
            vec![c(
                "Bearer",
                &[
                    ("error", "invalid_token"),
                    ("error_description", "invalid access token"),
                    (
                        "resource_metadata",
                        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
                    ),
                ],
            )],
        ),
        ("Bearer", vec![c("Bearer", &[])]),
        (
            "Bearer, ApiKey header=\"x-api-key\"",
            vec![c("Bearer", &[]), c("ApiKey", &[("header", "x-api-key")])],
        ),
        ("Negotiate abc==", vec![t68("Negotiate", "abc==")]),
        (
            "Negotiate a+b/c-d._~=, Basic realm=x",
            vec![
                t68("Negotiate", "a+b/c-d._~="),
                c("Basic", &[("realm", "x")]),
            ],
        ),
        // Empty list elements and whitespace, BWS around `=`.
        (
            " ,, Bearer ,, realm = \"x\" ,\t, Basic,",
            vec![c("Bearer", &[("realm", "x")]), c("Basic", &[])],
        ),
        // Escapes: a quoted-pair stands for its character.
        (
            r#"Bearer a="x\\y\"z\q""#,
            vec![c("Bearer", &[("a", "x\\y\"zq")])],
        ),
        (
            r#"Bearer a="", b="with, comma=and space""#,
            vec![c("Bearer", &[("a", ""), ("b", "with, comma=and space")])],
        ),
        ("Bearer realm", vec![t68("Bearer", "realm")]),
        ("", vec![]),
        (" , ", vec![]),
    ];
    for (value, expected) in table {
        assert_eq!(one(value), expected, "{value:?}");
    }
}

#[test]
fn names_compare_case_insensitively() {
    let all = one(r#"BEARER Error="invalid_token", SCOPE="a  b""#);
    assert!(all[0].is("bearer"));
    assert_eq!(all[0].scheme(), "BEARER");
    assert_eq!(all[0].param("error"), Some("invalid_token"));
    assert_eq!(all[0].param("ERROR"), Some("invalid_token"));
    assert_eq!(all[0].scopes(), ["a", "b"]);
    assert_eq!(all[0].params()[0].0, "Error", "names kept as sent");
}

#[test]
fn malformed_headers_are_errors_with_a_position() {
    let table = [
        (
            r#"Bearer error="invalid_token"#,
            13,
            "unclosed quoted string",
        ),
        (r#"Bearer a="x\"#, 9, "unclosed quoted string"),
        ("Bearer a=b c=d", 11, "expected a comma or the end"),
        ("realm=x, Bearer", 0, "a parameter before any auth-scheme"),
        (
            "Bearer a=1, A=2",
            12,
            "a parameter named twice in one challenge",
        ),
        ("Basic abc=, realm=x", 12, "a parameter after a token68"),
        ("Bearer b=1, a=", 14, "expected a token or a quoted string"),
        (
            "Bearer b=1, a= ,",
            15,
            "expected a token or a quoted string",
        ),
        ("Bearer a b", 7, "expected a token68 or an auth-param"),
        (
            "Bearer, Basic a b=1",
            14,
            "expected a token68 or an auth-param",
        ),
        ("Bearer \"x\"", 7, "expected a token68 or an auth-param"),
        ("Bearer@", 6, "expected a space after the scheme"),
        (
            "Bearer a=1, \"x\"",
            12,
            "expected an auth-scheme or a parameter name",
        ),
        ("@", 0, "expected an auth-scheme or a parameter name"),
        (
            "Bearer a=\"x\u{7f}\"",
            11,
            "control character in a quoted string",
        ),
    ];
    for (value, offset, reason) in table {
        let err = parse_challenges(value).unwrap_err();
        assert_eq!((err.offset(), err.reason()), (offset, reason), "{value:?}");
        assert_eq!(err.header(), 0);
        assert!(err.to_string().contains(reason));
    }
}

#[test]
fn every_header_is_read_in_order_and_errors_name_the_header() {
    let mut headers = HeaderMap::new();
    headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=a"));
    headers.append(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("DPoP algs=\"ES256\", Basic"),
    );
    let all = challenges(&headers).unwrap();
    let schemes: Vec<_> = all.iter().map(ParsedChallenge::scheme).collect();
    assert_eq!(schemes, ["Bearer", "DPoP", "Basic"]);

    headers.append(WWW_AUTHENTICATE, HeaderValue::from_static("Basic a=\"open"));
    assert_eq!(challenges(&headers).unwrap_err().header(), 2);
    assert!(challenges(&HeaderMap::new()).unwrap().is_empty());

    // obs-text in a quoted string is kept (lossily, as UTF-8).
    let mut headers = HeaderMap::new();
    headers.insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_bytes(b"Bearer realm=\"caf\xe9\"").unwrap(),
    );
    assert_eq!(
        challenges(&headers).unwrap()[0].param("realm"),
        Some("caf\u{fffd}")
    );
}

#[test]
fn display_renders_a_parsable_canonical_form() {
    let all = one(r#"Bearer a=x, b="q\"uote\\", Negotiate abc="#);
    assert_eq!(all[0].to_string(), r#"Bearer a="x", b="q\"uote\\""#);
    assert_eq!(all[1].to_string(), "Negotiate abc=");
    assert_eq!(one(&all[0].to_string()), vec![all[0].clone()]);
}

fn headers_of(value: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(WWW_AUTHENTICATE, HeaderValue::from_str(value).unwrap());
    headers
}

#[test]
fn assertions_pass_on_what_they_check() {
    let headers = headers_of(
        r#"Bearer error="insufficient_scope", scope="data:read data:write", resource_metadata="https://m/.well-known/oauth-protected-resource", ApiKey header="x-api-key""#,
    );
    let checked = assert_challenge(&headers, "bearer")
        .first()
        .error("insufficient_scope")
        .param(
            "resource_metadata",
            "https://m/.well-known/oauth-protected-resource",
        )
        .has_param("scope")
        .scope_contains("data:read")
        .scope_contains("data:write")
        .no_param("realm");
    assert_eq!(checked.all().len(), 2);
    assert_eq!(checked.challenge().scheme(), "Bearer");
    assert_challenge(&headers, "ApiKey")
        .param("header", "x-api-key")
        .no_error();
    assert_no_challenge(&HeaderMap::new());
}

/// The message of the panic `f` raises.
fn panic_message(f: impl FnOnce() + std::panic::UnwindSafe) -> String {
    let err = std::panic::catch_unwind(f).expect_err("the assertion should fail");
    err.downcast_ref::<String>()
        .cloned()
        .or_else(|| err.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

#[test]
fn failed_assertions_say_what_was_expected_and_found() {
    let headers = headers_of(r#"ApiKey header="k", Bearer error="invalid_token", scope="a""#);
    type Check = Box<dyn FnOnce() + std::panic::UnwindSafe>;
    let cases: Vec<(Check, &str)> = vec![
        (
            Box::new({
                let h = headers.clone();
                move || drop(assert_challenge(&h, "Bearer").error("insufficient_scope"))
            }),
            r#"expected error="insufficient_scope", found "invalid_token""#,
        ),
        (
            Box::new({
                let h = headers.clone();
                move || drop(assert_challenge(&h, "Bearer").first())
            }),
            "expected this challenge to come first",
        ),
        (
            Box::new({
                let h = headers.clone();
                move || drop(assert_challenge(&h, "Bearer").scope_contains("b"))
            }),
            r#"expected scope to list "b""#,
        ),
        (
            Box::new({
                let h = headers.clone();
                move || drop(assert_challenge(&h, "Bearer").no_error())
            }),
            r#"expected no error, found error="invalid_token""#,
        ),
        (
            Box::new({
                let h = headers.clone();
                move || drop(assert_challenge(&h, "Bearer").param("realm", "x"))
            }),
            r#"expected realm="x", found no realm"#,
        ),
        (
            Box::new({
                let h = headers.clone();
                move || drop(assert_challenge(&h, "Bearer").has_param("realm"))
            }),
            "expected a realm parameter",
        ),
        (
            Box::new({
                let h = headers.clone();
                move || drop(assert_challenge(&h, "DPoP"))
            }),
            "no DPoP challenge in WWW-Authenticate",
        ),
        (
            Box::new(|| drop(assert_challenge(&headers_of("Bearer a=\"x"), "Bearer"))),
            "does not parse",
        ),
        (
            Box::new({
                let h = headers.clone();
                move || assert_no_challenge(&h)
            }),
            "expected no WWW-Authenticate",
        ),
    ];
    for (f, expected) in cases {
        let message = panic_message(f);
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }
    // The message shows the challenges it looked at.
    let message = panic_message(move || drop(assert_challenge(&headers, "Bearer").error("x")));
    assert!(message.contains(r#"ApiKey header=\"k\""#), "{message}");
}

/// Parses `value`, asserting it takes less than `limit` (generous: a quadratic parser takes
/// minutes on these inputs, a linear one milliseconds).
fn timed(value: &str, limit: Duration) -> Result<Vec<ParsedChallenge>, ChallengeParseError> {
    let start = Instant::now();
    let result = parse_challenges(value);
    let took = start.elapsed();
    assert!(took < limit, "{} bytes took {took:?}", value.len());
    result
}

#[test]
fn adversarial_headers_are_read_in_linear_time() {
    const N: usize = 200_000;
    let limit = Duration::from_secs(5);
    assert!(timed(&",".repeat(N), limit).unwrap().is_empty());
    assert!(timed(&", \t".repeat(N), limit).unwrap().is_empty());
    // Many parameters (distinct names), then a duplicate at the very end.
    let mut many = String::from("Bearer ");
    for i in 0..N / 10 {
        many.push_str(&format!("p{i}=v, "));
    }
    assert_eq!(timed(&many, limit).unwrap()[0].params().len(), N / 10);
    many.push_str("p0=again");
    assert!(timed(&many, limit).is_err());
    // An unclosed quote after a long run; a long token68; many schemes; many escapes.
    let unclosed = format!("Bearer a=\"{}", "x".repeat(N));
    assert_eq!(timed(&unclosed, limit).unwrap_err().offset(), 9);
    let long68 = format!("Negotiate {}==", "a".repeat(N));
    assert_eq!(
        timed(&long68, limit).unwrap()[0].token68().unwrap().len(),
        N + 2
    );
    let schemes = "A, ".repeat(N);
    assert_eq!(timed(&schemes, limit).unwrap().len(), N);
    let escapes = format!("Bearer a=\"{}\"", "\\\"".repeat(N));
    assert_eq!(
        timed(&escapes, limit).unwrap()[0].param("a").unwrap().len(),
        N
    );
    // Token68 look-ahead that fails again and again ("a a a a …=" is not a token68).
    let lookahead = format!("Bearer {}", "a ".repeat(N));
    assert!(timed(&lookahead, limit).is_err());
    let equals = format!("Bearer {}x", "a=".repeat(N));
    assert!(timed(&equals, limit).is_err());
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}"
}

/// A printable value (quotes, backslashes, commas, `=`, spaces and non-ASCII included).
fn value() -> impl Strategy<Value = String> {
    "[ -~\u{a0}-\u{ff}]{0,20}"
}

fn challenge() -> impl Strategy<Value = ParsedChallenge> {
    (token(), prop::collection::btree_map(token(), value(), 0..6)).prop_map(|(scheme, params)| {
        // Distinct names case-insensitively.
        let mut seen = HashSet::new();
        let params = params
            .into_iter()
            .filter(|(n, _)| seen.insert(n.to_ascii_lowercase()))
            .collect();
        ParsedChallenge {
            scheme,
            params,
            token68: None,
        }
    })
}

proptest! {
    #[test]
    fn rendered_challenges_parse_back(list in prop::collection::vec(challenge(), 1..5)) {
        let rendered: Vec<String> = list.iter().map(ToString::to_string).collect();
        let value = rendered.join(", ");
        let bytes: Vec<u8> = value.chars().map(|c| c as u32 as u8).collect();
        // As bytes on the wire (Latin-1 for U+00A0..U+00FF), through a HeaderMap.
        let mut headers = HeaderMap::new();
        headers.insert(WWW_AUTHENTICATE, HeaderValue::from_bytes(&bytes).unwrap());
        let parsed = challenges(&headers).unwrap();
        prop_assert_eq!(parsed.len(), list.len());
        for (p, l) in parsed.iter().zip(&list) {
            prop_assert_eq!(&p.scheme, &l.scheme);
            prop_assert_eq!(p.params.len(), l.params.len());
            for ((pn, pv), (ln, lv)) in p.params.iter().zip(&l.params) {
                prop_assert_eq!(pn, ln);
                // The value's bytes come back read as UTF-8 (lossily).
                let latin1: Vec<u8> = lv.chars().map(|c| c as u32 as u8).collect();
                prop_assert_eq!(pv, &String::from_utf8_lossy(&latin1).into_owned());
            }
        }
    }

    #[test]
    fn token_values_need_no_quotes(scheme in token(), params in prop::collection::btree_map("[a-z]{1,8}", token(), 1..6)) {
        let value = format!(
            "{scheme} {}",
            params.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join(", ")
        );
        let parsed = parse_challenges(&value).unwrap();
        prop_assert_eq!(parsed.len(), 1);
        let got: Vec<(String, String)> = parsed[0].params().to_vec();
        let want: Vec<(String, String)> = params.into_iter().collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn any_input_gives_an_answer_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&bytes) {
            headers.insert(WWW_AUTHENTICATE, v);
            let _ = challenges(&headers);
        }
        let _ = parse_challenges(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn a_separator_soup_parses_like_its_challenges(
        list in prop::collection::vec(challenge(), 1..4),
        seps in prop::collection::vec("[ ,\t]{0,4}", 5),
    ) {
        // Extra empty list elements between challenges change nothing.
        let mut value = seps[0].clone();
        for (i, c) in list.iter().enumerate() {
            value.push_str(&c.to_string().chars().filter(char::is_ascii).collect::<String>());
            value.push_str(", ");
            value.push_str(&seps[(i + 1) % seps.len()]);
        }
        let parsed = parse_challenges(&value).unwrap();
        let schemes: Vec<&str> = parsed.iter().map(ParsedChallenge::scheme).collect();
        let expected: Vec<&str> = list.iter().map(ParsedChallenge::scheme).collect();
        prop_assert_eq!(schemes, expected);
    }
}
