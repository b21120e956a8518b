//! Per-request cost of `ScopeLayer` (read the body, find the JSON-RPC operation, apply the
//! policy, hand the same bytes on) around an echo service that reads the body, against the
//! same echo service without `ScopeLayer` in the same run, for a 1 KiB and a 1 MiB
//! `tools/call`; the 1 MiB body is also compared with a bare `serde_json` skim of its bytes
//! (`IgnoredAny`), the least any JSON-reading authorizer could do. Also timed: the 403 path
//! (`delete_data` without `data:admin`), and `parse_operations`, the skim and
//! `ScopePolicy::check` alone on the 1 KiB body, to split the layer's cost.
//!
//! The `adversarial` group times `parse_operations` next to the `IgnoredAny` skim of the same
//! bytes, in the same run, on bodies built to find super-linear paths (security review H1):
//! 4 MiB of ~500k distinct short keys at the envelope and inside `params`, nesting to
//! serde_json's depth limit, strings made of escapes, a batch of 10,000 tiny messages
//! (refused after element 101) and one of 100 (the cap), and `subscriptions/listen` with the
//! most URIs accepted (1000) and with a 4 MiB list (refused after URI 1001). The target is
//! each parse within 2x its skim.
//!
//! Run: `cargo bench --bench scope`; only the adversarial bodies, briefly:
//! `cargo bench --bench scope -- adversarial --warm-up-time 1 --measurement-time 3`.
//! The request (with the `AuthContext` an auth layer would have inserted) is built outside
//! the timed section (`iter_batched`), so every figure is the service call alone. The bodies
//! are in memory, so every future here is ready at once (inside a Tokio runtime context, so
//! the layer's body-read timeout is armed as in a server).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_main};
use http::{Request, Response};
use http_body_util::BodyExt;
use mcp_auth::scope::{
    ImpliedScopes, Requirement, ScopeLayer, ScopePolicy, Unlisted, WildcardAndPairs,
    parse_operations,
};
use mcp_auth::{AuthContext, AuthMethod};
use serde::de::IgnoredAny;
use tower::{Layer, Service, service_fn};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// Polls a future that is expected to be ready at once (the bodies are in memory, so even
/// `ScopeLayer`'s boxed future collects without waiting); panics otherwise so a regression to
/// a really asynchronous path cannot go unnoticed.
fn ready<F: Future>(fut: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("future was not ready at once"),
    }
}

/// The inner service: reads the whole body, as a real MCP server does, and answers 200.
fn echo() -> impl Service<
    Request<Body>,
    Response = Response<Body>,
    Error = Infallible,
    Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send + 'static,
> + Clone
+ Send
+ 'static {
    service_fn(|req: Request<Body>| async move {
        let bytes = req.into_body().collect().await.unwrap().to_bytes();
        black_box(bytes);
        Ok::<_, Infallible>(Response::new(Body::empty()))
    })
}

fn policy() -> ScopePolicy {
    ScopePolicy::new(Unlisted::Deny)
        .method("initialize", Requirement::default())
        .method("tools/list", Requirement::default())
        .tool("read_data", Requirement::all(["data:read"]))
        .tool("write_data", Requirement::all(["data:write"]))
        .tool("delete_data", Requirement::all(["data:admin"]))
        .implication(WildcardAndPairs(
            ImpliedScopes::new().pair("data:write", "data:read"),
        ))
}

/// A POST to `/mcp` carrying `body`, authenticated as an auth layer would have left it.
fn request(body: &Bytes) -> Request<Body> {
    let mut req = Request::post("/mcp")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("content-length", body.len())
        .body(Body::from(body.clone()))
        .unwrap();
    req.extensions_mut().insert(caller());
    req
}

/// The caller an auth layer would have recognised: `data:write` (which implies `data:read`)
/// but not `data:admin`.
fn caller() -> AuthContext {
    AuthContext::builder("u", AuthMethod::ApiKey)
        .scopes(["data:read", "data:write"])
        .build()
}

