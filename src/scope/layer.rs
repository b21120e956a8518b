//! [`ScopeLayer`]: applies a [`ScopePolicy`] to each request, inside an auth layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ALLOW, CONTENT_ENCODING, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tower_layer::Layer;
use tower_service::Service;

use super::headers::{headers_agree, operation_from_headers};
use super::jsonrpc::{DEFAULT_MAX_BATCH, parse_operations_limited};
use super::operation::Operation;
use super::policy::ScopePolicy;
use crate::body::AuthBody;
use crate::context::AuthContext;
use crate::error::AuthError;
use crate::rejection::{Challenge, Rejection};
use crate::telemetry::log_rejection;

/// Default largest body read to find the operation (4 MiB).
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// Default time allowed to receive a whole request body (10 s); see
/// [`ScopeLayer::body_timeout`].
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The methods the layer lets through (`Allow` of its 405).
const ALLOWED: &str = "GET, HEAD, POST, DELETE, OPTIONS";

#[derive(Clone)]
struct Settings {
    max_body: usize,
    max_batch: usize,
    body_timeout: Duration,
    challenge: Challenge,
}

struct Shared {
    policy: ScopePolicy,
    settings: Settings,
}

/// Layer enforcing a [`ScopePolicy`]. Put it **inside** an auth layer: it reads the
/// [`AuthContext`] the auth layer inserted (a missing context is a wiring bug → 500, never a
/// pass), so a request without valid credentials gets its 401 before any body is read.
///
/// For POST it reads the body (up to [`DEFAULT_MAX_BODY`] by default; more → 413; a
/// `Content-Encoding` other than `identity` → 415; not received within
/// [`body_timeout`](Self::body_timeout), 10 s by default → 408; a batch of more than
/// [`max_batch`](Self::max_batch) messages, 100 by default → 400) and hands the inner service
/// the same bytes. `Mcp-Method`/`Mcp-Name` headers, when present, must agree with the body
/// (else 400); they are only ever checked against a body, never the basis of a decision.
///
/// GET, HEAD, DELETE and OPTIONS carry no operation: only the every-request rule applies, and
/// a body on them is refused (400; a `Content-Length` above 0, any `Transfer-Encoding`, or any
/// byte actually sent). Every other method (PUT, PATCH, …) gets 405 with an `Allow` header, so
/// no body reaches the inner service unread. CORS preflights are answered by a CORS layer
/// outside the auth layer and never get here.
///
/// ```
/// use mcp_auth::scope::{Requirement, ScopeLayer, ScopePolicy, Unlisted};
/// use mcp_auth::{AuthContext, AuthMethod};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let policy = ScopePolicy::new(Unlisted::Allow).tool("delete_data", Requirement::all(["data:admin"]));
/// type Body = http_body_util::Full<bytes::Bytes>;
/// let svc = ScopeLayer::new(policy).layer(service_fn(|_req: http::Request<Body>| async {
///     Ok::<_, std::convert::Infallible>(http::Response::new(Body::default()))
/// }));
/// let call = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_data"}}"#;
/// let mut req = http::Request::post("/mcp").body(Body::from(call)).unwrap();
/// req.extensions_mut().insert(AuthContext::builder("bob", AuthMethod::Jwt).scopes(["data:read"]).build());
/// let res = svc.oneshot(req).await.unwrap();
/// assert_eq!(res.status(), 403);
/// assert_eq!(res.headers()["www-authenticate"], "Bearer error=\"insufficient_scope\", \
///     error_description=\"this operation needs more scope\", scope=\"data:admin\"");
/// # }
/// ```
#[derive(Clone)]
#[must_use]
pub struct ScopeLayer {
    shared: Arc<Shared>,
}

impl fmt::Debug for ScopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeLayer")
            .field("policy", &self.shared.policy)
            .field("max_body", &self.shared.settings.max_body)
            .field("max_batch", &self.shared.settings.max_batch)
            .field("body_timeout", &self.shared.settings.body_timeout)
            .finish_non_exhaustive()
    }
}

