//! [`Confirmation`]: what a sender-constrained access token is bound to (RFC 7800 `cnf`).

use std::fmt;
use std::sync::Arc;

/// The key or certificate an access token is bound to, from its `cnf` claim (RFC 7800), or
/// from the `cnf` member of an introspection answer.
///
/// - `jkt` (RFC 9449 §6): the RFC 7638 SHA-256 thumbprint of the DPoP key. The token is
///   accepted only with a DPoP proof signed by that key, never as a plain bearer token.
/// - `x5t#S256` (RFC 8705 §3.1): the SHA-256 thumbprint of the client certificate. The token is
///   accepted only over a connection that presented that certificate.
///
/// An unbound token has neither. Authenticators fill this in; the checks that enforce it live
/// with the authenticators (`authenticators::dpop`, and the certificate check every token
/// authenticator makes).
///
/// ```
/// use mcp_auth::Confirmation;
///
/// let cnf = Confirmation::default().with_jkt("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I");
/// assert!(cnf.is_bound());
/// assert_eq!(cnf.jkt(), Some("0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"));
/// assert_eq!(cnf.x5t_s256(), None);
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Confirmation {
    jkt: Option<Arc<str>>,
    x5t_s256: Option<Arc<str>>,
}

impl Confirmation {
    /// Binds to the DPoP key with this RFC 7638 thumbprint (`cnf.jkt`).
    #[must_use]
    pub fn with_jkt(mut self, jkt: impl Into<Arc<str>>) -> Self {
        self.jkt = Some(jkt.into());
        self
    }

    /// Binds to the client certificate with this SHA-256 thumbprint (`cnf.x5t#S256`,
    /// base64url without padding).
    #[must_use]
    pub fn with_x5t_s256(mut self, thumbprint: impl Into<Arc<str>>) -> Self {
        self.x5t_s256 = Some(thumbprint.into());
        self
    }

    /// The DPoP key thumbprint the token is bound to.
    #[must_use]
    pub fn jkt(&self) -> Option<&str> {
        self.jkt.as_deref()
    }

    /// The client certificate thumbprint the token is bound to.
    #[must_use]
    pub fn x5t_s256(&self) -> Option<&str> {
        self.x5t_s256.as_deref()
    }

    /// Whether the token is bound to anything (a key or a certificate).
    #[must_use]
    pub fn is_bound(&self) -> bool {
        self.jkt.is_some() || self.x5t_s256.is_some()
    }
}

// Thumbprints are public values (hashes of public keys), shown for diagnosis.
impl fmt::Debug for Confirmation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Confirmation")
            .field("jkt", &self.jkt)
            .field("x5t_s256", &self.x5t_s256)
            .finish()
    }
}
