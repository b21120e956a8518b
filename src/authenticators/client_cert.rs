//! [`ClientCertAuthenticator`]: the caller named by the client certificate of its TLS
//! connection (RFC 8705 §2, mutual TLS), feature `mtls`.
//!
//! The certificate comes from the request's [`ClientCertificate`] extension, which a TLS
//! acceptor inserts after its handshake verified the certificate against the client CA (the
//! example server does with `MCP_TLS_CLIENT_CA`), or which
//! [`ForwardedClientCertLayer`](crate::hardening::ForwardedClientCertLayer) takes from a
//! trusted TLS-terminating proxy. This authenticator does not verify the chain: it trusts that
//! whoever inserted the extension did. It checks the validity period, then reads the subject:
//!
//! 1. The first [`SubjectSource`] of its order (default: SAN URI, SAN DNS name, SAN e-mail,
//!    subject CN) that the certificate holds at all gives the candidates; later sources are
//!    not looked at. A SPIFFE ID is a SAN URI (`spiffe://example.org/ns/prod/sa/agent`).
//! 2. Of several candidates (two SAN URIs), the one listed in the table is the subject; two
//!    listed ones are ambiguous and refused.
//! 3. The table gives the subject's scopes and roles ([`Grant`]). A subject that is not listed
//!    is refused with 401, unless a default grant was configured explicitly
//!    ([`ClientCertAuthenticator::default_grant`], `*` in the environment syntax).
//!
//! Subjects are compared exactly as the certificate writes them. A request without a
//! certificate is [`missing_credentials`](crate::AuthError::missing_credentials), so in a chain
//! this authenticator comes **last**: credentials in headers decide first, and the
//! certificate counts only for requests that carry none. A certificate larger than
//! [`MAX_CERTIFICATE_LEN`] (or [`ClientCertAuthenticator::max_certificate_len`]), or one that
//! does not parse, is refused before any other work; a parse error is a refusal, never a
//! panic.
//!
//! The context has [`AuthMethod::ClientCertificate`], the certificate's `notAfter` as its
//! expiry and its SHA-256 thumbprint (`x5t#S256`) as its
//! [`credential_id`](crate::AuthContext::credential_id).
//!
//! # In a variable
//!
//! `MCP_CLIENT_CERT_SUBJECTS` (read by `mcp_auth::config`, feature `config`) holds
//! comma-separated entries in the syntax of static credentials, with the subject where the
//! secret would be:
//!
//! ```text
//! SUBJECT[;scopes=SCOPE SCOPE…][;roles=ROLE ROLE…]
//! ```
//!
//! `*` as the subject is the default grant for every subject not listed. An entry without
//! `scopes=` carries the default scopes (`MCP_DEFAULT_SCOPES`). A subject holding `,` or `;`
//! (a CN such as `Doe, Jane`) cannot be written there; list it in code. The order of sources
//! is `MCP_CLIENT_CERT_SUBJECT_FROM=san-uri,san-dns,san-email,cn` (any subset, in any order).
//!
//! # Example
//!
//! ```
//! use mcp_auth::authenticators::client_cert::{ClientCertAuthenticator, Grant, SubjectSource};
//! use mcp_auth::request_info::ClientCertificate;
//! use mcp_auth::{AuthContext, ClientCertLayer};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let auth = ClientCertAuthenticator::new()
//!     .subject_from([SubjectSource::SanUri, SubjectSource::CommonName])
//!     .subject("spiffe://example.org/agent", Grant::new().scopes(["data:read"]))
//!     .unwrap();
//! let svc = ServiceBuilder::new()
//!     .layer(ClientCertLayer::new(auth))
//!     .service(service_fn(|req: http::Request<String>| async move {
//!         let ctx = req.extensions().get::<AuthContext>().unwrap();
//!         Ok::<_, std::convert::Infallible>(http::Response::new(ctx.subject().to_owned()))
//!     }));
//!
//! // A certificate for the SPIFFE ID (your TLS acceptor inserts the verified one).
//! let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
//! params.subject_alt_names = vec![rcgen::SanType::URI("spiffe://example.org/agent".try_into().unwrap())];
//! let key = rcgen::KeyPair::generate().unwrap();
//! let der = params.self_signed(&key).unwrap().der().to_vec();
//!
//! let mut req = http::Request::new(String::new());
//! req.extensions_mut().insert(ClientCertificate::from_der(der));
//! let res = svc.clone().oneshot(req).await.unwrap();
//! assert_eq!(res.status(), 200);
//!
//! // No certificate: 401 (in a chain, the next authenticator would have been asked).
//! let res = svc.oneshot(http::Request::new(String::new())).await.unwrap();
//! assert_eq!(res.status(), 401);
//! # }
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::request::Parts;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::auth_layer::{AuthLayer, Authenticator};
use crate::context::{AuthContext, AuthMethod, Scopes};
use crate::error::{AuthError, ConfigError, ConfigProblem};
use crate::rejection::Scheme;
use crate::request_info::ClientCertificate;

