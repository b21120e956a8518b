//! Composing layers: axum extractors, per-route chains, optional mode, async authenticators,
//! custom rejection responses, CORS ordering, and logs that never carry a credential.

mod support;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use mcp_auth::authenticators::bearer::BearerAuthenticator;
use mcp_auth::{
    ApiKeyAuthenticator, AuthContext, AuthError, AuthErrorKind, AuthLayer, AuthMethod,
    Authenticator, Credential, Rejection,
};
use support::capture::Capture;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_http::cors::{AllowOrigin, CorsLayer};

const KEY: &str = "key-0123456789abcdef";
const TOKEN: &str = "tok-0123456789abcdef";

fn keys() -> ApiKeyAuthenticator {
    ApiKeyAuthenticator::new()
        .with_key(Credential::new(KEY).subject("key-user"))
        .unwrap()
}

fn tokens() -> BearerAuthenticator {
    BearerAuthenticator::new()
        .with_token(Credential::new(TOKEN).subject("token-user"))
        .unwrap()
}

async fn whoami(ctx: AuthContext) -> String {
    format!("{}:{}", ctx.subject(), ctx.method())
}

async fn maybe(ctx: Option<AuthContext>) -> String {
    ctx.map_or_else(|| "anonymous".to_owned(), |c| c.subject().to_owned())
}

