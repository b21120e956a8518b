//! Session binding: an MCP session belongs to the principal that created it. A request that
//! carries another principal's `Mcp-Session-Id` is answered 404, exactly as an unknown session
//! is, and never reaches the MCP service.
//!
//! The MCP specification says servers must not use sessions for authentication and should
//! bind session ids to user-specific information. Authentication layers check every request;
//! [`SessionBindingLayer`] adds the binding, so a stolen session id (from a log, a proxy or a
//! shared client) is worthless to anyone but its owner: they cannot attach to its SSE stream
//! (`GET`), post into it (`POST`, including answers to the server's elicitation or sampling
//! requests), or end it (`DELETE`).
//!
//! - **Creation.** A response that carries an `Mcp-Session-Id` other than the request's (the
//!   answer to `initialize`) binds that session to the caller's
//!   [`principal`](crate::AuthContext::principal) before the response leaves: the client cannot
//!   use the id before it is bound.
//! - **Use.** A request with `Mcp-Session-Id` passes only when the store binds that session to
//!   the caller. Another principal's session **and a session the store does not know** are
//!   answered `404 Not Found` with rmcp's own body for an unknown session (`Not Found: Session
//!   not found`), without calling the inner service; the two cases cannot be told apart.
//!   Refusing unknown sessions is what makes the store's bounds safe: a binding that expired
//!   or was evicted can never fall back to "unbound, let the MCP server decide", so no one can
//!   flood the store to push a victim's binding out and then take the session over. The cost
//!   is availability only: the owner gets 404 too and, as the specification requires of
//!   clients, starts a new session.
//! - **End.** A `DELETE` that the inner service answers with success removes the binding.
//! - The caller is the [`AuthContext`] the auth layer put in the request
//!   extensions; install this layer **inside** the auth layer. Requests that an
//!   [optional](crate::AuthLayer::optional) layer let through anonymously share one
//!   "anonymous" owner, distinct from every principal. Without either, the layer answers 500
//!   (a wiring bug), like [`ScopeLayer`](crate::scope::ScopeLayer).
//! - More than one `Mcp-Session-Id` header is refused with 400.
//! - If the store cannot answer, the request gets 503 with `Retry-After` (fail closed).
//! - Stores key bindings by the SHA-256 [`SessionDigest`] of the id and record the owner as the
//!   SHA-256 [`Owner`] digest of the principal; logs name a session by the first 8 hex digits
//!   of its digest, never by its id.
//!
//! Stores: [`MemorySessionStore`] (one process; bounded, idle expiry) and, with feature
//! `redis`, [`RedisSessionStore`] (shared by every instance, so sessions can move between
//! instances that share rmcp's session state).
//!
//! Limits:
//!
//! - With a per-process store, a session is usable only on the instance that created it
//!   (rmcp's default session manager is per-process too). Instances that share sessions
//!   (rmcp's external session store) need a shared binding store, or they answer 404.
//! - If recording a new binding fails, the client gets 503 instead of the session id; the
//!   session rmcp created is unusable (unknown to the store, hence 404) and ends at rmcp's
//!   idle timeout.
//! - Only `Mcp-Session-Id` is bound. rmcp servers configured with an event store also replay
//!   events to a `GET` that carries `Last-Event-ID` and no session (the stateless protocol
//!   revision); those replays are keyed by the event id alone and are not checked here.
//!
//! ```
//! use mcp_auth::{store::MemorySessionStore, session::SessionBindingLayer};
//! use mcp_auth::{AuthContext, AuthMethod};
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Stands in for rmcp: a request without a session creates "s-1"; others are served.
//! let mcp = service_fn(|req: http::Request<()>| async move {
//!     let mut res = http::Response::new(String::from("ok"));
//!     if !req.headers().contains_key("mcp-session-id") {
//!         res.headers_mut().insert("mcp-session-id", "s-1".parse().unwrap());
//!     }
//!     Ok::<_, std::convert::Infallible>(res)
//! });
//! // In a real server the auth layer (outside) puts the caller's AuthContext there.
//! let svc = SessionBindingLayer::new(MemorySessionStore::new()).layer(mcp);
//! let call = |user: &str, session: Option<&str>| {
//!     let mut req = http::Request::post("/mcp");
//!     if let Some(s) = session {
//!         req = req.header("mcp-session-id", s);
//!     }
//!     let mut req = req.body(()).unwrap();
//!     req.extensions_mut()
//!         .insert(AuthContext::builder(user, AuthMethod::ApiKey).build());
//!     svc.clone().oneshot(req)
//! };
//! // alice's initialize creates s-1, bound to alice.
//! let res = call("alice", None).await.unwrap();
//! assert_eq!(res.headers()["mcp-session-id"], "s-1");
//! // alice may use it; bob, holding the same id, is told it does not exist.
//! assert_eq!(call("alice", Some("s-1")).await.unwrap().status(), 200);
//! assert_eq!(call("bob", Some("s-1")).await.unwrap().status(), 404);
//! // So is anyone with an id the layer never bound.
//! assert_eq!(call("alice", Some("s-2")).await.unwrap().status(), 404);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::RETRY_AFTER;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::body::AuthBody;
use crate::context::{Anonymous, AuthContext};
use crate::store::StoreError;
use crate::store::{Owner, SessionDigest, SessionStore};