/// The largest certificate (DER bytes) looked at by default: 16 KiB. A client certificate is
/// one to two kilobytes; anything much larger is refused unparsed.
pub const MAX_CERTIFICATE_LEN: usize = 16 * 1024;

/// The longest subject accepted (bytes).
const MAX_SUBJECT_LEN: usize = 1024;

/// The most candidates of one source looked at (SAN entries of one kind).
const MAX_CANDIDATES: usize = 64;

/// [`AuthLayer`] with a [`ClientCertAuthenticator`].
pub type ClientCertLayer<R = crate::rejection::DefaultRejection> =
    AuthLayer<ClientCertAuthenticator, R>;

/// Where a certificate names its subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SubjectSource {
    /// A URI in the subject alternative names (`spiffe://…`; `san-uri`).
    SanUri,
    /// A DNS name in the subject alternative names (`san-dns`).
    SanDns,
    /// An e-mail address (rfc822Name) in the subject alternative names (`san-email`).
    SanEmail,
    /// The common name of the subject's distinguished name (`cn`).
    CommonName,
}

/// The default order of [`SubjectSource`]s: SAN URI, SAN DNS name, SAN e-mail, subject CN.
pub const DEFAULT_SUBJECT_ORDER: [SubjectSource; 4] = [
    SubjectSource::SanUri,
    SubjectSource::SanDns,
    SubjectSource::SanEmail,
    SubjectSource::CommonName,
];

impl SubjectSource {
    /// The name in `MCP_CLIENT_CERT_SUBJECT_FROM`: `san-uri`, `san-dns`, `san-email`, `cn`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SanUri => "san-uri",
            Self::SanDns => "san-dns",
            Self::SanEmail => "san-email",
            Self::CommonName => "cn",
        }
    }

    /// Parses a comma-separated order of sources (`san-uri,cn`).
    ///
    /// ```
    /// use mcp_auth::authenticators::client_cert::SubjectSource;
    ///
    /// let order = SubjectSource::parse_list("MCP_CLIENT_CERT_SUBJECT_FROM", "san-uri, cn").unwrap();
    /// assert_eq!(order, [SubjectSource::SanUri, SubjectSource::CommonName]);
    /// assert!(SubjectSource::parse_list("S", "san-uri,upn").is_err());
    /// assert!(SubjectSource::parse_list("S", "cn,cn").is_err());
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `setting` for an empty list, an unknown name or a repeated
    /// one.
    pub fn parse_list(setting: &str, list: &str) -> Result<Vec<Self>, ConfigError> {
        let mut out = Vec::new();
        for (i, name) in list.split(',').map(str::trim).enumerate() {
            let n = i.saturating_add(1);
            let source = match name.to_ascii_lowercase().as_str() {
                "san-uri" => Self::SanUri,
                "san-dns" => Self::SanDns,
                "san-email" => Self::SanEmail,
                "cn" => Self::CommonName,
                "" => return Err(ConfigError::new(setting, format!("entry {n} is empty"))),
                _ => {
                    return Err(ConfigError::new(
                        setting,
                        format!("entry {n} is not one of san-uri, san-dns, san-email, cn"),
                    ));
                }
            };
            if out.contains(&source) {
                return Err(ConfigError::new(
                    setting,
                    format!("`{}` is listed twice", source.as_str()),
                ));
            }
            out.push(source);
        }
        Ok(out)
    }
}

impl fmt::Display for SubjectSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a certificate subject is granted: scopes and roles.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[must_use]
pub struct Grant {
    scopes: Scopes,
    roles: Vec<String>,
}