impl ScopeLayer {
    /// Enforces `policy` with a `Bearer` challenge, a 4 MiB body limit, a 10 s body-read
    /// timeout and batches of at most 100 messages.
    pub fn new(policy: ScopePolicy) -> Self {
        Self {
            shared: Arc::new(Shared {
                policy,
                settings: Settings {
                    max_body: DEFAULT_MAX_BODY,
                    max_batch: DEFAULT_MAX_BATCH,
                    body_timeout: DEFAULT_BODY_TIMEOUT,
                    challenge: Challenge::bearer(),
                },
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut Settings)) -> Self {
        let mut shared = Arc::try_unwrap(self.shared).unwrap_or_else(|arc| Shared {
            policy: arc.policy.clone(),
            settings: arc.settings.clone(),
        });
        f(&mut shared.settings);
        Self {
            shared: Arc::new(shared),
        }
    }

    /// Largest body read (default 4 MiB); larger bodies get 413.
    pub fn max_body(self, bytes: usize) -> Self {
        self.rebuild(|s| s.max_body = bytes)
    }

    /// Most messages in a JSON-RPC batch (default 100); a longer batch gets 400 before the
    /// rest of it is read. `0` refuses every batch.
    pub fn max_batch(self, messages: usize) -> Self {
        self.rebuild(|s| s.max_batch = messages)
    }

    /// Time allowed to receive the whole request body (default 10 s), counted from the moment
    /// the layer starts reading it; a slower body gets 408 Request Timeout, so a slow sender
    /// cannot hold a buffer of up to [`max_body`](Self::max_body) bytes open for long.
    ///
    /// The timer is Tokio's (a Tokio runtime with its time driver, as axum and hyper servers
    /// have). Built without any feature that brings Tokio in (`jwt`, `introspection`,
    /// `redis`), or polled outside a Tokio runtime, the layer reads without a timeout.
    pub fn body_timeout(self, timeout: Duration) -> Self {
        self.rebuild(|s| s.body_timeout = timeout)
    }

    /// Challenge settings for 403s (e.g. `resource_metadata`).
    pub fn challenge(self, challenge: Challenge) -> Self {
        self.rebuild(|s| s.challenge = challenge)
    }

    /// Points 403 challenges at `pr`'s metadata (`resource_metadata`, MCP: "for consistency
    /// with 401 responses").
    pub fn protected_resource(self, pr: &crate::oauth::ProtectedResource) -> Self {
        self.rebuild(|s| s.challenge = pr.apply(s.challenge.clone()))
    }
}

impl<S> Layer<S> for ScopeLayer {
    type Service = RequireScope<S>;

    fn layer(&self, inner: S) -> RequireScope<S> {
        RequireScope {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// The service built by [`ScopeLayer`].
#[must_use]
pub struct RequireScope<S> {
    inner: S,
    shared: Arc<Shared>,
}

impl<S: Clone> Clone for RequireScope<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for RequireScope<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScope")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

fn status_response(status: StatusCode, code: &str, description: &str) -> Response<Bytes> {
    crate::rejection::json_error(status, code, description)
}

/// No auth layer ran before this one: a wiring bug, answered 500 and said so.
const WIRING_BUG: Refusal = Refusal::Status(
    StatusCode::INTERNAL_SERVER_ERROR,
    "server_error",
    "ScopeLayer found no AuthContext: install it inside an mcp-auth layer",
);

type BoxResponse<B, E> = Pin<Box<dyn Future<Output = Result<Response<AuthBody<B>>, E>> + Send>>;

/// What stands in the way of calling the inner service.
enum Refusal {
    /// Refused by the policy; the request's first operation, for the audit event.
    Auth(Box<(AuthError, Option<Operation>)>),
    Status(StatusCode, &'static str, &'static str),
}

impl Shared {
    fn refuse(&self, refusal: Refusal, parts: &http::request::Parts) -> Response<Bytes> {
        match refusal {
            Refusal::Auth(refused) => {
                let (err, op) = *refused;
                log_rejection(&err, parts);
                crate::telemetry::denied(
                    parts,
                    parts.extensions.get::<AuthContext>(),
                    &err,
                    op.as_ref().map(|o| (o.method(), o.name())),
                );
                let challenge = self.settings.challenge.for_request(parts);
                let mut res = Rejection::new(&err, &challenge).default_response();
                res.extensions_mut().insert(err);
                res
            }
            Refusal::Status(status, code, description) if status.is_server_error() => {
                tracing::error!(target: crate::telemetry::REJECTION_TARGET, reason = code, "{description}");
                status_response(status, code, description)
            }
            Refusal::Status(status, code, description) => {
                tracing::debug!(target: crate::telemetry::REJECTION_TARGET, reason = code, status = status.as_u16(), "request refused");
                let mut res = status_response(status, code, description);
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    res.headers_mut()
                        .insert(ALLOW, http::HeaderValue::from_static(ALLOWED));
                }
                res
            }
        }
    }

    /// The decision on `ops`: the operations read from a POST body (`Some`; the
    /// `Mcp-Method`/`Mcp-Name` headers, when present, must agree with them), or `None` for a
    /// request without a body (only the every-request rule applies; headers are not read).
    fn decide(
        &self,
        parts: &http::request::Parts,
        body_ops: Option<Vec<Operation>>,
    ) -> Result<(), Refusal> {
        let Some(ctx) = parts.extensions.get::<AuthContext>() else {
            return Err(WIRING_BUG);
        };
        let ops = match body_ops {
            None => Vec::new(),
            Some(body) => {
                let header_op = operation_from_headers(&parts.headers).map_err(|_| {
                    Refusal::Status(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "bad Mcp-Method or Mcp-Name header",
                    )
                })?;
                if header_op.is_some_and(|h| !headers_agree(&h, &body)) {
                    return Err(Refusal::Status(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "Mcp-Method/Mcp-Name headers do not match the body",
                    ));
                }
                body
            }
        };
        self.policy
            .check(ctx, &ops)
            .map_err(|e| Refusal::Auth(Box::new((e, ops.first().cloned()))))
    }
}

/// Runs `fut` for at most `limit` when a Tokio timer is available (`None` on timeout); see
/// [`ScopeLayer::body_timeout`].
async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    #[cfg(any(feature = "jwt", feature = "introspection", feature = "redis"))]
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return tokio::time::timeout(limit, fut).await.ok();
        }
    }
    #[cfg(not(any(feature = "jwt", feature = "introspection", feature = "redis")))]
    let _ = limit;
    Some(fut.await)
}

const TOO_SLOW: Refusal = Refusal::Status(
    StatusCode::REQUEST_TIMEOUT,
    "request_timeout",
    "the request body was not received in time",
);

/// The reason given for a body `parse_operations` refused (400).
fn parse_refusal(reason: &str) -> Refusal {
    let description = match reason {
        "batch_too_large" => "the batch holds more messages than this server accepts",
        "too_many_targets" => "the request names more targets than this server accepts",
        _ => "the body is not a JSON-RPC request this server accepts",
    };
    Refusal::Status(StatusCode::BAD_REQUEST, "invalid_request", description)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScope<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    ResBody: Send + 'static,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxResponse<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let refuse = |r: Refusal, parts: &http::request::Parts| {
                Ok(shared.refuse(r, parts).map(AuthBody::rejection))
            };
            // Authentication first: no context means no body is read.
            if parts.extensions.get::<AuthContext>().is_none() {
                return refuse(WIRING_BUG, &parts);
            }
            let timeout = shared.settings.body_timeout;
            let bodyless = matches!(
                parts.method,
                Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS
            );
            if !bodyless && parts.method != Method::POST {
                let r = Refusal::Status(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    "this endpoint accepts GET, HEAD, POST, DELETE and OPTIONS",
                );
                return refuse(r, &parts);
            }
            if bodyless {
                let body_refused = Refusal::Status(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "a GET, HEAD, DELETE or OPTIONS request must not carry a body",
                );
                let declared = parts
                    .headers
                    .get_all(CONTENT_LENGTH)
                    .iter()
                    .any(|v| v != "0");
                if declared || parts.headers.contains_key(TRANSFER_ENCODING) {
                    return refuse(body_refused, &parts);
                }
                // Whatever the headers say, not one byte may arrive (an HTTP/2 DATA frame
                // needs no Content-Length); the inner service gets an empty body.
                match within(timeout, Limited::new(body, 0).collect()).await {
                    None => return refuse(TOO_SLOW, &parts),
                    Some(Ok(_)) => {}
                    Some(Err(_)) => return refuse(body_refused, &parts),
                }
                if let Err(r) = shared.decide(&parts, None) {
                    return refuse(r, &parts);
                }
                let req = Request::from_parts(parts, ReqBody::from(Bytes::new()));
                let res = inner.call(req).await?;
                return Ok(res.map(AuthBody::inner));
            }
            let encoded = parts
                .headers
                .get_all(CONTENT_ENCODING)
                .iter()
                .any(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
            if encoded {
                let r = Refusal::Status(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_encoding",
                    "only identity content encoding is accepted",
                );
                return refuse(r, &parts);
            }
            let too_large = Refusal::Status(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "request body too large",
            );
            let declared = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            let max_body = shared.settings.max_body;
            if declared.is_some_and(|n| n > u64::try_from(max_body).unwrap_or(u64::MAX)) {
                return refuse(too_large, &parts);
            }
            let Some(collected) = within(timeout, Limited::new(body, max_body).collect()).await
            else {
                return refuse(TOO_SLOW, &parts);
            };
            let bytes = match collected {
                Ok(collected) => collected.to_bytes(),
                Err(e)
                    if e.downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some() =>
                {
                    return refuse(too_large, &parts);
                }
                Err(_) => {
                    let r = Refusal::Status(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "the request body could not be read",
                    );
                    return refuse(r, &parts);
                }
            };
            let ops = match parse_operations_limited(&bytes, shared.settings.max_batch) {
                Ok(ops) => ops,
                Err(e) => return refuse(parse_refusal(e.reason()), &parts),
            };
            if let Err(r) = shared.decide(&parts, Some(ops)) {
                return refuse(r, &parts);
            }
            let res = inner
                .call(Request::from_parts(parts, ReqBody::from(bytes)))
                .await?;
            Ok(res.map(AuthBody::inner))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::Mutex;

    use axum::body::Body;
    use tower::{ServiceExt, service_fn};

    use super::*;
    use crate::context::AuthMethod;
    use crate::scope::{ImpliedScopes, Requirement, Unlisted, WildcardAndPairs};

    fn policy() -> ScopePolicy {
        ScopePolicy::new(Unlisted::Deny)
            .method("initialize", Requirement::default())
            .tool("read_data", Requirement::all(["data:read"]))
            .tool("write_data", Requirement::all(["data:write"]))
            .tool("delete_data", Requirement::all(["data:admin"]))
            .implication(WildcardAndPairs(
                ImpliedScopes::new().pair("data:write", "data:read"),
            ))
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
        let (status, challenge, seen) =
            run(post(&call("delete_data")), Some(&["data:write"])).await;
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

        let mut req = post(&call("delete_data"));
        req.headers_mut()
            .insert("mcp-method", "tools/call".parse().unwrap());
        req.headers_mut()
            .insert("mcp-name", "read_data".parse().unwrap());
        let (status, _, seen) = run(req, Some(&["data:read"])).await;
        assert_eq!((status, seen.len()), (StatusCode::BAD_REQUEST, 0));

        let mut req = post(&call("read_data"));
        req.headers_mut()
            .insert("mcp-method", "tools/call".parse().unwrap());
        req.headers_mut()
            .insert("mcp-name", "read_data".parse().unwrap());
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
        let policy =
            ScopePolicy::new(Unlisted::Allow).every_request(Requirement::all(["data:admin"]));
        let mut req = Request::get("/mcp").body(Body::empty()).unwrap();
        req.headers_mut()
            .insert("mcp-method", "tools/call".parse().unwrap());
        req.headers_mut()
            .insert("mcp-name", "read_data".parse().unwrap());
        let (res, calls) = run_with(ScopeLayer::new(policy), req).await;
        assert_eq!((res.status(), calls), (StatusCode::FORBIDDEN, 0));
        let mut req = Request::get("/mcp").body(Body::empty()).unwrap();
        req.headers_mut()
            .insert("mcp-method", "tools/call".parse().unwrap());
        req.headers_mut()
            .insert("mcp-name", "delete_data".parse().unwrap());
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
}