/// The session header of MCP's streamable HTTP transport.
pub const SESSION_HEADER: &str = "mcp-session-id";

/// The body rmcp's streamable HTTP server (3.9) sends with its 404 for an unknown session;
/// the layer sends the same for sessions that are not the caller's.
pub const NOT_FOUND_BODY: &str = "Not Found: Session not found";

// --- the layer -------------------------------------------------------------------------------------

/// Layer binding MCP sessions to the principal that created them (see the
/// [module docs](self)). Install it inside the auth layer.
#[must_use]
pub struct SessionBindingLayer<St> {
    store: Arc<St>,
}

impl<St> Clone for SessionBindingLayer<St> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
        }
    }
}

impl<St> fmt::Debug for SessionBindingLayer<St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBindingLayer")
            .finish_non_exhaustive()
    }
}

impl<St: SessionStore> SessionBindingLayer<St> {
    /// Bindings in `store`.
    pub fn new(store: St) -> Self {
        Self {
            store: Arc::new(store),
        }
    }
}

impl<S, St> Layer<S> for SessionBindingLayer<St> {
    type Service = SessionBinding<S, St>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionBinding {
            inner,
            store: self.store.clone(),
        }
    }
}

/// The service built by [`SessionBindingLayer`].
pub struct SessionBinding<S, St> {
    inner: S,
    store: Arc<St>,
}

impl<S: Clone, St> Clone for SessionBinding<S, St> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            store: self.store.clone(),
        }
    }
}

impl<S: fmt::Debug, St> fmt::Debug for SessionBinding<S, St> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionBinding")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// rmcp's answer to a request for a session it does not know: 404, a plain-text body, no
/// other header.
fn not_found() -> Response<Bytes> {
    let mut res = Response::new(Bytes::from_static(NOT_FOUND_BODY.as_bytes()));
    *res.status_mut() = StatusCode::NOT_FOUND;
    res
}

fn json(status: StatusCode, code: &str, description: &str) -> Response<Bytes> {
    crate::rejection::json_error(status, code, description)
}

fn store_down(err: &StoreError) -> Response<Bytes> {
    tracing::warn!(target: crate::telemetry::REJECTION_TARGET, error = %err, "session store unavailable; refusing (fail closed)");
    let mut res = json(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "sessions are temporarily unavailable",
    );
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from_static("5"));
    res
}

type BoxFuture<B, E> = Pin<Box<dyn Future<Output = Result<Response<AuthBody<B>>, E>> + Send>>;