/// `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":TOOL,"arguments":
/// {"key":"k","value":"xxx…"}}}`, padded with ASCII to exactly `len` bytes.
fn small_call(tool: &str, len: usize) -> Bytes {
    let head = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"key":"k","value":""#
    );
    let tail = r#""}}}"#;
    let pad = len - head.len() - tail.len();
    let filler = "The quick brown fox jumps over the lazy dog. ";
    let value: String = filler.chars().cycle().take(pad).collect();
    let body = format!("{head}{value}{tail}");
    assert_eq!(body.len(), len);
    Bytes::from(body)
}

/// A `write_data` call of exactly `len` bytes whose arguments look like real data: a long
/// string of JSON-escaped text (quotes, backslashes, `\n`, `\t`, `\uXXXX` escapes, raw
/// multi-byte UTF-8) and an array of small records of every JSON type.
fn large_call(len: usize) -> Bytes {
    let raw = "Line with \"quotes\", a\ttab, a path C:\\tmp\\data, ünïcødé ✓ 日本語 🎉\n";
    let escaped = serde_json::to_string(raw).unwrap();
    let fragment = format!(r"{}\u00e9\u2713 ", &escaped[1..escaped.len() - 1]);
    let rows: Vec<String> = (0..2_000)
        .map(|i| {
            format!(
                r#"{{"id":{i},"name":"row-{i}","tags":["alpha","beta","ünï"],"score":{}.25,"ok":{},"note":null,"nested":{{"a":[1,2,3],"b":"\"q\"\n"}}}}"#,
                i * 7,
                i % 2 == 0
            )
        })
        .collect();
    let head = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_data","arguments":{"key":"k","rows":["#;
    let middle = r#"],"value":""#;
    let tail = r#""}}}"#;
    let rows = rows.join(",");
    let fixed = head.len() + rows.len() + middle.len() + tail.len();
    let mut value = String::with_capacity(len - fixed);
    while value.len() + fragment.len() <= len - fixed {
        value.push_str(&fragment);
    }
    while value.len() < len - fixed {
        value.push('x');
    }
    let body = format!("{head}{rows}{middle}{value}{tail}");
    assert_eq!(body.len(), len);
    // Valid JSON, and the operation the layer will find.
    serde_json::from_str::<serde_json::Value>(&body).unwrap();
    assert_eq!(
        parse_operations(body.as_bytes()).unwrap()[0].name(),
        Some("write_data")
    );
    Bytes::from(body)
}

