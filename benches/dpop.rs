//! Per-request cost of DPoP: a bound JWT with a fresh proof through `DpopAuthenticator`,
//! against the same authenticator taking an unbound JWT as `Bearer` (the baseline, same
//! run), for each proof algorithm; and adversarial proofs: the longest garbage accepted for
//! parsing, a header stuffed with members, a proof key the size limit allows next to a forged
//! token, a replay cache holding a million live entries.
//!
//! Run: `cargo bench --bench dpop --features dpop,testing`.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use http::request::Parts;
use mcp_auth::Authenticator;
use mcp_auth::authenticators::dpop::DpopAuthenticator;
use mcp_auth::authenticators::jwt::{Algorithm, JwtAuthenticator, JwtKey, JwtMinter};
use mcp_auth::store::{MemoryReplayCache, ReplayCache};
use mcp_auth::testing::DpopKey;
use serde_json::{Map, json};

const URL: &str = "https://mcp.example.com/mcp";
const ISS: &str = "https://as.example.com";
const SECRET: &str = "0123456789abcdef0123456789abcdef-hmac";

fn ready<F: Future>(fut: F) -> F::Output {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(fut).poll(&mut cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("future was not ready at once"),
    }
}

fn jwt() -> JwtAuthenticator {
    JwtAuthenticator::builder()
        .key(JwtKey::hmac(SECRET, Algorithm::HS256).unwrap())
        .issuer(ISS)
        .audience(URL)
        .build()
        .unwrap()
}

fn token(jkt: Option<&str>) -> String {
    let mut c = Map::new();
    c.insert("sub".into(), "alice".into());
    c.insert("scope".into(), "data:read".into());
    if let Some(jkt) = jkt {
        c.insert("cnf".into(), json!({ "jkt": jkt }));
    }
    JwtMinter::hmac(SECRET, Algorithm::HS256)
        .unwrap()
        .issuer(ISS)
        .audience(URL)
        .mint_claims(c)
        .unwrap()
}

fn parts(scheme: &str, token: &str, proof: Option<&str>) -> Parts {
    let mut b = http::Request::post("/mcp").header("authorization", format!("{scheme} {token}"));
    if let Some(p) = proof {
        b = b.header("dpop", p);
    }
    b.body(()).unwrap().into_parts().0
}

fn dpop(cache: MemoryReplayCache) -> DpopAuthenticator<JwtAuthenticator> {
    DpopAuthenticator::builder(jwt())
        .resource_url(URL)
        .replay_cache(cache)
        .build()
        .unwrap()
}

fn bench_dpop(c: &mut Criterion) {
    let mut group = c.benchmark_group("dpop");
    let auth = dpop(MemoryReplayCache::default());

    // Baseline: an unbound JWT as Bearer through the same authenticator (verified-token cache).
    let unbound = token(None);
    let bearer = parts("Bearer", &unbound, None);
    assert!(ready(auth.authenticate(&bearer)).is_ok());
    group.bench_function("bearer_jwt_baseline", |b| {
        b.iter(|| ready(auth.authenticate(black_box(&bearer))).unwrap())
    });

    // A bound JWT with a fresh proof per request (made outside the measurement).
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
        Algorithm::PS256,
    ] {
        let key = DpopKey::generate(alg).unwrap();
        let bound = token(Some(&key.thumbprint()));
        assert!(
            ready(auth.authenticate(&parts(
                "DPoP",
                &bound,
                Some(&key.proof("POST", URL).access_token(&bound).sign())
            )))
            .is_ok()
        );
        group.bench_function(format!("{alg:?}_proof"), |b| {
            b.iter_batched(
                || {
                    parts(
                        "DPoP",
                        &bound,
                        Some(&key.proof("POST", URL).access_token(&bound).sign()),
                    )
                },
                |p| ready(auth.authenticate(&p)).unwrap(),
                BatchSize::SmallInput,
            )
        });
    }

    // Adversarial inputs, each refused.
    let es = DpopKey::es256();
    let bound = token(Some(&es.thumbprint()));
    let garbage = "A".repeat(8 * 1024 - 2) + ".A";
    let junk = parts("DPoP", &bound, Some(&garbage));
    group.bench_function("refused/garbage_8KiB", |b| {
        b.iter(|| ready(auth.authenticate(black_box(&junk))).unwrap_err())
    });
    // A header of ~7 KiB of members (parsed, then refused for its typ).
    let mut header = json!({"typ": "JWT", "alg": "ES256", "jwk": es.public_jwk()});
    for i in 0..300 {
        header[format!("m{i}")] = json!(i);
    }
    let stuffed = format!(
        "{}.{}.AAAA",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(b"{}")
    );
    let stuffed = parts("DPoP", &bound, Some(&stuffed));
    group.bench_function("refused/stuffed_header", |b| {
        b.iter(|| ready(auth.authenticate(black_box(&stuffed))).unwrap_err())
    });
    // The largest RSA key allowed, a well-formed proof, next to a forged token: refused
    // for the token before any public-key work on the proof.
    let n = URL_SAFE_NO_PAD.encode([0xC5u8; 512]);
    let rsa =
        json!({"typ": "dpop+jwt", "alg": "PS256", "jwk": {"kty": "RSA", "e": "AQAB", "n": n}});
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJldmUifQ.AAAA";
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let ath = URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(forged.as_bytes()));
    let claims = json!({"jti": "x", "htm": "POST", "htu": URL, "iat": now, "ath": ath});
    let big = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(rsa.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode([7u8; 512])
    );
    let big = parts("DPoP", forged, Some(&big));
    group.bench_function("refused/rsa4096_proof_forged_token", |b| {
        b.iter(|| ready(auth.authenticate(black_box(&big))).unwrap_err())
    });

    // A replay cache holding a million live entries (its default capacity, minus room).
    let full = MemoryReplayCache::with_capacity(2_000_000);
    let until = SystemTime::now() + Duration::from_secs(600);
    for i in 0u32..1_000_000 {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&i.to_be_bytes());
        assert!(ready(full.first_use(&id, until)).unwrap());
    }
    let loaded = dpop(full);
    group.bench_function("ES256_proof/replay_cache_1M_entries", |b| {
        b.iter_batched(
            || {
                parts(
                    "DPoP",
                    &bound,
                    Some(&es.proof("POST", URL).access_token(&bound).sign()),
                )
            },
            |p| ready(loaded.authenticate(&p)).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3));
    targets = bench_dpop
}
criterion_main!(benches);
