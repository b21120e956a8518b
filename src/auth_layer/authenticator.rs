//! The [`Authenticator`] trait every layer is built on, and its combinators.
//!
//! An authenticator looks at the request head and yields an [`AuthContext`] or an
//! [`AuthError`]. Implement it with plain `async fn` syntax. If your check never needs to
//! wait (a lookup in memory), also implement [`Authenticator::authenticate_now`]: the layer
//! then decides without allocating a future.
//!
//! # Example
//!
//! ```
//! use http::request::Parts;
//! use mcp_auth::{AuthContext, AuthError, AuthLayer, AuthMethod, Authenticator};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! /// Accepts requests from one trusted internal header (e.g. set by a gateway).
//! struct GatewayUser;
//!
//! impl Authenticator for GatewayUser {
//!     async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
//!         let Some(user) = parts.headers.get("x-gateway-user") else {
//!             return Err(AuthError::missing_credentials());
//!         };
//!         let user = user.to_str().map_err(|_| AuthError::invalid_token("bad user header"))?;
//!         Ok(AuthContext::builder(user, AuthMethod::Custom("gateway".into())).build())
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let svc = ServiceBuilder::new()
//!     .layer(AuthLayer::new(GatewayUser))
//!     .service(service_fn(|req: http::Request<String>| async move {
//!         let ctx = req.extensions().get::<AuthContext>().unwrap();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(ctx.subject().to_owned()))
//!     }));
//!
//! let ok = http::Request::builder().header("x-gateway-user", "alice").body(String::new()).unwrap();
//! assert_eq!(svc.clone().oneshot(ok).await.unwrap().status(), 200);
//!
//! let anonymous = http::Request::new(String::new());
//! let res = svc.oneshot(anonymous).await.unwrap();
//! assert_eq!(res.status(), 401);
//! assert_eq!(res.headers()["www-authenticate"], "Bearer");
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;

use http::request::Parts;

use crate::context::AuthContext;
use crate::error::{AuthError, AuthErrorKind};
use crate::rejection::Scheme;

/// Decides who sent a request.
///
/// Return [`AuthError::missing_credentials`] when the request carries nothing this
/// authenticator understands: a [chain](Authenticator::or) then tries the next one, and an
/// [optional](crate::AuthLayer::optional) layer lets the request through without a context.
/// Any other rejection is final. Use [`AuthError::unavailable`] / [`AuthError::internal`]
/// for your own failures; they become 503 / 500, never 401.
pub trait Authenticator: Send + Sync + 'static {
    /// Authenticates the request head. The body is not available: authentication never
    /// reads it.
    fn authenticate(
        &self,
        parts: &Parts,
    ) -> impl Future<Output = Result<AuthContext, AuthError>> + Send;

    /// Decides without waiting, if possible. Return `None` when the decision needs
    /// [`authenticate`](Authenticator::authenticate) (I/O); the layer then boxes that future.
    /// The default is `None`. Must agree with `authenticate` whenever it returns `Some`.
    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        let _ = parts;
        None
    }

    /// The schemes this authenticator accepts, for `WWW-Authenticate` challenges. Default:
    /// `Bearer`.
    fn schemes(&self) -> Vec<Scheme> {
        vec![Scheme::bearer()]
    }

    /// A first-match chain: `self` decides when the request carries credentials it
    /// understands; otherwise `other` is asked. Credentials of the first are never combined
    /// with those of the second.
    fn or<B: Authenticator>(self, other: B) -> Chain<Self, B>
    where
        Self: Sized,
    {
        Chain {
            first: self,
            second: other,
        }
    }
}

impl<A: Authenticator + ?Sized> Authenticator for Arc<A> {
    fn authenticate(
        &self,
        parts: &Parts,
    ) -> impl Future<Output = Result<AuthContext, AuthError>> + Send {
        (**self).authenticate(parts)
    }

    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        (**self).authenticate_now(parts)
    }

    fn schemes(&self) -> Vec<Scheme> {
        (**self).schemes()
    }
}

/// `None` accepts nothing and offers no scheme: every request counts as carrying no
/// credentials for it. Handy in a chain whose members are configured at run time
/// (`Chain::new(Some(api_keys), None::<BearerAuthenticator>)`; note that `Option::or` shadows
/// [`Authenticator::or`] on options, so use [`Chain::new`] there).
impl<A: Authenticator> Authenticator for Option<A> {
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        match self {
            Some(a) => a.authenticate(parts).await,
            None => Err(AuthError::missing_credentials()),
        }
    }

    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        match self {
            Some(a) => a.authenticate_now(parts),
            None => Some(Err(AuthError::missing_credentials())),
        }
    }

    fn schemes(&self) -> Vec<Scheme> {
        self.as_ref()
            .map(Authenticator::schemes)
            .unwrap_or_default()
    }
}

/// Two authenticators tried in order; see [`Authenticator::or`].
#[derive(Debug, Clone)]
pub struct Chain<A, B> {
    first: A,
    second: B,
}

impl<A, B> Chain<A, B> {
    /// `first`, then `second` when `first` finds no credentials it understands.
    pub const fn new(first: A, second: B) -> Self {
        Self { first, second }
    }

    pub(super) fn first(&self) -> &A {
        &self.first
    }

    pub(super) fn second(&self) -> &B {
        &self.second
    }
}

