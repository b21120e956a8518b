//! Outbound credentials against the test kit's mock authorization server over HTTP, and an
//! upstream API on loopback that records the credentials it receives.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use mcp_auth::outbound::{
    Caller, ClientAuth, ClientCredentials, FileRefreshTokenStore, InboundToken,
    MemoryRefreshTokenStore, OutboundClient, OutboundError, RefreshTokenGrant, StaticCredential,
    TokenEndpoint, TokenExchange, TokenSource, Upstreams,
};
use mcp_auth::testing::{JWT_BEARER_GRANT, MockAuthServer, TOKEN_EXCHANGE_GRANT};
use mcp_auth::{AuthContext, AuthMethod, Secret};
use serde_json::Value;
use support::capture::Capture;

const CLIENT: (&str, &str) = ("mcp-server", "mcp-server-secret");

/// An upstream API: records every `Authorization` it gets; answers 401 to the first
/// `reject_first` requests.
#[derive(Clone, Default)]
struct Upstream {
    seen: Arc<Mutex<Vec<String>>>,
    reject_first: Arc<AtomicUsize>,
}

async fn upstream_handler(State(up): State<Upstream>, req: Request) -> Response {
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    up.seen.lock().unwrap().push(auth);
    let reject = up
        .reject_first
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if reject {
        return (http::StatusCode::UNAUTHORIZED, "expired").into_response();
    }
    (http::StatusCode::OK, "ok").into_response()
}

