use super::*;
use crate::context::AuthMethod;
use crate::oauth::{FetchError, Fetched, HttpFetcher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::UNIX_EPOCH;

/// Answers introspection with a fixed JSON document and counts calls; `None` = down.
struct Fake {
    answer: Option<serde_json::Value>,
    calls: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl HttpFetcher for Fake {
    async fn get(&self, _url: &str, _max: usize) -> Result<Fetched, FetchError> {
        Err(FetchError("no GET here".into()))
    }
    async fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        basic: Option<(&str, &str)>,
        _max: usize,
    ) -> Result<Fetched, FetchError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let mut seen = format!("{url} basic={basic:?}");
        for (k, v) in form {
            if *k != "token" {
                seen.push_str(&format!(" {k}={v}"));
            }
        }
        self.seen.lock().unwrap().push(seen);
        match &self.answer {
            Some(a) => Ok(Fetched {
                body: a.to_string().into(),
                max_age: None,
            }),
            None => Err(FetchError("connection refused".into())),
        }
    }
}

const AUD: &str = "https://mcp.example.com/mcp";

fn auth(
    answer: Option<serde_json::Value>,
    cache: bool,
    client_auth: ClientAuth,
) -> (
    IntrospectionAuthenticator,
    Arc<AtomicUsize>,
    Arc<Mutex<Vec<String>>>,
) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut b = IntrospectionAuthenticator::builder()
        .endpoint("https://as.example.com/introspect")
        .client_credentials("rs", "rs-secret")
        .client_auth(client_auth)
        .audience("HTTPS://MCP.example.com/mcp/")
        .fetcher(Fake {
            answer,
            calls: calls.clone(),
            seen: seen.clone(),
        });
    if cache {
        b = b.cache(100, Duration::from_secs(60));
    }
    (b.build().unwrap(), calls, seen)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn parts() -> Parts {
    http::Request::get("/mcp")
        .header("authorization", "Bearer opaque-token-123")
        .body(())
        .unwrap()
        .into_parts()
        .0
}

#[tokio::test]
async fn an_active_token_for_this_audience_maps_into_the_context() {
    let answer = serde_json::json!({"active": true, "sub": "alice", "scope": "data:read data:write",
        "client_id": "app", "exp": now() + 300, "aud": [AUD, "https://other"], "iss": "https://as.example.com"});
    let (a, _, seen) = auth(Some(answer), false, ClientAuth::Basic);
    let ctx = a.authenticate(&parts()).await.unwrap();
    assert_eq!(ctx.subject(), "alice");
    assert_eq!(ctx.method(), &AuthMethod::Introspection);
    assert!(ctx.has_scope("data:write"));
    assert_eq!(ctx.client_id(), Some("app"));
    assert_eq!(ctx.issuer(), Some("https://as.example.com"));
    assert!(ctx.expires_at().is_some());
    assert_eq!(
        seen.lock().unwrap()[0],
        "https://as.example.com/introspect basic=Some((\"rs\", \"rs-secret\")) token_type_hint=access_token"
    );
}

#[tokio::test]
async fn post_client_auth_sends_credentials_in_the_form() {
    let answer = serde_json::json!({"active": true, "sub": "svc", "aud": AUD});
    let (a, _, seen) = auth(Some(answer), false, ClientAuth::Post);
    let ctx = a.authenticate(&parts()).await.unwrap();
    assert_eq!(ctx.subject(), "svc");
    assert!(
        seen.lock().unwrap()[0].ends_with(
            "basic=None token_type_hint=access_token client_id=rs client_secret=rs-secret"
        )
    );
}

#[tokio::test]
async fn inactive_expired_and_foreign_tokens_are_401() {
    let cases = [
        (serde_json::json!({"active": false}), "inactive"),
        (
            serde_json::json!({"active": "true", "sub": "a", "aud": AUD}),
            "inactive",
        ),
        (
            serde_json::json!({"active": true, "sub": "a", "aud": "https://other.example.com/mcp"}),
            "audience_mismatch",
        ),
        (
            serde_json::json!({"active": true, "sub": "a"}),
            "audience_mismatch",
        ),
        (
            serde_json::json!({"active": true, "sub": "a", "aud": AUD, "exp": now() - 3600}),
            "expired",
        ),
        (
            serde_json::json!({"active": true, "sub": "a", "aud": AUD, "nbf": now() + 3600}),
            "not_yet_valid",
        ),
        (
            serde_json::json!({"active": true, "sub": "a", "aud": AUD, "token_type": "refresh_token"}),
            "refresh_token",
        ),
        (
            serde_json::json!({"active": true, "aud": AUD}),
            "no_subject",
        ),
    ];
    for (answer, detail) in cases {
        let (a, _, _) = auth(Some(answer.clone()), false, ClientAuth::Basic);
        let err = a.authenticate(&parts()).await.unwrap_err();
        assert_eq!(err.detail(), Some(detail), "{answer}");
        assert!(err.is_rejection(), "{answer}");
    }
}

