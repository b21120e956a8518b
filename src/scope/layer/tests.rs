//! Unit tests of [`ScopeLayer`](super::ScopeLayer): what reaches the inner service, and every refusal.

use std::convert::Infallible;
use std::sync::Mutex;

use axum::body::Body;
use http::StatusCode;
use http_body_util::BodyExt;
use tower::{ServiceExt, service_fn};

use std::pin::Pin;

use super::*;
use crate::context::AuthMethod;
use crate::scope::fixtures::with_data_tools;
use crate::scope::{Requirement, Unlisted};

fn policy() -> ScopePolicy {
    with_data_tools(ScopePolicy::new(Unlisted::Deny).method("initialize", Requirement::default()))
}

/// Runs one request through the layer around a recording inner service; returns the
/// status, the WWW-Authenticate value and the bodies the inner service received.
async fn run(req: Request<Body>, scopes: Option<&[&str]>) -> (StatusCode, String, Vec<Bytes>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let svc = ScopeLayer::new(policy())
        .max_body(1024 * 1024)
        .layer(service_fn(move |req: Request<Body>| {
            let s = s.clone();
            async move {
                let bytes = req.into_body().collect().await.unwrap().to_bytes();
                s.lock().unwrap().push(bytes);
                Ok::<_, Infallible>(Response::new(Body::empty()))
            }
        }));
    let mut req = req;
    if let Some(scopes) = scopes {
        req.extensions_mut().insert(
            AuthContext::builder("u", AuthMethod::Jwt)
                .scopes(scopes.iter().copied())
                .build(),
        );
    }
    let res = svc.oneshot(req).await.unwrap();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let seen = seen.lock().unwrap().clone();
    (res.status(), challenge, seen)
}

fn post(body: &str) -> Request<Body> {
    Request::post("/mcp")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// `req` with the headers `Mcp-Method: tools/call` and `Mcp-Name: <tool>`.
fn calling(mut req: Request<Body>, tool: &str) -> Request<Body> {
    req.headers_mut()
        .insert("mcp-method", "tools/call".parse().unwrap());
    req.headers_mut().insert("mcp-name", tool.parse().unwrap());
    req
}

fn call(tool: &str) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"{tool}","arguments":{{"key":"k"}}}}}}"#
    )
}

#[tokio::test]
async fn allowed_call_reaches_the_inner_service_with_identical_bytes() {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"write_data","arguments":{"key":"k","value":"ünïcødé ✓ \u00e9"}}}"#;
    let (status, _, seen) = run(post(body), Some(&["data:write"])).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(seen, [Bytes::from(body.to_owned())]);
}

