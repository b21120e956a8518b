//! [`TokenSource`], [`Credential`], [`StaticCredential`], and the passthrough guard.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use subtle::ConstantTimeEq;

use super::error::OutboundError;
use super::inbound::Caller;
use crate::secret::{Secret, digest};

/// Log target of outbound credential events (refused passthrough, refreshes that failed).
pub const OUTBOUND_TARGET: &str = "mcp_auth::outbound";

/// The future of [`TokenSource::credential`].
pub type CredentialFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Credential, OutboundError>> + Send + 'a>>;

/// Where the credential for an upstream comes from: a static key, client credentials, a
/// refresh token, a token exchanged for the caller's.
///
/// Object-safe (a table of upstreams holds `Arc<dyn TokenSource>`). An implementation answers
/// from its cache when it can and refreshes single-flight when it cannot.
pub trait TokenSource: Send + Sync + 'static {
    /// The credential to send upstream for `caller`.
    fn credential<'a>(&'a self, caller: &'a Caller) -> CredentialFuture<'a>;

    /// The upstream refused `rejected` (401): forget it, so the next
    /// [`credential`](Self::credential) fetches a new one. The default does nothing (static
    /// credentials).
    fn invalidate(&self, caller: &Caller, rejected: &Credential) {
        let _ = (caller, rejected);
    }
}

impl<T: TokenSource + ?Sized> TokenSource for Arc<T> {
    fn credential<'a>(&'a self, caller: &'a Caller) -> CredentialFuture<'a> {
        (**self).credential(caller)
    }
    fn invalidate(&self, caller: &Caller, rejected: &Credential) {
        (**self).invalidate(caller, rejected);
    }
}

/// A credential for one outbound request: a header and its secret value. Cheap to clone
/// (shared); `Debug` shows the header name only.
#[derive(Clone)]
pub struct Credential(Arc<Inner>);

struct Inner {
    name: HeaderName,
    /// The whole header value (`Bearer <token>` for bearer tokens).
    value: Secret,
    /// SHA-256 of the token itself, for the passthrough guard and invalidation.
    digest: [u8; 32],
    /// Where the token starts in `value` (after `Bearer `).
    start: usize,
}

impl Credential {
    /// `Authorization: Bearer <token>`.
    #[must_use]
    pub fn bearer(token: &Secret) -> Self {
        let mut value = String::with_capacity(token.len().saturating_add(7));
        value.push_str("Bearer ");
        value.push_str(token.expose());
        Self(Arc::new(Inner {
            name: http::header::AUTHORIZATION,
            value: Secret::new(value),
            digest: digest(token.expose().as_bytes()),
            start: 7,
        }))
    }

    /// A header carrying `value` as is (`X-Api-Key: …`).
    #[must_use]
    pub fn header(name: HeaderName, value: Secret) -> Self {
        let digest = digest(value.expose().as_bytes());
        Self(Arc::new(Inner {
            name,
            value,
            digest,
            start: 0,
        }))
    }

    /// The header's name.
    #[must_use]
    pub fn name(&self) -> &HeaderName {
        &self.0.name
    }

    /// The header's value, marked sensitive (HTTP/2 never indexes it; `Debug` hides it).
    ///
    /// # Errors
    ///
    /// [`OutboundError::BadAnswer`] when the value cannot be a header value.
    pub fn header_value(&self) -> Result<HeaderValue, OutboundError> {
        let mut value = HeaderValue::from_str(self.0.value.expose())
            .map_err(|_| OutboundError::BadAnswer("the credential is not a valid header value"))?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// The token itself (the header value without its `Bearer ` scheme), for a token request
    /// that presents it (an actor token).
    pub(crate) fn token(&self) -> &str {
        self.0
            .value
            .expose()
            .get(self.0.start..)
            .unwrap_or_default()
    }

    /// Whether two credentials carry the same token (digests, constant time).
    #[must_use]
    pub fn same_token(&self, other: &Self) -> bool {
        self.0.digest.ct_eq(&other.0.digest).into()
    }

    /// The passthrough guard: `Err(Passthrough)` (logged, without any value) when this
    /// credential is the caller's own inbound token, or a header value ending in it.
    ///
    /// # Errors
    ///
    /// [`OutboundError::Passthrough`].
    pub fn check_not_inbound(&self, caller: &Caller) -> Result<(), OutboundError> {
        let Some(inbound) = caller.inbound_token() else {
            return Ok(());
        };
        let value = self.0.value.expose();
        let tail = value.rsplit_once(' ').map(|(_, t)| t);
        let same = inbound.matches_digest(&self.0.digest)
            | inbound.matches(value)
            | tail.is_some_and(|t| inbound.matches(t));
        if same {
            tracing::error!(
                target: OUTBOUND_TARGET,
                principal = caller.principal().unwrap_or("-"),
                header = %self.0.name,
                "refused to send the caller's inbound token upstream (token passthrough)"
            );
            return Err(OutboundError::Passthrough);
        }
        Ok(())
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credential")
            .field("header", &self.0.name)
            .field("value", &"[REDACTED]")
            .finish()
    }
}

/// A credential from configuration: an API key in a header, or a bearer token. Always the
/// same, whoever the caller.
///
/// ```
/// use mcp_auth::Secret;
/// use mcp_auth::outbound::{Caller, StaticCredential, TokenSource};
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let source = StaticCredential::header("x-api-key", Secret::new("k_123")).unwrap();
/// let cred = source.credential(&Caller::service()).await.unwrap();
/// assert_eq!(cred.name(), "x-api-key");
/// assert_eq!(cred.header_value().unwrap(), "k_123");
/// assert!(!format!("{source:?}{cred:?}").contains("k_123"));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct StaticCredential(Credential);

impl StaticCredential {
    /// `Authorization: Bearer <token>`.
    #[must_use]
    pub fn bearer(token: Secret) -> Self {
        Self(Credential::bearer(&token))
    }

    /// `<name>: <value>`.
    ///
    /// # Errors
    ///
    /// [`ConfigError`](crate::ConfigError) when `name` is not a header name or `value` not a
    /// header value.
    pub fn header(name: &str, value: Secret) -> Result<Self, crate::error::ConfigError> {
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            crate::error::ConfigError::new("outbound header", "not a valid header name")
        })?;
        let cred = Credential::header(header, value);
        cred.header_value().map_err(|_| {
            crate::error::ConfigError::new(
                "outbound header",
                "the value is not a valid header value",
            )
        })?;
        Ok(Self(cred))
    }
}

impl TokenSource for StaticCredential {
    fn credential<'a>(&'a self, _caller: &'a Caller) -> CredentialFuture<'a> {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }
}
