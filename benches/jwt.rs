//! Per-request cost of `JwtLayer` against a bare `jsonwebtoken::decode` with the same key and
//! token, in the same run; the verified-token cache; the JWKS read path on two threads; and
//! routing among 20 trusted issuers against one issuer.
//!
//! Run: `cargo bench --bench jwt` (the routing group alone: `cargo bench --bench jwt --
//! jwt_routing`).

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::{Request, Response};
use jsonwebtoken::{DecodingKey, EncodingKey, Validation};
use mcp_auth::authenticators::jwt::{
    Algorithm, JwtAuthenticator, JwtKey, JwtLayer, JwtMinter, TrustedIssuer,
};
use mcp_auth::oauth::{FetchError, Fetched, HttpFetcher};
use serde_json::{Map, Value};
use tower::{Layer, Service, service_fn};

const AUD: &str = "https://mcp.example.com/mcp";
const ISS: &str = "https://as.example.com";
const SECRET: &str = "0123456789abcdef0123456789abcdef-hmac";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/jwt/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn ready<F: Future>(fut: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("future was not ready at once"),
    }
}

struct Case {
    name: &'static str,
    alg: Algorithm,
    token: String,
    key: JwtKey,
    decoding: DecodingKey,
}

fn cases() -> Vec<Case> {
    let pem = |alg, name: &str| {
        let token = JwtMinter::pem(fixture(&format!("{name}_private.pem")), alg)
            .unwrap()
            .issuer(ISS)
            .audience(AUD)
            .mint("alice", ["data:read", "data:write"])
            .unwrap();
        let public = fixture(&format!("{name}_public.pem"));
        let decoding = match alg {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(&public),
            Algorithm::ES256 => DecodingKey::from_ec_pem(&public),
            _ => DecodingKey::from_ed_pem(&public),
        }
        .unwrap();
        (token, JwtKey::pem(&public, alg).unwrap(), decoding)
    };
    let hs = JwtMinter::hmac(SECRET, Algorithm::HS256)
        .unwrap()
        .issuer(ISS)
        .audience(AUD)
        .mint("alice", ["data:read", "data:write"])
        .unwrap();
    let mut out = vec![Case {
        name: "HS256",
        alg: Algorithm::HS256,
        token: hs,
        key: JwtKey::hmac(SECRET, Algorithm::HS256).unwrap(),
        decoding: DecodingKey::from_secret(SECRET.as_bytes()),
    }];
    for (name, alg, file) in [
        ("RS256", Algorithm::RS256, "rsa"),
        ("ES256", Algorithm::ES256, "ec256"),
        ("EdDSA", Algorithm::EdDSA, "ed25519"),
    ] {
        let (token, key, decoding) = pem(alg, file);
        out.push(Case {
            name,
            alg,
            token,
            key,
            decoding,
        });
    }
    out
}

async fn jwt_authorizer_for(
    case: &Case,
) -> Result<jwt_authorizer::Authorizer<Value>, jwt_authorizer::error::InitError> {
    use jwt_authorizer::{JwtAuthorizer, Validation as JaValidation};
    let pem = |name: &str| String::from_utf8(fixture(name)).unwrap();
    let builder = match case.name {
        "HS256" => JwtAuthorizer::from_secret(SECRET),
        "RS256" => JwtAuthorizer::from_rsa_pem_text(&pem("rsa_public.pem")),
        "ES256" => JwtAuthorizer::from_ec_pem_text(&pem("ec256_public.pem")),
        _ => JwtAuthorizer::from_ed_pem_text(&pem("ed25519_public.pem")),
    };
    builder
        .validation(JaValidation::new().aud(&[AUD]).iss(&[ISS]).nbf(true))
        .build()
        .await
}

fn echo() -> impl Service<Request<()>, Response = Response<()>, Error = Infallible> + Clone {
    service_fn(|req: Request<()>| {
        black_box(req);
        std::future::ready(Ok::<_, Infallible>(Response::new(())))
    })
}

