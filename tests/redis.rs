//! Shared state in a real Redis (`redis-server` on a loopback port, started here): issued
//! tokens, revocations and failure counters seen by two handles ("instances"), expiry, the key
//! layout, Redis down at startup and going down later (bounded failures, 503 — never a silent
//! accept, never a 401) and coming back (automatic reconnection), and two example servers
//! sharing one Redis.
//!
//! Needs `redis-server` (scripts/test.sh installs it and runs these tests with `--ignored`).

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use mcp_auth::request_info::ClientAddr;
use mcp_auth::store::StoreError;
use mcp_auth::store::redis::{Redis, RedisConfig};
use mcp_auth::store::{Principal, RevocationList, TokenFacts};
use mcp_auth::{AuthContext, AuthLayer, AuthMethod};
use mcp_auth::{
    authenticators::bearer::{BearerAuthenticator, TokenManager, TokenSpec},
    store::{TokenDigest, TokenRecord, TokenStore},
};
use mcp_auth::{
    hardening::FailureLimitLayer,
    store::{AttemptStore, Reservation},
};
use support::auth::Slow;
use support::free_port;
use support::redis_server::RedisServer as Server;
use tower::{Layer, ServiceExt, service_fn};

fn handle(url: &str) -> Redis {
    Redis::new(RedisConfig::new(url).timeout(Duration::from_millis(300))).unwrap()
}