async fn call(app: &Router, uri: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut req = Request::builder().uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = app
        .clone()
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn chain_per_route_accepts_either_credential_where_configured() {
    let app = Router::new()
        .route(
            "/both",
            get(whoami).route_layer(AuthLayer::new(keys().or(tokens()))),
        )
        .route(
            "/keys-only",
            get(whoami).route_layer(AuthLayer::new(keys())),
        );
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(
        call(&app, "/both", &[("x-api-key", KEY)]).await,
        (StatusCode::OK, "key-user:api_key".into())
    );
    assert_eq!(
        call(&app, "/both", &[("authorization", &bearer)]).await,
        (StatusCode::OK, "token-user:bearer".into())
    );
    assert_eq!(
        call(&app, "/keys-only", &[("authorization", &bearer)])
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn chain_decides_by_the_first_credential_present_never_a_union() {
    let app = Router::new().route(
        "/",
        get(whoami).route_layer(AuthLayer::new(keys().or(tokens()))),
    );
    let bearer = format!("Bearer {TOKEN}");
    // A bad API key is final even when a good bearer token is also present.
    let (status, _) = call(
        &app,
        "/",
        &[
            ("x-api-key", "wrong-key-0123456789"),
            ("authorization", &bearer),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // A good API key decides; the bearer token is not consulted.
    let (status, body) = call(
        &app,
        "/",
        &[
            ("x-api-key", KEY),
            ("authorization", "Bearer junk-0123456789abc"),
        ],
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, "key-user:api_key")
    );
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_but_rejects_bad_credentials() {
    let app = Router::new()
        .route("/", get(maybe))
        .layer(AuthLayer::new(keys()).optional());
    assert_eq!(
        call(&app, "/", &[]).await,
        (StatusCode::OK, "anonymous".into())
    );
    assert_eq!(
        call(&app, "/", &[("x-api-key", KEY)]).await,
        (StatusCode::OK, "key-user".into())
    );
    assert_eq!(
        call(&app, "/", &[("x-api-key", "bad-key-0123456789")])
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn extractors_without_a_layer_report_a_wiring_bug_as_500() {
    let app = Router::new()
        .route("/required", get(whoami))
        .route("/optional", get(maybe));
    for uri in ["/required", "/optional"] {
        let (status, body) = call(&app, uri, &[("x-api-key", KEY)]).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{uri}");
        assert!(body.contains("is an mcp-auth layer installed"), "{body}");
    }
}

#[tokio::test]
async fn auth_error_returned_by_a_handler_becomes_the_standard_response() {
    async fn handler() -> Result<String, AuthError> {
        Err(AuthError::insufficient_scope(["data:admin"]))
    }
    let app = Router::new().route("/", get(handler));
    let res = app.oneshot(Request::new(Body::empty())).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer error=\"insufficient_scope\", scope=\"data:admin\""
    );
}

/// An authenticator that must wait (a remote check), to exercise the boxed path.
#[derive(Clone)]
struct Remote {
    calls: Arc<AtomicUsize>,
}

impl Authenticator for Remote {
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        match parts.headers.get("x-user").map(HeaderValue::to_str) {
            None => Err(AuthError::missing_credentials()),
            Some(Ok("down")) => Err(AuthError::unavailable("directory unreachable")),
            Some(Ok(user)) => {
                Ok(AuthContext::builder(user, AuthMethod::Custom("remote".into())).build())
            }
            Some(Err(_)) => Err(AuthError::invalid_token("bad user header")),
        }
    }
}

/// An inner service that must be polled ready before each call, and counts calls.
#[derive(Clone)]
struct Strict {
    ready: bool,
    calls: Arc<AtomicUsize>,
}

impl Service<Request<Body>> for Strict {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.ready = true;
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        assert!(self.ready, "called without poll_ready");
        self.ready = false;
        self.calls.fetch_add(1, Ordering::SeqCst);
        let who = req
            .extensions()
            .get::<AuthContext>()
            .unwrap()
            .subject()
            .to_owned();
        std::future::ready(Ok(Response::new(Body::from(who))))
    }
}

#[tokio::test]
async fn async_authenticator_calls_the_service_that_was_made_ready() {
    let auth_calls = Arc::new(AtomicUsize::new(0));
    let inner_calls = Arc::new(AtomicUsize::new(0));
    let mut svc = ServiceBuilder::new()
        .layer(AuthLayer::new(Remote {
            calls: auth_calls.clone(),
        }))
        .service(Strict {
            ready: false,
            calls: inner_calls.clone(),
        });
    for user in ["ann", "ben"] {
        let req = Request::builder()
            .header("x-user", user)
            .body(Body::empty())
            .unwrap();
        let res = svc.ready().await.unwrap().call(req).await.unwrap();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, Bytes::from(user));
    }
    let res = svc
        .ready()
        .await
        .unwrap()
        .call(Request::new(Body::empty()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let req = Request::builder()
        .header("x-user", "down")
        .body(Body::empty())
        .unwrap();
    let res = svc.ready().await.unwrap().call(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(res.headers()["retry-after"], "5");
    assert_eq!(auth_calls.load(Ordering::SeqCst), 4);
    assert_eq!(inner_calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn custom_rejection_response_keeps_the_error_in_extensions() {
    let layer = AuthLayer::new(keys())
        .resource_metadata("https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
        .rejection_response(|r: &Rejection<'_>| {
            let mut res = r.default_response();
            *res.body_mut() = Bytes::from_static(b"{\"error\":\"custom\"}");
            res.headers_mut()
                .insert("x-custom", HeaderValue::from_static("1"));
            res
        });
    let app = Router::new().route("/", get(whoami)).layer(layer);
    let res = app.oneshot(Request::new(Body::empty())).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["x-custom"], "1");
    assert_eq!(
        res.headers()["www-authenticate"],
        "ApiKey header=\"x-api-key\", resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
    );
    assert_eq!(
        res.extensions().get::<AuthError>().unwrap().kind(),
        AuthErrorKind::MissingCredentials
    );
    let body = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "{\"error\":\"custom\"}");
}

fn cors() -> CorsLayer {
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_headers([http::header::AUTHORIZATION])
        .expose_headers([http::header::WWW_AUTHENTICATE])
}

async fn preflight(app: Router) -> Response<Body> {
    let req = Request::builder()
        .method("OPTIONS")
        .uri("/")
        .header("origin", "http://localhost:6274")
        .header("access-control-request-method", "POST")
        .body(Body::empty())
        .unwrap();
    app.oneshot(req).await.unwrap()
}

#[tokio::test]
async fn cors_outside_auth_answers_preflights_and_exposes_the_challenge() {
    let app = Router::new()
        .route("/", get(whoami).post(whoami))
        .layer(AuthLayer::new(tokens()))
        .layer(cors());
    assert_eq!(preflight(app.clone()).await.status(), StatusCode::OK);
    let req = Request::builder()
        .uri("/")
        .header("origin", "http://localhost:6274")
        .body(Body::empty())
        .unwrap();
    let res = app.oneshot(req).await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers()["access-control-expose-headers"],
        "www-authenticate"
    );
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "http://localhost:6274"
    );
}

#[tokio::test]
async fn cors_inside_auth_blocks_preflights_which_is_why_the_order_matters() {
    let app = Router::new()
        .route("/", get(whoami).post(whoami))
        .layer(cors())
        .layer(AuthLayer::new(tokens()));
    let res = preflight(app).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(!res.headers().contains_key("access-control-allow-origin"));
}

/// Collects every formatted log line.
#[tokio::test]
async fn logs_name_the_reason_but_never_a_credential() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let app = Router::new()
        .route("/", get(whoami))
        .layer(AuthLayer::new(keys().or(tokens())));
    let secrets = [
        "key-0123456789abcdeX",
        "tok-0123456789abcdeX",
        "key-0123456789abcdef",
        "tok-0123456789abcdef",
        "has space secret",
    ];
    let requests: Vec<Vec<(&str, String)>> = vec![
        vec![("x-api-key", secrets[0].into())],
        vec![("authorization", format!("Bearer {}", secrets[1]))],
        vec![("x-api-key", secrets[2].into())],
        vec![("authorization", format!("Bearer {}", secrets[3]))],
        vec![("authorization", format!("Bearer {}", secrets[4]))],
        vec![
            ("authorization", format!("Bearer {}", secrets[3])),
            ("authorization", "Bearer x".into()),
        ],
        vec![],
    ];
    for headers in &requests {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let _ = call(&app, "/", &h).await;
    }
    let mut logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    for reason in ["invalid_token", "invalid_request", "missing_credentials"] {
        assert!(logs.contains(reason), "no {reason} event in:\n{logs}");
    }
    // One line per refusal (review L3): with the audit target on, the audit event is the line.
    let refusals = logs.lines().filter(|l| l.contains("authn_failure")).count();
    assert_eq!(refusals, 5, "{logs}");
    assert!(!logs.contains("mcp_auth::rejection"), "{logs}");
    drop(_guard);

    // With the audit target off, each refusal is one line on `mcp_auth::rejection` instead,
    // its path bounded like the audit's.
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "trace,mcp_auth::audit=off",
        ))
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    for headers in &requests {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let _ = call(&app, "/", &h).await;
    }
    let long = format!("/{}", "p".repeat(10_000));
    assert_eq!(call(&app, &long, &[]).await.0, StatusCode::UNAUTHORIZED);
    let off = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = off
        .lines()
        .filter(|l| l.contains("mcp_auth::rejection"))
        .collect();
    assert_eq!(lines.len(), 6, "{off}");
    assert!(!off.contains("mcp_auth::audit"), "{off}");
    let last = lines[5];
    assert!(
        last.len() < 1024 && last.contains(mcp_auth::telemetry::TRUNCATED),
        "{last}"
    );
    logs.push_str(&off);
    for s in secrets {
        // Not the whole secret, and not a recognisable part of it.
        for part in [s, &s[..8], &s[s.len() - 8..]] {
            assert!(!logs.contains(part), "{part:?} leaked into logs:\n{logs}");
        }
    }
}
