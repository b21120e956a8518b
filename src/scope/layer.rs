//! [`ScopeLayer`]: applies a [`ScopePolicy`] to each request, inside an auth layer.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::headers::{headers_match, operation_from_headers, requires_mirrored_headers};
use super::jsonrpc::DEFAULT_MAX_BATCH;
use super::operation::Operation;
use super::policy::ScopePolicy;
use super::read_body::{BodyLimits, ReadError, expect_no_body, read_operations};
use super::refusal::{METHOD_NOT_ALLOWED, Refusal, WIRING_BUG};
use crate::body::{AuthBody, BoxResponse, take_ready};
use crate::context::AuthContext;
use crate::rejection::Challenge;

/// Default largest body read to find the operation (4 MiB).
pub const DEFAULT_MAX_BODY: usize = 4 * 1024 * 1024;

/// Default time allowed to receive a whole request body (10 s); see
/// [`ScopeLayer::body_timeout`].
const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// The policy and how it is enforced: what the layer and every service it builds share.
#[derive(Clone)]
struct Enforcer {
    policy: ScopePolicy,
    limits: BodyLimits,
    challenge: Challenge,
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
    enforcer: Arc<Enforcer>,
}

impl fmt::Debug for ScopeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Enforcer { policy, limits, .. } = &*self.enforcer;
        f.debug_struct("ScopeLayer")
            .field("policy", policy)
            .field("max_body", &limits.max_body)
            .field("max_batch", &limits.max_batch)
            .field("body_timeout", &limits.timeout)
            .finish_non_exhaustive()
    }
}

impl ScopeLayer {
    /// Enforces `policy` with a `Bearer` challenge, a 4 MiB body limit, a 10 s body-read
    /// timeout and batches of at most 100 messages.
    pub fn new(policy: ScopePolicy) -> Self {
        let limits = BodyLimits {
            max_body: DEFAULT_MAX_BODY,
            max_batch: DEFAULT_MAX_BATCH,
            timeout: DEFAULT_BODY_TIMEOUT,
        };
        Self {
            enforcer: Arc::new(Enforcer {
                policy,
                limits,
                challenge: Challenge::bearer(),
            }),
        }
    }

    fn rebuild(self, f: impl FnOnce(&mut Enforcer)) -> Self {
        let mut enforcer = Arc::unwrap_or_clone(self.enforcer);
        f(&mut enforcer);
        Self {
            enforcer: Arc::new(enforcer),
        }
    }

    /// Largest body read (default 4 MiB); larger bodies get 413.
    pub fn max_body(self, bytes: usize) -> Self {
        self.rebuild(|e| e.limits.max_body = bytes)
    }

    /// Most messages in a JSON-RPC batch (default 100); a longer batch gets 400 before the
    /// rest of it is read. `0` refuses every batch.
    pub fn max_batch(self, messages: usize) -> Self {
        self.rebuild(|e| e.limits.max_batch = messages)
    }

    /// Time allowed to receive the whole request body (default 10 s), counted from the moment
    /// the layer starts reading it; a slower body gets 408 Request Timeout, so a slow sender
    /// cannot hold a buffer of up to [`max_body`](Self::max_body) bytes open for long.
    ///
    /// The timer is Tokio's (a Tokio runtime with its time driver, as axum and hyper servers
    /// have). Built without any feature that brings Tokio in (`jwt`, `introspection`,
    /// `redis`), or polled outside a Tokio runtime, the layer reads without a timeout.
    pub fn body_timeout(self, timeout: Duration) -> Self {
        self.rebuild(|e| e.limits.timeout = timeout)
    }

    /// Challenge settings for 403s (e.g. `resource_metadata`).
    pub fn challenge(self, challenge: Challenge) -> Self {
        self.rebuild(|e| e.challenge = challenge)
    }

    /// Points 403 challenges at `pr`'s metadata (`resource_metadata`, MCP: "for consistency
    /// with 401 responses").
    pub fn protected_resource(self, pr: &crate::oauth::ProtectedResource) -> Self {
        self.rebuild(|e| e.challenge = pr.apply(e.challenge.clone()))
    }
}

