//! Keeping the caller's inbound token for token exchange only: [`InboundToken`],
//! [`KeepInboundTokenLayer`], and the [`Caller`] an outbound request is made for.

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::Request;
use http::header::AUTHORIZATION;
use subtle::ConstantTimeEq;
use tower_layer::Layer;
use tower_service::Service;

use crate::context::AuthContext;
use crate::secret::{Secret, digest};

/// The caller's inbound access token, kept only to be exchanged (RFC 8693) or asserted
/// (on-behalf-of) at the authorization server — never to be sent to an upstream.
///
/// `Debug` prints `InboundToken([REDACTED])`; the value is wiped on drop (it is a [`Secret`]);
/// clones share one allocation. Read it only through a token source.
#[derive(Clone)]
pub struct InboundToken(Arc<Kept>);

struct Kept {
    token: Secret,
    digest: [u8; 32],
}

impl InboundToken {
    /// Keeps `token` (the access token the caller presented).
    #[must_use]
    pub fn new(token: Secret) -> Self {
        let digest = digest(token.expose().as_bytes());
        Self(Arc::new(Kept { token, digest }))
    }

    /// The token, for the token request that exchanges it.
    pub(crate) fn secret(&self) -> &Secret {
        &self.0.token
    }

    /// Whether the SHA-256 digest `other` is this token's (constant time).
    pub(crate) fn matches_digest(&self, other: &[u8; 32]) -> bool {
        other.ct_eq(&self.0.digest).into()
    }

    /// Whether `value` is this token (SHA-256 digests compared in constant time).
    #[must_use]
    pub fn matches(&self, value: &str) -> bool {
        digest(value.as_bytes()).ct_eq(&self.0.digest).into()
    }
}

impl fmt::Debug for InboundToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InboundToken([REDACTED])")
    }
}

/// A layer, placed *inside* an auth layer, that keeps the access token of an authenticated
/// request (`Authorization: Bearer …` or `DPoP …`) as an [`InboundToken`] in the request
/// extensions, for token exchange. Without it (the default) the inbound token is not kept
/// anywhere after authentication.
///
/// Requests without an [`AuthContext`] (anonymous in optional mode, or no auth layer in front)
/// get nothing.
///
/// ```
/// use mcp_auth::outbound::{InboundToken, KeepInboundTokenLayer};
/// use mcp_auth::{AuthContext, AuthMethod};
/// use tower::{ServiceBuilder, ServiceExt};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let svc = ServiceBuilder::new().layer(KeepInboundTokenLayer::new()).service_fn(
///     |req: http::Request<()>| async move {
///         let kept = req.extensions().get::<InboundToken>().cloned();
///         Ok::<_, std::convert::Infallible>(kept.map(|t| t.matches("tok_abc")))
///     },
/// );
/// let mut req = http::Request::builder()
///     .header("authorization", "Bearer tok_abc")
///     .body(())
///     .unwrap();
/// req.extensions_mut().insert(AuthContext::builder("alice", AuthMethod::Bearer).build());
/// assert_eq!(svc.oneshot(req).await.unwrap(), Some(true));
/// # });
/// ```
#[derive(Debug, Clone, Copy)]
pub struct KeepInboundTokenLayer {
    keep: bool,
}

impl Default for KeepInboundTokenLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl KeepInboundTokenLayer {
    /// The layer.
    #[must_use]
    pub fn new() -> Self {
        Self { keep: true }
    }

    /// The layer when `keep` (token exchange is configured), a pass-through otherwise: one
    /// service type either way.
    #[must_use]
    pub fn when(keep: bool) -> Self {
        Self { keep }
    }
}

impl<S> Layer<S> for KeepInboundTokenLayer {
    type Service = KeepInboundToken<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KeepInboundToken {
            inner,
            keep: self.keep,
        }
    }
}

/// The service of [`KeepInboundTokenLayer`].
#[derive(Debug, Clone)]
pub struct KeepInboundToken<S> {
    inner: S,
    keep: bool,
}

impl<S, B> Service<Request<B>> for KeepInboundToken<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        if self.keep
            && req.extensions().get::<AuthContext>().is_some()
            && let Some(token) = presented_token(req.headers())
        {
            req.extensions_mut().insert(InboundToken::new(token));
        }
        self.inner.call(req)
    }
}

/// The one `Authorization: Bearer|DPoP <token>` of a request.
fn presented_token(headers: &http::HeaderMap) -> Option<Secret> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    ((scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("dpop"))
        && !token.is_empty())
    .then(|| Secret::new(token))
}

/// Whom an outbound request is made for: the caller's principal (the cache key of exchanged
/// tokens), its inbound token when kept, and when the caller's authentication expires.
///
/// [`Caller::service`] is the server itself (static keys and client credentials do not
/// depend on the caller). Put a `Caller` in an outbound request's extensions for
/// [`OutboundLayer`](super::OutboundLayer), or pass it to
/// [`OutboundClient::send`](super::OutboundClient::send).
#[derive(Clone, Default)]
pub struct Caller {
    principal: Option<Arc<str>>,
    token: Option<InboundToken>,
    expires_at: Option<SystemTime>,
}

impl Caller {
    /// The server acting for itself: no principal, no inbound token.
    #[must_use]
    pub fn service() -> Self {
        Self::default()
    }

    /// The authenticated caller `ctx`, with its inbound token when kept.
    #[must_use]
    pub fn new(ctx: &AuthContext, token: Option<&InboundToken>) -> Self {
        Self {
            principal: Some(Arc::from(ctx.principal())),
            token: token.cloned(),
            expires_at: ctx.expires_at(),
        }
    }

    /// The caller of an inbound request, read from its extensions (the [`AuthContext`] and the
    /// [`InboundToken`] the auth layer and [`KeepInboundTokenLayer`] put there);
    /// [`Caller::service`] without an `AuthContext`.
    #[must_use]
    pub fn from_extensions(extensions: &http::Extensions) -> Self {
        extensions
            .get::<AuthContext>()
            .map_or_else(Self::service, |ctx| {
                Self::new(ctx, extensions.get::<InboundToken>())
            })
    }

    /// The caller's principal (`None` for the server itself).
    #[must_use]
    pub fn principal(&self) -> Option<&str> {
        self.principal.as_deref()
    }

    /// The caller's inbound token, when kept.
    #[must_use]
    pub fn inbound_token(&self) -> Option<&InboundToken> {
        self.token.as_ref()
    }

    /// When the caller's authentication expires, when known.
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("principal", &self.principal)
            .field("inbound_token", &self.token.as_ref().map(|_| "[REDACTED]"))
            .field("expires_at", &self.expires_at)
            .finish()
    }
}