/// Starts the upstream on loopback; its base URL.
async fn start_upstream(up: Upstream) -> String {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().fallback(upstream_handler).with_state(up);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

fn endpoint(idp: &MockAuthServer) -> TokenEndpoint {
    idp.register_client(CLIENT.0, CLIENT.1);
    TokenEndpoint::new(&idp.token_endpoint(), CLIENT.0, Secret::new(CLIENT.1))
        .unwrap()
        .timeout(Duration::from_secs(3))
}

/// A caller `name` authenticated with a token the mock issued, its token kept.
fn caller(idp: &MockAuthServer, name: &str) -> (Caller, String) {
    let token = idp.token().subject(name).scopes(["files:read"]).jwt();
    let ctx = AuthContext::builder(name, AuthMethod::Bearer).build();
    let kept = InboundToken::new(Secret::new(token.clone()));
    (Caller::new(&ctx, Some(&kept)), token)
}

fn payload(header: &str) -> Value {
    let jwt = header.strip_prefix("Bearer ").unwrap();
    let claims = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn host_of(url: &str) -> String {
    url.strip_prefix("http://").unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_calls_from_ten_callers_cost_ten_exchanges_and_one_client_credentials_fetch() {
    let idp = MockAuthServer::start().await;
    let exchange_up = Upstream::default();
    let cc_up = Upstream::default();
    let exchange_url = start_upstream(exchange_up.clone()).await;
    let cc_url = start_upstream(cc_up.clone()).await;
    let upstreams = Upstreams::new()
        .host(
            &host_of(&exchange_url),
            TokenExchange::new(endpoint(&idp), "https://files.example.com").scopes(["files:read"]),
        )
        .host(
            &host_of(&cc_url),
            ClientCredentials::new(endpoint(&idp))
                .scopes(["reports:read"])
                .resource("https://reports.example.com"),
        );
    let client = OutboundClient::new(reqwest::Client::new(), upstreams);
    let callers: Vec<(Caller, String)> = (0..10)
        .map(|i| caller(&idp, &format!("user-{i}")))
        .collect();

    let started = Instant::now();
    let mut tasks = Vec::new();
    for n in 0..1000usize {
        let client = client.clone();
        let (who, _) = callers[(n / 2) % 10].clone();
        let url = if n % 2 == 0 {
            exchange_url.clone()
        } else {
            cc_url.clone()
        };
        tasks.push(tokio::spawn(async move {
            let who = if n % 2 == 0 { who } else { Caller::service() };
            client
                .send(client.get(format!("{url}/v1/x")), &who)
                .await
                .map(|r| r.status())
        }));
    }
    let all = tokio::time::timeout(Duration::from_secs(60), async {
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    })
    .await
    .expect("1,000 outbound calls within 60 s");
    let elapsed = started.elapsed();
    assert!(
        all.iter().all(|r| r.as_ref().is_ok_and(|s| *s == 200)),
        "{:?}",
        all.iter().find(|r| r.is_err())
    );
    assert_eq!(idp.grant_requests(TOKEN_EXCHANGE_GRANT), 10);
    assert_eq!(idp.grant_requests("client_credentials"), 1);
    assert_eq!(exchange_up.seen.lock().unwrap().len(), 500);
    assert_eq!(cc_up.seen.lock().unwrap().len(), 500);

    // Each caller's upstream token names that caller, the upstream and the acting client,
    // and is never the caller's own token.
    let seen = exchange_up.seen.lock().unwrap().clone();
    for (i, (_, token)) in callers.iter().enumerate() {
        assert!(!seen.iter().any(|s| s.contains(token.as_str())));
        let name = format!("user-{i}");
        let mine: Vec<&String> = seen.iter().filter(|s| payload(s)["sub"] == name).collect();
        assert_eq!(mine.len(), 50, "{name}");
        let claims = payload(mine[0]);
        assert_eq!(claims["aud"], "https://files.example.com");
        assert_eq!(claims["act"]["sub"], CLIENT.0);
        assert_eq!(claims["scope"], "files:read");
    }
    let cc = payload(&cc_up.seen.lock().unwrap()[0]);
    assert_eq!(cc["sub"], CLIENT.0);
    assert_eq!(cc["aud"], "https://reports.example.com");
    eprintln!("1,000 outbound calls (10 callers, 2 upstreams) in {elapsed:?}");
}

#[tokio::test]
async fn an_outage_during_exchange_is_a_typed_error_within_the_timeout() {
    let idp = MockAuthServer::start().await;
    let source = TokenExchange::new(
        endpoint(&idp).timeout(Duration::from_secs(2)),
        "https://files.example.com",
    );
    let (who, _) = caller(&idp, "alice");
    idp.set_down(true);
    let started = Instant::now();
    let err = source.credential(&who).await.unwrap_err();
    assert_eq!(err, OutboundError::Unavailable { status: 503 });
    assert!(err.is_outage());
    assert!(started.elapsed() < Duration::from_secs(2));

    // The server gone altogether: unreachable, still bounded.
    let port_url = idp.token_endpoint();
    idp.shutdown().await;
    let gone = TokenExchange::new(
        TokenEndpoint::new(&port_url, CLIENT.0, Secret::new(CLIENT.1))
            .unwrap()
            .timeout(Duration::from_secs(2)),
        "https://files.example.com",
    );
    let started = Instant::now();
    let err = gone.credential(&who).await.unwrap_err();
    assert!(err.is_outage(), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_hanging_authorization_server_times_out() {
    // A listener that accepts and never answers.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let source = ClientCredentials::new(
        TokenEndpoint::new(&format!("http://{addr}/token"), "c", Secret::new("s"))
            .unwrap()
            .timeout(Duration::from_millis(500)),
    );
    let started = Instant::now();
    let service = Caller::service();
    let calls = (0..20).map(|_| source.credential(&service));
    let results = futures_join(calls).await;
    assert!(
        results
            .iter()
            .all(|r| r.as_ref().err() == Some(&OutboundError::Timeout)),
        "{results:?}"
    );
    // One wave: the waiters share the first failure instead of timing out one by one.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    hold.abort();
}

async fn futures_join<F: std::future::Future>(futs: impl Iterator<Item = F>) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futs {
        set.push(f);
    }
    let mut out = Vec::new();
    // Poll all together.
    let joined = futures_all(set);
    out.extend(joined.await);
    out
}

async fn futures_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    use std::pin::Pin;
    use std::task::Poll;
    let mut futs: Vec<Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut outs: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(outs.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    Poll::Ready(v) => *o = Some(v),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn the_passthrough_guard_refuses_the_callers_own_token() {
    let idp = MockAuthServer::start().await;
    let up = Upstream::default();
    let url = start_upstream(up.clone()).await;
    let (who, token) = caller(&idp, "alice");
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    // A source configured with the caller's own token.
    let client = OutboundClient::new(
        reqwest::Client::new(),
        Upstreams::new().host(
            &host_of(&url),
            StaticCredential::bearer(Secret::new(token.clone())),
        ),
    );
    let err = client.send(client.get(&url), &who).await.unwrap_err();
    assert_eq!(err, OutboundError::Passthrough);
    // A header set by hand, to a host with no source.
    let plain = OutboundClient::new(reqwest::Client::new(), Upstreams::new());
    let err = plain
        .send(plain.get(&url).bearer_auth(&token), &who)
        .await
        .unwrap_err();
    assert_eq!(err, OutboundError::Passthrough);
    let err = plain
        .send(plain.get(&url).header("x-forward", token.as_str()), &who)
        .await
        .unwrap_err();
    assert_eq!(err, OutboundError::Passthrough);
    assert!(up.seen.lock().unwrap().is_empty(), "nothing was sent");

    // Another caller's request with the same static key is not this caller's token: sent.
    let (bob, _) = caller(&idp, "bob");
    assert_eq!(
        client.send(client.get(&url), &bob).await.unwrap().status(),
        200
    );

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("token passthrough"), "{logs}");
    assert!(!logs.contains(&token), "a token in the logs:\n{logs}");
}

#[tokio::test]
async fn a_401_from_the_upstream_refreshes_once_and_retries() {
    let idp = MockAuthServer::start().await;
    let up = Upstream::default();
    up.reject_first.store(1, Ordering::SeqCst);
    let url = start_upstream(up.clone()).await;
    let client = OutboundClient::new(
        reqwest::Client::new(),
        Upstreams::new().host(&host_of(&url), ClientCredentials::new(endpoint(&idp))),
    );
    let res = client
        .send(client.get(&url), &Caller::service())
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(idp.grant_requests("client_credentials"), 2);
    let seen = up.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    assert_ne!(seen[0], seen[1], "the retry carries a new token");

    // An upstream that keeps refusing: one retry only, its 401 returned.
    up.reject_first.store(10, Ordering::SeqCst);
    let res = client
        .send(client.get(&url), &Caller::service())
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(up.seen.lock().unwrap().len(), 4);
    assert_eq!(idp.grant_requests("client_credentials"), 3);
}

#[tokio::test]
async fn refused_grants_are_typed_and_never_logged_with_secrets() {
    let idp = MockAuthServer::start().await;
    idp.register_client(CLIENT.0, CLIENT.1);
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let wrong = ClientCredentials::new(
        TokenEndpoint::new(
            &idp.token_endpoint(),
            CLIENT.0,
            Secret::new("wrong-secret-value"),
        )
        .unwrap(),
    );
    let err = wrong.credential(&Caller::service()).await.unwrap_err();
    assert_eq!(
        err,
        OutboundError::Refused {
            error: "invalid_client".into()
        }
    );
    // client_secret_post too.
    let post = ClientCredentials::new(endpoint(&idp).client_auth(ClientAuth::Post));
    assert!(post.credential(&Caller::service()).await.is_ok());

    // Exchanging a token the server never issued.
    let source = TokenExchange::new(endpoint(&idp), "https://files.example.com");
    let forged = "forged-subject-token-value";
    let who = Caller::new(
        &AuthContext::builder("mallory", AuthMethod::Bearer).build(),
        Some(&InboundToken::new(Secret::new(forged))),
    );
    let err = source.credential(&who).await.unwrap_err();
    assert_eq!(
        err,
        OutboundError::Refused {
            error: "invalid_grant".into()
        }
    );
    assert!(!format!("{err} {err:?} {source:?} {who:?}").contains(forged));
    // No inbound token kept: a typed error, no request.
    let before = idp.grant_requests(TOKEN_EXCHANGE_GRANT);
    let anonymous = Caller::new(&AuthContext::builder("x", AuthMethod::Bearer).build(), None);
    assert_eq!(
        source.credential(&anonymous).await.unwrap_err(),
        OutboundError::NoInboundToken
    );
    assert_eq!(idp.grant_requests(TOKEN_EXCHANGE_GRANT), before);

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("invalid_client"), "{logs}");
    for secret in ["wrong-secret-value", forged, CLIENT.1] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}

#[tokio::test]
async fn on_behalf_of_and_actor_tokens() {
    let idp = MockAuthServer::start().await;
    let (who, _) = caller(&idp, "carol");
    let obo = TokenExchange::on_behalf_of(endpoint(&idp), "https://graph.example.com")
        .scopes(["https://graph.example.com/.default"]);
    let cred = obo.credential(&who).await.unwrap();
    let claims = payload(cred.header_value().unwrap().to_str().unwrap());
    assert_eq!(claims["sub"], "carol");
    assert_eq!(claims["act"]["sub"], CLIENT.0);
    assert_eq!(idp.grant_requests(JWT_BEARER_GRANT), 1);
    // Cached: no second request.
    obo.credential(&who).await.unwrap();
    assert_eq!(idp.grant_requests(JWT_BEARER_GRANT), 1);

    let with_actor = TokenExchange::new(endpoint(&idp), "https://files.example.com")
        .resource("https://files.example.com/v1")
        .actor(ClientCredentials::new(endpoint(&idp)));
    let cred = with_actor.credential(&who).await.unwrap();
    let claims = payload(cred.header_value().unwrap().to_str().unwrap());
    assert_eq!(claims["sub"], "carol");
    assert_eq!(idp.grant_requests("client_credentials"), 1);
    assert_eq!(idp.grant_requests(TOKEN_EXCHANGE_GRANT), 1);
}

#[tokio::test]
async fn an_exchanged_token_is_never_served_past_the_callers_expiry() {
    let idp = MockAuthServer::start().await;
    let token = idp.token().subject("dave").jwt();
    let ctx = AuthContext::builder("dave", AuthMethod::Bearer)
        .expires_at(std::time::SystemTime::now() + Duration::from_millis(300))
        .build();
    let who = Caller::new(&ctx, Some(&InboundToken::new(Secret::new(token))));
    let source = TokenExchange::new(endpoint(&idp), "https://files.example.com");
    source.credential(&who).await.unwrap();
    source.credential(&who).await.unwrap();
    assert_eq!(idp.grant_requests(TOKEN_EXCHANGE_GRANT), 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    source.credential(&who).await.unwrap();
    assert_eq!(idp.grant_requests(TOKEN_EXCHANGE_GRANT), 2);
}

#[tokio::test]
async fn an_exchanged_token_is_exchanged_again_when_its_own_lifetime_runs_out() {
    let idp = MockAuthServer::start().await;
    // Exchanged tokens live 2 s: with the default 30 s skew, each is served for half its
    // lifetime (1 s), however long the caller's own token lives.
    idp.set_issued_token_lifetime(Duration::from_secs(2));
    let token = idp.token().subject("erin").jwt();
    let ctx = AuthContext::builder("erin", AuthMethod::Bearer)
        .expires_at(std::time::SystemTime::now() + Duration::from_secs(3600))
        .build();
    let who = Caller::new(&ctx, Some(&InboundToken::new(Secret::new(token))));
    let source = TokenExchange::new(endpoint(&idp), "https://files.example.com");
    let first = source.credential(&who).await.unwrap();
    let again = source.credential(&who).await.unwrap();
    assert_eq!(idp.grant_requests(TOKEN_EXCHANGE_GRANT), 1);
    assert_eq!(
        first.header_value().unwrap(),
        again.header_value().unwrap(),
        "served from the cache"
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let fresh = source.credential(&who).await.unwrap();
    assert_eq!(idp.grant_requests(TOKEN_EXCHANGE_GRANT), 2);
    assert_ne!(first.header_value().unwrap(), fresh.header_value().unwrap());
}

#[tokio::test]
async fn refresh_rotation_survives_a_restart_through_the_file_store() {
    let idp = MockAuthServer::start().await;
    idp.register_client(CLIENT.0, CLIENT.1);
    let first = idp.issue_refresh_token(CLIENT.0, "svc-user", &["files:read"]);
    let dir = std::env::temp_dir().join(format!("mcp-auth-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("refresh-token");
    let _ = std::fs::remove_file(&path);

    let grant = RefreshTokenGrant::new(endpoint(&idp), FileRefreshTokenStore::new(&path))
        .initial_refresh_token(Secret::new(first.clone()));
    let cred = grant.credential(&Caller::service()).await.unwrap();
    assert_eq!(
        payload(cred.header_value().unwrap().to_str().unwrap())["sub"],
        "svc-user"
    );
    let saved = std::fs::read_to_string(&path).unwrap();
    assert_ne!(saved, first, "the rotated token is saved");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    drop(grant);

    // The old refresh token is spent at the server.
    let stale = RefreshTokenGrant::new(endpoint(&idp), MemoryRefreshTokenStore::new())
        .initial_refresh_token(Secret::new(first));
    assert_eq!(
        stale.credential(&Caller::service()).await.unwrap_err(),
        OutboundError::Refused {
            error: "invalid_grant".into()
        }
    );

    // A restart: the stale token from configuration is ignored, the saved one is used.
    let restarted = RefreshTokenGrant::new(endpoint(&idp), FileRefreshTokenStore::new(&path))
        .initial_refresh_token(Secret::new("ignored"));
    assert!(restarted.credential(&Caller::service()).await.is_ok());
    assert_eq!(idp.grant_requests("refresh_token"), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}
