//! Per-request cost of `ApiKeyLayer` and `BearerLayer` around an echo service, against the
//! bare echo service in the same run, with 1, 1,000 and 100,000 credentials.
//!
//! Run: `cargo bench --bench layers`. The request is built outside the timed section
//! (`iter_batched`), so every figure is the service call alone.

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use mcp_auth::authenticators::bearer::BearerAuthenticator;
use mcp_auth::request_info::ClientAddr;
use mcp_auth::{ApiKeyAuthenticator, ApiKeyLayer, BearerLayer, Credential};
use mcp_auth::{hardening::FailureLimitLayer, store::MemoryAttemptStore};
use tower::{Layer, Service, service_fn};

/// Polls a future that is expected to be ready at once (every path benchmarked here is
/// synchronous); panics otherwise so a regression to an async path cannot go unnoticed.
fn ready<F: Future>(fut: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("future was not ready at once"),
    }
}

fn echo() -> impl Service<
    Request<()>,
    Response = Response<()>,
    Error = Infallible,
    Future = std::future::Ready<Result<Response<()>, Infallible>>,
> + Clone
+ Send
+ 'static {
    service_fn(|req: Request<()>| {
        black_box(req);
        std::future::ready(Ok::<_, Infallible>(Response::new(())))
    })
}

fn secret(i: usize) -> String {
    format!("bench-credential-{i:08}-0123456789abcdef")
}

fn credentials(n: usize) -> impl Iterator<Item = Credential> {
    (0..n).map(|i| Credential::new(secret(i)).subject(format!("user-{i}")))
}

fn bench_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("per_request");

    let mut bare = echo();
    group.bench_function("echo_baseline", |b| {
        b.iter_batched(
            || {
                Request::builder()
                    .header("x-api-key", secret(0))
                    .body(())
                    .unwrap()
            },
            |req| ready(bare.call(req)).unwrap(),
            BatchSize::SmallInput,
        )
    });

    for n in [1usize, 1_000, 100_000] {
        let mut auth = ApiKeyAuthenticator::new();
        for cred in credentials(n) {
            auth = auth.with_key(cred).unwrap();
        }
        let mut svc = ApiKeyLayer::new(auth).layer(echo());
        let key = secret(n / 2);
        group.bench_with_input(BenchmarkId::new("api_key", n), &key, |b, key| {
            b.iter_batched(
                || {
                    Request::builder()
                        .header("x-api-key", key.as_str())
                        .body(())
                        .unwrap()
                },
                |req| {
                    let res = ready(svc.call(req)).unwrap();
                    assert_eq!(res.status(), 200);
                    res
                },
                BatchSize::SmallInput,
            )
        });

        let mut auth = BearerAuthenticator::new();
        for cred in credentials(n) {
            auth = auth.with_token(cred).unwrap();
        }
        let mut svc = BearerLayer::new(auth).layer(echo());
        let header = format!("Bearer {}", secret(n / 2));
        group.bench_with_input(BenchmarkId::new("bearer", n), &header, |b, header| {
            b.iter_batched(
                || {
                    Request::builder()
                        .header("authorization", header.as_str())
                        .body(())
                        .unwrap()
                },
                |req| {
                    let res = ready(svc.call(req)).unwrap();
                    assert_eq!(res.status(), 200);
                    res
                },
                BatchSize::SmallInput,
            )
        });
    }

    // The same API-key check behind `FailureLimitLayer` (memory store, a client address on
    // every request): what a successful request pays for failure limiting.
    let mut auth = ApiKeyAuthenticator::new();
    for cred in credentials(1_000) {
        auth = auth.with_key(cred).unwrap();
    }
    let mut svc = FailureLimitLayer::new(MemoryAttemptStore::new())
        .layer(ApiKeyLayer::new(auth).layer(echo()));
    let key = secret(500);
    group.bench_function("api_key_failure_limited/1000", |b| {
        b.iter_batched(
            || {
                let mut req = Request::builder()
                    .header("x-api-key", key.as_str())
                    .body(())
                    .unwrap();
                req.extensions_mut()
                    .insert(ClientAddr([198, 51, 100, 7].into()));
                req
            },
            |req| {
                let res = ready(svc.call(req)).unwrap();
                assert_eq!(res.status(), 200);
                res
            },
            BatchSize::SmallInput,
        )
    });

    // The rejection path (an unknown key): builds the 401 with its challenge and JSON body.
    let mut auth = ApiKeyAuthenticator::new();
    for cred in credentials(1_000) {
        auth = auth.with_key(cred).unwrap();
    }
    let mut svc = ApiKeyLayer::new(auth).layer(echo());
    group.bench_function("api_key_rejected", |b| {
        b.iter_batched(
            || {
                Request::builder()
                    .header("x-api-key", "not-a-configured-key-0000")
                    .body(())
                    .unwrap()
            },
            |req| {
                let res = ready(svc.call(req)).unwrap();
                assert_eq!(res.status(), 401);
                res
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(std::time::Duration::from_secs(4));
    targets = bench_layers
}
criterion_main!(benches);
