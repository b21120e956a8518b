//! [`ForwardedClientCertLayer`]: the client certificate a trusted TLS-terminating proxy
//! verified, from its header (feature `mtls`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use http::{HeaderMap, HeaderName, Request};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tower_layer::Layer;
use tower_service::Service;

use crate::error::ConfigError;
use crate::request_info::{ClientCertificate, TrustedProxies};

/// The longest header value read by default: 16 KiB (a URL-encoded PEM client certificate is
/// two to four kilobytes).
pub const MAX_HEADER_LEN: usize = 16 * 1024;

/// nginx's conventional header for `$ssl_client_escaped_cert`.
pub const NGINX_HEADER: &str = "x-ssl-client-cert";

/// Envoy's header (`forward_client_cert_details`).
pub const ENVOY_HEADER: &str = "x-forwarded-client-cert";

/// The most `;`-separated pairs looked at in one Envoy element.
const MAX_XFCC_PAIRS: usize = 32;

/// Which header carries the proxy's certificate, and in which form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertHeader {
    name: HeaderName,
    format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// The URL-encoded PEM certificate, the whole value (nginx).
    EscapedPem,
    /// `X-Forwarded-Client-Cert` elements (Envoy).
    Xfcc,
}

impl CertHeader {
    /// nginx: `X-SSL-Client-Cert` holding `$ssl_client_escaped_cert`.
    #[must_use]
    pub fn nginx() -> Self {
        Self::escaped_pem(HeaderName::from_static(NGINX_HEADER))
    }

    /// A URL-encoded PEM certificate in header `name` (nginx's `$ssl_client_escaped_cert`
    /// under another name; HAProxy or a load balancer that sends the same form).
    #[must_use]
    pub fn escaped_pem(name: HeaderName) -> Self {
        Self {
            name,
            format: Format::EscapedPem,
        }
    }

    /// Envoy: the `Cert` of the last element of `X-Forwarded-Client-Cert`.
    #[must_use]
    pub fn envoy() -> Self {
        Self {
            name: HeaderName::from_static(ENVOY_HEADER),
            format: Format::Xfcc,
        }
    }

    /// `nginx`, `envoy`, or the name of a header holding a URL-encoded PEM certificate.
    ///
    /// ```
    /// use mcp_auth::hardening::CertHeader;
    ///
    /// assert_eq!(CertHeader::parse("S", "nginx").unwrap(), CertHeader::nginx());
    /// assert_eq!(CertHeader::parse("S", "Envoy").unwrap().name(), "x-forwarded-client-cert");
    /// assert_eq!(CertHeader::parse("S", "X-Client-Cert").unwrap().name(), "x-client-cert");
    /// assert!(CertHeader::parse("S", "not a header").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `setting` when the value is none of these.
    pub fn parse(setting: &str, value: &str) -> Result<Self, ConfigError> {
        let value = value.trim();
        match value.to_ascii_lowercase().as_str() {
            "nginx" => Ok(Self::nginx()),
            "envoy" => Ok(Self::envoy()),
            _ => HeaderName::from_bytes(value.as_bytes())
                .map(Self::escaped_pem)
                .map_err(|_| ConfigError::new(setting, "must be nginx, envoy, or a header name")),
        }
    }

    /// The header read.
    #[must_use]
    pub fn name(&self) -> &HeaderName {
        &self.name
    }
}

/// Why a proxy's certificate header was not used (for the log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unusable {
    TooLong,
    Repeated,
    NotText,
    NoCertElement,
    BadEscape,
    NotOnePemCertificate,
}

impl Unusable {
    fn reason(self) -> &'static str {
        match self {
            Self::TooLong => "too_long",
            Self::Repeated => "repeated_header",
            Self::NotText => "not_text",
            Self::NoCertElement => "no_cert_element",
            Self::BadEscape => "bad_url_encoding",
            Self::NotOnePemCertificate => "not_one_pem_certificate",
        }
    }
}

#[derive(Debug)]
struct Settings {
    proxies: TrustedProxies,
    header: CertHeader,
    max_len: usize,
    /// Whether the first unusable value was logged at `warn` (later ones go to `debug`).
    warned: AtomicBool,
}