impl Grant {
    /// No scopes, no roles.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds scopes.
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes.extend(scopes);
        self
    }

    /// Adds roles.
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles.extend(roles.into_iter().map(Into::into));
        self
    }

    /// The granted scopes.
    #[must_use]
    pub fn scope_set(&self) -> &Scopes {
        &self.scopes
    }

    /// The granted roles.
    pub fn role_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.roles.iter().map(String::as_str)
    }
}

/// Authenticates a request by the client certificate of its connection: see the
/// [module docs](self). Certificates and subjects are public: `Debug` shows the order of
/// sources and the number of subjects.
#[derive(Clone)]
pub struct ClientCertAuthenticator {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    order: Vec<SubjectSource>,
    subjects: HashMap<String, Grant>,
    default: Option<Grant>,
    max_len: usize,
}

impl fmt::Debug for ClientCertAuthenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientCertAuthenticator")
            .field("order", &self.inner.order)
            .field("subjects", &self.inner.subjects.len())
            .field("default_grant", &self.inner.default.is_some())
            .field("max_certificate_len", &self.inner.max_len)
            .finish()
    }
}

impl Default for ClientCertAuthenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientCertAuthenticator {
    /// No subjects yet (every certificate is refused until some are listed), the
    /// [default order](DEFAULT_SUBJECT_ORDER) of sources.
    #[must_use]
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                order: DEFAULT_SUBJECT_ORDER.to_vec(),
                subjects: HashMap::new(),
                default: None,
                max_len: MAX_CERTIFICATE_LEN,
            }),
        }
    }

    fn inner_mut(&mut self) -> &mut Inner {
        Arc::make_mut(&mut self.inner)
    }

    /// Where the subject is read, in order (an empty list keeps the current order).
    #[must_use]
    pub fn subject_from(mut self, order: impl IntoIterator<Item = SubjectSource>) -> Self {
        let mut list: Vec<SubjectSource> = Vec::new();
        for s in order {
            if !list.contains(&s) {
                list.push(s);
            }
        }
        if !list.is_empty() {
            self.inner_mut().order = list;
        }
        self
    }

    /// Lists a subject and what it is granted.
    ///
    /// # Errors
    ///
    /// When the subject is empty, longer than 1024 bytes, holds control characters or
    /// surrounding whitespace, or is listed already.
    pub fn subject(
        mut self,
        subject: impl Into<String>,
        grant: Grant,
    ) -> Result<Self, ConfigError> {
        let subject = subject.into();
        check_subject(&subject).map_err(|m| ConfigError::new("client certificate subject", m))?;
        if self.inner.subjects.contains_key(&subject) {
            return Err(ConfigError::new(
                "client certificate subject",
                "is listed twice",
            ));
        }
        self.inner_mut().subjects.insert(subject, grant);
        Ok(self)
    }

    /// What a subject that is not listed is granted. Without it (the default) such a
    /// certificate is refused with 401: any certificate the CA signed would otherwise get in.
    pub fn default_grant(mut self, grant: Grant) -> Self {
        self.inner_mut().default = Some(grant);
        self
    }

    /// Refuses certificates larger than `bytes` (DER) unparsed (default
    /// [`MAX_CERTIFICATE_LEN`]).
    #[must_use]
    pub fn max_certificate_len(mut self, bytes: usize) -> Self {
        self.inner_mut().max_len = bytes;
        self
    }

    /// Adds the subjects of a setting in the environment syntax (see the
    /// [module docs](self#in-a-variable)); entries without `scopes=` carry `default_scopes`.
    /// Every problem is reported, naming `setting` and the entry's position.
    ///
    /// ```
    /// use mcp_auth::authenticators::client_cert::ClientCertAuthenticator;
    ///
    /// let auth = ClientCertAuthenticator::new()
    ///     .with_setting(
    ///         "MCP_CLIENT_CERT_SUBJECTS",
    ///         "spiffe://example.org/agent;scopes=data:read;roles=agent, ops-laptop",
    ///         &["data:read".to_owned()],
    ///     )
    ///     .unwrap();
    /// assert_eq!(auth.len(), 2);
    /// let err = ClientCertAuthenticator::new()
    ///     .with_setting("MCP_CLIENT_CERT_SUBJECTS", "a;scopes=x,,a", &[])
    ///     .unwrap_err();
    /// assert_eq!(err.problems().len(), 2); // entry 2 is empty; entry 3 repeats entry 1
    /// ```
    ///
    /// # Errors
    ///
    /// An empty setting, an empty or invalid entry, a subject listed twice, or `*` twice.
    pub fn with_setting(
        mut self,
        setting: &str,
        value: &str,
        default_scopes: &[String],
    ) -> Result<Self, ConfigError> {
        if value.trim().is_empty() {
            return Err(ConfigError::new(setting, "is set but empty"));
        }
        let mut problems = Vec::new();
        for (i, entry) in value.split(',').enumerate() {
            let n = i.saturating_add(1);
            match parse_entry(entry, default_scopes) {
                Ok((subject, grant)) if subject == "*" => {
                    if self.inner.default.is_some() {
                        problems.push(ConfigProblem::new(
                            setting,
                            format!("entry {n}: `*` (the default grant) is listed twice"),
                        ));
                    } else {
                        self = self.default_grant(grant);
                    }
                }
                Ok((subject, grant)) => {
                    if self.inner.subjects.contains_key(&subject) {
                        problems.push(ConfigProblem::new(
                            setting,
                            format!("entry {n}: the subject is listed twice"),
                        ));
                    } else {
                        self.inner_mut().subjects.insert(subject, grant);
                    }
                }
                Err(msg) => problems.push(ConfigProblem::new(setting, format!("entry {n}{msg}"))),
            }
        }
        ConfigError::from_problems(problems).map_or(Ok(self), Err)
    }

    /// The number of listed subjects (the default grant not counted).
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.subjects.len()
    }

    /// Whether no subject is listed.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.subjects.is_empty()
    }

    /// Who `cert` names, and what that subject is granted.
    ///
    /// # Errors
    ///
    /// 401 (`invalid_token`, or `expired` outside the validity period) with a detail for the
    /// log: `certificate_too_large`, `bad_certificate`, `certificate_expired`,
    /// `certificate_not_yet_valid`, `no_certificate_subject`, `bad_certificate_subject`,
    /// `ambiguous_certificate_subject`, `unknown_certificate_subject`.
    pub fn identify(&self, cert: &ClientCertificate) -> Result<AuthContext, AuthError> {
        let inner = &*self.inner;
        if cert.der().len() > inner.max_len {
            return Err(refused("certificate_too_large"));
        }
        let x509 = match x509_parser::parse_x509_certificate(cert.der()) {
            Ok(([], x509)) => x509,
            _ => return Err(refused("bad_certificate")),
        };
        let expires_at = check_validity(&x509)?;
        let (subject, grant) = self.choose(&x509)?;
        let mut ctx = AuthContext::builder(subject, AuthMethod::ClientCertificate)
            .scopes(grant.scopes.iter())
            .roles(grant.roles.iter().map(String::as_str))
            .credential_id(cert.x5t_s256());
        if let Some(at) = expires_at {
            ctx = ctx.expires_at(at);
        }
        Ok(ctx.build())
    }

    /// The subject of the first source the certificate holds, and its grant.
    fn choose(&self, x509: &X509Certificate<'_>) -> Result<(String, Grant), AuthError> {
        let inner = &*self.inner;
        for source in &inner.order {
            let candidates = candidates(x509, *source)?;
            let Some(first) = candidates.first() else {
                continue;
            };
            for c in &candidates {
                check_subject(c).map_err(|_| refused("bad_certificate_subject"))?;
            }
            let mut listed = candidates
                .iter()
                .filter_map(|c| inner.subjects.get_key_value(*c));
            return match (listed.next(), listed.next()) {
                (Some((subject, grant)), None) => Ok((subject.clone(), grant.clone())),
                (Some(_), Some(_)) => Err(refused("ambiguous_certificate_subject")),
                (None, _) => match &inner.default {
                    Some(grant) => Ok(((*first).to_owned(), grant.clone())),
                    None => Err(refused("unknown_certificate_subject")),
                },
            };
        }
        Err(refused("no_certificate_subject"))
    }
}

