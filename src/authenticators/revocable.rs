//! Revocation of self-contained tokens (JWTs): by token id (`jti`), and "everything issued to
//! this subject or client before T". Wrap any authenticator in [`Revocable`] to check a
//! [`RevocationList`] after it accepts a token.
//!
//! Entries expire with the tokens they revoke (a `jti` entry lives until the token's `exp`;
//! a subject or client entry lives as long as the longest token lifetime you give it), so the
//! list stays small. [`MemoryRevocationList`](crate::store::MemoryRevocationList) serves one
//! instance; a shared list (Redis) makes a revocation hold on every instance. When the list
//! cannot answer, requests get 503 (fail closed) unless [`Revocable::fail_open`] is set.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use mcp_auth::{store::{MemoryRevocationList, RevocationList, Principal}, authenticators::revocable::Revocable};
//! use mcp_auth::{AuthContext, AuthMethod, Authenticator, from_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let list = MemoryRevocationList::new();
//! let issued_at = SystemTime::now() - Duration::from_secs(60);
//! let inner = from_fn(move |_parts: &http::request::Parts| async move {
//!     let mut claims = serde_json::Map::new();
//!     claims.insert("iat".into(), issued_at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs().into());
//!     Ok(AuthContext::builder("alice", AuthMethod::Jwt).credential_id("jti-1").claims(claims).build())
//! });
//! let auth = Revocable::new(inner, list.clone());
//! let parts = http::Request::new(()).into_parts().0;
//! assert!(auth.authenticate(&parts).await.is_ok());
//!
//! // Log alice out everywhere: tokens issued before now are refused.
//! list.revoke_before(Principal::Subject { issuer: None, subject: "alice" }, SystemTime::now(), Duration::from_secs(3600))
//!     .await
//!     .unwrap();
//! assert_eq!(auth.authenticate(&parts).await.unwrap_err().reason(), "revoked");
//! # }
//! ```

use std::fmt;
use std::time::Duration;

use http::request::Parts;

use crate::auth_layer::Authenticator;
use crate::context::AuthContext;
use crate::error::AuthError;
use crate::rejection::Scheme;
use crate::store::{RevocationList, TokenFacts};

/// An authenticator whose accepted tokens are checked against a [`RevocationList`].
#[derive(Clone)]
pub struct Revocable<A, L> {
    inner: A,
    list: L,
    fail_open: bool,
}

impl<A: fmt::Debug, L> fmt::Debug for Revocable<A, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revocable")
            .field("inner", &self.inner)
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

impl<A, L> Revocable<A, L> {
    /// Checks every context `inner` accepts against `list`.
    pub fn new(inner: A, list: L) -> Self {
        Self {
            inner,
            list,
            fail_open: false,
        }
    }

    /// Accept tokens (logging a warning) when the list cannot answer, instead of 503.
    #[must_use]
    pub fn fail_open(mut self) -> Self {
        self.fail_open = true;
        self
    }

    /// The list.
    pub fn list(&self) -> &L {
        &self.list
    }
}

impl<A: Authenticator, L: RevocationList> Authenticator for Revocable<A, L> {
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        let ctx = self.inner.authenticate(parts).await?;
        match self.list.revoked(&TokenFacts::of(&ctx)).await {
            Ok(false) => Ok(ctx),
            Ok(true) => Err(AuthError::revoked("the access token has been revoked")
                .with_detail("revocation_list")),
            Err(e) if self.fail_open => {
                let error = crate::telemetry::bounded_error(&e);
                tracing::warn!(target: crate::telemetry::REJECTION_TARGET, error = error.as_str(), "revocation list unavailable; accepting (fail open)");
                Ok(ctx)
            }
            Err(e) => Err(AuthError::unavailable(e).with_retry_after(Duration::from_secs(5))),
        }
    }

    fn schemes(&self) -> Vec<Scheme> {
        self.inner.schemes()
    }
}