/// Inserts the [`ClientCertificate`] a trusted TLS-terminating proxy verified, from its header
/// (feature `mtls`). Put it inside [`ClientAddrLayer`](super::ClientAddrLayer) and outside the
/// auth layer.
///
/// When nginx or Envoy terminates TLS and verifies client certificates, the server behind it
/// never sees the handshake; the proxy passes the certificate on in a header. This layer reads
/// that header **only** when the request's TCP peer is one of the
/// [`TrustedProxies`] and inserts the certificate as a
/// [`ClientCertificate`] extension, for
/// [`ClientCertAuthenticator`](crate::authenticators::client_cert::ClientCertAuthenticator)
/// and for certificate-bound tokens (`cnf.x5t#S256`). From any other peer the header is
/// ignored. A certificate the server's own TLS acceptor put in the request is never replaced
/// by a header. A value that is malformed, repeated (nginx form) or longer than
/// [`MAX_HEADER_LEN`] means "no certificate" and logs a line naming the reason, never the
/// value.
///
/// | proxy | header ([`CertHeader`]) | value |
/// |---|---|---|
/// | nginx | `X-SSL-Client-Cert` ([`CertHeader::nginx`]; another name: [`CertHeader::escaped_pem`]) | `$ssl_client_escaped_cert`: the PEM certificate, URL-encoded |
/// | Envoy | `X-Forwarded-Client-Cert` ([`CertHeader::envoy`]) | elements `By=…;Hash=…;Cert="…";…`, comma-separated; `Cert` is the URL-encoded PEM certificate. Of several elements the **last** counts: the one the nearest proxy (the trusted one) appended |
///
/// nginx, verifying clients against your CA and passing the certificate on (a request
/// without a certificate gets no header: nginx drops headers whose value is empty, and
/// `proxy_set_header` replaces any a client sent):
///
/// ```nginx
/// ssl_client_certificate /etc/nginx/client-ca.pem;
/// ssl_verify_client optional;          # OAuth clients without certificates still connect
/// location /mcp {
///     proxy_pass http://127.0.0.1:8080;
///     proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
///     proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
/// }
/// ```
///
/// Envoy (HTTP connection manager; `SANITIZE_SET` replaces a client's header, so the only
/// element is Envoy's own):
///
/// ```yaml
/// forward_client_cert_details: SANITIZE_SET
/// set_current_client_cert_details:
///   cert: true
/// ```
///
/// with `require_client_certificate: false` and a `validation_context` holding your CA in
/// the downstream TLS context. Then `MCP_TRUSTED_PROXIES` names the proxy and
/// `MCP_CLIENT_CERT_HEADER=nginx` (or `envoy`, or a header name) turns this layer on in the
/// configured stack (`mcp_auth::config`).
///
/// # Example
///
/// ```
/// use mcp_auth::hardening::{CertHeader, ForwardedClientCertLayer};
/// use mcp_auth::request_info::{ClientCertificate, PeerAddr, TrustedProxies};
/// use tower::{Layer, ServiceExt, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let proxies = TrustedProxies::parse("MCP_TRUSTED_PROXIES", "10.0.0.7").unwrap();
/// let svc = ForwardedClientCertLayer::new(proxies, CertHeader::nginx()).layer(service_fn(
///     |req: http::Request<()>| async move {
///         let cert = req.extensions().get::<ClientCertificate>().cloned();
///         Ok::<_, std::convert::Infallible>(http::Response::new(cert))
///     },
/// ));
///
/// let key = rcgen::KeyPair::generate().unwrap();
/// let cert = rcgen::CertificateParams::new(vec!["client".to_owned()]).unwrap().self_signed(&key).unwrap();
/// // What nginx's $ssl_client_escaped_cert holds.
/// let escaped = cert.pem().replace('\n', "%0A").replace(' ', "%20").replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
///
/// let from = |peer: [u8; 4]| {
///     let mut req = http::Request::get("/mcp").header("x-ssl-client-cert", &escaped).body(()).unwrap();
///     req.extensions_mut().insert(PeerAddr(peer.into()));
///     req
/// };
/// let seen = svc.clone().oneshot(from([10, 0, 0, 7])).await.unwrap().into_body();
/// assert_eq!(seen.unwrap().der(), cert.der().as_ref());
/// // The same header from a peer that is not a trusted proxy: ignored.
/// assert!(svc.oneshot(from([203, 0, 113, 9])).await.unwrap().into_body().is_none());
/// # }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct ForwardedClientCertLayer {
    settings: Arc<Settings>,
}