fn bench_scope(c: &mut Criterion) {
    let mut group = c.benchmark_group("scope");

    let mut bare = echo();
    let mut scoped = ScopeLayer::new(policy()).layer(echo());
    let mut scoped_2m = ScopeLayer::new(policy()).max_body(2 * MIB).layer(echo());

    // 1 KiB tools/call: with and without the layer; the parse, the bare skim and the policy
    // decision alone.
    let small = small_call("write_data", KIB);
    group.throughput(Throughput::Bytes(small.len() as u64));
    group.bench_with_input(
        BenchmarkId::new("tools_call_1k", "no_scope_layer"),
        &small,
        |b, body| {
            b.iter_batched(
                || request(body),
                |req| {
                    let res = ready(bare.call(req)).unwrap();
                    assert_eq!(res.status(), 200);
                    res
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.bench_with_input(
        BenchmarkId::new("tools_call_1k", "scope_layer"),
        &small,
        |b, body| {
            b.iter_batched(
                || request(body),
                |req| {
                    let res = ready(scoped.call(req)).unwrap();
                    assert_eq!(res.status(), 200);
                    res
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.bench_with_input(
        BenchmarkId::new("tools_call_1k", "parse_operations"),
        &small,
        |b, body| b.iter(|| parse_operations(black_box(body)).unwrap()),
    );
    group.bench_with_input(
        BenchmarkId::new("tools_call_1k", "skim"),
        &small,
        |b, body| b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(body)).unwrap()),
    );
    // The policy decision alone, on the operation already read.
    let (policy, caller) = (policy(), caller());
    let ops = parse_operations(&small).unwrap();
    group.bench_function(BenchmarkId::new("tools_call_1k", "policy_check"), |b| {
        b.iter(|| policy.check(black_box(&caller), black_box(&ops)).unwrap())
    });

    // The 403 path: `delete_data` needs `data:admin`, which the caller lacks.
    let denied = small_call("delete_data", KIB);
    group.bench_with_input(
        BenchmarkId::new("denied_1k", "scope_layer"),
        &denied,
        |b, body| {
            b.iter_batched(
                || request(body),
                |req| {
                    let res = ready(scoped.call(req)).unwrap();
                    assert_eq!(res.status(), 403);
                    res
                },
                BatchSize::SmallInput,
            )
        },
    );

    // 1 MiB tools/call: with and without the layer (4 MiB and 2 MiB limits), the parse
    // alone, and the skim every JSON reader pays.
    let large = large_call(MIB);
    group.throughput(Throughput::Bytes(large.len() as u64));
    group.sample_size(50);
    group.measurement_time(Duration::from_secs(6));
    group.bench_with_input(
        BenchmarkId::new("tools_call_1m", "no_scope_layer"),
        &large,
        |b, body| {
            b.iter_batched(
                || request(body),
                |req| {
                    let res = ready(bare.call(req)).unwrap();
                    assert_eq!(res.status(), 200);
                    res
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.bench_with_input(
        BenchmarkId::new("tools_call_1m", "scope_layer"),
        &large,
        |b, body| {
            b.iter_batched(
                || request(body),
                |req| {
                    let res = ready(scoped.call(req)).unwrap();
                    assert_eq!(res.status(), 200);
                    res
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.bench_with_input(
        BenchmarkId::new("tools_call_1m", "scope_layer_max_2m"),
        &large,
        |b, body| {
            b.iter_batched(
                || request(body),
                |req| {
                    let res = ready(scoped_2m.call(req)).unwrap();
                    assert_eq!(res.status(), 200);
                    res
                },
                BatchSize::SmallInput,
            )
        },
    );
    group.bench_with_input(
        BenchmarkId::new("tools_call_1m", "parse_operations"),
        &large,
        |b, body| b.iter(|| parse_operations(black_box(body)).unwrap()),
    );
    group.bench_with_input(
        BenchmarkId::new("tools_call_1m", "skim"),
        &large,
        |b, body| b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(body)).unwrap()),
    );
    group.finish();
}

/// Keys `"0"`, `"1"`, …, `"zz"`, … (base 62, shortest first), skipping the members
/// `parse_operations` tracks (a generated `"id"` would be a real duplicate).
fn short_keys() -> impl Iterator<Item = String> {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    const TRACKED: &[&str] = &[
        "jsonrpc",
        "id",
        "method",
        "params",
        "result",
        "error",
        "name",
        "uri",
        "ref",
        "notifications",
        "arguments",
        "type",
    ];
    (1u32..=4)
        .flat_map(|len| {
            (0..62u64.pow(len)).map(move |mut n| {
                let mut key = vec![b'0'; len as usize];
                for slot in key.iter_mut().rev() {
                    *slot = DIGITS[(n % 62) as usize];
                    n /= 62;
                }
                String::from_utf8(key).unwrap()
            })
        })
        .filter(|k| !TRACKED.contains(&k.as_str()))
}

/// `head` + `"k":0` members with distinct short keys + `tail`, at most `len` bytes; returns
/// the body and the key count.
fn many_keys(head: &str, tail: &str, len: usize) -> (Bytes, usize) {
    let mut body = String::with_capacity(len);
    body.push_str(head);
    let mut count = 0;
    for key in short_keys() {
        let member = format!("\"{key}\":0,");
        if body.len() + member.len() + tail.len() > len {
            break;
        }
        body.push_str(&member);
        count += 1;
    }
    body.pop(); // the last comma
    body.push_str(tail);
    (Bytes::from(body), count)
}

/// A `ping` whose `params` holds arrays nested to depth `depth` (counted from the body's
/// top), repeated to `len` bytes.
fn deep(len: usize, depth: usize) -> Bytes {
    let head = r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":["#;
    let tail = "]}}";
    // The body's object, params and "a" take three levels.
    let unit = format!("{}{}", "[".repeat(depth - 3), "]".repeat(depth - 3));
    let mut body = String::from(head);
    while body.len() + unit.len() + 1 + tail.len() <= len {
        body.push_str(&unit);
        body.push(',');
    }
    body.pop();
    body.push_str(tail);
    Bytes::from(body)
}

/// A `tools/call` whose `name` (decoded by the parser) and `arguments` value (skimmed) are
/// each about `len / 2` bytes of escapes.
fn escapes(len: usize) -> Bytes {
    let fragment = r#"\u00e9\n\"\\\t\ud83c\udf89\/"#;
    let half: String = fragment.repeat(len / 2 / fragment.len());
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{half}","arguments":{{"v":"{half}"}}}}}}"#
    ))
}

/// A batch of `n` `tools/call`s of `read_data`.
fn batch(n: usize) -> Bytes {
    let msg = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_data"}}"#;
    Bytes::from(format!("[{}]", vec![msg; n].join(",")))
}

/// `subscriptions/listen` with `n` resource URIs.
fn listen(n: usize) -> Bytes {
    let uris: Vec<String> = (0..n).map(|i| format!("\"file:///r/{i}\"")).collect();
    Bytes::from(format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"subscriptions/listen","params":{{"notifications":{{"resourceSubscriptions":[{}]}}}}}}"#,
        uris.join(",")
    ))
}

fn bench_adversarial(c: &mut Criterion) {
    let mut group = c.benchmark_group("adversarial");
    group.sample_size(10);
    let envelope = r#"{"jsonrpc":"2.0","id":1,"method":"ping","#;
    let (keys_envelope, n_env) = many_keys(envelope, "}", 4 * MIB);
    let in_params = r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"#;
    let (keys_params, n_params) = many_keys(in_params, "}}", 4 * MIB);
    eprintln!("distinct keys: {n_env} at the envelope, {n_params} in params");
    // Expected outcome of `parse_operations`: how many operations, or the refusal.
    let cases: Vec<(&str, Bytes, Result<usize, &str>)> = vec![
        ("keys_envelope_4m", keys_envelope, Ok(1)),
        ("keys_params_4m", keys_params.clone(), Ok(1)),
        ("deep_nesting_4m", deep(4 * MIB, 127), Ok(1)),
        ("escapes_4m", escapes(4 * MIB), Ok(1)),
        ("batch_10000", batch(10_000), Err("batch_too_large")),
        ("batch_100", batch(100), Ok(100)),
        ("listen_1000_uris", listen(1000), Ok(1000)),
        (
            "listen_200000_uris",
            listen(200_000),
            Err("too_many_targets"),
        ),
    ];
    for (name, body, expected) in &cases {
        let got = parse_operations(body)
            .map(|ops| ops.len())
            .map_err(|e| e.reason());
        assert_eq!(&got, expected, "{name}");
        serde_json::from_slice::<IgnoredAny>(body).unwrap();
        eprintln!("{name}: {} bytes", body.len());
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(
            BenchmarkId::new(*name, "parse_operations"),
            body,
            |b, body| b.iter(|| parse_operations(black_box(body)).map(|ops| ops.len()).ok()),
        );
        group.bench_with_input(BenchmarkId::new(*name, "skim"), body, |b, body| {
            b.iter(|| serde_json::from_slice::<IgnoredAny>(black_box(body)).unwrap())
        });
    }
    // The whole layer on the params body, next to the same echo service without it.
    group.throughput(Throughput::Bytes(keys_params.len() as u64));
    let mut bare = echo();
    let mut scoped = ScopeLayer::new(ScopePolicy::new(Unlisted::Allow)).layer(echo());
    group.bench_with_input(
        BenchmarkId::new("keys_params_4m", "no_scope_layer"),
        &keys_params,
        |b, body| {
            b.iter_batched(
                || request(body),
                |req| assert_eq!(ready(bare.call(req)).unwrap().status(), 200),
                BatchSize::LargeInput,
            )
        },
    );
    group.bench_with_input(
        BenchmarkId::new("keys_params_4m", "scope_layer"),
        &keys_params,
        |b, body| {
            b.iter_batched(
                || request(body),
                |req| assert_eq!(ready(scoped.call(req)).unwrap().status(), 200),
                BatchSize::LargeInput,
            )
        },
    );
    group.finish();
}

fn benches() {
    // A Tokio context, so `ScopeLayer` arms its body-read timer as it does in a server.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let _context = rt.enter();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .configure_from_args();
    bench_scope(&mut c);
    bench_adversarial(&mut c);
    c.final_summary();
}

criterion_main!(benches);
