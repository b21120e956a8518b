//! [`ClientCertificate`]: the certificate the client presented on its TLS connection.

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// The end-entity certificate a client presented during the TLS handshake (RFC 8705), as a
/// request extension.
///
/// Insert it from your TLS acceptor after the handshake verified the certificate (the
/// example server does this when `MCP_TLS_CLIENT_CA` is set), or let a layer take it from a
/// trusted TLS-terminating proxy's header. Never build it from a header of an untrusted
/// peer. Token authenticators check certificate-bound tokens (`cnf.x5t#S256`) against it.
///
/// ```
/// use mcp_auth::request_info::ClientCertificate;
///
/// let cert = ClientCertificate::from_der(b"not really DER".to_vec());
/// // SHA-256 of the DER bytes, base64url without padding: the `x5t#S256` form.
/// assert_eq!(cert.x5t_s256().len(), 43);
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(cert);
/// assert!(req.extensions().get::<ClientCertificate>().is_some());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    der: Arc<[u8]>,
    x5t_s256: Arc<str>,
}

impl ClientCertificate {
    /// The certificate from its DER encoding. The thumbprint is computed once, here.
    #[must_use]
    pub fn from_der(der: impl Into<Arc<[u8]>>) -> Self {
        let der: Arc<[u8]> = der.into();
        let x5t_s256 = URL_SAFE_NO_PAD.encode(Sha256::digest(&der)).into();
        Self { der, x5t_s256 }
    }

    /// The DER encoding.
    #[must_use]
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The SHA-256 thumbprint, base64url without padding (RFC 8705 §3.1 `x5t#S256`).
    #[must_use]
    pub fn x5t_s256(&self) -> &str {
        &self.x5t_s256
    }
}

// A certificate is public; its thumbprint identifies it without printing kilobytes.
impl fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertificate")
            .field("x5t_s256", &self.x5t_s256)
            .field("der_len", &self.der.len())
            .finish()
    }
}