pub(super) fn is_missing(r: &Result<AuthContext, AuthError>) -> bool {
    matches!(r, Err(e) if e.kind() == AuthErrorKind::MissingCredentials)
}

impl<A: Authenticator, B: Authenticator> Authenticator for Chain<A, B> {
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        let first = self.first.authenticate(parts).await;
        if is_missing(&first) {
            self.second.authenticate(parts).await
        } else {
            first
        }
    }

    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        let first = self.first.authenticate_now(parts)?;
        if is_missing(&first) {
            self.second.authenticate_now(parts)
        } else {
            Some(first)
        }
    }

    fn schemes(&self) -> Vec<Scheme> {
        let mut s = self.first.schemes();
        s.extend(self.second.schemes());
        s
    }
}

/// An authenticator from an async function; see [`from_fn`].
#[derive(Clone)]
pub struct FnAuthenticator<F> {
    f: F,
    schemes: Vec<Scheme>,
}

impl<F> std::fmt::Debug for FnAuthenticator<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FnAuthenticator")
            .field("f", &format_args!("<fn>"))
            .field("schemes", &self.schemes)
            .finish()
    }
}

impl<F> FnAuthenticator<F> {
    /// Replaces the challenge schemes (default: `Bearer`).
    #[must_use]
    pub fn with_schemes(mut self, schemes: Vec<Scheme>) -> Self {
        self.schemes = schemes;
        self
    }
}

/// Builds an authenticator from `f(&Parts) -> impl Future<Output = Result<AuthContext,
/// AuthError>>`. The future may not borrow the parts: copy what it needs.
///
/// ```
/// use mcp_auth::{AuthContext, AuthError, AuthMethod, from_fn};
///
/// let auth = from_fn(|parts: &http::request::Parts| {
///     let peer_is_local = parts.headers.get("x-local").is_some();
///     async move {
///         if peer_is_local {
///             Ok(AuthContext::builder("local", AuthMethod::Custom("local".into())).build())
///         } else {
///             Err(AuthError::missing_credentials())
///         }
///     }
/// });
/// # let _ = mcp_auth::AuthLayer::new(auth);
/// ```
pub fn from_fn<F, Fut>(f: F) -> FnAuthenticator<F>
where
    F: Fn(&Parts) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AuthContext, AuthError>> + Send + 'static,
{
    FnAuthenticator {
        f,
        schemes: vec![Scheme::bearer()],
    }
}

impl<F, Fut> Authenticator for FnAuthenticator<F>
where
    F: Fn(&Parts) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<AuthContext, AuthError>> + Send + 'static,
{
    fn authenticate(
        &self,
        parts: &Parts,
    ) -> impl Future<Output = Result<AuthContext, AuthError>> + Send {
        (self.f)(parts)
    }

    fn schemes(&self) -> Vec<Scheme> {
        self.schemes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::AuthMethod;

    struct Fixed(Result<AuthContext, AuthError>, bool);

    impl Authenticator for Fixed {
        async fn authenticate(&self, _: &Parts) -> Result<AuthContext, AuthError> {
            self.0.clone()
        }
        fn authenticate_now(&self, _: &Parts) -> Option<Result<AuthContext, AuthError>> {
            self.1.then(|| self.0.clone())
        }
    }

    fn ok(name: &str) -> Result<AuthContext, AuthError> {
        Ok(AuthContext::builder(name, AuthMethod::Bearer).build())
    }

    fn parts() -> Parts {
        http::Request::new(()).into_parts().0
    }

    #[tokio::test]
    async fn chain_falls_through_only_on_missing_credentials() {
        let chain = Fixed(Err(AuthError::missing_credentials()), true).or(Fixed(ok("b"), true));
        assert_eq!(chain.authenticate(&parts()).await.unwrap().subject(), "b");
        assert_eq!(
            chain.authenticate_now(&parts()).unwrap().unwrap().subject(),
            "b"
        );
    }

    #[tokio::test]
    async fn chain_stops_at_an_invalid_credential() {
        let chain = Fixed(Err(AuthError::invalid_token("x")), true).or(Fixed(ok("b"), true));
        let err = chain.authenticate(&parts()).await.unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::InvalidToken);
    }

    #[tokio::test]
    async fn chain_is_async_when_a_consulted_member_is_async() {
        let chain = Fixed(Err(AuthError::missing_credentials()), true).or(Fixed(ok("b"), false));
        assert!(chain.authenticate_now(&parts()).is_none());
        assert_eq!(chain.authenticate(&parts()).await.unwrap().subject(), "b");
        let decided_first = Fixed(ok("a"), true).or(Fixed(ok("b"), false));
        assert_eq!(
            decided_first
                .authenticate_now(&parts())
                .unwrap()
                .unwrap()
                .subject(),
            "a"
        );
    }

    #[test]
    fn chain_offers_the_schemes_of_both() {
        let key = http::HeaderName::from_static("x-api-key");
        let a = from_fn(|_: &Parts| async { Err(AuthError::missing_credentials()) })
            .with_schemes(vec![Scheme::api_key(&key)]);
        let b = from_fn(|_: &Parts| async { Err(AuthError::missing_credentials()) });
        let names: Vec<_> = a
            .or(b)
            .schemes()
            .iter()
            .map(|s| s.name().to_owned())
            .collect();
        assert_eq!(names, ["ApiKey", "Bearer"]);
    }
}