impl<S> Layer<S> for ScopeLayer {
    type Service = RequireScope<S>;

    fn layer(&self, inner: S) -> RequireScope<S> {
        RequireScope {
            inner,
            enforcer: Arc::clone(&self.enforcer),
        }
    }
}

/// The service built by [`ScopeLayer`].
#[must_use]
pub struct RequireScope<S> {
    inner: S,
    enforcer: Arc<Enforcer>,
}

impl<S: Clone> Clone for RequireScope<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            enforcer: Arc::clone(&self.enforcer),
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

impl Enforcer {
    /// Everything before the inner service: the bytes it gets, or why it is not called.
    async fn admit<B: Body<Error: Into<ReadError>>>(
        &self,
        parts: &Parts,
        body: B,
    ) -> Result<Bytes, Refusal> {
        // Authentication first: no context means no body is read.
        let Some(ctx) = parts.extensions.get::<AuthContext>() else {
            return Err(WIRING_BUG);
        };
        let (bytes, ops) = match parts.method {
            Method::GET | Method::HEAD | Method::DELETE | Method::OPTIONS => {
                expect_no_body(parts, body, self.limits.timeout).await?;
                (Bytes::new(), Vec::new())
            }
            Method::POST => {
                let (bytes, ops) = read_operations(parts, body, &self.limits).await?;
                check_headers(parts, &ops, &bytes)?;
                (bytes, ops)
            }
            _ => return Err(METHOD_NOT_ALLOWED),
        };
        self.policy
            .check(ctx, &ops)
            .map_err(|e| Refusal::Auth(Box::new((e, ops.first().cloned()))))?;
        Ok(bytes)
    }
}

/// The `Mcp-Method`/`Mcp-Name` headers of a POST must agree with the operations of its body
/// (and, from protocol version 2026-07-28, be present): otherwise 400 with the JSON-RPC
/// error `-32020` (header mismatch). A request without a body is decided on the
/// every-request rule alone: its headers are never read.
fn check_headers(parts: &Parts, body: &[Operation], bytes: &[u8]) -> Result<(), Refusal> {
    let mismatch = |message| Refusal::HeaderMismatch(request_id(bytes), message);
    let required = requires_mirrored_headers(&parts.headers)
        .map_err(|_| mismatch("bad MCP-Protocol-Version header"))?;
    let header_op = operation_from_headers(&parts.headers)
        .map_err(|_| mismatch("bad Mcp-Method or Mcp-Name header"))?;
    headers_match(header_op.as_ref(), body, required).map_err(mismatch)
}

/// The `id` of a single JSON-RPC message (a string or a number), for an error answer; `null`
/// otherwise. Read again only on this refusal path (linear; the body was parsed already).
fn request_id(bytes: &[u8]) -> serde_json::Value {
    #[derive(serde::Deserialize)]
    struct IdOnly {
        #[serde(default)]
        id: Option<serde_json::Value>,
    }
    serde_json::from_slice::<IdOnly>(bytes)
        .ok()
        .and_then(|m| m.id)
        .filter(|id| id.is_string() || id.is_number())
        .unwrap_or(serde_json::Value::Null)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScope<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Body + From<Bytes> + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: Into<ReadError>,
    ResBody: Send + 'static,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxResponse<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let mut inner = take_ready(&mut self.inner);
        let enforcer = Arc::clone(&self.enforcer);
        // Boxed: the body must be read whole before the inner service is called.
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            match enforcer.admit(&parts, body).await {
                Ok(bytes) => {
                    let req = Request::from_parts(parts, ReqBody::from(bytes));
                    Ok(inner.call(req).await?.map(AuthBody::inner))
                }
                Err(refusal) => {
                    let mut res = refusal.into_response(&parts, &enforcer.challenge);
                    // A 403 answers a body read whole; other refusals may leave part of it
                    // unread (413, 408, 415, a body on a GET), so the connection closes.
                    if res.status() != http::StatusCode::FORBIDDEN {
                        crate::body::close_if_body_unread(&parts.headers, &mut res);
                    }
                    Ok(res.map(AuthBody::rejection))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests;
