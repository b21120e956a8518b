//! The connection side of [`Redis`](super::Redis): building the client from a
//! [`RedisConfig`] (URL scheme, TLS material, record key), and turning Redis errors into
//! [`StoreError`]s that name a category, never the URL, a password or a key.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::config::{MIN_RECORD_KEY_LEN, RedisConfig};
use crate::error::ConfigError;
use crate::store::StoreError;

/// The client for `config`, and whether it connects with TLS (`rediss://`). Connects nothing.
pub(super) fn client(config: &RedisConfig) -> Result<(redis::Client, bool), ConfigError> {
    let scheme = config
        .url
        .split_once("://")
        .map(|(s, _)| s.to_ascii_lowercase());
    let tls = scheme.as_deref() == Some("rediss");
    check_settings(config, tls)?;
    let bad_url = || {
        ConfigError::new(
            "redis url",
            "is not a valid redis://, rediss:// or redis+unix:// URL",
        )
    };
    if tls {
        ensure_crypto_provider();
    }
    if config.ca_pem.is_none() && config.client_cert.is_none() {
        let client = redis::Client::open(config.url.as_str()).map_err(|_| bad_url())?;
        return Ok((client, tls));
    }
    if let Some((setting, message)) = pem_problem(config, tls) {
        return Err(ConfigError::new(setting, message));
    }
    // Validate the URL first: `build_with_tls`'s error cannot tell the causes apart.
    redis::Client::open(config.url.as_str()).map_err(|_| bad_url())?;
    let client = redis::Client::build_with_tls(
        config.url.as_str(),
        redis::TlsCertificates {
            client_tls: config
                .client_cert
                .as_ref()
                .map(|(chain, key)| redis::ClientTlsConfig {
                    client_cert: chain.clone(),
                    client_key: key.expose().as_bytes().to_vec(),
                }),
            root_cert: config.ca_pem.clone(),
        },
    )
    .map_err(|_| ConfigError::new("redis tls", "the CA or client certificate is not usable"))?;
    Ok((client, tls))
}

/// Refuses `rediss://…#insecure` and a record key shorter than [`MIN_RECORD_KEY_LEN`].
fn check_settings(config: &RedisConfig, tls: bool) -> Result<(), ConfigError> {
    if tls
        && config
            .url
            .rsplit_once('#')
            .is_some_and(|(_, f)| f.eq_ignore_ascii_case("insecure"))
    {
        return Err(ConfigError::new(
            "redis url",
            "#insecure (no certificate check) is not supported; give the server's CA with \
             RedisConfig::ca_cert_pem instead",
        ));
    }
    if let Some(key) = &config.record_key
        && key.len() < MIN_RECORD_KEY_LEN
    {
        return Err(ConfigError::new(
            "redis record key",
            format!("must be at least {MIN_RECORD_KEY_LEN} bytes (e.g. `openssl rand -base64 32`)"),
        ));
    }
    Ok(())
}

/// What is wrong with the CA or client certificate settings (setting, message), if anything:
/// given with a URL that is not `rediss://`, or not PEM. The last problem found is reported.
fn pem_problem(config: &RedisConfig, tls: bool) -> Option<(&'static str, &'static str)> {
    let certs = |pem: &[u8]| {
        CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .is_ok_and(|c| !c.is_empty())
    };
    let mut problem = None;
    if let Some(pem) = &config.ca_pem {
        if !tls {
            problem = Some(("redis ca certificate", "is only used with a rediss:// URL"));
        } else if !certs(pem) {
            problem = Some((
                "redis ca certificate",
                "is not one or more PEM certificates",
            ));
        }
    }
    if let Some((chain, key)) = &config.client_cert {
        if !tls {
            problem = Some((
                "redis client certificate",
                "is only used with a rediss:// URL",
            ));
        } else if !certs(chain) {
            problem = Some((
                "redis client certificate",
                "is not one or more PEM certificates",
            ));
        } else if PrivateKeyDer::from_pem_slice(key.expose().as_bytes()).is_err() {
            problem = Some(("redis client key", "is not a PEM private key"));
        }
    }
    problem
}

/// `err` itself as a TLS error: a `rustls::Error`, or one inside an `io::Error` (as
/// tokio-rustls reports them), or either inside an `Arc` (as `redis` keeps them).
fn as_tls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let err = match err.downcast_ref::<Arc<dyn std::error::Error + Send + Sync>>() {
        Some(shared) => &**shared,
        None => err,
    };
    err.downcast_ref::<rustls::Error>().or_else(|| {
        err.downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    })
}

/// The TLS error somewhere in `e`'s chain.
fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    // Bounded: a chain is short, and this never loops on a cyclic one.
    for _ in 0..16 {
        let err = cur?;
        if let Some(tls) = as_tls_error(err) {
            return Some(tls);
        }
        cur = err.source();
    }
    None
}

/// At most `max` characters of `s`.
fn bounded(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// What went wrong, for a [`StoreError`]: the category (timeout, refused, lost, TLS
/// certificate or handshake, authentication, …), never the URL, a password or a key.
fn describe(e: &redis::RedisError) -> String {
    if let Some(tls) = tls_error(e) {
        let what = match tls {
            rustls::Error::InvalidCertificate(_) => "TLS: the server's certificate is refused",
            rustls::Error::AlertReceived(_) => "TLS: the server refused the handshake",
            _ => "TLS handshake failed",
        };
        return format!("{what} ({})", bounded(&tls.to_string(), 160));
    }
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connection_refusal() {
        "connection refused".to_owned()
    } else if e.is_connection_dropped() {
        "connection lost".to_owned()
    } else if e.kind() == redis::ErrorKind::AuthenticationFailed {
        "authentication failed (user or password refused)".to_owned()
    } else if let Some(code) = e.code() {
        // Server error codes (`WRONGPASS`, `NOAUTH`, `NOPERM`, …) carry no secret.
        format!("{:?} ({})", e.kind(), bounded(code, 40))
    } else if e.kind() == redis::ErrorKind::Io {
        "I/O error".to_owned()
    } else {
        format!("{:?}", e.kind())
    }
}

/// A Redis error as a [`StoreError`] (see [`describe`]).
pub(super) fn unavailable(e: &redis::RedisError) -> StoreError {
    StoreError::unavailable(format!("redis: {}", describe(e)))
}

/// Makes sure rustls has a process-wide crypto provider before `redis` builds a TLS
/// configuration with `rustls::ClientConfig::builder()` (which panics when none is installed
/// and the crate features name none, or two). Installs aws-lc-rs only when none is installed.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: then that one is the default.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_errors_are_found_inside_io_errors() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        let e = redis::RedisError::from(io);
        let text = describe(&e);
        assert!(
            text.starts_with("TLS: the server's certificate is refused"),
            "{text}"
        );
        let refused =
            redis::RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(describe(&refused), "connection refused");
    }
}
