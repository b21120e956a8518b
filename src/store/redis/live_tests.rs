//! Every Redis store against a live server: `MCP_AUTH_TEST_REDIS` (default
//! `redis://127.0.0.1:6379`). Ignored unless asked for (`--ignored`).

use std::time::{Duration, SystemTime};

use super::{Redis, RedisConfig, now_ms};
use crate::context::{AuthContext, AuthMethod};
use crate::store::{
    AttemptStore, Owner, Principal, RedisSessionStore, Reservation, RevocationList, SessionDigest,
    SessionStore, TokenDigest, TokenFacts, TokenRecord, TokenStore,
};

/// A handle on the test server, under a prefix of its own.
async fn live(what: &str) -> Redis {
    let url = std::env::var("MCP_AUTH_TEST_REDIS")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let prefix = format!("mcp-auth-unit-{what}-{}:", now_ms());
    let redis = Redis::new(RedisConfig::new(url).key_prefix(prefix)).unwrap();
    redis.ping().await.unwrap();
    redis
}

#[tokio::test]
#[ignore = "needs a running Redis"]
async fn attempts_are_counted_reserved_and_refunded() {
    let attempts = live("attempts").await.attempt_store();
    let w = Duration::from_secs(60);
    assert_eq!(attempts.failures("a").await.unwrap(), None);
    assert_eq!(attempts.record_failure("a", w).await.unwrap().count, 1);
    assert_eq!(
        attempts.reserve("a", w, 2).await.unwrap(),
        Reservation::Reserved
    );
    assert!(matches!(
        attempts.reserve("a", w, 2).await.unwrap(),
        Reservation::Refused(a) if a.count == 2
    ));
    attempts.refund("a").await.unwrap();
    assert_eq!(attempts.failures("a").await.unwrap().unwrap().count, 1);
}

#[tokio::test]
#[ignore = "needs a running Redis"]
async fn sessions_are_bound_once_and_unbound_by_their_owner() {
    let sessions = RedisSessionStore::new(&live("sessions").await);
    let (s, alice, bob) = (
        SessionDigest::of(b"s-1"),
        Owner::of("alice"),
        Owner::of("bob"),
    );
    assert_eq!(sessions.owner(&s).await.unwrap(), None);
    assert_eq!(sessions.bind(&s, &alice).await.unwrap(), alice);
    assert_eq!(sessions.bind(&s, &bob).await.unwrap(), alice);
    assert!(!sessions.unbind(&s, &bob).await.unwrap());
    assert_eq!(sessions.owner(&s).await.unwrap(), Some(alice));
    assert!(sessions.unbind(&s, &alice).await.unwrap());
    assert_eq!(sessions.owner(&s).await.unwrap(), None);
}

#[tokio::test]
#[ignore = "needs a running Redis"]
async fn tokens_are_stored_and_revoked() {
    let tokens = live("tokens").await.token_store();
    let ctx = AuthContext::builder("carol", AuthMethod::Bearer)
        .credential_id("id-1")
        .build();
    let exp = SystemTime::now() + Duration::from_secs(60);
    let d = TokenDigest::of("a-token");
    tokens.insert(d, TokenRecord::new(ctx, exp)).await.unwrap();
    assert!(!tokens.get(&d).await.unwrap().unwrap().is_revoked());
    assert!(tokens.revoke(&d).await.unwrap());
    assert!(!tokens.revoke(&TokenDigest::of("unknown")).await.unwrap());
    assert!(tokens.get(&d).await.unwrap().unwrap().is_revoked());
    assert_eq!(
        tokens.revoke_subject("carol").await.unwrap(),
        0,
        "already revoked"
    );
    assert!(!tokens.revoke_id("id-1").await.unwrap());
}

#[tokio::test]
#[ignore = "needs a running Redis"]
async fn token_ids_and_principals_are_revoked() {
    let list = live("revocations").await.revocation_list();
    let dave = Principal::Subject {
        issuer: None,
        subject: "dave",
    };
    let facts = TokenFacts {
        token_id: Some("j1".to_owned()),
        issued_at: Some(SystemTime::now() - Duration::from_secs(10)),
        principal_keys: vec![dave.key()],
    };
    assert!(!list.revoked(&facts).await.unwrap());
    let exp = SystemTime::now() + Duration::from_secs(60);
    list.revoke_token_id("j1", exp).await.unwrap();
    assert!(list.revoked(&facts).await.unwrap());
    let other = TokenFacts {
        token_id: None,
        ..facts
    };
    assert!(!list.revoked(&other).await.unwrap());
    list.revoke_before(dave, SystemTime::now(), Duration::from_secs(60))
        .await
        .unwrap();
    assert!(list.revoked(&other).await.unwrap());
}