impl ForwardedClientCertLayer {
    /// Believes `header` from `proxies` only.
    pub fn new(proxies: TrustedProxies, header: CertHeader) -> Self {
        Self {
            settings: Arc::new(Settings {
                proxies,
                header,
                max_len: MAX_HEADER_LEN,
                warned: AtomicBool::new(false),
            }),
        }
    }

    /// Ignores header values longer than `bytes` (default [`MAX_HEADER_LEN`]).
    pub fn max_len(self, bytes: usize) -> Self {
        let s = &self.settings;
        Self {
            settings: Arc::new(Settings {
                proxies: s.proxies.clone(),
                header: s.header.clone(),
                max_len: bytes,
                warned: AtomicBool::new(false),
            }),
        }
    }
}

impl<S> Layer<S> for ForwardedClientCertLayer {
    type Service = ForwardedClientCert<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ForwardedClientCert {
            inner,
            settings: self.settings.clone(),
        }
    }
}

/// The service built by [`ForwardedClientCertLayer`].
#[derive(Debug, Clone)]
pub struct ForwardedClientCert<S> {
    inner: S,
    settings: Arc<Settings>,
}

impl<S> ForwardedClientCert<S> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for ForwardedClientCert<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let s = &*self.settings;
        if req.headers().contains_key(&s.header.name)
            && req.extensions().get::<ClientCertificate>().is_none()
            && s.proxies.trusts_peer(req.extensions())
        {
            match read(req.headers(), &s.header, s.max_len) {
                Ok(cert) => {
                    req.extensions_mut().insert(cert);
                }
                Err(why) => {
                    let reason = why.reason();
                    let header = s.header.name.as_str();
                    if s.warned.swap(true, Ordering::Relaxed) {
                        tracing::debug!(target: crate::telemetry::REJECTION_TARGET, reason, header, "a trusted proxy's client certificate header is unusable; the request has no certificate");
                    } else {
                        tracing::warn!(target: crate::telemetry::REJECTION_TARGET, reason, header, "a trusted proxy's client certificate header is unusable; the request has no certificate (check the proxy's configuration; later ones are logged at debug)");
                    }
                }
            }
        }
        self.inner.call(req)
    }
}

/// The certificate in `header`, when it is present once and well formed.
fn read(
    headers: &HeaderMap,
    header: &CertHeader,
    max_len: usize,
) -> Result<ClientCertificate, Unusable> {
    let mut values = headers.get_all(&header.name).iter();
    let value = match header.format {
        // nginx sets one value; two mean a client's header got through beside it.
        Format::EscapedPem => {
            let first = values.next().ok_or(Unusable::NoCertElement)?;
            if values.next().is_some() {
                return Err(Unusable::Repeated);
            }
            first
        }
        // Proxies append: the last field holds the nearest proxy's element.
        Format::Xfcc => values.next_back().ok_or(Unusable::NoCertElement)?,
    };
    if value.len() > max_len {
        return Err(Unusable::TooLong);
    }
    let value = value.to_str().map_err(|_| Unusable::NotText)?;
    let escaped = match header.format {
        Format::EscapedPem => value.trim(),
        Format::Xfcc => xfcc_cert(value).ok_or(Unusable::NoCertElement)?,
    };
    let pem = percent_decode(escaped).ok_or(Unusable::BadEscape)?;
    let mut certs = CertificateDer::pem_slice_iter(&pem);
    let cert = match (certs.next(), certs.next()) {
        (Some(Ok(cert)), None) => cert,
        _ => return Err(Unusable::NotOnePemCertificate),
    };
    Ok(ClientCertificate::from_der(cert.as_ref()))
}

/// The `Cert` value of the last element of an `X-Forwarded-Client-Cert` value, without its
/// quotes. Quoted values may hold `,`, `;` and `=`; `\"` is an escaped quote.
fn xfcc_cert(value: &str) -> Option<&str> {
    let last = split_unquoted(value, b',').last()?;
    for pair in split_unquoted(last, b';').take(MAX_XFCC_PAIRS) {
        let Some((key, v)) = pair.split_once('=') else {
            continue;
        };
        if key.trim().eq_ignore_ascii_case("cert") {
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v);
            return Some(v);
        }
    }
    None
}