impl Authenticator for ClientCertAuthenticator {
    async fn authenticate(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        self.decide(parts)
    }

    fn authenticate_now(&self, parts: &Parts) -> Option<Result<AuthContext, AuthError>> {
        Some(self.decide(parts))
    }

    /// None: a certificate is presented in the TLS handshake, not with an HTTP scheme.
    fn schemes(&self) -> Vec<Scheme> {
        Vec::new()
    }
}

impl ClientCertAuthenticator {
    fn decide(&self, parts: &Parts) -> Result<AuthContext, AuthError> {
        match parts.extensions.get::<ClientCertificate>() {
            Some(cert) => self.identify(cert),
            None => Err(AuthError::missing_credentials()),
        }
    }
}

/// A 401 for a certificate that cannot name a caller; the description says no more than
/// that (the detail goes to the log).
fn refused(detail: &'static str) -> AuthError {
    AuthError::invalid_token("the client certificate is not accepted").with_detail(detail)
}

/// `notAfter` as a time (`None` when it is before 1970), after checking the validity
/// period.
fn check_validity(x509: &X509Certificate<'_>) -> Result<Option<SystemTime>, AuthError> {
    let validity = x509.validity();
    let now = x509_parser::time::ASN1Time::now();
    if now < validity.not_before {
        return Err(
            AuthError::expired("the client certificate is not valid yet")
                .with_detail("certificate_not_yet_valid"),
        );
    }
    if now > validity.not_after {
        return Err(AuthError::expired("the client certificate has expired")
            .with_detail("certificate_expired"));
    }
    let secs = u64::try_from(validity.not_after.timestamp()).ok();
    Ok(secs.and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s))))
}

