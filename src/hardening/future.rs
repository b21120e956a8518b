//! What the guard services ([`HttpsOnly`](super::HttpsOnly),
//! [`ValidateOrigin`](super::ValidateOrigin)) share: the [`Refusal`] a check answers, and
//! their [`ResponseFuture`].

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;

use crate::body::AuthBody;

/// A guard's answer to a request it refuses: a JSON error with this status, code and
/// description ([`json_error`](crate::rejection::json_error)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Refusal {
    status: StatusCode,
    code: &'static str,
    description: &'static str,
}

impl Refusal {
    /// 403 with `code` and `description`.
    pub(super) const fn forbidden(code: &'static str, description: &'static str) -> Self {
        Self {
            status: StatusCode::FORBIDDEN,
            code,
            description,
        }
    }

    /// The status it answers with.
    #[cfg(test)]
    pub(super) fn status(&self) -> StatusCode {
        self.status
    }

    fn response(self) -> Response<Bytes> {
        crate::rejection::json_error(self.status, self.code, self.description)
    }
}

pin_project! {
    /// The response future of the guard services ([`HttpsOnly`](super::HttpsOnly),
    /// [`ValidateOrigin`](super::ValidateOrigin)): the inner service's future, or a refusal
    /// that is ready at once.
    ///
    /// Polled again after it completed (which the [`Future`] contract leaves to the
    /// implementation), a refusal answers the same refusal again, and the inner service's
    /// future does whatever that future does. It never panics and never hangs by itself.
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Inner {
            #[pin]
            future: F,
        },
        Refused {
            refusal: Refusal,
            // The request announced a body, which a refusal leaves unread.
            close: bool,
        },
    }
}

impl<F> ResponseFuture<F> {
    /// The inner service's answer.
    pub(super) fn inner(future: F) -> Self {
        Self {
            kind: Kind::Inner { future },
        }
    }

    /// Refuses `req` (logged as refused with the refusal's code), without the inner service.
    pub(super) fn refused<B>(req: &Request<B>, refusal: Refusal) -> Self {
        crate::telemetry::refused(req, refusal.code);
        let close = crate::body::announces_body(req.headers());
        Self {
            kind: Kind::Refused { refusal, close },
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<AuthBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Inner { future } => future
                .poll(cx)
                .map(|r| r.map(|res| res.map(AuthBody::inner))),
            KindProj::Refused { refusal, close } => {
                let mut res = refusal.response();
                if *close {
                    res.headers_mut().insert(
                        http::header::CONNECTION,
                        http::HeaderValue::from_static("close"),
                    );
                }
                Poll::Ready(Ok(res.map(AuthBody::rejection)))
            }
        }
    }
}

/// Implements `Layer` for a guard layer `$layer` (its `settings: Arc<_>` shared with every
/// service it builds) and `Service` for its service `$service<S>` (`inner`, `settings`), whose
/// settings answer `check(&Request<B>) -> Option<Refusal>` (`None`: the request passes): the
/// check runs before the inner service, which a refused request never reaches.
macro_rules! guard_service {
    ($layer:ident => $service:ident) => {
        impl<S> tower_layer::Layer<S> for $layer {
            type Service = $service<S>;

            fn layer(&self, inner: S) -> Self::Service {
                $service {
                    inner,
                    settings: self.settings.clone(),
                }
            }
        }

        impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for $service<S>
        where
            S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
        {
            type Response = http::Response<crate::body::AuthBody<ResBody>>;
            type Error = S::Error;
            type Future = $crate::hardening::ResponseFuture<S::Future>;

            fn poll_ready(
                &mut self,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), S::Error>> {
                self.inner.poll_ready(cx)
            }

            fn call(&mut self, req: http::Request<ReqBody>) -> Self::Future {
                match self.settings.check(&req) {
                    None => $crate::hardening::ResponseFuture::inner(self.inner.call(req)),
                    Some(refusal) => $crate::hardening::ResponseFuture::refused(&req, refusal),
                }
            }
        }
    };
}

pub(super) use guard_service;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_polled_after_completion_answers_the_same_refusal_again() {
        let req = Request::get("/mcp").body(()).unwrap();
        let refusal =
            Refusal::forbidden("https_required", "this server accepts HTTPS requests only");
        let mut fut = std::pin::pin!(ResponseFuture::<
            std::future::Ready<Result<Response<()>, std::convert::Infallible>>,
        >::refused(&req, refusal));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        for _ in 0..2 {
            let Poll::Ready(Ok(res)) = fut.as_mut().poll(&mut cx) else {
                panic!("a refusal is ready at once, every time it is polled")
            };
            assert_eq!(res.status(), StatusCode::FORBIDDEN);
        }
    }

    #[test]
    fn the_inner_answer_passes_through() {
        let ok = std::future::ready(Ok::<_, std::convert::Infallible>(Response::new(())));
        let mut fut = std::pin::pin!(ResponseFuture::inner(ok));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(Ok(res)) = fut.as_mut().poll(&mut cx) else {
            panic!("ready")
        };
        assert_eq!(res.status(), StatusCode::OK);
    }
}