fn bench_jwt(c: &mut Criterion) {
    let mut group = c.benchmark_group("jwt");
    for case in cases() {
        let mut validation = Validation::new(case.alg);
        validation.set_audience(&[AUD]);
        validation.set_issuer(&[ISS]);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.validate_nbf = true;
        group.bench_function(format!("{}/jsonwebtoken_decode", case.name), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<Map<String, Value>>(
                    black_box(&case.token),
                    &case.decoding,
                    &validation,
                )
                .unwrap()
            })
        });

        let auth = JwtAuthenticator::builder()
            .key(case.key.clone())
            .issuer(ISS)
            .audience(AUD)
            .build()
            .unwrap();
        group.bench_function(format!("{}/jwt_verify", case.name), |b| {
            b.iter(|| auth.verify(black_box(&case.token)).unwrap())
        });
        let mut svc = JwtLayer::new(auth).layer(echo());
        let header = format!("Bearer {}", case.token);
        group.bench_function(format!("{}/jwt_layer", case.name), |b| {
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

        // jwt-authorizer 0.15 (jsonwebtoken 9) on the same token and key, and our verifier
        // through the same async call shape.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let other = rt.block_on(jwt_authorizer_for(&case)).unwrap();
        group.bench_function(format!("{}/jwt_authorizer_check_auth", case.name), |b| {
            b.iter(|| {
                rt.block_on(other.check_auth(black_box(&case.token)))
                    .unwrap()
            })
        });
        let ours = JwtAuthenticator::builder()
            .key(case.key.clone())
            .issuer(ISS)
            .audience(AUD)
            .build()
            .unwrap();
        group.bench_function(format!("{}/jwt_verify_async", case.name), |b| {
            b.iter(|| {
                rt.block_on(ours.verify_async(black_box(&case.token)))
                    .unwrap()
            })
        });

        if case.alg == Algorithm::RS256 {
            let cached = JwtAuthenticator::builder()
                .key(case.key.clone())
                .issuer(ISS)
                .audience(AUD)
                .verified_token_cache(1024)
                .build()
                .unwrap();
            cached.verify(&case.token).unwrap();
            group.bench_function("RS256/jwt_verify_cache_hit", |b| {
                b.iter(|| cached.verify(black_box(&case.token)).unwrap())
            });
            let uncached = JwtAuthenticator::builder()
                .key(case.key.clone())
                .issuer(ISS)
                .audience(AUD)
                .build()
                .unwrap();
            group.bench_function("RS256/jwt_verify_uncached", |b| {
                b.iter(|| uncached.verify(black_box(&case.token)).unwrap())
            });
        }
    }
    group.finish();
}

/// Serves a fixed JWKS without a network: the pluggable fetcher.
struct StaticJwks(bytes::Bytes);

impl HttpFetcher for StaticJwks {
    async fn get(&self, _url: &str, _max: usize) -> Result<Fetched, FetchError> {
        Ok(Fetched {
            body: self.0.clone(),
            max_age: Some(Duration::from_secs(3600)),
        })
    }
}

fn bench_jwks_threads(c: &mut Criterion) {
    let key = EncodingKey::from_ed_pem(&fixture("ed25519_private.pem")).unwrap();
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&key, Algorithm::EdDSA).unwrap();
    jwk.common.key_id = Some("k1".into());
    let body = serde_json::json!({ "keys": [jwk] }).to_string();
    let auth = JwtAuthenticator::builder()
        .jwks_url("https://idp.example.com/jwks")
        .fetcher(StaticJwks(body.into()))
        .issuer(ISS)
        .audience(AUD)
        .build()
        .unwrap();
    let token = JwtMinter::pem(fixture("ed25519_private.pem"), Algorithm::EdDSA)
        .unwrap()
        .kid("k1")
        .issuer(ISS)
        .audience(AUD)
        .mint("alice", ["x"])
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(auth.verify_async(&token)).unwrap();
    let (auth, token) = (Arc::new(auth), Arc::new(token));

    let mut group = c.benchmark_group("jwks_read");
    for threads in [1usize, 2] {
        group.bench_function(format!("EdDSA/{threads}_threads"), |b| {
            // Time per verification with `threads` threads verifying at once.
            b.iter_custom(|iters| {
                let per_thread = iters.div_ceil(threads as u64);
                let start = Instant::now();
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        let (auth, token) = (auth.clone(), token.clone());
                        s.spawn(move || {
                            for _ in 0..per_thread {
                                black_box(auth.verify(&token).unwrap());
                            }
                        });
                    }
                });
                // Per-verification time on each thread: equal to the one-thread figure when
                // nothing serializes the threads.
                start.elapsed() * threads as u32
            })
        });
    }
    group.finish();
}

