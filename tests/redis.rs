//! Shared state in a real Redis (`redis-server` on a loopback port, started here): issued
//! tokens, revocations and failure counters seen by two handles ("instances"), expiry, Redis
//! going down (bounded failures, 503 — never a silent accept) and coming back (automatic
//! reconnection), and two example servers sharing one Redis.
//!
//! Needs `redis-server` (scripts/test.sh installs it and runs these tests with `--ignored`).

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use mcp_auth::bearer::{
    BearerAuthenticator, BearerLayer, TokenDigest, TokenManager, TokenRecord, TokenSpec, TokenStore,
};
use mcp_auth::limit::AttemptStore;
use mcp_auth::redis::{Redis, RedisConfig};
use mcp_auth::revocation::{Principal, RevocationList, TokenFacts};
use mcp_auth::{AuthContext, AuthMethod};
use tower::{Layer, ServiceExt, service_fn};

const IGNORE: &str = "needs redis-server: run scripts/test.sh";

/// A redis-server on a loopback port, killed on drop.
struct Server {
    child: Option<Child>,
    port: u16,
}

impl Server {
    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: run scripts/test.sh (it installs it)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self {
            child: Some(child),
            port,
        }
    }

    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

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
    let _ = IGNORE;
    let srv = Server::start();
    let (a, b) = (
        handle(&srv.url()).token_store(),
        handle(&srv.url()).token_store(),
    );
    let d1 = TokenDigest::of("token-one");
    a.insert(d1, record("alice", "id-1", Duration::from_secs(60)))
        .await
        .unwrap();
    let got = b
        .get(&d1)
        .await
        .unwrap()
        .expect("seen by the other instance");
    assert_eq!(got.context().subject(), "alice");
    assert!(got.context().has_scope("data:read"));
    assert_eq!(got.context().roles().collect::<Vec<_>>(), ["editor"]);
    assert_eq!(got.id(), "id-1");
    assert!(!got.is_revoked());
    assert!(b.revoke(&d1).await.unwrap());
    assert!(
        a.get(&d1).await.unwrap().unwrap().is_revoked(),
        "revoked everywhere"
    );
    assert!(!a.revoke(&TokenDigest::of("unknown")).await.unwrap());

    // By id and by subject.
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
    assert_eq!(b.revoke_subject("bob").await.unwrap(), 2);
    assert!(a.get(&d3).await.unwrap().unwrap().is_revoked());

    // Records expire with their tokens.
    let d5 = TokenDigest::of("short");
    a.insert(d5, record("dave", "id-5", Duration::from_millis(300)))
        .await
        .unwrap();
    assert!(b.get(&d5).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(450)).await;
    assert!(b.get(&d5).await.unwrap().is_none());

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
    let t = facts(Some("jti-1"), "alice", Some("app"), old);
    assert!(!b.revoked(&t).await.unwrap());
    a.revoke_token_id("jti-1", now + Duration::from_millis(400))
        .await
        .unwrap();
    assert!(b.revoked(&t).await.unwrap());
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert!(!b.revoked(&t).await.unwrap(), "gone once the token expired");

    a.revoke_before(
        Principal::Subject {
            issuer: None,
            subject: "alice",
        },
        now - Duration::from_secs(60),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert!(b.revoked(&facts(None, "alice", None, old)).await.unwrap());
    assert!(
        !b.revoked(&facts(None, "alice", None, now)).await.unwrap(),
        "issued after the cut-off"
    );
    // A later cut-off wins; an earlier one does not move it back.
    a.revoke_before(
        Principal::Client {
            issuer: Some("https://as.example.com"),
            client_id: "app",
        },
        now + Duration::from_secs(5),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    b.revoke_before(
        Principal::Client {
            issuer: Some("https://as.example.com"),
            client_id: "app",
        },
        now - Duration::from_secs(3600),
        Duration::from_secs(1),
    )
    .await
    .unwrap();
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
    assert_eq!(a.record_failure("203.0.113.9", w).await.unwrap().count, 1);
    assert_eq!(b.record_failure("203.0.113.9", w).await.unwrap().count, 2);
    let seen = a.failures("203.0.113.9").await.unwrap().unwrap();
    assert_eq!(seen.count, 2);
    assert!(seen.resets_in <= w && seen.resets_in > Duration::ZERO);
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert_eq!(b.failures("203.0.113.9").await.unwrap(), None);
    assert_eq!(b.record_failure("203.0.113.9", w).await.unwrap().count, 1);
}

#[tokio::test]
#[ignore = "needs redis-server: run scripts/test.sh"]
async fn redis_down_fails_closed_quickly_and_recovers_by_itself() {
    let mut srv = Server::start();
    let redis = handle(&srv.url());
    let store = redis.token_store();
    let d = TokenDigest::of("a-token-0123456789abcdef");
    store
        .insert(d, record("alice", "id", Duration::from_secs(60)))
        .await
        .unwrap();
    let auth = BearerAuthenticator::new().with_store(store.clone());
    let svc = BearerLayer::new(auth).layer(service_fn(|_req: http::Request<()>| async {
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
    let started = Instant::now();
    assert!(store.get(&d).await.is_err());
    assert!(
        redis.attempt_store().failures("k").await.is_err()
            && redis
                .revocation_list()
                .revoked(&facts(Some("j"), "s", None, SystemTime::now()))
                .await
                .is_err()
    );
    let res = call().await.unwrap();
    assert_eq!(res.status(), 503, "fail closed: never 200, never 401");
    assert!(res.headers().contains_key("retry-after"));
    let down = started.elapsed();
    assert!(down < Duration::from_secs(2), "{down:?}");

    // Redis comes back on the same port: the same handle reconnects by itself.
    let _srv = Server::start_on(port);
    let back = Instant::now();
    let mut ok = false;
    while back.elapsed() < Duration::from_secs(5) {
        if redis.ping().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "no reconnection within 5 s");
    println!(
        "redis down: three failed operations and a 503 in {down:?}; reconnected {:?} after restart",
        back.elapsed()
    );
    // The new server is empty: the token is unknown (401), and nothing errs.
    assert_eq!(call().await.unwrap().status(), 401);
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
        ]
    };
    let one = support::start_with(|_| env()).await;
    let two = support::start_with(|_| env()).await;
    let issued = one
        .tokens
        .issue(TokenSpec::new("carol", Duration::from_secs(300)).scopes(["data:read"]))
        .await
        .unwrap();
    let bearer = format!("Bearer {}", issued.token.expose());
    let probe = |srv: &support::Server| {
        let bearer = bearer.clone();
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
    assert_eq!(
        probe(&two).await,
        200,
        "issued on one, accepted by the other"
    );
    assert!(one.tokens.revoke(issued.token.expose()).await.unwrap());
    let revoked_at = Instant::now();
    loop {
        if probe(&two).await == 401 {
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
    assert_eq!(probe(&one).await, 401);
    // Failure counters are shared too: failures on one instance count on the other.
    let _ = (one, two);
}