impl<S, St, ReqBody, ResBody> Service<Request<ReqBody>> for SessionBinding<S, St>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    St: SessionStore,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<AuthBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let store = self.store.clone();
        Box::pin(async move {
            let refuse = |res: Response<Bytes>| Ok(res.map(AuthBody::rejection));
            let owner = match req.extensions().get::<AuthContext>() {
                Some(ctx) => Owner::of(ctx.principal()),
                None if req.extensions().get::<Anonymous>().is_some() => Owner::anonymous(),
                None => {
                    tracing::error!(target: crate::telemetry::REJECTION_TARGET, reason = "server_error", "SessionBindingLayer found no AuthContext: install it inside an mcp-auth layer");
                    return refuse(json(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "server_error",
                        "SessionBindingLayer found no AuthContext: install it inside an mcp-auth layer",
                    ));
                }
            };
            let mut ids = req.headers().get_all(SESSION_HEADER).iter();
            let session = ids.next().map(|v| SessionDigest::of(v.as_bytes()));
            if ids.next().is_some() {
                tracing::debug!(target: crate::telemetry::REJECTION_TARGET, reason = "invalid_request", "more than one Mcp-Session-Id header");
                return refuse(json(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    "more than one Mcp-Session-Id header",
                ));
            }
            if let Some(session) = &session {
                match store.owner(session).await {
                    Ok(Some(o)) if o == owner => {}
                    Ok(found) => {
                        let reason = if found.is_some() {
                            "foreign_session"
                        } else {
                            "unknown_session"
                        };
                        tracing::debug!(target: crate::telemetry::REJECTION_TARGET, reason, session = %session.short(), "session refused (404)");
                        crate::telemetry::refused(&req, reason);
                        return refuse(not_found());
                    }
                    Err(e) => return refuse(store_down(&e)),
                }
            }
            let delete = req.method() == Method::DELETE;
            let res = inner.call(req).await?;
            if let Some(session) = &session
                && delete
                && res.status().is_success()
                && let Err(e) = store.unbind(session, &owner).await
            {
                tracing::warn!(error = %e, session = %session.short(), "could not remove a deleted session's binding; it expires on its own");
            }
            let created = res
                .headers()
                .get(SESSION_HEADER)
                .map(|v| SessionDigest::of(v.as_bytes()))
                .filter(|created| session.as_ref() != Some(created));
            if let Some(created) = created {
                match store.bind(&created, &owner).await {
                    Ok(o) if o == owner => {
                        tracing::debug!(session = %created.short(), "session bound to its creator");
                    }
                    Ok(_) => {
                        // Another principal's session already has this id: never hand it over.
                        tracing::error!(target: crate::telemetry::REJECTION_TARGET, session = %created.short(), "a new session id is already bound to another principal; refusing");
                        return refuse(json(
                            StatusCode::INTERNAL_SERVER_ERROR,
                            "server_error",
                            "the session could not be created",
                        ));
                    }
                    Err(e) => return refuse(store_down(&e)),
                }
            }
            Ok(res.map(AuthBody::inner))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemorySessionStore, Owner, SessionDigest, SessionStore};

    // --- the layer, over a stand-in MCP service ---------------------------------------------

    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::{ServiceExt, service_fn};

    /// Creates session "s-<n>" for requests without one, answers DELETE with 202 and counts
    /// the requests it sees.
    fn mcp(
        seen: Arc<AtomicUsize>,
    ) -> impl Service<
        Request<()>,
        Response = Response<String>,
        Error = std::convert::Infallible,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        service_fn(move |req: Request<()>| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            async move {
                let mut res = Response::new(String::from("ok"));
                if req.method() == Method::DELETE {
                    *res.status_mut() = StatusCode::ACCEPTED;
                } else if !req.headers().contains_key(SESSION_HEADER) {
                    res.headers_mut()
                        .insert(SESSION_HEADER, format!("s-{n}").parse().unwrap());
                }
                Ok(res)
            }
        })
    }

    fn req(method: Method, who: Option<&str>, sessions: &[&str]) -> Request<()> {
        let mut req = Request::builder().method(method).uri("/mcp");
        for s in sessions {
            req = req.header(SESSION_HEADER, *s);
        }
        let mut req = req.body(()).unwrap();
        match who {
            Some("") => {
                req.extensions_mut().insert(Anonymous);
            }
            Some(who) => {
                req.extensions_mut()
                    .insert(AuthContext::builder(who, crate::AuthMethod::ApiKey).build());
            }
            None => {}
        }
        req
    }

    async fn status<St: SessionStore>(
        svc: &SessionBinding<
            impl Service<
                Request<()>,
                Response = Response<String>,
                Error = std::convert::Infallible,
                Future = impl Send + 'static,
            > + Clone
            + Send
            + 'static,
            St,
        >,
        r: Request<()>,
    ) -> (StatusCode, Option<String>) {
        let res = svc.clone().oneshot(r).await.unwrap();
        let id = res
            .headers()
            .get(SESSION_HEADER)
            .map(|v| v.to_str().unwrap().to_owned());
        (res.status(), id)
    }

    #[tokio::test]
    async fn delete_unbinds_only_the_owners_session() {
        let seen = Arc::new(AtomicUsize::new(0));
        let store = MemorySessionStore::new();
        let svc = SessionBindingLayer::new(store.clone()).layer(mcp(seen.clone()));
        let (_, id) = status(&svc, req(Method::POST, Some("alice"), &[])).await;
        let id = id.unwrap();
        assert_eq!(store.len(), 1);
        let r = status(&svc, req(Method::DELETE, Some("bob"), &[&id])).await;
        assert_eq!(r.0, StatusCode::NOT_FOUND);
        assert_eq!(store.len(), 1, "bob's DELETE left it");
        assert_eq!(
            seen.load(Ordering::SeqCst),
            1,
            "and never reached the service"
        );
        let r = status(&svc, req(Method::DELETE, Some("alice"), &[&id])).await;
        assert_eq!(r.0, StatusCode::ACCEPTED);
        assert!(store.is_empty());
        let r = status(&svc, req(Method::POST, Some("alice"), &[&id])).await;
        assert_eq!(r.0, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn anonymous_sessions_belong_to_anonymous_callers_only() {
        let seen = Arc::new(AtomicUsize::new(0));
        let svc = SessionBindingLayer::new(MemorySessionStore::new()).layer(mcp(seen.clone()));
        let (_, anon) = status(&svc, req(Method::POST, Some(""), &[])).await;
        let (_, alice) = status(&svc, req(Method::POST, Some("alice"), &[])).await;
        let (anon, alice) = (anon.unwrap(), alice.unwrap());
        assert_eq!(
            status(&svc, req(Method::GET, Some(""), &[&anon])).await.0,
            StatusCode::OK
        );
        assert_eq!(
            status(&svc, req(Method::GET, Some("alice"), &[&anon]))
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(&svc, req(Method::GET, Some(""), &[&alice])).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            status(&svc, req(Method::GET, Some("alice"), &[&alice]))
                .await
                .0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn without_an_auth_context_or_with_two_session_headers_nothing_passes() {
        let seen = Arc::new(AtomicUsize::new(0));
        let svc = SessionBindingLayer::new(MemorySessionStore::new()).layer(mcp(seen.clone()));
        let (_, id) = status(&svc, req(Method::POST, Some("alice"), &[])).await;
        let id = id.unwrap();
        let before = seen.load(Ordering::SeqCst);
        let r = status(&svc, req(Method::POST, None, &[])).await;
        assert_eq!(r, (StatusCode::INTERNAL_SERVER_ERROR, None), "wiring bug");
        let r = status(&svc, req(Method::POST, Some("alice"), &[&id, "s-99"])).await;
        assert_eq!(r.0, StatusCode::BAD_REQUEST);
        let r = status(&svc, req(Method::POST, Some("bob"), &["s-99", &id])).await;
        assert_eq!(r.0, StatusCode::BAD_REQUEST);
        assert_eq!(seen.load(Ordering::SeqCst), before);
    }

    /// A store that cannot answer.
    struct Down;
    impl SessionStore for Down {
        async fn owner(&self, _: &SessionDigest) -> Result<Option<Owner>, StoreError> {
            Err(StoreError::unavailable("down"))
        }
        async fn bind(&self, _: &SessionDigest, _: &Owner) -> Result<Owner, StoreError> {
            Err(StoreError::unavailable("down"))
        }
        async fn unbind(&self, _: &SessionDigest, _: &Owner) -> Result<bool, StoreError> {
            Err(StoreError::unavailable("down"))
        }
    }

    #[tokio::test]
    async fn a_store_that_cannot_answer_fails_closed() {
        let seen = Arc::new(AtomicUsize::new(0));
        let svc = SessionBindingLayer::new(Down).layer(mcp(seen.clone()));
        // Use of a session: 503 before the service.
        let res = svc
            .clone()
            .oneshot(req(Method::GET, Some("alice"), &["s-1"]))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers()[RETRY_AFTER], "5");
        assert_eq!(seen.load(Ordering::SeqCst), 0);
        // Creation: the id is never handed out unbound.
        let r = status(&svc, req(Method::POST, Some("alice"), &[])).await;
        assert_eq!(r, (StatusCode::SERVICE_UNAVAILABLE, None));
    }
}
