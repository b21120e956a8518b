//! Per-request cost of outbound credentials from the cache (the path every tool call takes
//! once a token is held): a client-credentials token, and a token exchanged for the caller,
//! with one cached caller and with the bounded cache full (10,000 callers, the default); and,
//! as the baseline in the same run, building the same outbound request without credentials.
//!
//! Run: `cargo bench --bench outbound --features outbound,testing`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use mcp_auth::outbound::{
    Caller, ClientCredentials, InboundToken, TokenEndpoint, TokenExchange, TokenSource,
};
use mcp_auth::testing::MockAuthServer;
use mcp_auth::{AuthContext, AuthMethod, Secret};

const CALLERS: usize = 10_000;

fn caller(idp: &MockAuthServer, name: &str) -> Caller {
    let token = idp.token().subject(name).scopes(["files:read"]).jwt();
    let ctx = AuthContext::builder(name, AuthMethod::Jwt).build();
    Caller::new(&ctx, Some(&InboundToken::new(Secret::new(token))))
}

fn bench_outbound(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (idp, cc, exchange, one, many) = rt.block_on(async {
        let idp = MockAuthServer::start().await;
        idp.register_client("mcp", "mcp-secret-0123456789");
        let endpoint = || {
            TokenEndpoint::new(
                &idp.token_endpoint(),
                "mcp",
                Secret::new("mcp-secret-0123456789"),
            )
            .unwrap()
        };
        let cc = ClientCredentials::new(endpoint()).scopes(["reports:read"]);
        cc.credential(&Caller::service()).await.unwrap();
        let exchange =
            TokenExchange::new(endpoint(), "https://files.example.com").scopes(["files:read"]);
        let one = caller(&idp, "alice");
        exchange.credential(&one).await.unwrap();
        // The cache filled to its default bound with other callers.
        let mut many = Vec::with_capacity(CALLERS);
        for i in 0..CALLERS - 1 {
            let c = caller(&idp, &format!("user-{i}"));
            exchange.credential(&c).await.unwrap();
            many.push(c);
        }
        (idp, cc, exchange, one, many)
    });
    let mut group = c.benchmark_group("outbound");
    let service = Caller::service();
    group.bench_function("baseline_request_without_credentials", |b| {
        b.iter(|| {
            black_box(
                http::Request::get("https://files.example.com/v1/x")
                    .body(())
                    .unwrap(),
            )
        })
    });
    group.bench_function("client_credentials_cached", |b| {
        b.iter(|| rt.block_on(cc.credential(black_box(&service))).unwrap())
    });
    group.bench_function("exchange_cached_one_caller", |b| {
        b.iter(|| rt.block_on(exchange.credential(black_box(&one))).unwrap())
    });
    let mut i = 0usize;
    group.bench_function("exchange_cached_10k_callers", |b| {
        b.iter(|| {
            i = (i + 7919) % many.len();
            rt.block_on(exchange.credential(black_box(&many[i])))
                .unwrap()
        })
    });
    group.finish();
    drop(idp);
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = bench_outbound
}
criterion_main!(benches);