#[tokio::test]
async fn denied_call_gets_403_with_the_needed_scope_and_is_not_executed() {
    let (status, challenge, seen) = run(post(&call("delete_data")), Some(&["data:write"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        challenge,
        "Bearer error=\"insufficient_scope\", error_description=\"this operation needs more scope\", scope=\"data:admin\""
    );
    assert!(seen.is_empty());
}

#[tokio::test]
async fn a_batch_hiding_a_denied_call_is_denied_whole() {
    let batch = format!(
        "[{},{},{}]",
        call("read_data"),
        call("delete_data"),
        call("read_data")
    );
    let (status, challenge, seen) = run(post(&batch), Some(&["data:read"])).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        challenge.contains("scope=\"data:read data:admin\""),
        "{challenge}"
    );
    assert!(seen.is_empty());
}

#[tokio::test]
async fn duplicate_names_and_header_mismatches_are_bad_requests() {
    let dup = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_data","name":"delete_data"}}"#;
    let (status, _, seen) = run(post(dup), Some(&["data:read"])).await;
    assert_eq!((status, seen.len()), (StatusCode::BAD_REQUEST, 0));

    let req = calling(post(&call("delete_data")), "read_data");
    let (status, _, seen) = run(req, Some(&["data:read"])).await;
    assert_eq!((status, seen.len()), (StatusCode::BAD_REQUEST, 0));

    let req = calling(post(&call("read_data")), "read_data");
    assert_eq!(run(req, Some(&["data:read"])).await.0, StatusCode::OK);
}

#[tokio::test]
async fn oversized_bodies_get_413_declared_or_streamed() {
    // No Content-Length header: the limit applies while reading.
    let big = "x".repeat(2 * 1024 * 1024);
    let (status, _, seen) = run(post(&big), Some(&["data:admin"])).await;
    assert_eq!((status, seen.len()), (StatusCode::PAYLOAD_TOO_LARGE, 0));
    // A declared length over the limit is refused before reading anything.
    let mut req = post(&call("read_data"));
    req.headers_mut()
        .insert("content-length", "8388608".parse().unwrap());
    let (status, _, seen) = run(req, Some(&["data:admin"])).await;
    assert_eq!((status, seen.len()), (StatusCode::PAYLOAD_TOO_LARGE, 0));
}

#[tokio::test]
async fn encoded_bodies_are_refused() {
    let mut req = post(&call("read_data"));
    req.headers_mut()
        .insert("content-encoding", "gzip".parse().unwrap());
    assert_eq!(
        run(req, Some(&["data:read"])).await.0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

#[tokio::test]
async fn get_and_delete_need_only_the_every_request_rule() {
    for method in [Method::GET, Method::DELETE] {
        let req = Request::builder()
            .method(method.clone())
            .uri("/mcp")
            .body(Body::empty())
            .unwrap();
        assert_eq!(run(req, Some(&[])).await.0, StatusCode::OK, "{method}");
    }
}

/// Like `run`, with a configured layer; returns the whole response and how many
/// requests reached the inner service (which accepts every method).
async fn run_with(layer: ScopeLayer, req: Request<Body>) -> (Response<AuthBody<Body>>, usize) {
    let calls = Arc::new(Mutex::new(0usize));
    let c = calls.clone();
    let svc = layer.layer(service_fn(move |req: Request<Body>| {
        let c = c.clone();
        async move {
            req.into_body().collect().await.unwrap();
            *c.lock().unwrap() += 1;
            Ok::<_, Infallible>(Response::new(Body::empty()))
        }
    }));
    let mut req = req;
    req.extensions_mut().insert(
        AuthContext::builder("u", AuthMethod::Jwt)
            .scopes(["data:read"])
            .build(),
    );
    let res = svc.oneshot(req).await.unwrap();
    let n = *calls.lock().unwrap();
    (res, n)
}

async fn text(res: Response<AuthBody<Body>>) -> String {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[tokio::test]
async fn other_methods_get_405_with_allow_and_never_reach_the_inner_service() {
    for method in [Method::PUT, Method::PATCH, Method::TRACE, Method::CONNECT] {
        let mut req = Request::builder()
            .method(method.clone())
            .uri("/mcp")
            .body(Body::from(call("delete_data")))
            .unwrap();
        // A header naming an allowed tool changes nothing.
        req.headers_mut()
            .insert("mcp-method", "tools/list".parse().unwrap());
        let (res, calls) = run_with(ScopeLayer::new(policy()), req).await;
        assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert_eq!(res.headers()["allow"], "GET, HEAD, POST, DELETE, OPTIONS");
        assert_eq!(calls, 0, "{method}");
    }
}

#[tokio::test]
async fn bodyless_methods_carrying_a_body_are_refused() {
    for method in [Method::GET, Method::DELETE, Method::HEAD, Method::OPTIONS] {
        // Declared by Content-Length, by Transfer-Encoding, or only sent.
        for header in [
            Some(("content-length", "40")),
            Some(("transfer-encoding", "chunked")),
            None,
        ] {
            let mut req = Request::builder()
                .method(method.clone())
                .uri("/mcp")
                .body(Body::from(call("read_data")))
                .unwrap();
            if let Some((name, value)) = header {
                req.headers_mut().insert(name, value.parse().unwrap());
            }
            let (res, calls) = run_with(ScopeLayer::new(policy()), req).await;
            assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{method} {header:?}");
            assert_eq!(calls, 0);
        }
        let mut req = Request::builder()
            .method(method.clone())
            .uri("/mcp")
            .body(Body::empty())
            .unwrap();
        req.headers_mut()
            .insert("content-length", "0".parse().unwrap());
        let (res, calls) = run_with(ScopeLayer::new(policy()), req).await;
        assert_eq!((res.status(), calls), (StatusCode::OK, 1), "{method}");
    }
}

#[tokio::test]
async fn get_decisions_never_rest_on_mcp_headers() {
    // Only the every-request rule: a header naming a tool the caller may not call is not
    // an operation, nor is one naming a tool it may call a pass for a POST-less request.
    let policy = ScopePolicy::new(Unlisted::Allow).every_request(Requirement::all(["data:admin"]));
    let req = calling(
        Request::get("/mcp").body(Body::empty()).unwrap(),
        "read_data",
    );
    let (res, calls) = run_with(ScopeLayer::new(policy), req).await;
    assert_eq!((res.status(), calls), (StatusCode::FORBIDDEN, 0));
    let req = calling(
        Request::get("/mcp").body(Body::empty()).unwrap(),
        "delete_data",
    );
    let (res, calls) = run_with(ScopeLayer::new(policy_allowing_reads()), req).await;
    assert_eq!((res.status(), calls), (StatusCode::OK, 1));
}

fn policy_allowing_reads() -> ScopePolicy {
    ScopePolicy::new(Unlisted::Deny).tool("read_data", Requirement::all(["data:read"]))
}

/// A body that sends `first` (if any), then nothing, ever.
struct Stalled(Option<Bytes>);

impl http_body::Body for Stalled {
    type Data = Bytes;
    type Error = Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        match self.0.take() {
            Some(b) => Poll::Ready(Some(Ok(http_body::Frame::data(b)))),
            None => Poll::Pending,
        }
    }
}

#[tokio::test]
async fn a_stalled_body_gets_408() {
    // A chunked POST that sends one chunk, then stalls.
    let body = Body::new(Stalled(Some(Bytes::from_static(b"{\"jsonrpc\":"))));
    let mut req = Request::post("/mcp").body(body).unwrap();
    req.headers_mut()
        .insert("transfer-encoding", "chunked".parse().unwrap());
    let layer = ScopeLayer::new(policy()).body_timeout(Duration::from_millis(200));
    let start = std::time::Instant::now();
    let (res, calls) = run_with(layer, req).await;
    assert_eq!((res.status(), calls), (StatusCode::REQUEST_TIMEOUT, 0));
    assert!(start.elapsed() < Duration::from_secs(5));
    assert!(text(res).await.contains("request_timeout"));
    // A GET whose body never ends.
    let req = Request::get("/mcp").body(Body::new(Stalled(None))).unwrap();
    let layer = ScopeLayer::new(policy()).body_timeout(Duration::from_millis(100));
    let (res, calls) = run_with(layer, req).await;
    assert_eq!((res.status(), calls), (StatusCode::REQUEST_TIMEOUT, 0));
}

#[tokio::test]
async fn batches_over_the_limit_get_400_saying_so() {
    let msg = call("read_data");
    let batch = |n: usize| format!("[{}]", vec![msg.as_str(); n].join(","));
    let (res, calls) = run_with(ScopeLayer::new(policy()), post(&batch(100))).await;
    assert_eq!((res.status(), calls), (StatusCode::OK, 1));
    let (res, calls) = run_with(ScopeLayer::new(policy()), post(&batch(10_000))).await;
    assert_eq!((res.status(), calls), (StatusCode::BAD_REQUEST, 0));
    assert!(
        text(res)
            .await
            .contains("more messages than this server accepts")
    );
    let (res, calls) = run_with(ScopeLayer::new(policy()).max_batch(2), post(&batch(3))).await;
    assert_eq!((res.status(), calls), (StatusCode::BAD_REQUEST, 0));
}

#[tokio::test]
async fn missing_auth_context_is_a_500_that_says_so() {
    let (status, _, seen) = run(post(&call("read_data")), None).await;
    assert_eq!((status, seen.len()), (StatusCode::INTERNAL_SERVER_ERROR, 0));
}

#[tokio::test]
async fn tool_call_without_a_name_is_a_bad_request() {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":null}}"#;
    assert_eq!(
        run(post(body), Some(&["data:admin"])).await.0,
        StatusCode::BAD_REQUEST
    );
}
