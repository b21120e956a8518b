//! The response future of [`RequireAuth`](crate::RequireAuth).
//!
//! A synchronous authenticator decides inside `call`, so the future is either the inner
//! service's future or a ready rejection; an asynchronous one is polled first, then the inner
//! service that was made ready is called.
//!
//! # Example
//!
//! ```
//! use mcp_auth::future::ResponseFuture;
//! use mcp_auth::{AuthContext, AuthError, AuthLayer, AuthMethod, from_fn};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let auth = from_fn(|parts: &http::request::Parts| {
//!     let ok = parts.headers.contains_key("x-trusted");
//!     async move {
//!         if ok { Ok(AuthContext::builder("svc", AuthMethod::Custom("mtls".into())).build()) }
//!         else { Err(AuthError::missing_credentials()) }
//!     }
//! });
//! let mut svc = AuthLayer::new(auth).layer(service_fn(|_req: http::Request<String>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! }));
//! let req = http::Request::builder().header("x-trusted", "1").body(String::new()).unwrap();
//! // An asynchronous authenticator: the future first waits for it, then calls the inner service.
//! let fut: ResponseFuture<_, _, _, _> = svc.ready().await.unwrap().call(req);
//! assert_eq!(fut.await.unwrap().status(), 200);
//!
//! // No `x-trusted` header: the same future answers the refusal, the inner service is not called.
//! let fut = svc.ready().await.unwrap().call(http::Request::new(String::new()));
//! assert_eq!(fut.await.unwrap().status(), 401);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{Authenticator, Gate};
use crate::body::AuthBody;
use crate::context::AuthContext;
use crate::error::AuthError;
use crate::rejection::RejectionResponse;

type AuthFuture = Pin<Box<dyn Future<Output = (Result<AuthContext, AuthError>, Parts)> + Send>>;

pin_project! {
    /// Response future of [`RequireAuth`](crate::RequireAuth): waiting for an asynchronous
    /// authenticator, then the inner service; or a rejection ready to send.
    pub struct ResponseFuture<S, ReqBody, A, R>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, A, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, A, R>
    where
        S: Service<Request<ReqBody>>,
    {
        Authenticating {
            auth: AuthFuture,
            inner: Option<S>,
            body: Option<ReqBody>,
            shared: Arc<Gate<A, R>>,
        },
        Called {
            #[pin]
            fut: S::Future,
        },
        Rejected {
            response: Option<Response<Bytes>>,
        },
    }
}

impl<S, ReqBody, A, R> ResponseFuture<S, ReqBody, A, R>
where
    S: Service<Request<ReqBody>>,
{
    pub(crate) fn called(fut: S::Future) -> Self {
        Self {
            state: State::Called { fut },
        }
    }

    pub(crate) fn rejected(response: Response<Bytes>) -> Self {
        Self {
            state: State::Rejected {
                response: Some(response),
            },
        }
    }

    pub(crate) fn authenticating(
        auth: AuthFuture,
        inner: S,
        body: ReqBody,
        shared: Arc<Gate<A, R>>,
    ) -> Self {
        Self {
            state: State::Authenticating {
                auth,
                inner: Some(inner),
                body: Some(body),
                shared,
            },
        }
    }
}

impl<S, ReqBody, A, R> fmt::Debug for ResponseFuture<S, ReqBody, A, R>
where
    S: Service<Request<ReqBody>>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.state {
            State::Authenticating { .. } => "authenticating",
            State::Called { .. } => "called",
            State::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}

impl<S, ReqBody, ResBody, A, R> Future for ResponseFuture<S, ReqBody, A, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    A: Authenticator,
    R: RejectionResponse,
{
    type Output = Result<Response<AuthBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Called { fut } => {
                    let res = ready!(fut.poll(cx))?;
                    return Poll::Ready(Ok(res.map(AuthBody::inner)));
                }
                StateProj::Rejected { response } => {
                    // `None` only if polled again after completion (a caller bug): answer 500
                    // rather than panic.
                    let res = response.take().unwrap_or_else(polled_after_completion);
                    return Poll::Ready(Ok(res.map(AuthBody::rejection)));
                }
                StateProj::Authenticating {
                    auth,
                    inner,
                    body,
                    shared,
                } => {
                    let (result, mut parts) = ready!(auth.as_mut().poll(cx));
                    let next = match shared.decide(result, &mut parts) {
                        None => {
                            // Both are taken only here, and the state leaves `Authenticating`
                            // right after: `None` cannot happen; if it did, answer 500.
                            match (inner.take(), body.take()) {
                                (Some(mut inner), Some(body)) => State::Called {
                                    fut: inner.call(Request::from_parts(parts, body)),
                                },
                                _ => State::Rejected {
                                    response: Some(polled_after_completion()),
                                },
                            }
                        }
                        Some(rejection) => State::Rejected {
                            response: Some(rejection),
                        },
                    };
                    this.state.set(next);
                }
            }
        }
    }
}

/// The answer of a future polled again after it completed: 500, empty body.
fn polled_after_completion() -> Response<Bytes> {
    let mut res = Response::new(Bytes::new());
    *res.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
    res
}

#[cfg(test)]
mod tests {
    use tower::{Layer, service_fn};

    use super::*;
    use crate::{AuthLayer, from_fn};

    #[test]
    fn polled_again_after_completion_answers_500_instead_of_panicking() {
        // Review L2: this was an `expect` (and the authenticating path an `unreachable!`).
        let auth =
            from_fn(|_: &Parts| async { Err::<AuthContext, _>(AuthError::missing_credentials()) });
        let mut svc = AuthLayer::new(auth).layer(service_fn(|_req: Request<()>| async {
            Ok::<_, std::convert::Infallible>(Response::new(()))
        }));
        let fut = svc.call(Request::new(()));
        let mut fut = std::pin::pin!(fut);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let first = loop {
            if let Poll::Ready(r) = fut.as_mut().poll(&mut cx) {
                break r;
            }
        };
        assert_eq!(first.unwrap().status(), 401);
        let Poll::Ready(again) = fut.as_mut().poll(&mut cx) else {
            panic!("a completed future must not be pending");
        };
        assert_eq!(again.unwrap().status(), 500);
    }

    #[tokio::test]
    async fn debug_names_the_state_of_an_asynchronous_authentication() {
        let auth = from_fn(|parts: &Parts| {
            let ok = parts.headers.contains_key("x-trusted");
            async move {
                if ok {
                    Ok(
                        AuthContext::builder("svc", crate::AuthMethod::Custom("mtls".into()))
                            .build(),
                    )
                } else {
                    Err(AuthError::missing_credentials())
                }
            }
        });
        let mut svc = AuthLayer::new(auth).layer(service_fn(|_req: Request<String>| async {
            Ok::<_, std::convert::Infallible>(Response::new(String::new()))
        }));
        let req = Request::builder()
            .header("x-trusted", "1")
            .body(String::new())
            .unwrap();
        let fut = svc.call(req);
        assert!(format!("{fut:?}").contains("authenticating"));
        assert_eq!(fut.await.unwrap().status(), 200);
    }
}