#[tokio::test]
async fn an_unreachable_server_is_503_not_401() {
    let (a, _, _) = auth(None, false, ClientAuth::Basic);
    let err = a.authenticate(&parts()).await.unwrap_err();
    assert_eq!(err.kind(), crate::error::AuthErrorKind::Unavailable);
    assert!(err.retry_after().is_some());
}

#[tokio::test]
async fn the_cache_is_off_by_default_and_never_outlives_exp() {
    let answer = serde_json::json!({"active": true, "sub": "a", "aud": AUD, "exp": now() + 300});
    let (a, calls, _) = auth(Some(answer.clone()), false, ClientAuth::Basic);
    a.authenticate(&parts()).await.unwrap();
    a.authenticate(&parts()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 2, "no cache by default");

    let (a, calls, _) = auth(Some(answer), true, ClientAuth::Basic);
    a.authenticate(&parts()).await.unwrap();
    a.authenticate(&parts()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1, "cached");

    // An answer expiring within the leeway is accepted but not cached past exp.
    let soon = serde_json::json!({"active": true, "sub": "a", "aud": AUD, "exp": now() - 1});
    let (a, calls, _) = auth(Some(soon), true, ClientAuth::Basic);
    a.authenticate(&parts()).await.unwrap();
    a.authenticate(&parts()).await.unwrap();
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "an expired token is never served from the cache"
    );
}

#[test]
fn configuration_problems_are_reported_together() {
    let err = IntrospectionAuthenticator::builder()
        .endpoint("http://as.example.com/introspect")
        .fetcher(Fake {
            answer: None,
            calls: Arc::default(),
            seen: Arc::default(),
        })
        .build()
        .unwrap_err();
    let settings: Vec<&str> = err.problems().iter().map(|p| p.setting()).collect();
    assert_eq!(
        settings,
        ["introspection endpoint", "introspection client", "audience"]
    );
}

fn builder_with(fetcher: impl HttpFetcher) -> IntrospectionBuilder {
    IntrospectionAuthenticator::builder()
        .endpoint("https://as.example.com/introspect")
        .client_credentials("rs", "rs-secret")
        .audience(AUD)
        .fetcher(fetcher)
}

fn fake(answer: serde_json::Value, calls: &Arc<AtomicUsize>) -> Fake {
    Fake {
        answer: Some(answer),
        calls: calls.clone(),
        seen: Arc::default(),
    }
}

/// Review L2: an `exp` near i64::MAX from the authorization server used to overflow
/// `SystemTime + Duration` and panic the request task.
#[tokio::test]
async fn an_exp_near_i64_max_is_refused_without_a_panic() {
    for exp in [
        serde_json::json!(i64::MAX - 1),
        serde_json::json!(u64::MAX),
        serde_json::json!(9.2e18),
        serde_json::json!((1u64 << 53) + 1),
    ] {
        let answer = serde_json::json!({"active": true, "sub": "a", "aud": AUD, "exp": exp});
        let (a, _, _) = auth(Some(answer), true, ClientAuth::Basic);
        let err = a.authenticate(&parts()).await.unwrap_err();
        assert_eq!(err.detail(), Some("bad_exp"), "{exp}");
        assert!(err.is_rejection());
    }
    // The largest accepted `exp` works, cached or not.
    let answer = serde_json::json!({"active": true, "sub": "a", "aud": AUD, "exp": 1u64 << 53});
    let (a, _, _) = auth(Some(answer), true, ClientAuth::Basic);
    assert!(a.authenticate(&parts()).await.is_ok());
    assert!(a.authenticate(&parts()).await.is_ok());
}

