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
//! Stores: [`MemorySessionStore`](crate::store::MemorySessionStore) (one process; bounded,
//! idle expiry) and, with feature `redis`,
//! [`RedisSessionStore`](crate::store::RedisSessionStore) (shared by every instance, so
//! sessions can move between instances that share rmcp's session state).
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
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::body::{AuthBody, BoxResponse, take_ready};
use crate::context::{Anonymous, AuthContext};
use crate::rejection::{json_error, store_unavailable};
use crate::request_info::only_value;
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

fn store_down(err: &StoreError) -> Response<Bytes> {
    tracing::warn!(target: crate::telemetry::REJECTION_TARGET, error = %err, "session store unavailable; refusing (fail closed)");
    store_unavailable("sessions are temporarily unavailable")
}

/// A refusal on its way out (boxed: it is the rare path).
type Refused = Box<Response<Bytes>>;

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
    type Future = BoxResponse<ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        Box::pin(bind_session(
            self.store.clone(),
            take_ready(&mut self.inner),
            req,
        ))
    }
}

/// One request through the binding (see the [module docs](self)): check the caller owns
/// the session it names, call the inner service, then unbind a deleted session or bind a
/// created one.
async fn bind_session<S, St, ReqBody, ResBody>(
    store: Arc<St>,
    mut inner: S,
    req: Request<ReqBody>,
) -> Result<Response<AuthBody<ResBody>>, S::Error>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    St: SessionStore,
{
    let refuse = |res: Refused| Ok(res.map(AuthBody::rejection));
    let (owner, session) = match caller_and_session(&req) {
        Ok(found) => found,
        Err(res) => return refuse(res),
    };
    if let Some(session) = &session {
        let found = store.owner(session).await;
        if let Err(res) = check_owner(found, session, &owner, &req) {
            return refuse(res);
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
    if let Some(created) = created
        && let Err(res) = bind_created(&*store, &created, &owner).await
    {
        return refuse(res);
    }
    Ok(res.map(AuthBody::inner))
}

/// The caller's [`Owner`] and the session the request names; refused (500) without a caller,
/// (400) with more than one `Mcp-Session-Id`.
fn caller_and_session<B>(req: &Request<B>) -> Result<(Owner, Option<SessionDigest>), Refused> {
    let owner = match req.extensions().get::<AuthContext>() {
        Some(ctx) => Owner::of(ctx.principal()),
        None if req.extensions().get::<Anonymous>().is_some() => Owner::anonymous(),
        None => {
            tracing::error!(target: crate::telemetry::REJECTION_TARGET, reason = "server_error", "SessionBindingLayer found no AuthContext: install it inside an mcp-auth layer");
            return Err(Box::new(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "SessionBindingLayer found no AuthContext: install it inside an mcp-auth layer",
            )));
        }
    };
    let Ok(session) = only_value(req.headers(), SESSION_HEADER) else {
        tracing::debug!(target: crate::telemetry::REJECTION_TARGET, reason = "invalid_request", "more than one Mcp-Session-Id header");
        return Err(Box::new(json_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "more than one Mcp-Session-Id header",
        )));
    };
    let session = session.map(|v| SessionDigest::of(v.as_bytes()));
    Ok((owner, session))
}

/// Passes when the store `found` `session` bound to `owner`; a foreign or unknown session is
/// refused with rmcp's 404, a store that could not answer with 503.
fn check_owner<B>(
    found: Result<Option<Owner>, StoreError>,
    session: &SessionDigest,
    owner: &Owner,
    req: &Request<B>,
) -> Result<(), Refused> {
    match found {
        Ok(Some(o)) if o == *owner => Ok(()),
        Ok(found) => {
            let reason = if found.is_some() {
                "foreign_session"
            } else {
                "unknown_session"
            };
            tracing::debug!(target: crate::telemetry::REJECTION_TARGET, reason, session = %session.short(), "session refused (404)");
            crate::telemetry::refused(req, reason);
            Err(Box::new(not_found()))
        }
        Err(e) => Err(Box::new(store_down(&e))),
    }
}

/// Binds the session the inner service just created to `owner`, before its id leaves.
async fn bind_created<St: SessionStore>(
    store: &St,
    created: &SessionDigest,
    owner: &Owner,
) -> Result<(), Refused> {
    match store.bind(created, owner).await {
        Ok(o) if o == *owner => {
            tracing::debug!(session = %created.short(), "session bound to its creator");
            Ok(())
        }
        Ok(_) => {
            // Another principal's session already has this id: never hand it over.
            tracing::error!(target: crate::telemetry::REJECTION_TARGET, session = %created.short(), "a new session id is already bound to another principal; refusing");
            Err(Box::new(json_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                "the session could not be created",
            )))
        }
        Err(e) => Err(Box::new(store_down(&e))),
    }
}

#[cfg(test)]
mod tests;