fn record(sub: &str, id: &str, ttl: Duration) -> TokenRecord {
    let exp = SystemTime::now() + ttl;
    TokenRecord::new(
        AuthContext::builder(sub, AuthMethod::Bearer)
            .scopes(["data:read"])
            .roles(["editor"])
            .credential_id(id)
            .expires_at(exp)
            .build(),
        exp,
    )
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn issued_tokens_are_shared_revocable_and_expire() {
    let srv = Server::start();
    let (a, b) = (
        handle(&srv.url()).token_store(),
        handle(&srv.url()).token_store(),
    );
    let d1 = TokenDigest::of("token-one");
    assert!(a.get(&d1).await.unwrap().is_none());
    a.insert(d1, record("alice", "id-1", Duration::from_secs(60)))
        .await
        .unwrap();
    let got = b
        .get(&d1)
        .await
        .unwrap()
        .expect("seen by the other instance");
    assert_eq!(got.context().subject(), "alice");
    assert_eq!(got.context().method(), &AuthMethod::Bearer);
    assert!(got.context().has_scope("data:read"));
    assert_eq!(got.context().roles().collect::<Vec<_>>(), ["editor"]);
    assert_eq!(got.id(), "id-1");
    assert!(!got.is_revoked());
    assert!(b.revoke(&d1).await.unwrap());
    let revoked = a.get(&d1).await.unwrap().expect("revoked records are kept");
    assert!(revoked.is_revoked(), "revoked everywhere");
    assert_eq!(revoked.context().subject(), "alice");
    assert!(a.revoke(&d1).await.unwrap(), "known, already revoked");
    assert!(!a.revoke(&TokenDigest::of("unknown")).await.unwrap());
    assert!(
        a.get(&TokenDigest::of("unknown")).await.unwrap().is_none(),
        "revoking an unknown token creates nothing"
    );

    // By id and by subject: every live token, counting only those newly revoked.
    let (d2, d3, d4) = (
        TokenDigest::of("t2"),
        TokenDigest::of("t3"),
        TokenDigest::of("t4"),
    );
    a.insert(d2, record("bob", "id-2", Duration::from_secs(60)))
        .await
        .unwrap();
    a.insert(d3, record("bob", "id-3", Duration::from_secs(60)))
        .await
        .unwrap();
    a.insert(d4, record("carol", "id-2", Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(b.revoke_id("id-2").await.unwrap());
    assert!(a.get(&d2).await.unwrap().unwrap().is_revoked());
    assert!(a.get(&d4).await.unwrap().unwrap().is_revoked());
    assert!(!a.get(&d3).await.unwrap().unwrap().is_revoked());
    assert!(!b.revoke_id("id-2").await.unwrap(), "none left to revoke");
    assert!(!b.revoke_id("no-such-id").await.unwrap());
    assert_eq!(
        b.revoke_subject("bob").await.unwrap(),
        1,
        "bob's id-2 token was already revoked"
    );
    assert!(a.get(&d3).await.unwrap().unwrap().is_revoked());
    assert_eq!(b.revoke_subject("bob").await.unwrap(), 0);
    assert_eq!(b.revoke_subject("nobody").await.unwrap(), 0);

    // Records expire with their tokens; expired ones are not revoked by index.
    let d5 = TokenDigest::of("short");
    a.insert(d5, record("dave", "id-5", Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(b.get(&d5).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(b.get(&d5).await.unwrap().is_none());
    assert_eq!(b.revoke_subject("dave").await.unwrap(), 0);
    assert!(!b.revoke(&d5).await.unwrap());
    // An already expired record is not stored.
    let d6 = TokenDigest::of("stale");
    let stale = SystemTime::now() - Duration::from_secs(1);
    a.insert(
        d6,
        TokenRecord::new(
            AuthContext::builder("dave", AuthMethod::Bearer).build(),
            stale,
        ),
    )
    .await
    .unwrap();
    assert!(b.get(&d6).await.unwrap().is_none());

    // Through the token manager: issue on one instance, revoke on the other.
    let issuer = TokenManager::new(a.clone());
    let issued = issuer
        .issue(TokenSpec::new("erin", Duration::from_secs(60)).scopes(["data:read"]))
        .await
        .unwrap();
    let other = TokenManager::new(b.clone());
    assert!(other.revoke(issued.token.expose()).await.unwrap());
    assert!(
        a.get(&TokenDigest::of(issued.token.expose()))
            .await
            .unwrap()
            .unwrap()
            .is_revoked()
    );
    // And by id: a second token, rotated on one instance, revoked by id on the other.
    let second = issuer
        .issue(TokenSpec::new("erin", Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(b.revoke_id(&second.id).await.unwrap());
    assert!(
        a.get(&TokenDigest::of(second.token.expose()))
            .await
            .unwrap()
            .unwrap()
            .is_revoked()
    );
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn keys_are_digests_under_the_prefix_and_all_expire() {
    let srv = Server::start();
    let redis = Redis::new(RedisConfig::new(srv.url()).key_prefix("app1:")).unwrap();
    let tokens = redis.token_store();
    let (d1, d2) = (
        TokenDigest::of("secret-token-one"),
        TokenDigest::of("secret-token-two"),
    );
    tokens
        .insert(
            d1,
            record("alice@example.com", "id-1", Duration::from_millis(300)),
        )
        .await
        .unwrap();
    tokens
        .insert(
            d2,
            record("alice@example.com", "id-2", Duration::from_secs(60)),
        )
        .await
        .unwrap();
    let list = redis.revocation_list();
    list.revoke_token_id("jti-9", SystemTime::now() + Duration::from_secs(60))
        .await
        .unwrap();
    list.revoke_before(
        Principal::Client {
            issuer: None,
            client_id: "app",
        },
        SystemTime::now(),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    redis
        .attempt_store()
        .record_failure("198.51.100.7", Duration::from_secs(60))
        .await
        .unwrap();

    let mut raw = srv.raw();
    let mut keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut raw).unwrap();
    keys.sort();
    let kinds: Vec<&str> = keys
        .iter()
        .map(|k| {
            let rest = k.strip_prefix("app1:").expect("every key under the prefix");
            let (kind, h) = rest.split_once(':').unwrap();
            assert_eq!(h.len(), 64, "{k}: a hex SHA-256");
            assert!(h.bytes().all(|b| b.is_ascii_hexdigit()), "{k}");
            kind
        })
        .collect();
    let mut sorted = kinds.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        [
            "fail", "rev-jti", "rev-p", "tok", "tok", "tok-id", "tok-id", "tok-sub"
        ],
        "{keys:?}"
    );
    for k in &keys {
        assert!(
            !k.contains("secret") && !k.contains("alice") && !k.contains("jti-9"),
            "{k}"
        );
        let ttl: i64 = redis::cmd("PTTL").arg(k).query(&mut raw).unwrap();
        assert!(ttl > 0, "{k} must expire (PTTL {ttl})");
        let value: String = match redis::cmd("TYPE")
            .arg(k)
            .query::<String>(&mut raw)
            .unwrap()
            .as_str()
        {
            "hash" => redis::cmd("HGET").arg(k).arg("r").query(&mut raw).unwrap(),
            "string" => redis::cmd("GET").arg(k).query(&mut raw).unwrap(),
            _ => String::new(),
        };
        assert!(!value.contains("secret-token"), "{k} holds no token");
    }
    // The subject index lives as long as its last token and drops expired members.
    let sub_index = keys
        .iter()
        .find(|k| k.starts_with("app1:tok-sub:"))
        .unwrap();
    let ttl: i64 = redis::cmd("PTTL").arg(sub_index).query(&mut raw).unwrap();
    assert!(
        ttl > 50_000,
        "the index outlives its short-lived token: {ttl}"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    let d3 = TokenDigest::of("secret-token-three");
    tokens
        .insert(
            d3,
            record("alice@example.com", "id-3", Duration::from_secs(30)),
        )
        .await
        .unwrap();
    let members: i64 = redis::cmd("ZCARD").arg(sub_index).query(&mut raw).unwrap();
    assert_eq!(members, 2, "the expired token left the index");
    let ttl: i64 = redis::cmd("PTTL").arg(sub_index).query(&mut raw).unwrap();
    assert!(
        ttl > 50_000,
        "a shorter token does not shorten the index: {ttl}"
    );

    // Another prefix is another deployment: nothing shared.
    let other = Redis::new(RedisConfig::new(srv.url()).key_prefix("app2:")).unwrap();
    assert!(other.token_store().get(&d2).await.unwrap().is_none());
    assert_eq!(
        other
            .token_store()
            .revoke_subject("alice@example.com")
            .await
            .unwrap(),
        0
    );
    assert!(!tokens.get(&d2).await.unwrap().unwrap().is_revoked());
}

fn facts(jti: Option<&str>, sub: &str, client: Option<&str>, iat: SystemTime) -> TokenFacts {
    let mut claims = serde_json::Map::new();
    claims.insert(
        "iat".into(),
        iat.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .into(),
    );
    let mut b = AuthContext::builder(sub, AuthMethod::Jwt)
        .issuer("https://as.example.com")
        .claims(claims);
    if let Some(j) = jti {
        b = b.credential_id(j);
    }
    if let Some(c) = client {
        b = b.client_id(c);
    }
    TokenFacts::of(&b.build())
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn revocations_are_shared_and_expire_with_what_they_cover() {
    let srv = Server::start();
    let (a, b) = (
        handle(&srv.url()).revocation_list(),
        handle(&srv.url()).revocation_list(),
    );
    let now = SystemTime::now();
    let old = now - Duration::from_secs(120);

    // By token id (jti), until the token's expiry.
    let t = facts(Some("jti-1"), "alice", Some("app"), old);
    assert!(!b.revoked(&t).await.unwrap());
    a.revoke_token_id("jti-1", now + Duration::from_millis(400))
        .await
        .unwrap();
    assert!(b.revoked(&t).await.unwrap());
    assert!(
        !b.revoked(&facts(Some("jti-2"), "alice", Some("app"), old))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert!(!b.revoked(&t).await.unwrap(), "gone once the token expired");
    a.revoke_token_id("jti-3", now - Duration::from_secs(1))
        .await
        .unwrap();
    assert!(
        !b.revoked(&facts(Some("jti-3"), "x", None, old))
            .await
            .unwrap(),
        "an expired token needs no entry"
    );

    // By subject: tokens issued before the cut-off.
    a.revoke_before(
        Principal::Subject {
            issuer: None,
            subject: "alice",
        },
        now - Duration::from_secs(60),
        Duration::from_millis(400),
    )
    .await
    .unwrap();
    assert!(b.revoked(&facts(None, "alice", None, old)).await.unwrap());
    assert!(
        !b.revoked(&facts(None, "alice", None, now)).await.unwrap(),
        "issued after the cut-off"
    );
    assert!(!b.revoked(&facts(None, "bob", None, old)).await.unwrap());
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert!(
        !b.revoked(&facts(None, "alice", None, old)).await.unwrap(),
        "the entry expired after its ttl"
    );

    // By subject of one issuer only.
    a.revoke_before(
        Principal::Subject {
            issuer: Some("https://other.example.com"),
            subject: "alice",
        },
        now,
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(
        !b.revoked(&facts(None, "alice", None, old)).await.unwrap(),
        "another issuer's alice"
    );

    // By client; a later cut-off wins, an earlier one (or a shorter ttl) does not undo it.
    let client = Principal::Client {
        issuer: Some("https://as.example.com"),
        client_id: "app",
    };
    a.revoke_before(
        client,
        now + Duration::from_secs(5),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    b.revoke_before(
        client,
        now - Duration::from_secs(3600),
        Duration::from_millis(1),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(
        b.revoked(&facts(None, "zed", Some("app"), now))
            .await
            .unwrap()
    );
    assert!(
        !b.revoked(&facts(None, "zed", Some("other"), now))
            .await
            .unwrap()
    );
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn failure_windows_are_counted_across_instances() {
    let srv = Server::start();
    let (a, b) = (
        handle(&srv.url()).attempt_store(),
        handle(&srv.url()).attempt_store(),
    );
    assert_eq!(a.failures("203.0.113.9").await.unwrap(), None);
    let w = Duration::from_millis(400);
    let first = a.record_failure("203.0.113.9", w).await.unwrap();
    assert_eq!(first.count, 1);
    assert!(first.resets_in <= w && first.resets_in > Duration::from_millis(300));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = b.record_failure("203.0.113.9", w).await.unwrap();
    assert_eq!(second.count, 2);
    assert!(
        second.resets_in <= Duration::from_millis(300),
        "a fixed window: the second failure does not extend it ({:?})",
        second.resets_in
    );
    let seen = a.failures("203.0.113.9").await.unwrap().unwrap();
    assert_eq!(seen.count, 2);
    assert!(seen.resets_in <= second.resets_in && seen.resets_in > Duration::ZERO);
    assert_eq!(a.failures("203.0.113.10").await.unwrap(), None, "per key");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(b.failures("203.0.113.9").await.unwrap(), None);
    assert_eq!(
        b.record_failure("203.0.113.9", w).await.unwrap().count,
        1,
        "a new window"
    );
}

/// The `fail:` keys in Redis, with their time to live (ms).
fn fail_keys(srv: &Server) -> Vec<(String, i64)> {
    let mut raw = srv.raw();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("mcp-auth:fail:*")
        .query(&mut raw)
        .unwrap();
    keys.into_iter()
        .map(|k| {
            let ttl: i64 = redis::cmd("PTTL").arg(&k).query(&mut raw).unwrap();
            (k, ttl)
        })
        .collect()
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn redis_reservations_count_before_and_refunds_give_back() {
    // M4 through Redis: reserve counts an attempt before authenticating, atomically, for every
    // instance; refund gives it back, never below zero.
    let srv = Server::start();
    let (a, b) = (
        handle(&srv.url()).attempt_store(),
        handle(&srv.url()).attempt_store(),
    );
    let w = Duration::from_millis(600);
    let key = "203.0.113.20";
    for s in [&a, &b, &a] {
        assert_eq!(s.reserve(key, w, 3).await.unwrap(), Reservation::Reserved);
    }
    let Reservation::Refused(refused) = b.reserve(key, w, 3).await.unwrap() else {
        panic!("the fourth is refused while three are counted, whichever instance asks")
    };
    assert_eq!(refused.count, 3);
    assert!(refused.resets_in > Duration::ZERO && refused.resets_in <= w);
    assert_eq!(
        a.failures(key).await.unwrap().unwrap().count,
        3,
        "refusals count nothing"
    );
    // One key, hashed, with the window's expiry set by the first reservation.
    let keys = fail_keys(&srv);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(!keys[0].0.contains(key), "{keys:?}");
    assert!(keys[0].1 > 0 && keys[0].1 <= 600, "{keys:?}");

    b.refund(key).await.unwrap();
    assert_eq!(a.failures(key).await.unwrap().unwrap().count, 2);
    assert_eq!(a.reserve(key, w, 3).await.unwrap(), Reservation::Reserved);
    for _ in 0..10 {
        a.refund(key).await.unwrap();
    }
    assert_eq!(
        b.failures(key).await.unwrap().unwrap().count,
        0,
        "never below zero"
    );
    // Zero really is zero: three more reservations, not thirteen.
    for _ in 0..3 {
        assert_eq!(b.reserve(key, w, 3).await.unwrap(), Reservation::Reserved);
    }
    assert!(matches!(
        a.reserve(key, w, 3).await.unwrap(),
        Reservation::Refused(r) if r.count == 3
    ));

    // A refund of a client with no window creates nothing; neither does a refusal at max 0.
    a.refund("203.0.113.21").await.unwrap();
    let Reservation::Refused(none) = a.reserve("203.0.113.22", w, 0).await.unwrap() else {
        panic!("max 0 refuses everything")
    };
    assert_eq!(none.count, 0);
    assert_eq!(fail_keys(&srv).len(), 1, "{:?}", fail_keys(&srv));

    // Failures counted after a refused reservation show in the refusal (the real count).
    for _ in 0..2 {
        b.record_failure(key, w).await.unwrap();
    }
    assert!(matches!(
        b.reserve(key, w, 3).await.unwrap(),
        Reservation::Refused(r) if r.count == 5
    ));

    // A fixed window: reservations do not extend it; when it ends, the client starts afresh.
    tokio::time::sleep(w + Duration::from_millis(100)).await;
    assert!(
        fail_keys(&srv).is_empty(),
        "the counter expired with its window"
    );
    assert_eq!(a.failures(key).await.unwrap(), None);
    assert_eq!(a.reserve(key, w, 3).await.unwrap(), Reservation::Reserved);
    assert_eq!(b.failures(key).await.unwrap().unwrap().count, 1);
    a.refund(key).await.unwrap();
    let keys = fail_keys(&srv);
    assert!(
        keys.len() == 1 && keys[0].1 > 0,
        "a refund keeps the window's expiry: {keys:?}"
    );

    // A counter that lost its expiry (written by hand) gets a window instead of locking forever.
    let mut raw = srv.raw();
    let () = redis::cmd("SET")
        .arg(&keys[0].0)
        .arg(7)
        .query(&mut raw)
        .unwrap();
    assert!(matches!(
        a.reserve(key, w, 3).await.unwrap(),
        Reservation::Refused(r) if r.count == 7 && r.resets_in <= w
    ));
    let keys = fail_keys(&srv);
    assert!(
        keys.len() == 1 && keys[0].1 > 0 && keys[0].1 <= 600,
        "{keys:?}"
    );
    // Garbage where a counter should be fails closed (an error: 503 from the layer).
    let () = redis::cmd("SET")
        .arg(&keys[0].0)
        .arg("not a number")
        .query(&mut raw)
        .unwrap();
    assert!(a.reserve(key, w, 3).await.is_err());
    assert!(a.refund(key).await.is_err());
    // Counts beyond u32 are refused with the count saturated, not an error or a wrap.
    let () = redis::cmd("SET")
        .arg(&keys[0].0)
        .arg("99999999999")
        .query(&mut raw)
        .unwrap();
    assert!(matches!(
        a.reserve(key, w, u32::MAX).await.unwrap(),
        Reservation::Refused(r) if r.count == u32::MAX
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn parallel_guesses_through_redis_cannot_overtake_the_count() {
    // M4 with the Redis store: 50 guesses at once against max_failures(3) and a slow
    // authenticator, spread over two instances (two handles, two connections). Counted in
    // Redis before authenticating, only 3 ever reach the authenticator.
    let srv = Server::start();
    let seen = Arc::new(AtomicUsize::new(0));
    let instance = |redis: Redis| {
        FailureLimitLayer::new(redis.attempt_store())
            .max_failures(3)
            .window(Duration::from_secs(60))
            .layer(
                AuthLayer::new(Slow { seen: seen.clone() }).layer(service_fn(
                    |_req: http::Request<()>| async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
                    },
                )),
            )
    };
    let instances = [instance(handle(&srv.url())), instance(handle(&srv.url()))];
    let guess = |n: usize, client: u8, key: String| {
        let svc = instances[n % 2].clone();
        async move {
            let mut req = http::Request::get("/mcp")
                .header("x-api-key", key)
                .body(())
                .unwrap();
            req.extensions_mut()
                .insert(ClientAddr([198, 51, 100, client].into()));
            svc.oneshot(req).await.unwrap().status().as_u16()
        }
    };
    let tasks: Vec<_> = (0..50)
        .map(|i| tokio::spawn(guess(i, 0, format!("wrong-guess-{i:012}"))))
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(seen.load(Ordering::SeqCst), 3, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 3);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 47);
    let store = handle(&srv.url()).attempt_store();
    assert_eq!(
        store.failures("198.51.100.0").await.unwrap().unwrap().count,
        3,
        "each failure counted once: its reservation"
    );
    // Locked for the window, the right key too, on both instances; another client is not.
    assert_eq!(guess(0, 0, "the-right-key-0123456789".into()).await, 429);
    assert_eq!(guess(1, 0, "the-right-key-0123456789".into()).await, 429);
    assert_eq!(guess(0, 1, "the-right-key-0123456789".into()).await, 200);
    // Successes are refunded: 20 good requests in parallel never use up the allowance once
    // they are done.
    let tasks: Vec<_> = (0..20)
        .map(|i| tokio::spawn(guess(i, 1, "the-right-key-0123456789".into())))
        .collect();
    let mut ok = 0;
    for t in tasks {
        ok += usize::from(t.await.unwrap() == 200);
    }
    assert!(ok >= 3, "{ok}");
    assert_eq!(
        store.failures("198.51.100.1").await.unwrap().unwrap().count,
        0,
        "every success refunded"
    );
    for i in 0..5 {
        assert_eq!(guess(i, 1, "the-right-key-0123456789".into()).await, 200);
    }
}

/// Runs `op` and checks it fails within 2 s; returns how long it took.
async fn fails_fast<T: std::fmt::Debug>(
    what: &str,
    op: impl Future<Output = Result<T, StoreError>>,
) -> Duration {
    let started = Instant::now();
    let result = op.await;
    let took = started.elapsed();
    let err = result.expect_err(what);
    assert!(took < Duration::from_secs(2), "{what}: {took:?}");
    assert!(!err.to_string().contains("127.0.0.1"), "{what}: {err}");
    println!("  {what}: {err} after {took:?}");
    took
}

/// Every operation of every store, expecting failures.
async fn every_operation_fails_fast(redis: &Redis) -> Duration {
    let tokens = redis.token_store();
    let list = redis.revocation_list();
    let attempts = redis.attempt_store();
    let d = TokenDigest::of("x");
    let exp = SystemTime::now() + Duration::from_secs(60);
    let principal = Principal::Subject {
        issuer: None,
        subject: "s",
    };
    let f = facts(Some("j"), "s", Some("c"), SystemTime::now());
    [
        fails_fast("ping", redis.ping()).await,
        fails_fast("token get", tokens.get(&d)).await,
        fails_fast(
            "token insert",
            tokens.insert(d, record("s", "i", Duration::from_secs(60))),
        )
        .await,
        fails_fast("token revoke", tokens.revoke(&d)).await,
        fails_fast("token revoke_id", tokens.revoke_id("i")).await,
        fails_fast("token revoke_subject", tokens.revoke_subject("s")).await,
        fails_fast("revoke_token_id", list.revoke_token_id("j", exp)).await,
        fails_fast(
            "revoke_before",
            list.revoke_before(principal, SystemTime::now(), Duration::from_secs(60)),
        )
        .await,
        fails_fast("revoked", list.revoked(&f)).await,
        fails_fast("failures", attempts.failures("k")).await,
        fails_fast(
            "record_failure",
            attempts.record_failure("k", Duration::from_secs(60)),
        )
        .await,
        fails_fast("reserve", attempts.reserve("k", Duration::from_secs(60), 3)).await,
        fails_fast("refund", attempts.refund("k")).await,
    ]
    .into_iter()
    .max()
    .unwrap()
}

/// Every operation of every store, expecting success.
async fn every_operation_works(redis: &Redis) -> Result<(), StoreError> {
    let tokens = redis.token_store();
    let list = redis.revocation_list();
    let attempts = redis.attempt_store();
    let d = TokenDigest::of("y");
    redis.ping().await?;
    tokens
        .insert(d, record("s", "i", Duration::from_secs(60)))
        .await?;
    assert!(tokens.get(&d).await?.is_some());
    tokens.revoke(&d).await?;
    tokens.revoke_id("i").await?;
    tokens.revoke_subject("s").await?;
    list.revoke_token_id("j", SystemTime::now() + Duration::from_secs(60))
        .await?;
    list.revoke_before(
        Principal::Client {
            issuer: None,
            client_id: "c",
        },
        SystemTime::now(),
        Duration::from_secs(60),
    )
    .await?;
    assert!(
        list.revoked(&facts(Some("j"), "s", None, SystemTime::now()))
            .await?
    );
    attempts
        .record_failure("k", Duration::from_secs(60))
        .await?;
    assert!(attempts.failures("k").await?.is_some());
    attempts.reserve("r", Duration::from_secs(60), 3).await?;
    attempts.refund("r").await?;
    Ok(())
}

/// Retries `every_operation_works` until it passes; how long that took.
async fn until_everything_works(redis: &Redis, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        match every_operation_works(redis).await {
            Ok(()) => return started.elapsed(),
            Err(e) => assert!(
                started.elapsed() < within,
                "still failing {within:?} after Redis came back: {e}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn redis_down_at_startup_does_not_stop_the_server_and_is_used_once_up() {
    let port = free_port();
    let started = Instant::now();
    // Default timeout (500 ms); nothing listens on the port yet.
    let redis = Redis::new(RedisConfig::new(format!("redis://127.0.0.1:{port}/0"))).unwrap();
    let layer = AuthLayer::new(BearerAuthenticator::new().with_store(redis.token_store()));
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "building does not connect"
    );
    let _ = layer;
    println!("Redis down at startup (default 500 ms timeout):");
    let slowest = every_operation_fails_fast(&redis).await;
    assert!(slowest < Duration::from_secs(2));
    let _srv = Server::start_on(port);
    let took = until_everything_works(&redis, Duration::from_secs(5)).await;
    println!("Redis started: every operation works {took:?} later");
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn redis_down_fails_closed_quickly_and_recovers_by_itself() {
    let mut srv = Server::start();
    // Default timeout (500 ms).
    let redis = Redis::new(RedisConfig::new(srv.url())).unwrap();
    let store = redis.token_store();
    let d = TokenDigest::of("a-token-0123456789abcdef");
    store
        .insert(d, record("alice", "id", Duration::from_secs(60)))
        .await
        .unwrap();
    let auth = BearerAuthenticator::new().with_store(store.clone());
    let svc = AuthLayer::new(auth).layer(service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let call = || {
        svc.clone().oneshot(
            http::Request::get("/mcp")
                .header("authorization", "Bearer a-token-0123456789abcdef")
                .body(())
                .unwrap(),
        )
    };
    assert_eq!(call().await.unwrap().status(), 200);

    let port = srv.port;
    srv.stop();
    println!("Redis stopped (default 500 ms timeout):");
    let slowest = every_operation_fails_fast(&redis).await;
    for _ in 0..3 {
        let started = Instant::now();
        let res = call().await.unwrap();
        let took = started.elapsed();
        assert_eq!(res.status(), 503, "fail closed: never 200, never 401");
        assert!(res.headers().contains_key("retry-after"));
        assert!(took < Duration::from_secs(2), "{took:?}");
        println!("  request through AuthLayer: 503 after {took:?}");
    }
    println!("slowest failed operation: {slowest:?}");

    // Redis comes back on the same port: the same handle reconnects by itself.
    let _srv = Server::start_on(port);
    let took = until_everything_works(&redis, Duration::from_secs(5)).await;
    println!("Redis restarted: every operation works {took:?} later, same handle");
    // The new server is empty: the token is unknown (401), and nothing errs.
    assert_eq!(call().await.unwrap().status(), 401);
    store
        .insert(d, record("alice", "id", Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(call().await.unwrap().status(), 200);
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn a_frozen_redis_fails_operations_at_the_timeout_and_answers_correctly_after() {
    // A server that accepts connections but never answers (SIGSTOP): the timeout path,
    // unlike a refused connection.
    let srv = Server::start();
    let redis = Redis::new(RedisConfig::new(srv.url())).unwrap();
    let store = redis.token_store();
    let d = TokenDigest::of("a-token-0123456789abcdef");
    store
        .insert(d, record("alice", "id", Duration::from_secs(60)))
        .await
        .unwrap();
    let svc = AuthLayer::new(BearerAuthenticator::new().with_store(store.clone())).layer(
        service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        }),
    );
    let call = || {
        svc.clone().oneshot(
            http::Request::get("/mcp")
                .header("authorization", "Bearer a-token-0123456789abcdef")
                .body(())
                .unwrap(),
        )
    };
    assert_eq!(call().await.unwrap().status(), 200);
    let pid = srv.child.as_ref().unwrap().id().to_string();
    let signal = |sig: &str| {
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        );
    };
    signal("-STOP");
    println!("Redis frozen (default 500 ms timeout):");
    let slowest = every_operation_fails_fast(&redis).await;
    assert!(slowest >= Duration::from_millis(400), "{slowest:?}");
    let started = Instant::now();
    let res = call().await.unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), 503, "fail closed: never 200, never 401");
    assert!(took < Duration::from_secs(2), "{took:?}");
    println!("  request through AuthLayer: 503 after {took:?}");
    signal("-CONT");
    let took = until_everything_works(&redis, Duration::from_secs(5)).await;
    println!("Redis resumed: every operation works {took:?} later");
    // Late answers to the abandoned requests are not mistaken for new ones.
    for _ in 0..20 {
        let got = store
            .get(&d)
            .await
            .unwrap()
            .expect("the record is still there");
        assert_eq!(got.context().subject(), "alice");
        assert!(
            store
                .get(&TokenDigest::of("other"))
                .await
                .unwrap()
                .is_none()
        );
    }
    assert_eq!(call().await.unwrap().status(), 200);
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn two_example_servers_share_revocations_through_redis() {
    let srv = Server::start();
    let url = srv.url();
    let env = || {
        vec![
            (
                "MCP_AUTH_TOKENS".to_owned(),
                "static-token-0123456789abcdef;sub=ops".to_owned(),
            ),
            ("MCP_REDIS_URL".to_owned(), url.clone()),
            // Records authenticated by both instances with one key.
            (
                "MCP_REDIS_RECORD_KEY".to_owned(),
                "shared-record-key-0123456789abcdef-0123".to_owned(),
            ),
            ("MCP_FAILURE_LIMIT".to_owned(), "5/60".to_owned()),
            // Direct clients told apart by address: a proxy is configured elsewhere, so
            // 127.0.0.1 is a client like any other.
            ("MCP_TRUSTED_PROXIES".to_owned(), "192.0.2.1".to_owned()),
        ]
    };
    let one = support::start_with(|_| env()).await;
    let two = support::start_with(|_| env()).await;
    let issued = one
        .tokens
        .issue(TokenSpec::new("carol", Duration::from_secs(300)).scopes(["data:read"]))
        .await
        .unwrap();
    let probe = |srv: &support::Server, token: &str| {
        let bearer = format!("Bearer {token}");
        let url = srv.url();
        async move {
            reqwest::Client::new()
                .post(url)
                .header("authorization", bearer)
                .header("content-type", "application/json")
                .header("accept", "application/json, text/event-stream")
                .body(r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let token = issued.token.expose();
    assert_eq!(
        probe(&two, token).await,
        200,
        "issued on one, accepted by the other"
    );
    assert!(one.tokens.revoke(token).await.unwrap());
    let revoked_at = Instant::now();
    loop {
        if probe(&two, token).await == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "still accepted by the other instance after 1 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "revocation seen by the other instance after {:?}",
        revoked_at.elapsed()
    );
    assert_eq!(probe(&one, token).await, 401);

    // Failure counters are shared: two failures so far (one on each); fill the window on
    // one, and the other refuses too.
    let mut refused = false;
    for _ in 0..5 {
        let status = probe(&one, "wrong-token-0123456789abcdef").await;
        if status == 429 {
            refused = true;
            break;
        }
        assert_eq!(status, 401);
    }
    assert!(refused, "instance one never limited the client");
    assert_eq!(
        probe(&two, "static-token-0123456789abcdef").await,
        429,
        "instance two refuses the client the other one limited, even with a good token"
    );
}

// --- TLS ------------------------------------------------------------------------------------------

/// Set in the child process that runs the TLS checks.
const TLS_CHILD: &str = "MCP_AUTH_REDIS_TLS_CHILD";
const TLS_PASSWORD: &str = "S3CR3T-redis-password";

fn test_ca(name: &str) -> rcgen::CertifiedIssuer<'static, rcgen::KeyPair> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
        rcgen::KeyUsagePurpose::DigitalSignature,
    ];
    rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap()
}

/// A server certificate and key (PEM) for `names` (IP addresses become IP SANs).
fn server_cert(
    ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    names: &[&str],
) -> (String, String) {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = rcgen::CertificateParams::new(names).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "redis on loopback");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// How `op` failed (it must fail within 2 s, without the password).
async fn failure<T: std::fmt::Debug>(
    what: &str,
    op: impl Future<Output = Result<T, StoreError>>,
) -> String {
    let started = Instant::now();
    let err = op.await.expect_err(what).to_string();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "{what}: {took:?}");
    // Host names and addresses may be named (a certificate error says which name it
    // expected); the password never.
    assert!(!err.contains("S3CR3T"), "{what}: {err}");
    println!("  {what}: {err} after {took:?}");
    err
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn rediss_connects_with_tls_checks_the_certificate_and_names_errors() {
    // The checks run in a fresh process, where no rustls crypto provider is installed yet
    // while this build's rustls has two provider features on (aws-lc-rs and ring, from the
    // dev-dependencies): `redis` then panics ("no process-level CryptoProvider") unless
    // `Redis::new` installs one.
    if std::env::var_os(TLS_CHILD).is_none() {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "rediss_connects_with_tls_checks_the_certificate_and_names_errors",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(TLS_CHILD, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        println!("{stdout}\n{stderr}");
        assert!(out.status.success(), "the TLS checks failed: {stderr}");
        assert!(stdout.contains("1 passed"), "the TLS checks did not run");
        return;
    }
    assert!(
        rustls::crypto::CryptoProvider::get_default().is_none(),
        "a fresh process: nothing installed a crypto provider yet"
    );

    let ca = test_ca("mcp-auth test CA");
    let (cert, key) = server_cert(&ca, &["127.0.0.1", "localhost"]);
    let dir = std::env::temp_dir().join(format!("mcp-auth-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str, content: &str| {
        let p = dir.join(name);
        std::fs::write(&p, content).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let (ca_file, cert_file, key_file) = (
        path("ca.pem", &ca.pem()),
        path("server.pem", &cert),
        path("server.key", &key),
    );
    let port = free_port();
    let port_s = port.to_string();
    let _srv = Server::spawn(
        port,
        &[
            "--port",
            "0",
            "--tls-port",
            &port_s,
            "--bind",
            "127.0.0.1",
            "127.0.0.2",
            "--tls-cert-file",
            &cert_file,
            "--tls-key-file",
            &key_file,
            "--tls-ca-cert-file",
            &ca_file,
            "--tls-auth-clients",
            "no",
            "--requirepass",
            TLS_PASSWORD,
        ],
    );
    let url = |host: &str, password: &str| format!("rediss://:{password}@{host}:{port}/0");
    let with_ca = |url: String| {
        Redis::new(
            RedisConfig::new(url)
                .ca_cert_pem(ca.pem().into_bytes())
                .timeout(Duration::from_secs(1)),
        )
        .unwrap()
    };

    // The server's CA trusted: everything works over TLS, issued tokens included.
    println!("rediss:// with the CA:");
    let good = with_ca(url("127.0.0.1", TLS_PASSWORD));
    every_operation_works(&good)
        .await
        .expect("every operation over TLS");
    let tokens = TokenManager::new(good.token_store());
    let issued = tokens
        .issue(TokenSpec::new("tls-user", Duration::from_secs(60)).scopes(["data:read"]))
        .await
        .unwrap();
    let svc = AuthLayer::new(BearerAuthenticator::new().with_store(good.token_store())).layer(
        service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        }),
    );
    let res = svc
        .oneshot(
            http::Request::get("/mcp")
                .header("authorization", format!("Bearer {}", issued.token.expose()))
                .body(())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A host name the certificate also names.
    every_operation_works(&with_ca(url("localhost", TLS_PASSWORD)))
        .await
        .expect("localhost over TLS");

    println!("failures, each naming its cause:");
    // No CA given: the system's roots do not include the test CA.
    let err = failure(
        "system roots",
        Redis::new(RedisConfig::new(url("127.0.0.1", TLS_PASSWORD)))
            .unwrap()
            .ping(),
    )
    .await;
    assert!(err.contains("certificate is refused"), "{err}");
    // Another CA.
    let other = test_ca("another CA");
    let err = failure(
        "another CA",
        Redis::new(
            RedisConfig::new(url("127.0.0.1", TLS_PASSWORD)).ca_cert_pem(other.pem().into_bytes()),
        )
        .unwrap()
        .ping(),
    )
    .await;
    assert!(err.contains("certificate is refused"), "{err}");
    // A host the certificate does not name (same server, another loopback address).
    let err = failure(
        "host not in the certificate",
        with_ca(url("127.0.0.2", TLS_PASSWORD)).ping(),
    )
    .await;
    assert!(
        err.contains("certificate is refused") && err.contains("not valid for name"),
        "{err}"
    );
    // TLS fine, password wrong.
    let err = failure(
        "wrong password",
        with_ca(url("127.0.0.1", "S3CR3T-wrong")).ping(),
    )
    .await;
    assert!(
        !err.contains("TLS") && err.contains("authentication failed"),
        "{err}"
    );
    // Plaintext to the TLS port.
    let err = failure(
        "redis:// to a TLS port",
        handle(&format!("redis://:{TLS_PASSWORD}@127.0.0.1:{port}/0")).ping(),
    )
    .await;
    assert!(!err.contains("certificate"), "{err}");
    // TLS to a plaintext server: never a silent plaintext fallback.
    let plain = Server::start();
    let err = failure(
        "rediss:// to a plaintext server",
        with_ca(format!(
            "rediss://:{TLS_PASSWORD}@127.0.0.1:{}/0",
            plain.port
        ))
        .ping(),
    )
    .await;
    // A plaintext Redis reads the TLS hello as the start of a command and waits for the
    // rest, never answering: the handshake runs into the timeout.
    assert!(err.contains("timed out"), "{err}");
    // Nothing listening.
    let err = failure(
        "nothing listening",
        with_ca(format!(
            "rediss://:{TLS_PASSWORD}@127.0.0.1:{}/0",
            free_port()
        ))
        .ping(),
    )
    .await;
    assert!(err.contains("connection refused"), "{err}");
    // Through the authenticator: a certificate failure is 503, never a 401 or a 200.
    let svc = AuthLayer::new(
        BearerAuthenticator::new().with_store(
            Redis::new(RedisConfig::new(url("127.0.0.1", TLS_PASSWORD)))
                .unwrap()
                .token_store(),
        ),
    )
    .layer(service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    }));
    let res = svc
        .oneshot(
            http::Request::get("/mcp")
                .header("authorization", format!("Bearer {}", issued.token.expose()))
                .body(())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.status(), 503);

    // A server that asks for client certificates (`tls-auth-clients yes`).
    println!("client certificates:");
    let mtls_port = free_port();
    let mtls_port_s = mtls_port.to_string();
    let _mtls = Server::spawn(
        mtls_port,
        &[
            "--port",
            "0",
            "--tls-port",
            &mtls_port_s,
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            &cert_file,
            "--tls-key-file",
            &key_file,
            "--tls-ca-cert-file",
            &ca_file,
            "--tls-auth-clients",
            "yes",
        ],
    );
    let mtls_url = format!("rediss://127.0.0.1:{mtls_port}/0");
    let (cert_pem, key_pem) = client_cert(&ca);
    let with_client_cert = Redis::new(
        RedisConfig::new(mtls_url.as_str())
            .ca_cert_pem(ca.pem().into_bytes())
            .client_cert_pem(cert_pem.into_bytes(), key_pem)
            .timeout(Duration::from_secs(1)),
    )
    .unwrap();
    every_operation_works(&with_client_cert)
        .await
        .expect("every operation with a client certificate");
    let err = failure("no client certificate", with_ca(mtls_url.clone()).ping()).await;
    assert!(
        err.contains("server refused the handshake") && err.contains("CertificateRequired"),
        "{err}"
    );
    let (other_cert, other_key) = client_cert(&other);
    let err = failure(
        "a client certificate from another CA",
        Redis::new(
            RedisConfig::new(mtls_url.as_str())
                .ca_cert_pem(ca.pem().into_bytes())
                .client_cert_pem(other_cert.into_bytes(), other_key)
                .timeout(Duration::from_secs(1)),
        )
        .unwrap()
        .ping(),
    )
    .await;
    assert!(err.contains("UnknownCA"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A client certificate and key (PEM) issued by `ca`.
fn client_cert(ca: &rcgen::CertifiedIssuer<'static, rcgen::KeyPair>) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["redis-client".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "redis client");
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

// --- record integrity -------------------------------------------------------------------------------

fn record_key_of(token: &str) -> String {
    use sha2::Digest as _;
    let d = sha2::Sha256::digest(token.as_bytes());
    let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
    format!("mcp-auth:tok:{hex}")
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn a_record_key_refuses_planted_edited_and_moved_records() {
    const KEY: &str = "record-key-0123456789abcdef-0123456789";
    let srv = Server::start();
    let keyed = Redis::new(RedisConfig::new(srv.url()).record_key(KEY)).unwrap();
    let store = keyed.token_store();
    let svc = AuthLayer::new(BearerAuthenticator::new().with_store(store.clone())).layer(
        service_fn(|_req: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
        }),
    );
    let status = |token: &str| {
        let req = http::Request::get("/mcp")
            .header("authorization", format!("Bearer {token}"))
            .body(())
            .unwrap();
        let svc = svc.clone();
        async move { svc.oneshot(req).await.unwrap().status().as_u16() }
    };
    let issued = TokenManager::new(store.clone())
        .issue(TokenSpec::new("alice", Duration::from_secs(300)).scopes(["data:read"]))
        .await
        .unwrap();
    let token = issued.token.expose().to_owned();
    let at = record_key_of(&token);
    assert_eq!(status(&token).await, 200, "a genuine record passes");

    let mut raw = srv.raw();
    let (r, m): (String, String) = redis::cmd("HMGET")
        .arg(&at)
        .arg("r")
        .arg("m")
        .query(&mut raw)
        .unwrap();
    assert_eq!(m.len(), 64, "an HMAC-SHA256, hex: {m}");
    let hset = |raw: &mut redis::Connection, key: &str, fields: &[(&str, &str)]| {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(key);
        for (f, v) in fields {
            cmd.arg(*f).arg(*v);
        }
        cmd.query::<()>(raw).unwrap();
        redis::cmd("PEXPIRE")
            .arg(key)
            .arg(300_000)
            .query::<()>(raw)
            .unwrap();
    };

    // An edited scope: refused as an unknown token, for this and every later request.
    let edited = r.replace(r#""data:read""#, r#""data:read","data:admin""#);
    assert_ne!(edited, r);
    hset(&mut raw, &at, &[("r", &edited)]);
    assert!(store.get(&TokenDigest::of(&token)).await.unwrap().is_none());
    assert_eq!(status(&token).await, 401);
    assert_eq!(status(&token).await, 401);
    // Put back as it was: accepted again.
    hset(&mut raw, &at, &[("r", &r)]);
    assert_eq!(status(&token).await, 200);
    let back = store.get(&TokenDigest::of(&token)).await.unwrap().unwrap();
    assert!(back.context().has_scope("data:read") && !back.context().has_scope("data:admin"));

    // The review's attack: a record planted for a token of the attacker's choosing.
    let chosen = "attacker-chosen-token-0123456789abcdef";
    let exp_ms = (SystemTime::now() + Duration::from_secs(300))
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    let planted =
        format!(r#"{{"sub":"admin","method":"bearer","scopes":["data:admin"],"exp_ms":{exp_ms}}}"#);
    hset(
        &mut raw,
        &record_key_of(chosen),
        &[("r", &planted), ("v", "0")],
    );
    assert_eq!(status(chosen).await, 401, "no MAC: refused");
    // What the key prevents: without it, the planted record is believed.
    let unkeyed = handle(&srv.url()).token_store();
    let believed = unkeyed
        .get(&TokenDigest::of(chosen))
        .await
        .unwrap()
        .unwrap();
    assert!(believed.context().has_scope("data:admin"));
    // A genuine record and its MAC copied to the chosen token's key (moved): refused.
    hset(
        &mut raw,
        &record_key_of(chosen),
        &[("r", &r), ("v", "0"), ("m", &m)],
    );
    assert_eq!(status(chosen).await, 401, "the MAC covers the key too");
    // A MAC that is not hex, or of the wrong length.
    hset(
        &mut raw,
        &record_key_of(chosen),
        &[("r", &planted), ("m", "zz")],
    );
    assert_eq!(status(chosen).await, 401);
    hset(&mut raw, &record_key_of(chosen), &[("m", &m[..32])]);
    assert_eq!(status(chosen).await, 401);
    // A record written under another key.
    let other = Redis::new(
        RedisConfig::new(srv.url()).record_key("another-record-key-0123456789abcdef-01"),
    )
    .unwrap()
    .token_store();
    let d = TokenDigest::of("written-under-another-key-0123456789");
    other
        .insert(d, record("mallory", "id-m", Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        other.get(&d).await.unwrap().is_some(),
        "its own key verifies"
    );
    assert!(
        store.get(&d).await.unwrap().is_none(),
        "another key does not"
    );
    // The genuine token still works.
    assert_eq!(status(&token).await, 200);

    // What a MAC cannot do (documented): the revoked flag is not covered, so whoever can
    // write to Redis can clear it and undo a revocation.
    assert!(store.revoke(&TokenDigest::of(&token)).await.unwrap());
    assert_eq!(status(&token).await, 401);
    hset(&mut raw, &at, &[("v", "0")]);
    assert_eq!(status(&token).await, 200);
}

// --- revocation of many tokens at once ------------------------------------------------------------

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn revoking_a_subject_is_all_or_nothing_even_when_the_caller_times_out() {
    const N: usize = 3000;
    let srv = Server::start();
    let store = handle(&srv.url()).token_store();
    let digests: Vec<TokenDigest> = (0..N)
        .map(|i| TokenDigest::of(&format!("bulk-token-{i}")))
        .collect();
    for (i, d) in digests.iter().enumerate() {
        store
            .insert(
                *d,
                record("bulk", &format!("id-{i}"), Duration::from_secs(60)),
            )
            .await
            .unwrap();
    }
    // A caller with a 1 ms timeout, connected first.
    let hasty = Redis::new(RedisConfig::new(srv.url()).timeout(Duration::from_millis(1))).unwrap();
    let started = Instant::now();
    while hasty.ping().await.is_err() {
        assert!(started.elapsed() < Duration::from_secs(5), "cannot connect");
    }
    let result = hasty.token_store().revoke_subject("bulk").await;
    println!("revoke_subject of {N} tokens with a 1 ms timeout: {result:?}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut revoked = 0;
    for d in &digests {
        if store.get(d).await.unwrap().unwrap().is_revoked() {
            revoked += 1;
        }
    }
    assert!(
        revoked == 0 || revoked == N,
        "{revoked} of {N} revoked: a half-done revocation"
    );
    if let Ok(n) = result {
        assert_eq!((n, revoked), (N, N));
    }
    // Done (or redone) with a normal timeout: all of them.
    let again = store.revoke_subject("bulk").await.unwrap();
    assert_eq!(again, N - revoked);
    println!("the server revoked {revoked} of {N} for the hasty caller; {again} more on retry");
}

/// DPoP proofs are one-time across instances: a proof accepted by one example server is a
/// replay at the other (both behind one public URL, sharing Redis); and the replay cache
/// itself, seen by two handles.
#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn dpop_proofs_are_one_time_across_instances() {
    use mcp_auth::authenticators::jwt::{Algorithm, JwtMinter};
    use mcp_auth::store::ReplayCache;
    use mcp_auth::testing::DpopKey;

    let server = Server::start();
    let url = server.url();
    let (a, b) = (handle(&url), handle(&url));
    let until = SystemTime::now() + Duration::from_secs(60);
    assert!(a.replay_cache().first_use(&[9; 32], until).await.unwrap());
    assert!(!b.replay_cache().first_use(&[9; 32], until).await.unwrap());
    assert!(b.replay_cache().first_use(&[8; 32], until).await.unwrap());

    const SECRET: &str = "shared-jwt-secret-0123456789abcdef-0123";
    const PUBLIC: &str = "http://127.0.0.1:1/mcp";
    let env = || {
        vec![
            ("MCP_JWT_SECRET".to_owned(), SECRET.to_owned()),
            ("MCP_PUBLIC_URL".to_owned(), PUBLIC.to_owned()),
            ("MCP_REDIS_URL".to_owned(), url.clone()),
        ]
    };
    let one = support::start_with(|_| env()).await;
    let two = support::start_with(|_| env()).await;
    let key = DpopKey::es256();
    let mut claims = serde_json::Map::new();
    claims.insert("sub".into(), "dora".into());
    claims.insert("cnf".into(), serde_json::json!({"jkt": key.thumbprint()}));
    let token = JwtMinter::hmac(SECRET, Algorithm::HS256)
        .unwrap()
        .audience(PUBLIC)
        .mint_claims(claims)
        .unwrap();
    let proof = key.proof("POST", PUBLIC).access_token(&token).sign();
    let dpop = format!("DPoP {token}");
    let headers = [("authorization", dpop.as_str()), ("dpop", proof.as_str())];
    assert_eq!(support::raw::attempt(&one, &headers).await.0, 200);
    assert_eq!(
        support::raw::attempt(&two, &headers).await.0,
        401,
        "the proof was replayed at the other instance"
    );
    // A fresh proof works at the other instance.
    let fresh = key.proof("POST", PUBLIC).access_token(&token).sign();
    let status = support::raw::attempt(&two, &[("authorization", &dpop), ("dpop", &fresh)])
        .await
        .0;
    assert_eq!(status, 200);
}

/// Outbound refresh-token rotation survives a restart through Redis: the rotated refresh
/// token is saved there, the old one is spent at the authorization server, and a new grant
/// (another handle, as after a restart) continues with the saved one.
#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn outbound_refresh_rotation_survives_a_restart_through_redis() {
    use mcp_auth::Secret;
    use mcp_auth::outbound::{
        Caller, MemoryRefreshTokenStore, OutboundError, RedisRefreshTokenStore, RefreshTokenGrant,
        RefreshTokenStore, TokenEndpoint, TokenSource,
    };
    use mcp_auth::testing::MockAuthServer;

    let server = Server::start();
    let url = server.url();
    let idp = MockAuthServer::start().await;
    idp.register_client("svc", "svc-secret-0123456789");
    let first = idp.issue_refresh_token("svc", "svc-user", &["files:read"]);
    let endpoint = || {
        TokenEndpoint::new(
            &idp.token_endpoint(),
            "svc",
            Secret::new("svc-secret-0123456789"),
        )
        .unwrap()
    };

    let store = RedisRefreshTokenStore::new(&handle(&url), "crm");
    let grant = RefreshTokenGrant::new(endpoint(), store.clone())
        .initial_refresh_token(Secret::new(first.clone()));
    grant.credential(&Caller::service()).await.unwrap();
    let saved = store.load().await.unwrap().expect("saved");
    assert_ne!(saved.expose(), first, "the rotated token is in Redis");
    drop(grant);

    // The first token is spent.
    let stale = RefreshTokenGrant::new(endpoint(), MemoryRefreshTokenStore::new())
        .initial_refresh_token(Secret::new(first));
    assert_eq!(
        stale.credential(&Caller::service()).await.unwrap_err(),
        OutboundError::Refused {
            error: "invalid_grant".into()
        }
    );

    // "Restarted": a new handle and grant; the configured token is stale, Redis has the newest.
    let restarted = RefreshTokenGrant::new(
        endpoint(),
        RedisRefreshTokenStore::new(&handle(&url), "crm"),
    )
    .initial_refresh_token(Secret::new("stale-from-configuration"));
    assert!(restarted.credential(&Caller::service()).await.is_ok());
    // And it rotated again: Redis holds yet another token.
    let newest = RedisRefreshTokenStore::new(&handle(&url), "crm")
        .load()
        .await
        .unwrap()
        .unwrap();
    assert_ne!(newest.expose(), saved.expose());
}

/// Exchanged tokens shared through Redis: instance B reuses the token instance A got for the
/// same caller (one exchange at the authorization server, not two); the entry is encrypted
/// (the token is not in Redis in clear) and bound to its key; another key cannot read it.
#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn exchanged_tokens_are_shared_between_instances_encrypted() {
    use mcp_auth::outbound::{
        Caller, InboundToken, RedisExchangeCache, TokenEndpoint, TokenExchange, TokenSource,
    };
    use mcp_auth::testing::MockAuthServer;
    use mcp_auth::{AuthContext, AuthMethod, Secret};

    const GRANT: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
    let server = Server::start();
    let url = server.url();
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
    let key = Secret::new("shared-exchange-key-0123456789abcdef-01");
    let instance = |key: &Secret| {
        TokenExchange::new(endpoint(), "https://files.example.com")
            .scopes(["files:read"])
            .shared_cache(RedisExchangeCache::new(&handle(&url), key).unwrap())
    };
    let inbound = idp.token().subject("alice").scopes(["files:read"]).jwt();
    let ctx = AuthContext::builder("alice", AuthMethod::Jwt).build();
    let kept = InboundToken::new(Secret::new(inbound));
    let caller = Caller::new(&ctx, Some(&kept));

    let a = instance(&key).credential(&caller).await.unwrap();
    assert_eq!(idp.grant_requests(GRANT), 1);
    let b = instance(&key).credential(&caller).await.unwrap();
    assert_eq!(
        idp.grant_requests(GRANT),
        1,
        "instance B took A's token from Redis"
    );
    assert!(a.same_token(&b));
    // Not in clear in Redis.
    let mut raw = server.raw();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*xchg:*").query(&mut raw).unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let stored: String = redis::cmd("GET").arg(&keys[0]).query(&mut raw).unwrap();
    let token = a
        .header_value()
        .unwrap()
        .to_str()
        .unwrap()
        .trim_start_matches("Bearer ")
        .to_owned();
    assert!(!stored.contains(&token) && !stored.contains(&token[..20]));
    let ttl: i64 = redis::cmd("PTTL").arg(&keys[0]).query(&mut raw).unwrap();
    assert!(ttl > 0, "the entry expires with the token");
    // Another key cannot read it: that instance exchanges for itself.
    let other = Secret::new("another-exchange-key-0123456789abcdef-0");
    instance(&other).credential(&caller).await.unwrap();
    assert_eq!(idp.grant_requests(GRANT), 2);
    // A short key is refused.
    assert!(RedisExchangeCache::new(&handle(&url), &Secret::new("short")).is_err());
}