/// Review L2: `.cache(n, Duration::MAX)` used to overflow `Instant` for an answer without
/// `exp`.
#[tokio::test]
async fn a_cache_ttl_of_duration_max_does_not_overflow() {
    let calls = Arc::new(AtomicUsize::new(0));
    let a = builder_with(fake(
        serde_json::json!({"active": true, "sub": "a", "aud": AUD}),
        &calls,
    ))
    .cache(10, Duration::MAX)
    .negative_cache(10, Duration::MAX)
    .build()
    .unwrap();
    for _ in 0..3 {
        assert_eq!(a.authenticate(&parts()).await.unwrap().subject(), "a");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// Review L12: a refused token is answered from memory for a short while instead of being
/// sent to the authorization server on every request.
#[tokio::test]
async fn refused_tokens_are_remembered_for_a_short_while() {
    let calls = Arc::new(AtomicUsize::new(0));
    let a = builder_with(fake(serde_json::json!({"active": false}), &calls))
        .negative_cache(100, Duration::from_millis(300))
        .build()
        .unwrap();
    for _ in 0..5 {
        let err = a.authenticate(&parts()).await.unwrap_err();
        assert_eq!(err.detail(), Some("inactive"));
        assert_eq!(err.kind(), crate::error::AuthErrorKind::InvalidToken);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "asked once");
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(a.authenticate(&parts()).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "asked again after the ttl");

    // On by default; off with a zero size.
    let calls = Arc::new(AtomicUsize::new(0));
    let a = builder_with(fake(serde_json::json!({"active": false}), &calls))
        .build()
        .unwrap();
    assert!(a.authenticate(&parts()).await.is_err());
    assert!(a.authenticate(&parts()).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 1, "on by default");
    let calls = Arc::new(AtomicUsize::new(0));
    let a = builder_with(fake(serde_json::json!({"active": false}), &calls))
        .negative_cache(0, DEFAULT_NEGATIVE_CACHE_TTL)
        .build()
        .unwrap();
    assert!(a.authenticate(&parts()).await.is_err());
    assert!(a.authenticate(&parts()).await.is_err());
    assert_eq!(calls.load(Ordering::SeqCst), 2, "off");
}

/// Outages are never remembered as refusals.
#[tokio::test]
async fn failures_are_not_negatively_cached() {
    let (a, calls, _) = auth(None, false, ClientAuth::Basic);
    for _ in 0..2 {
        let err = a.authenticate(&parts()).await.unwrap_err();
        assert_eq!(err.kind(), crate::error::AuthErrorKind::Unavailable);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

/// Answers every introspection request with an HTTP status error.
struct Status(u16);

impl HttpFetcher for Status {
    async fn get(&self, _url: &str, _max: usize) -> Result<Fetched, FetchError> {
        Err(FetchError("no GET here".into()))
    }
    async fn post_form(
        &self,
        _url: &str,
        _form: &[(&str, &str)],
        _basic: Option<(&str, &str)>,
        _max: usize,
    ) -> Result<Fetched, FetchError> {
        Err(FetchError::status(self.0))
    }
}

/// Issue 10: an authorization server that answers 400 to an introspection request is
/// talking about the token (401); 401/403 (our credentials) and 5xx stay 503.
#[tokio::test]
async fn a_400_answer_is_an_inactive_token_and_credential_or_server_errors_are_503() {
    let a = builder_with(Status(400)).build().unwrap();
    let err = a.authenticate(&parts()).await.unwrap_err();
    assert_eq!(err.kind(), crate::error::AuthErrorKind::InvalidToken);
    assert_eq!(err.detail(), Some("introspection_400"));
    for status in [401, 403, 404, 429, 500, 502, 503] {
        let a = builder_with(Status(status)).build().unwrap();
        let err = a.authenticate(&parts()).await.unwrap_err();
        assert_eq!(
            err.kind(),
            crate::error::AuthErrorKind::Unavailable,
            "{status}"
        );
        assert!(err.retry_after().is_some(), "{status}");
    }
}

#[test]
fn fetch_error_statuses_round_trip() {
    assert_eq!(FetchError::status(400).http_status(), Some(400));
    assert_eq!(FetchError("status 4000".into()).http_status(), None);
    assert_eq!(FetchError("status abc".into()).http_status(), None);
    assert_eq!(FetchError("connection refused".into()).http_status(), None);
}

/// The same through the real HTTP client against a server on loopback answering 400.
#[cfg(feature = "reqwest")]
#[tokio::test]
async fn a_400_over_http_on_loopback_is_a_401_not_a_503() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = sock.read(&mut buf).await;
            let body = r#"{"error":"invalid_request"}"#;
            let res = format!(
                "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(res.as_bytes()).await;
        }
    });
    let a = IntrospectionAuthenticator::builder()
        .endpoint(format!("http://{addr}/introspect"))
        .client_credentials("rs", "rs-secret")
        .audience(AUD)
        .build()
        .unwrap();
    let err = a.authenticate(&parts()).await.unwrap_err();
    assert_eq!(err.kind(), crate::error::AuthErrorKind::InvalidToken);
    assert_eq!(err.detail(), Some("introspection_400"));
    // Remembered: the same token is not sent again.
    assert!(a.authenticate(&parts()).await.is_err());
    assert_eq!(served.load(Ordering::SeqCst), 1);
}

/// Counts GETs (discovery) and fails them all.
struct DownMetadata(Arc<AtomicUsize>);

impl HttpFetcher for DownMetadata {
    async fn get(&self, _url: &str, _max: usize) -> Result<Fetched, FetchError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(FetchError("connection refused".into()))
    }
}

