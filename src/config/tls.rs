//! TLS served by the application itself (`MCP_TLS_*`, feature `mtls`): the certificate chain
//! and key, and (`MCP_TLS_CLIENT_CA`) client certificates verified against a CA, loaded into a
//! rustls [`ServerConfig`](rustls::ServerConfig) at start-up.
//!
//! An application reads these settings only when it serves TLS with them
//! ([`Loader::serve_tls`](super::Loader::serve_tls)): in any other, setting one is a
//! start-up error, so a server that would ignore `MCP_TLS_CERT` and speak plain HTTP never
//! starts.

#[cfg(feature = "mtls")]
use std::time::Duration;

use crate::env::EnvReader;

/// The variables of this module.
pub(super) const TLS_SETTINGS: [&str; 5] = [
    "MCP_TLS_CERT",
    "MCP_TLS_KEY",
    "MCP_TLS_CLIENT_CA",
    "MCP_TLS_CLIENT_AUTH",
    "MCP_TLS_HANDSHAKE_TIMEOUT",
];

/// How long a TLS handshake may take by default: 10 seconds.
#[cfg(feature = "mtls")]
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest `MCP_TLS_HANDSHAKE_TIMEOUT` accepted (seconds).
#[cfg(feature = "mtls")]
const MAX_HANDSHAKE_TIMEOUT_SECS: u64 = 300;

/// Without the `mtls` feature there is no TLS configuration.
#[cfg(not(feature = "mtls"))]
pub(super) enum TlsSettings {}

/// Whether client certificates are asked for, and whether they are required
/// (`MCP_TLS_CLIENT_AUTH`).
#[cfg(feature = "mtls")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientAuth {
    /// No client certificate is asked for (`MCP_TLS_CLIENT_CA` unset).
    Off,
    /// Asked for and verified when presented; a client without one still connects (the
    /// default with `MCP_TLS_CLIENT_CA`: OAuth clients without certificates keep working).
    Optional,
    /// A handshake without a valid client certificate fails.
    Required,
}

/// The TLS configuration of a server that terminates TLS itself: see the
/// [module docs](super#environment) for the variables.
#[cfg(feature = "mtls")]
#[derive(Clone)]
pub struct TlsSettings {
    server: std::sync::Arc<rustls::ServerConfig>,
    client_auth: ClientAuth,
    handshake_timeout: Duration,
}

#[cfg(feature = "mtls")]
impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("client_auth", &self.client_auth)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "mtls")]
impl TlsSettings {
    /// The rustls server configuration (certificate chain and key, client certificate
    /// verifier, ALPN `h2` and `http/1.1`), for a `tokio-rustls` acceptor.
    #[must_use]
    pub fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        self.server.clone()
    }

    /// Whether client certificates are asked for or required.
    #[must_use]
    pub fn client_auth(&self) -> ClientAuth {
        self.client_auth
    }

    /// How long a handshake may take before the connection is dropped
    /// (`MCP_TLS_HANDSHAKE_TIMEOUT`, default 10 s).
    #[must_use]
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }
}

/// The TLS settings, when `serve_tls` and `MCP_TLS_CERT` is set; any setting is a problem
/// when the application does not serve TLS, or without the `mtls` feature.
pub(super) fn load_tls(env: &mut EnvReader, serve_tls: bool) -> Option<TlsSettings> {
    let set: Vec<&str> = TLS_SETTINGS
        .iter()
        .copied()
        .filter(|name| env.raw(name).is_some())
        .collect();
    if set.is_empty() {
        return None;
    }
    if !cfg!(feature = "mtls") {
        for name in set {
            env.problem(name, "needs mcp-auth's `mtls` feature");
        }
        return None;
    }
    if !serve_tls {
        for name in set {
            env.problem(
                name,
                "this server does not terminate TLS itself: terminate TLS at a proxy in front \
                 of it (MCP_CLIENT_CERT_HEADER passes client certificates on)",
            );
        }
        return None;
    }
    #[cfg(feature = "mtls")]
    {
        read::load(env)
    }
    #[cfg(not(feature = "mtls"))]
    None
}

#[cfg(feature = "mtls")]
mod read {
    use std::io::Read;
    use std::sync::Arc;
    use std::time::Duration;

    use rustls::RootCertStore;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::server::WebPkiClientVerifier;
    use zeroize::Zeroizing;

    use super::{ClientAuth, DEFAULT_HANDSHAKE_TIMEOUT, MAX_HANDSHAKE_TIMEOUT_SECS, TlsSettings};
    use crate::ConfigError;
    use crate::env::EnvReader;

