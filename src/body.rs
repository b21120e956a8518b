//! [`AuthBody`]: the response body of the auth layers — the inner service's body, or a
//! rejection's small JSON body.
//!
//! Why every layer wraps the body, and why the wrappers stack, is told on [`AuthBody`]
//! (users see only that item: this module is private).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

pin_project! {
    /// Either the inner service's response body or the bytes of a rejection.
    ///
    /// Implements [`http_body::Body`] with the inner body's error type, so it works with
    /// axum, hyper and rmcp's `StreamableHttpService` without conversion. Inner bodies pass
    /// through untouched (streams stay streams).
    ///
    /// # Why every layer wraps the body, and why the wrappers stack
    ///
    /// A layer that refuses a request answers with its own small JSON body (`{"error": …,
    /// "error_description": …}`, or what a [`RejectionResponse`](crate::RejectionResponse)
    /// builds), and that answer must have the same type as the inner service's responses,
    /// whatever body type the inner service uses (axum's `Body`, rmcp's boxed body, a
    /// `String`, a stream). The layers therefore answer `Response<AuthBody<B>>`: the inner body
    /// `B` untouched, or the refusal's bytes. This is a deliberate choice over tower-http's
    /// convention of requiring `B: Default` and refusing with an empty body: clients get the
    /// error in the body as well as in `WWW-Authenticate`, and no bound on `B` is needed.
    ///
    /// Each layer wraps what it is given, so the wrappers stack: under an
    /// [`AuthLayer`](crate::AuthLayer) and a [`ScopeLayer`](crate::ScopeLayer) the response
    /// body is `AuthBody<AuthBody<B>>`, one level per layer. That is by design too: a layer's
    /// own refusal must fit *any* inner body type, so it cannot know (or use) that its inner
    /// body is already an `AuthBody`, and merging the levels would need specialization. The
    /// cost is one enum match per frame per level; inner bodies still stream, and `size_hint`
    /// and `is_end_stream` pass through, so a server sees the same bytes either way. Let the
    /// type be inferred from the layers rather than spelling it out, or box it
    /// (`http_body_util::BodyExt::boxed`) where one concrete type is needed.
    ///
    /// # Example
    ///
    /// ```
    /// use bytes::Bytes;
    /// use http_body_util::BodyExt;
    /// use mcp_auth::AuthBody;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // What an auth layer under a second layer answers: a refusal of the inner layer...
    /// let refusal = Bytes::from_static(br#"{"error":"invalid_token"}"#);
    /// let inner: AuthBody<String> = AuthBody::rejection(refusal);
    /// // ...passed through the outer one untouched.
    /// let stacked: AuthBody<AuthBody<String>> = AuthBody::inner(inner);
    /// let bytes = stacked.collect().await.unwrap().to_bytes();
    /// assert_eq!(bytes, r#"{"error":"invalid_token"}"#);
    ///
    /// // The inner service's own body streams through both levels.
    /// let passed = AuthBody::inner(AuthBody::inner(String::from("hello")));
    /// assert_eq!(passed.collect().await.unwrap().to_bytes(), "hello");
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct AuthBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    #[derive(Debug)]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Rejection { bytes: Option<Bytes> },
    }
}

/// The response future of the layers that await something before or after the inner service
/// (reading the body, a store): boxed, answering with the inner body or a refusal.
pub(crate) type BoxResponse<B, E> =
    Pin<Box<dyn std::future::Future<Output = Result<http::Response<AuthBody<B>>, E>> + Send>>;

/// Takes the service `poll_ready` made ready, leaving a clone in its place: the instance that
/// was readied is the one that serves the call (tower's clone-and-swap).
pub(crate) fn take_ready<S: Clone>(slot: &mut S) -> S {
    let clone = slot.clone();
    std::mem::replace(slot, clone)
}

/// Marks a refusal `Connection: close` when `request` announced a body (a non-zero
/// `Content-Length`, or `Transfer-Encoding`). A refusal sent before the body was read leaves
/// the rest of it on the connection, which the server then closes (RFC 9112 §9.6); saying so
/// keeps a client from sending its next request on a connection that is about to close.
pub(crate) fn close_if_body_unread<B>(request: &http::HeaderMap, res: &mut http::Response<B>) {
    if announces_body(request) {
        res.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
}

/// Whether request headers announce a body: a non-zero `Content-Length`, or
/// `Transfer-Encoding`.
pub(crate) fn announces_body(request: &http::HeaderMap) -> bool {
    request.contains_key(http::header::TRANSFER_ENCODING)
        || request
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

impl<B> AuthBody<B> {
    /// Wraps the inner body.
    pub fn inner(body: B) -> Self {
        Self {
            kind: Kind::Inner { body },
        }
    }

    /// A body of fixed bytes.
    pub fn rejection(bytes: Bytes) -> Self {
        Self {
            kind: Kind::Rejection {
                bytes: (!bytes.is_empty()).then_some(bytes),
            },
        }
    }
}

impl<B: Default> Default for AuthBody<B> {
    fn default() -> Self {
        Self::inner(B::default())
    }
}

impl<B> Body for AuthBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Rejection { bytes } => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Rejection { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Rejection { bytes } => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}