/// HS256 (the cheapest signature, so routing's own cost shows) and ES256, each: one issuer
/// (the builder's own key) against 20 trusted issuers (19 exact, one template with 20
/// tenants), every issuer with its own key. Typical: an accepted token (an exact issuer's,
/// a tenant's); adversarial: an `iss` nobody trusts, and an 11 KiB `iss`, both refused.
fn bench_routing(c: &mut Criterion) {
    const ISSUERS: usize = 20;
    const TEMPLATE: &str = "https://login.example.com/{tenant}/v2.0";
    let secret = |i: usize| format!("{SECRET}-{i:02}");
    let hs = |i: usize, iss: &str| {
        JwtMinter::hmac(secret(i), Algorithm::HS256)
            .unwrap()
            .issuer(iss)
            .audience(AUD)
            .mint("alice", ["data:read"])
            .unwrap()
    };
    let exact = |i: usize| format!("https://idp-{i:02}.example.com");
    let tenants: Vec<String> = (0..20).map(|t| format!("tenant-{t:02}")).collect();
    let mut builder = JwtAuthenticator::builder().audience(AUD);
    for i in 0..ISSUERS - 1 {
        builder = builder.trusted_issuer(
            TrustedIssuer::new(exact(i)).key(JwtKey::hmac(secret(i), Algorithm::HS256).unwrap()),
        );
    }
    builder = builder.trusted_issuer(
        TrustedIssuer::new(TEMPLATE)
            .key(JwtKey::hmac(secret(ISSUERS - 1), Algorithm::HS256).unwrap())
            .tenants(tenants.clone())
            .tenant_claim("tid"),
    );
    let many = builder.build().unwrap();
    let one = JwtAuthenticator::builder()
        .key(JwtKey::hmac(secret(13), Algorithm::HS256).unwrap())
        .issuer(exact(13))
        .audience(AUD)
        .build()
        .unwrap();
    let tenant_token = JwtMinter::hmac(secret(ISSUERS - 1), Algorithm::HS256)
        .unwrap()
        .issuer(TEMPLATE.replace("{tenant}", &tenants[7]))
        .audience(AUD)
        .mint_claims(
            serde_json::json!({"sub": "alice", "tid": tenants[7]})
                .as_object()
                .unwrap()
                .clone(),
        )
        .unwrap();
    let accepted = hs(13, &exact(13));
    let unknown = hs(13, "https://idp-99.example.com");
    let huge = hs(13, &"x".repeat(11 * 1024));

    let mut group = c.benchmark_group("jwt_routing");
    for (name, auth) in [("one_issuer", &one), ("20_issuers", &many)] {
        group.bench_function(format!("HS256/{name}/accepted"), |b| {
            b.iter(|| auth.verify(black_box(&accepted)).unwrap())
        });
        group.bench_function(format!("HS256/{name}/unknown_iss"), |b| {
            b.iter(|| auth.verify(black_box(&unknown)).unwrap_err())
        });
        group.bench_function(format!("HS256/{name}/huge_iss"), |b| {
            b.iter(|| auth.verify(black_box(&huge)).unwrap_err())
        });
    }
    group.bench_function("HS256/20_issuers/template_tenant", |b| {
        b.iter(|| many.verify(black_box(&tenant_token)).unwrap())
    });

    // ES256: the same comparison where the signature dominates.
    let es_private = fixture("ec256_private.pem");
    let es_public = fixture("ec256_public.pem");
    let es_key = || JwtKey::pem(&es_public, Algorithm::ES256).unwrap();
    let mut builder = JwtAuthenticator::builder().audience(AUD);
    for i in 0..ISSUERS {
        builder = builder.trusted_issuer(TrustedIssuer::new(exact(i)).key(es_key()));
    }
    let many = builder.build().unwrap();
    let one = JwtAuthenticator::builder()
        .key(es_key())
        .issuer(exact(13))
        .audience(AUD)
        .build()
        .unwrap();
    let es = JwtMinter::pem(&es_private, Algorithm::ES256)
        .unwrap()
        .issuer(exact(13))
        .audience(AUD)
        .mint("alice", ["data:read"])
        .unwrap();
    for (name, auth) in [("one_issuer", &one), ("20_issuers", &many)] {
        group.bench_function(format!("ES256/{name}/accepted"), |b| {
            b.iter(|| auth.verify(black_box(&es)).unwrap())
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = bench_jwt, bench_jwks_threads, bench_routing
}
criterion_main!(benches);
