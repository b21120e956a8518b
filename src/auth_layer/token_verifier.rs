//! [`TokenVerifier`]: the part of a token authenticator that judges an access token already
//! taken from the request, so that a scheme other than `Bearer` (DPoP) can reuse it.

use std::future::Future;
use std::sync::Arc;

use http::request::Parts;

use super::authenticator::{Chain, is_missing};
use crate::context::AuthContext;
use crate::error::AuthError;

/// Verifies an access token whatever scheme carried it.
///
/// [`JwtAuthenticator`](crate::JwtAuthenticator) and
/// [`IntrospectionAuthenticator`](crate::IntrospectionAuthenticator) implement it; the DPoP
/// authenticator wraps any `TokenVerifier` (a [`Chain`] of them too: the first that
/// recognises the token decides). An implementation checks everything the token says about
/// itself (signature or introspection, expiry, issuer, audience) and a certificate binding
/// (`cnf.x5t#S256` against the request's
/// [`ClientCertificate`](crate::request_info::ClientCertificate)), and puts the token's `cnf`
/// into [`AuthContext::confirmation`]. It does **not** judge a DPoP key binding (`cnf.jkt`):
/// the caller, which knows the scheme and the proof, does.
///
/// Return [`AuthError::missing_credentials`] for a token this verifier does not handle (a
/// JWT verifier that defers opaque tokens): a chain then asks the next one.
///
/// ```
/// use http::request::Parts;
/// use mcp_auth::{AuthContext, AuthError, AuthMethod, TokenVerifier};
///
/// /// Accepts one fixed token (for illustration only: compare secrets in constant time).
/// struct Fixed;
///
/// impl TokenVerifier for Fixed {
///     async fn verify_token(&self, token: &str, _parts: &Parts) -> Result<AuthContext, AuthError> {
///         if token == "let-me-in" {
///             Ok(AuthContext::builder("alice", AuthMethod::Custom("fixed".into())).build())
///         } else {
///             Err(AuthError::invalid_token("unknown token"))
///         }
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let parts = http::Request::new(()).into_parts().0;
/// assert_eq!(Fixed.verify_token("let-me-in", &parts).await.unwrap().subject(), "alice");
/// assert!(Fixed.verify_token("nope", &parts).await.is_err());
/// # }
/// ```
pub trait TokenVerifier: Send + Sync + 'static {
    /// Verifies `token`, which arrived in the request `parts`.
    fn verify_token(
        &self,
        token: &str,
        parts: &Parts,
    ) -> impl Future<Output = Result<AuthContext, AuthError>> + Send;

    /// Decides without waiting, if possible (`None`: call
    /// [`verify_token`](TokenVerifier::verify_token)). Must agree with it whenever it returns
    /// `Some`. The default is `None`.
    fn verify_token_now(
        &self,
        token: &str,
        parts: &Parts,
    ) -> Option<Result<AuthContext, AuthError>> {
        let _ = (token, parts);
        None
    }
}

impl<V: TokenVerifier + ?Sized> TokenVerifier for Arc<V> {
    fn verify_token(
        &self,
        token: &str,
        parts: &Parts,
    ) -> impl Future<Output = Result<AuthContext, AuthError>> + Send {
        (**self).verify_token(token, parts)
    }

    fn verify_token_now(
        &self,
        token: &str,
        parts: &Parts,
    ) -> Option<Result<AuthContext, AuthError>> {
        (**self).verify_token_now(token, parts)
    }
}

/// `None` handles no token.
impl<V: TokenVerifier> TokenVerifier for Option<V> {
    async fn verify_token(&self, token: &str, parts: &Parts) -> Result<AuthContext, AuthError> {
        match self {
            Some(v) => v.verify_token(token, parts).await,
            None => Err(AuthError::missing_credentials()),
        }
    }

    fn verify_token_now(
        &self,
        token: &str,
        parts: &Parts,
    ) -> Option<Result<AuthContext, AuthError>> {
        match self {
            Some(v) => v.verify_token_now(token, parts),
            None => Some(Err(AuthError::missing_credentials())),
        }
    }
}

/// The first verifier that handles the token decides.
impl<A: TokenVerifier, B: TokenVerifier> TokenVerifier for Chain<A, B> {
    async fn verify_token(&self, token: &str, parts: &Parts) -> Result<AuthContext, AuthError> {
        let first = self.first().verify_token(token, parts).await;
        if is_missing(&first) {
            self.second().verify_token(token, parts).await
        } else {
            first
        }
    }

    fn verify_token_now(
        &self,
        token: &str,
        parts: &Parts,
    ) -> Option<Result<AuthContext, AuthError>> {
        let first = self.first().verify_token_now(token, parts)?;
        if is_missing(&first) {
            self.second().verify_token_now(token, parts)
        } else {
            Some(first)
        }
    }
}
