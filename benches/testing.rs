//! Cost of the test kit's `WWW-Authenticate` parser (`mcp_auth::testing::parse_challenges`) on
//! a challenge this crate renders, and on headers built to find super-linear paths: 100,000
//! commas, 10,000 parameters, an unclosed quoted string after 100 KiB, a 100 KiB token68,
//! 100 KiB of escapes, and 50,000 failing token68 look-aheads. Each input's throughput
//! (bytes per second) should be of the same order: the parser is linear.
//!
//! Run: `cargo bench --bench testing` (feature `testing`, on for the dev-dependency);
//! briefly: `cargo bench --bench testing -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mcp_auth::testing::parse_challenges;

fn inputs() -> Vec<(&'static str, String)> {
    const N: usize = 100_000;
    let mut params = String::from("Bearer ");
    for i in 0..10_000 {
        params.push_str(&format!("p{i}=\"v\", "));
    }
    vec![
        (
            "rendered_401",
            r#"Bearer error="invalid_token", error_description="invalid access token", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", scope="data:read data:write""#
                .to_owned(),
        ),
        ("commas_100k", ",".repeat(N)),
        ("params_10k", params),
        ("unclosed_quote_100k", format!("Bearer a=\"{}", "x".repeat(N))),
        ("token68_100k", format!("Negotiate {}==", "a".repeat(N))),
        ("escapes_100k", format!("Bearer a=\"{}\"", "\\\"".repeat(N / 2))),
        ("lookahead_50k", format!("Bearer {}", "a=a ".repeat(N / 4))),
    ]
}

fn bench_parser(c: &mut Criterion) {
    let mut group = c.benchmark_group("challenge_parser");
    for (name, input) in inputs() {
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(name), &input, |b, input| {
            b.iter(|| black_box(parse_challenges(black_box(input))).ok());
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(3));
    targets = bench_parser
}
criterion_main!(benches);
