//! [`ScopeLayer`]: applies a [`ScopePolicy`] to each request, inside an auth layer.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH};
use http::{Method, Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, Limited};
use tower_layer::Layer;
use tower_service::Service;

use super::operation::{Operation, operation_from_headers, parse_operations};
use super::policy::ScopePolicy;
use crate::body::AuthBody;
use crate::context::AuthContext;
use crate::error::AuthError;
use crate::response::{Challenge, Rejection};
use crate::service::log_rejection;

/// Default largest body read to find the operation (4 MiB).
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

struct Shared {
    policy: ScopePolicy,
    max_body: usize,
    challenge: Challenge,
}

/// Layer enforcing a [`ScopePolicy`]. Put it **inside** an auth layer: it reads the
/// [`AuthContext`] the auth layer inserted (a missing context is a wiring bug → 500, never a
/// pass), so a request without valid credentials gets its 401 before any body is read.
///
/// For POST it reads the body (up to [`DEFAULT_MAX_BODY`] by default; more → 413; a
/// `Content-Encoding` other than `identity` → 415) and hands the inner service the same bytes.
/// `Mcp-Method`/`Mcp-Name` headers, when present, must agree with the body (else 400). GET
/// and DELETE carry no operation: only the every-request rule applies.
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
            .field("max_body", &self.shared.max_body)
            .finish_non_exhaustive()
    }
}

impl ScopeLayer {
    /// Enforces `policy` with a `Bearer` challenge and a 4 MiB body limit.
    pub fn new(policy: ScopePolicy) -> Self {
        Self::build(policy, DEFAULT_MAX_BODY, Challenge::bearer())
    }

    fn build(policy: ScopePolicy, max_body: usize, challenge: Challenge) -> Self {
        Self {
            shared: Arc::new(Shared {
                policy,
                max_body,
                challenge,
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut usize, &mut Challenge)) -> Self {
        let shared = Arc::try_unwrap(self.shared).unwrap_or_else(|arc| Shared {
            policy: arc.policy.clone(),
            max_body: arc.max_body,
            challenge: arc.challenge.clone(),
        });
        let (mut max, mut challenge) = (shared.max_body, shared.challenge);
        f(&mut max, &mut challenge);
        Self::build(shared.policy, max, challenge)
    }

    /// Largest body read (default 4 MiB); larger bodies get 413.
    pub fn max_body(self, bytes: usize) -> Self {
        self.rebuild(|m, _| *m = bytes)
    }

    /// Challenge settings for 403s (e.g. `resource_metadata`).
    pub fn challenge(self, challenge: Challenge) -> Self {
        self.rebuild(|_, c| *c = challenge)
    }

    /// Points 403 challenges at `pr`'s metadata (`resource_metadata`, MCP: "for consistency
    /// with 401 responses").
    pub fn protected_resource(self, pr: &crate::resource::ProtectedResource) -> Self {
        self.rebuild(|_, c| *c = pr.apply(c.clone()))
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
    let body = serde_json::json!({ "error": code, "error_description": description }).to_string();
    let mut res = Response::new(Bytes::from(body));
    *res.status_mut() = status;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
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
                crate::audit::denied(
                    parts,
                    parts.extensions.get::<AuthContext>(),
                    &err,
                    op.as_ref(),
                );
                let challenge = crate::resource::challenge_for(&self.challenge, parts);
                let mut res = Rejection::new(&err, &challenge).default_response();
                res.extensions_mut().insert(err);
                res
            }
            Refusal::Status(status, code, description) if status.is_server_error() => {
                tracing::error!(target: crate::service::REJECTION_TARGET, reason = code, "{description}");
                status_response(status, code, description)
            }
            Refusal::Status(status, code, description) => {
                tracing::debug!(target: crate::service::REJECTION_TARGET, reason = code, status = status.as_u16(), "request refused");
                status_response(status, code, description)
            }
        }
    }

    fn decide(
        &self,
        parts: &http::request::Parts,
        body_ops: Option<Vec<Operation>>,
    ) -> Result<(), Refusal> {
        let Some(ctx) = parts.extensions.get::<AuthContext>() else {
            return Err(WIRING_BUG);
        };
        let header_op = operation_from_headers(&parts.headers).map_err(|_| {
            Refusal::Status(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "bad Mcp-Method or Mcp-Name header",
            )
        })?;
        let ops = match (header_op, body_ops) {
            (Some(h), Some(body)) => {
                let agrees = matches!(body.as_slice(), [b] if *b == h);
                if !agrees {
                    return Err(Refusal::Status(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "Mcp-Method/Mcp-Name headers do not match the body",
                    ));
                }
                body
            }
            (Some(h), None) => vec![h],
            (None, Some(body)) => body,
            (None, None) => Vec::new(),
        };
        self.policy
            .check(ctx, &ops)
            .map_err(|e| Refusal::Auth(Box::new((e, ops.first().cloned()))))
    }
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
            if parts.method != Method::POST {
                if let Err(r) = shared.decide(&parts, None) {
                    return refuse(r, &parts);
                }
                let res = inner.call(Request::from_parts(parts, body)).await?;
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
            if declared.is_some_and(|n| n > shared.max_body as u64) {
                return refuse(too_large, &parts);
            }
            let bytes = match Limited::new(body, shared.max_body).collect().await {
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
            let ops = match parse_operations(&bytes) {
                Ok(ops) => ops,
                Err(_) => {
                    let r = Refusal::Status(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "the body is not a JSON-RPC request this server accepts",
                    );
                    return refuse(r, &parts);
                }
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