/// Review L12: a failed discovery is not retried on every request.
#[tokio::test]
async fn a_failed_discovery_is_not_retried_during_the_cooldown() {
    let gets = Arc::new(AtomicUsize::new(0));
    let a = IntrospectionAuthenticator::builder()
        .issuer("https://as.example.com")
        .client_credentials("rs", "rs-secret")
        .audience(AUD)
        .discovery_cooldown(Duration::from_millis(300))
        .fetcher(DownMetadata(gets.clone()))
        .build()
        .unwrap();
    let err = a.authenticate(&parts()).await.unwrap_err();
    assert_eq!(err.kind(), crate::error::AuthErrorKind::Unavailable);
    let first = gets.load(Ordering::SeqCst);
    assert!(first >= 1);
    for _ in 0..10 {
        let err = a.authenticate(&parts()).await.unwrap_err();
        assert_eq!(err.kind(), crate::error::AuthErrorKind::Unavailable);
        assert!(err.retry_after().is_some());
    }
    assert_eq!(
        gets.load(Ordering::SeqCst),
        first,
        "no discovery during the cooldown"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert!(a.authenticate(&parts()).await.is_err());
    assert_eq!(
        gets.load(Ordering::SeqCst),
        2 * first,
        "tried again after it"
    );
}

/// Review L12: `client_id` stands in for a missing `sub` only when configured.
#[tokio::test]
async fn client_id_stands_in_for_sub_only_when_configured() {
    let answer = serde_json::json!({"active": true, "client_id": "svc", "aud": AUD});
    let calls = Arc::new(AtomicUsize::new(0));
    let a = builder_with(fake(answer.clone(), &calls)).build().unwrap();
    assert_eq!(
        a.authenticate(&parts()).await.unwrap_err().detail(),
        Some("no_subject")
    );
    let a = builder_with(fake(answer, &calls))
        .client_id_as_subject()
        .build()
        .unwrap();
    let ctx = a.authenticate(&parts()).await.unwrap();
    assert_eq!(ctx.subject(), "svc");
    assert_eq!(ctx.client_id(), Some("svc"));
}

#[test]
fn a_timeout_under_the_minimum_is_a_config_error() {
    let calls = Arc::new(AtomicUsize::new(0));
    let err = builder_with(fake(serde_json::json!({}), &calls))
        .timeout(Duration::ZERO)
        .build()
        .unwrap_err();
    assert_eq!(err.problems()[0].setting(), "introspection timeout");
    assert!(
        builder_with(fake(serde_json::json!({}), &calls))
            .timeout(Duration::MAX)
            .build()
            .is_ok()
    );
}

/// `aud` follows the JWT rule: a string or an array of strings; any other type (even next
/// to this server's audience) is a malformed answer, refused.
#[tokio::test]
async fn an_audience_of_the_wrong_type_is_refused_as_malformed() {
    for aud in [
        serde_json::json!([AUD, 1]),
        serde_json::json!(123),
        serde_json::json!({"aud": AUD}),
        serde_json::json!(null),
    ] {
        let answer = serde_json::json!({"active": true, "sub": "a", "aud": aud});
        let (a, _, _) = auth(Some(answer), false, ClientAuth::Basic);
        let err = a.authenticate(&parts()).await.unwrap_err();
        assert_eq!(err.detail(), Some("bad_aud"), "{aud}");
        assert!(err.is_rejection(), "{aud}");
    }
}