/// The values of one source in the certificate (at most [`MAX_CANDIDATES`]).
///
/// # Errors
///
/// `bad_certificate` when the subject alternative name extension is malformed or repeated.
fn candidates<'a>(
    x509: &'a X509Certificate<'_>,
    source: SubjectSource,
) -> Result<Vec<&'a str>, AuthError> {
    let mut out = Vec::new();
    if source == SubjectSource::CommonName {
        for attr in x509.subject().iter_common_name().take(MAX_CANDIDATES) {
            out.push(
                attr.as_str()
                    .map_err(|_| refused("bad_certificate_subject"))?,
            );
        }
        return Ok(out);
    }
    let san = x509
        .subject_alternative_name()
        .map_err(|_| refused("bad_certificate"))?;
    let Some(san) = san else {
        return Ok(out);
    };
    for name in san.value.general_names.iter().take(MAX_CANDIDATES) {
        let value = match (source, name) {
            (SubjectSource::SanUri, GeneralName::URI(v))
            | (SubjectSource::SanDns, GeneralName::DNSName(v))
            | (SubjectSource::SanEmail, GeneralName::RFC822Name(v)) => *v,
            _ => continue,
        };
        out.push(value);
    }
    Ok(out)
}

/// A subject must be non-empty, at most 1024 bytes, free of control characters and of
/// surrounding whitespace.
fn check_subject(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err("is empty");
    }
    if s.len() > MAX_SUBJECT_LEN {
        return Err("is longer than 1024 bytes");
    }
    if s.chars().any(char::is_control) {
        return Err("holds control characters");
    }
    if s.trim() != s {
        return Err("has surrounding whitespace");
    }
    Ok(())
}

/// One entry of the environment syntax: `SUBJECT[;scopes=…][;roles=…]`. The message starts
/// with `: ` or ` ` so it follows `entry N`; it never quotes the entry.
fn parse_entry(entry: &str, default_scopes: &[String]) -> Result<(String, Grant), String> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Err(" is empty".into());
    }
    let mut parts = entry.split(';');
    let subject = parts.next().unwrap_or_default().trim();
    if subject != "*" {
        check_subject(subject).map_err(|m| format!(": the subject {m}"))?;
    }
    let mut scopes: Option<Scopes> = None;
    let mut roles = Vec::new();
    for (i, part) in parts.map(str::trim).enumerate() {
        if part.is_empty() {
            continue;
        }
        let n = i.saturating_add(1);
        match part.split_once('=') {
            Some((name, value)) if name.trim() == "scopes" => {
                scopes = Some(Scopes::from_space_separated(value.trim()));
            }
            Some((name, value)) if name.trim() == "roles" => {
                roles = value.split_ascii_whitespace().map(String::from).collect();
            }
            _ => return Err(format!(": attribute {n} is not scopes=… or roles=…")),
        }
    }
    let grant = Grant {
        scopes: scopes.unwrap_or_else(|| default_scopes.iter().cloned().collect()),
        roles,
    };
    Ok((subject.to_owned(), grant))
}

#[cfg(test)]
mod tests;
