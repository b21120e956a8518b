//! Client certificates (`MCP_CLIENT_CERT_*`, feature `mtls`): the header a trusted
//! TLS-terminating proxy passes them in, and the subjects the certificate authenticator
//! accepts.

use crate::env::EnvReader;
use crate::request_info::TrustedProxies;

/// The variables of this module.
#[cfg(not(feature = "mtls"))]
const CLIENT_CERT_SETTINGS: [&str; 3] = [
    "MCP_CLIENT_CERT_HEADER",
    "MCP_CLIENT_CERT_SUBJECTS",
    "MCP_CLIENT_CERT_SUBJECT_FROM",
];

/// What the client certificate settings configure.
#[derive(Default)]
pub(super) struct ClientCerts {
    /// The proxy header certificates are read from.
    #[cfg(feature = "mtls")]
    pub(super) header: Option<crate::hardening::CertHeader>,
    /// The certificate authenticator, when subjects are listed.
    #[cfg(feature = "mtls")]
    pub(super) auth: Option<crate::authenticators::client_cert::ClientCertAuthenticator>,
}

/// Without the `mtls` feature, any client certificate setting is a problem.
#[cfg(not(feature = "mtls"))]
pub(super) fn load_client_certs(
    env: &mut EnvReader,
    _proxies: &TrustedProxies,
    _default_scopes: &[String],
) -> ClientCerts {
    for name in CLIENT_CERT_SETTINGS {
        if env.raw(name).is_some() {
            env.problem(name, "needs mcp-auth's `mtls` feature");
        }
    }
    ClientCerts::default()
}

/// `MCP_CLIENT_CERT_HEADER` (needs trusted proxies), `MCP_CLIENT_CERT_SUBJECTS` (entries
/// without scopes carry `default_scopes`) and `MCP_CLIENT_CERT_SUBJECT_FROM`.
#[cfg(feature = "mtls")]
pub(super) fn load_client_certs(
    env: &mut EnvReader,
    proxies: &TrustedProxies,
    default_scopes: &[String],
) -> ClientCerts {
    use crate::authenticators::client_cert::{ClientCertAuthenticator, SubjectSource};
    use crate::hardening::CertHeader;

    let header = env.optional("MCP_CLIENT_CERT_HEADER", CertHeader::parse);
    if header.is_some() && proxies.is_empty() {
        env.problem(
            "MCP_CLIENT_CERT_HEADER",
            "needs MCP_TRUSTED_PROXIES: a certificate header is believed only from trusted proxies",
        );
    }
    let order = env.optional("MCP_CLIENT_CERT_SUBJECT_FROM", SubjectSource::parse_list);
    let auth = env.optional("MCP_CLIENT_CERT_SUBJECTS", |name, v| {
        ClientCertAuthenticator::new().with_setting(name, v, default_scopes)
    });
    if order.is_some() && env.raw("MCP_CLIENT_CERT_SUBJECTS").is_none() {
        env.problem(
            "MCP_CLIENT_CERT_SUBJECT_FROM",
            "needs MCP_CLIENT_CERT_SUBJECTS",
        );
    }
    let auth = auth.map(|a| match order {
        Some(order) => a.subject_from(order),
        None => a,
    });
    ClientCerts { header, auth }
}
