//! Per-request cost of `ScopeLayer` (read the body, find the JSON-RPC operation, apply the
//! policy, hand the same bytes on) around an echo service that reads the body, against the
//! same echo service without `ScopeLayer` in the same run, for a 1 KiB and a 1 MiB
//! `tools/call`; the 1 MiB body is also compared with a bare `serde_json` skim of its bytes
//! (`IgnoredAny`), the least any JSON-reading authorizer could do. Also timed: the 403 path
//! (`delete_data` without `data:admin`), and `parse_operations`, the skim and
//! `ScopePolicy::check` alone on the 1 KiB body, to split the layer's cost.
//!
//! Run: `cargo bench --bench scope`. The request (with the `AuthContext` an auth layer would
//! have inserted) is built outside the timed section (`iter_batched`), so every figure is the
//! service call alone. The bodies are in memory, so every future here is ready at once.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
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

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench_scope
}
criterion_main!(benches);