/// `s` split at `sep` outside double quotes.
fn split_unquoted(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let bytes = s.as_bytes();
    let mut start = 0usize;
    let mut in_quotes = false;
    let mut escaped = false;
    let mut cuts = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        if escaped {
            escaped = false;
        } else if in_quotes && *b == b'\\' {
            escaped = true;
        } else if *b == b'"' {
            in_quotes = !in_quotes;
        } else if *b == sep && !in_quotes {
            cuts.push((start, i));
            start = i.saturating_add(1);
        }
    }
    cuts.push((start, bytes.len()));
    cuts.into_iter().filter_map(move |(a, b)| s.get(a..b))
}

/// Percent-decoding (`+` stays `+`: PEM's base64 holds it); `None` for a `%` not followed by
/// two hex digits.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0usize;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = hex(*bytes.get(i.saturating_add(1))?)?;
            let lo = hex(*bytes.get(i.saturating_add(2))?)?;
            out.push(hi << 4 | lo);
            i = i.saturating_add(3);
        } else {
            out.push(b);
            i = i.saturating_add(1);
        }
    }
    Some(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, SocketAddr};

    use tower::{ServiceExt, service_fn};

    use super::*;

    fn pem_cert() -> (String, Vec<u8>) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["client.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), cert.der().to_vec())
    }

    /// URL-encodes as nginx's `$ssl_client_escaped_cert` does (every byte but unreserved ones).
    fn escape(pem: &str) -> String {
        pem.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    async fn seen(
        layer: &ForwardedClientCertLayer,
        peer: &str,
        headers: &[(&str, &str)],
        tls: Option<ClientCertificate>,
    ) -> Option<ClientCertificate> {
        let svc = layer.layer(service_fn(|req: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(req.extensions().get::<ClientCertificate>().cloned())
        }));
        let mut req = Request::get("/mcp");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let mut req = req.body(()).unwrap();
        let ip: IpAddr = peer.parse().unwrap();
        req.extensions_mut().insert(SocketAddr::new(ip, 40000));
        if let Some(c) = tls {
            req.extensions_mut().insert(c);
        }
        svc.oneshot(req).await.unwrap()
    }

    fn proxies() -> TrustedProxies {
        TrustedProxies::parse("S", "127.0.0.1, 10.0.0.0/8").unwrap()
    }

    #[tokio::test]
    async fn nginx_escaped_pem_from_a_trusted_proxy_is_the_certificate() {
        let (pem, der) = pem_cert();
        let layer = ForwardedClientCertLayer::new(proxies(), CertHeader::nginx());
        let got = seen(
            &layer,
            "10.1.2.3",
            &[("x-ssl-client-cert", &escape(&pem))],
            None,
        )
        .await;
        assert_eq!(got.unwrap().der(), der.as_slice());
        // Another header name, same form.
        let layer = ForwardedClientCertLayer::new(
            proxies(),
            CertHeader::parse("S", "X-Client-Cert").unwrap(),
        );
        let got = seen(
            &layer,
            "127.0.0.1",
            &[("x-client-cert", &escape(&pem))],
            None,
        )
        .await;
        assert_eq!(got.unwrap().der(), der.as_slice());
    }

    #[tokio::test]
    async fn envoy_takes_the_cert_of_the_last_element() {
        let (pem, der) = pem_cert();
        let (other_pem, _) = pem_cert();
        let layer = ForwardedClientCertLayer::new(proxies(), CertHeader::envoy());
        let value = format!(
            "By=spiffe://a;Cert=\"{}\";Subject=\"CN=evil,OU=x;y\",By=spiffe://mcp;Hash=ab12;Cert=\"{}\";Subject=\"CN=a, O=b\";URI=spiffe://client",
            escape(&other_pem),
            escape(&pem)
        );
        let got = seen(
            &layer,
            "10.0.0.1",
            &[("x-forwarded-client-cert", &value)],
            None,
        )
        .await;
        assert_eq!(got.unwrap().der(), der.as_slice());
        // Unquoted Cert, and the element in a second header field.
        let got = seen(
            &layer,
            "10.0.0.1",
            &[
                ("x-forwarded-client-cert", "By=x;Hash=y"),
                (
                    "x-forwarded-client-cert",
                    &format!("Hash=1;cert={}", escape(&pem)),
                ),
            ],
            None,
        )
        .await;
        assert_eq!(got.unwrap().der(), der.as_slice());
        // The last element without a Cert: none, even though an earlier one has one.
        let value = format!("Cert=\"{}\",By=spiffe://mcp;Hash=ab", escape(&pem));
        let got = seen(
            &layer,
            "10.0.0.1",
            &[("x-forwarded-client-cert", &value)],
            None,
        )
        .await;
        assert!(got.is_none());
    }

    #[tokio::test]
    async fn the_header_from_an_untrusted_peer_is_ignored() {
        let (pem, _) = pem_cert();
        for layer in [
            ForwardedClientCertLayer::new(proxies(), CertHeader::nginx()),
            ForwardedClientCertLayer::new(TrustedProxies::none(), CertHeader::nginx()),
        ] {
            let got = seen(
                &layer,
                "203.0.113.9",
                &[("x-ssl-client-cert", &escape(&pem))],
                None,
            )
            .await;
            assert!(got.is_none());
        }
        // And with no peer address at all.
        let layer = ForwardedClientCertLayer::new(proxies(), CertHeader::nginx());
        let svc = layer.layer(service_fn(|req: Request<()>| async move {
            Ok::<_, std::convert::Infallible>(req.extensions().get::<ClientCertificate>().is_some())
        }));
        let req = Request::get("/")
            .header("x-ssl-client-cert", escape(&pem))
            .body(())
            .unwrap();
        assert!(!svc.oneshot(req).await.unwrap());
    }

    #[tokio::test]
    async fn a_header_never_replaces_the_certificate_of_the_tls_connection() {
        let (pem, _) = pem_cert();
        let tls = ClientCertificate::from_der(b"the handshake's certificate".to_vec());
        let layer = ForwardedClientCertLayer::new(proxies(), CertHeader::nginx());
        let got = seen(
            &layer,
            "127.0.0.1",
            &[("x-ssl-client-cert", &escape(&pem))],
            Some(tls.clone()),
        )
        .await;
        assert_eq!(got, Some(tls));
    }

    #[tokio::test]
    async fn malformed_repeated_and_oversized_values_mean_no_certificate() {
        let (pem, der) = pem_cert();
        let good = escape(&pem);
        let two = escape(&format!("{pem}{pem}"));
        let truncated = good.get(..good.len() / 2).unwrap().to_owned();
        let bad_escape = format!("{good}%G0");
        let layer = ForwardedClientCertLayer::new(proxies(), CertHeader::nginx());
        for value in [
            "",
            "garbage",
            two.as_str(),
            truncated.as_str(),
            bad_escape.as_str(),
            "%2",
            "-----BEGIN%20CERTIFICATE-----%0A%21%21%0A-----END%20CERTIFICATE-----%0A",
        ] {
            let got = seen(&layer, "127.0.0.1", &[("x-ssl-client-cert", value)], None).await;
            assert!(got.is_none(), "{value}");
        }
        // Twice: refused, though each copy is well formed.
        let got = seen(
            &layer,
            "127.0.0.1",
            &[("x-ssl-client-cert", &good), ("x-ssl-client-cert", &good)],
            None,
        )
        .await;
        assert!(got.is_none());
        // Over the bound: refused unread; at the bound: read.
        let tight =
            ForwardedClientCertLayer::new(proxies(), CertHeader::nginx()).max_len(good.len());
        let got = seen(&tight, "127.0.0.1", &[("x-ssl-client-cert", &good)], None).await;
        assert_eq!(got.unwrap().der(), der.as_slice());
        let tighter =
            ForwardedClientCertLayer::new(proxies(), CertHeader::nginx()).max_len(good.len() - 1);
        let got = seen(&tighter, "127.0.0.1", &[("x-ssl-client-cert", &good)], None).await;
        assert!(got.is_none());
        let huge = "A".repeat(MAX_HEADER_LEN + 1);
        let got = seen(&layer, "127.0.0.1", &[("x-ssl-client-cert", &huge)], None).await;
        assert!(got.is_none());
    }

    #[test]
    fn percent_decoding_keeps_plus_and_refuses_bad_escapes() {
        assert_eq!(percent_decode("a+b%2Bc%0a").unwrap(), b"a+b+c\n");
        assert!(percent_decode("%").is_none());
        assert!(percent_decode("%4").is_none());
        assert!(percent_decode("%zz").is_none());
    }

    #[test]
    fn xfcc_splitting_respects_quotes() {
        assert_eq!(
            xfcc_cert(r#"By="a,b;c=d";Cert="x\"y",Hash=1;Cert=z"#),
            Some("z")
        );
        assert_eq!(xfcc_cert(r#"Subject="a,b";Cert="q""#), Some("q"));
        assert_eq!(xfcc_cert("By=x"), None);
        assert_eq!(xfcc_cert(""), None);
    }
}