    /// Reads the files and builds the rustls configuration; every problem is recorded.
    pub(super) fn load(env: &mut EnvReader) -> Option<TlsSettings> {
        let chain = env.optional("MCP_TLS_CERT", |name, path| {
            let pem = read_file(name, path, "the certificate file")?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| ConfigError::new(name, "holds a malformed PEM certificate"))?;
            if chain.is_empty() {
                return Err(ConfigError::new(name, "holds no PEM certificate"));
            }
            Ok(chain)
        });
        let key = env.optional("MCP_TLS_KEY", |name, path| {
            let pem = read_file(name, path, "the key file")?;
            // Never the error's text: it may quote the file.
            PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
                ConfigError::new(name, "holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")
            })
        });
        let client_ca = env.optional("MCP_TLS_CLIENT_CA", |name, path| {
            let pem = read_file(name, path, "the CA file")?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert =
                    cert.map_err(|_| ConfigError::new(name, "holds a malformed PEM certificate"))?;
                roots.add(cert).map_err(|_| {
                    ConfigError::new(name, "holds a certificate that is not a usable CA")
                })?;
            }
            if roots.is_empty() {
                return Err(ConfigError::new(name, "holds no PEM certificate"));
            }
            Ok(roots)
        });
        let client_auth = env.optional("MCP_TLS_CLIENT_AUTH", |name, v| {
            match v.trim().to_ascii_lowercase().as_str() {
                "optional" => Ok(ClientAuth::Optional),
                "required" => Ok(ClientAuth::Required),
                _ => Err(ConfigError::new(name, "must be optional or required")),
            }
        });
        let handshake_timeout = env
            .optional("MCP_TLS_HANDSHAKE_TIMEOUT", |name, v| {
                v.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|s| (1..=MAX_HANDSHAKE_TIMEOUT_SECS).contains(s))
                    .map(Duration::from_secs)
                    .ok_or_else(|| {
                        ConfigError::new(
                            name,
                            format!("must be whole seconds from 1 to {MAX_HANDSHAKE_TIMEOUT_SECS}"),
                        )
                    })
            })
            .unwrap_or(DEFAULT_HANDSHAKE_TIMEOUT);
        if client_auth.is_some() && env.raw("MCP_TLS_CLIENT_CA").is_none() {
            env.problem("MCP_TLS_CLIENT_AUTH", "needs MCP_TLS_CLIENT_CA");
        }
        let cert_set = env.raw("MCP_TLS_CERT").is_some();
        let key_set = env.raw("MCP_TLS_KEY").is_some();
        if cert_set != key_set {
            env.problem("MCP_TLS_CERT", "and MCP_TLS_KEY go together");
            return None;
        }
        if !cert_set {
            for name in ["MCP_TLS_CLIENT_CA", "MCP_TLS_HANDSHAKE_TIMEOUT"] {
                if env.raw(name).is_some() {
                    env.problem(name, "needs MCP_TLS_CERT and MCP_TLS_KEY");
                }
            }
            return None;
        }
        let (chain, key) = (chain?, key?);
        let client_auth = match (&client_ca, client_auth) {
            (None, _) => ClientAuth::Off,
            (Some(_), Some(mode)) => mode,
            (Some(_), None) => ClientAuth::Optional,
        };
        match server_config(chain, key, client_ca, client_auth) {
            Ok(server) => Some(TlsSettings {
                server: Arc::new(server),
                client_auth,
                handshake_timeout,
            }),
            Err(e) => {
                for p in e.problems() {
                    env.problem(p.setting(), p.message());
                }
                None
            }
        }
    }

    /// The rustls configuration (aws-lc-rs, TLS 1.2 and 1.3, ALPN `h2` and `http/1.1`).
    fn server_config(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        client_ca: Option<RootCertStore>,
        client_auth: ClientAuth,
    ) -> Result<rustls::ServerConfig, ConfigError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ConfigError::new("MCP_TLS_CERT", format!("TLS setup failed: {e}")))?;
        let builder = match client_ca {
            Some(roots) => {
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if client_auth == ClientAuth::Required {
                    verifier
                } else {
                    verifier.allow_unauthenticated()
                };
                let verifier = verifier.build().map_err(|e| {
                    ConfigError::new(
                        "MCP_TLS_CLIENT_CA",
                        format!("cannot verify client certificates with it: {e}"),
                    )
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_single_cert(chain, key).map_err(|e| {
            ConfigError::new(
                "MCP_TLS_KEY",
                format!("does not fit MCP_TLS_CERT or is not a supported key ({e})"),
            )
        })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }

    /// The contents of the file at `path`, at most
    /// [`MAX_SECRET_FILE`](crate::env::MAX_SECRET_FILE) bytes, wiped when dropped (a key).
    fn read_file(name: &str, path: &str, what: &str) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
        let limit = crate::env::MAX_SECRET_FILE as u64;
        let mut bytes = Zeroizing::new(Vec::new());
        std::fs::File::open(path.trim())
            .and_then(|f| f.take(limit + 1).read_to_end(&mut bytes))
            .map_err(|e| ConfigError::new(name, format!("cannot read {what} ({})", e.kind())))?;
        if bytes.len() as u64 > limit {
            return Err(ConfigError::new(
                name,
                format!("{what} is larger than {limit} bytes"),
            ));
        }
        Ok(bytes)
    }
}
