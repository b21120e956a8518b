//! Errors: why a request was refused ([`AuthError`]) and why configuration failed
//! ([`ConfigError`]).
//!
//! An [`AuthError`] is either a *rejection* (the caller's fault: no credentials, bad
//! credentials, not enough scope, a malformed request) or a *failure* (the server's fault: a
//! key source is down, a bug). The two are built by different constructors, so a custom
//! [`Authenticator`](crate::Authenticator) cannot turn a failure into a 401 or a rejection
//! into a 500 by accident. [`crate::rejection`] maps each kind to exactly one status code.
//!
//! # Example
//!
//! ```
//! use mcp_auth::{AuthError, AuthErrorKind};
//!
//! let err = AuthError::invalid_token("the access token is invalid");
//! assert_eq!(err.kind(), AuthErrorKind::InvalidToken);
//! assert!(err.is_rejection());
//!
//! let io = std::io::Error::other("key server unreachable");
//! let err = AuthError::unavailable(io);
//! assert!(!err.is_rejection());
//! assert_eq!(err.reason(), "unavailable");
//! ```

use std::borrow::Cow;
use std::error::Error as StdError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// What kind of [`AuthError`] this is; decides the status code and challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthErrorKind {
    /// The request carries no credentials this authenticator understands → 401 with a
    /// challenge and no `error=` (RFC 6750 §3.1).
    MissingCredentials,
    /// The credentials are present but unknown, malformed or otherwise invalid → 401
    /// `error="invalid_token"`.
    InvalidToken,
    /// The credentials were valid once but have expired → 401 `error="invalid_token"`.
    Expired,
    /// The credentials were revoked → 401 `error="invalid_token"`.
    Revoked,
    /// The caller is authenticated but lacks a scope or role → 403
    /// `error="insufficient_scope"`.
    InsufficientScope,
    /// The request itself is malformed (two `Authorization` headers, a token in the query
    /// string) → 400 `error="invalid_request"`.
    InvalidRequest,
    /// A DPoP proof is missing, malformed, or does not match the request or the token →
    /// 401 `error="invalid_dpop_proof"` in the `DPoP` challenge (RFC 9449 §7.1).
    InvalidDpopProof,
    /// The DPoP proof must carry the server's current nonce → 401 `error="use_dpop_nonce"`
    /// with a fresh `DPoP-Nonce` header (RFC 9449 §9).
    UseDpopNonce,
    /// The caller has the scopes but did not authenticate strongly or recently enough → 401
    /// `error="insufficient_user_authentication"` with `acr_values` and/or `max_age` (RFC 9470).
    InsufficientUserAuthentication,
    /// A key source or store needed to decide is unavailable → 503, with `Retry-After` when
    /// known. Never a 401: that would send clients into re-authorization loops.
    Unavailable,
    /// A bug or an unexpected internal failure → 500.
    Internal,
}

impl AuthErrorKind {
    /// A stable, machine-readable reason code, used in logs and response extensions.
    #[must_use]
    pub const fn reason(self) -> &'static str {
        match self {
            Self::MissingCredentials => "missing_credentials",
            Self::InvalidToken => "invalid_token",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidRequest => "invalid_request",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InsufficientUserAuthentication => "insufficient_user_authentication",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }

    /// `true` for the caller's fault (4xx), `false` for the server's (5xx).
    #[must_use]
    pub const fn is_rejection(self) -> bool {
        !matches!(self, Self::Unavailable | Self::Internal)
    }
}

impl fmt::Display for AuthErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Why a request was not authenticated or not authorized.
///
/// Cheap to clone (the source error is shared), so it can be placed in response extensions.
/// The description is shown to the client (in `error_description` and the JSON body): it
/// must never contain a credential. Build it from fixed text, not from request data.
#[derive(Clone, Debug)]
pub struct AuthError {
    kind: AuthErrorKind,
    description: Option<Cow<'static, str>>,
    scopes: Option<Arc<[String]>>,
    retry_after: Option<Duration>,
    detail: Option<&'static str>,
    nonce: Option<Arc<str>>,
    step_up: Option<Arc<StepUp>>,
    source: Option<Arc<dyn StdError + Send + Sync>>,
}

/// What a step-up challenge asks for (RFC 9470 §3).
#[derive(Debug)]
struct StepUp {
    acr_values: Vec<String>,
    max_age: Option<u64>,
}

impl AuthError {
    fn new(kind: AuthErrorKind) -> Self {
        Self {
            kind,
            description: None,
            scopes: None,
            retry_after: None,
            detail: None,
            nonce: None,
            step_up: None,
            source: None,
        }
    }

    /// No credentials this authenticator understands (401, no `error=`).
    #[must_use]
    pub fn missing_credentials() -> Self {
        Self::new(AuthErrorKind::MissingCredentials)
    }

    /// Invalid credentials (401 `invalid_token`) with a client-visible description.
    #[must_use]
    pub fn invalid_token(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(AuthErrorKind::InvalidToken).with_description(description)
    }

    /// Expired credentials (401 `invalid_token`).
    #[must_use]
    pub fn expired(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(AuthErrorKind::Expired).with_description(description)
    }

    /// Revoked credentials (401 `invalid_token`).
    #[must_use]
    pub fn revoked(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(AuthErrorKind::Revoked).with_description(description)
    }

    /// Authenticated, but the operation needs these scopes (403 `insufficient_scope`).
    ///
    /// Pass every scope the operation needs (MCP 2026-07-28: one challenge, all scopes).
    #[must_use]
    pub fn insufficient_scope<I, T>(scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let scopes: Vec<String> = scopes.into_iter().map(Into::into).collect();
        let mut err = Self::new(AuthErrorKind::InsufficientScope);
        if !scopes.is_empty() {
            err.scopes = Some(scopes.into());
        }
        err
    }

    /// A malformed request (400 `invalid_request`).
    #[must_use]
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(AuthErrorKind::InvalidRequest).with_description(description)
    }

    /// An invalid DPoP proof (401 `invalid_dpop_proof`) with a client-visible description.
    #[must_use]
    pub fn invalid_dpop_proof(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(AuthErrorKind::InvalidDpopProof).with_description(description)
    }

    /// The proof must carry this server nonce (401 `use_dpop_nonce`, sent in `DPoP-Nonce`).
    /// The nonce is a public value made by the server, never request data.
    #[must_use]
    pub fn use_dpop_nonce(nonce: impl Into<Arc<str>>) -> Self {
        let mut err = Self::new(AuthErrorKind::UseDpopNonce)
            .with_description("the DPoP proof must carry the server's nonce");
        err.nonce = Some(nonce.into());
        err
    }

    /// The caller must authenticate again, with one of `acr_values` (any, when empty) and/or
    /// no longer than `max_age` seconds ago (401 `insufficient_user_authentication`, RFC 9470).
    #[must_use]
    pub fn insufficient_user_authentication<I, T>(acr_values: I, max_age: Option<u64>) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let mut err = Self::new(AuthErrorKind::InsufficientUserAuthentication)
            .with_description("a stronger or more recent authentication is required");
        err.step_up = Some(Arc::new(StepUp {
            acr_values: acr_values.into_iter().map(Into::into).collect(),
            max_age,
        }));
        err
    }

    /// A dependency needed to decide is unavailable (503). The source is logged, never sent.
    #[must_use]
    pub fn unavailable(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        let mut err = Self::new(AuthErrorKind::Unavailable);
        err.source = Some(Arc::from(source.into()));
        err
    }

    /// An internal failure (500). The source is logged, never sent.
    #[must_use]
    pub fn internal(source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        let mut err = Self::new(AuthErrorKind::Internal);
        err.source = Some(Arc::from(source.into()));
        err
    }

    /// Replaces the client-visible description. Fixed text only: never a credential or
    /// any part of the request.
    #[must_use]
    pub fn with_description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Sets how long a client should wait before retrying (sent as `Retry-After` on 503).
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Adds a finer reason code for logs only (e.g. `audience_mismatch`); never sent to the
    /// client, so responses stay uniform.
    #[must_use]
    pub fn with_detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The log-only detail code, if any.
    #[must_use]
    pub fn detail(&self) -> Option<&'static str> {
        self.detail
    }

    /// The kind, which decides the response.
    #[must_use]
    pub fn kind(&self) -> AuthErrorKind {
        self.kind
    }

    /// The stable reason code of the kind (see [`AuthErrorKind::reason`]).
    #[must_use]
    pub fn reason(&self) -> &'static str {
        self.kind.reason()
    }

    /// `true` when the caller is at fault (4xx).
    #[must_use]
    pub fn is_rejection(&self) -> bool {
        self.kind.is_rejection()
    }

    /// The client-visible description, if any.
    #[must_use]
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The scopes the operation needs (for [`AuthErrorKind::InsufficientScope`]).
    #[must_use]
    pub fn required_scopes(&self) -> &[String] {
        self.scopes.as_deref().unwrap_or(&[])
    }

    /// The suggested retry delay, if any.
    #[must_use]
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The authentication context classes a step-up challenge names (`acr_values`).
    #[must_use]
    pub fn acr_values(&self) -> &[String] {
        self.step_up.as_ref().map_or(&[], |s| &s.acr_values)
    }

    /// The largest authentication age, in seconds, a step-up challenge names (`max_age`).
    #[must_use]
    pub fn max_age(&self) -> Option<u64> {
        self.step_up.as_ref().and_then(|s| s.max_age)
    }

    /// The DPoP nonce to send in `DPoP-Nonce` (for [`AuthErrorKind::UseDpopNonce`]).
    #[must_use]
    pub fn dpop_nonce(&self) -> Option<&str> {
        self.nonce.as_deref()
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.description {
            Some(d) => write!(f, "{}: {d}", self.kind),
            None => fmt::Display::fmt(&self.kind, f),
        }
    }
}

impl StdError for AuthError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn StdError + 'static))
    }
}

/// One problem found in configuration: which setting, and what is wrong with it.
///
/// The message never contains the setting's value, which may be a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    setting: String,
    message: String,
}

impl ConfigProblem {
    /// A problem with `setting` (an environment variable or builder option name).
    #[must_use]
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
        }
    }

    /// The setting's name, e.g. `MCP_API_KEYS`.
    #[must_use]
    pub fn setting(&self) -> &str {
        &self.setting
    }

    /// What is wrong with it.
    #[must_use]
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.setting, self.message)
    }
}

/// Configuration could not be used. Holds every problem found, not just the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<ConfigProblem>,
}

impl ConfigError {
    /// An error with one problem.
    #[must_use]
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            problems: vec![ConfigProblem::new(setting, message)],
        }
    }

    /// An error from several problems; `None` when the list is empty.
    #[must_use]
    pub fn from_problems(problems: Vec<ConfigProblem>) -> Option<Self> {
        (!problems.is_empty()).then_some(Self { problems })
    }

    /// Every problem found.
    #[must_use]
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }

    /// Appends the problems of `other`.
    pub fn merge(&mut self, other: ConfigError) {
        self.problems.extend(other.problems);
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problems.as_slice() {
            [one] => write!(f, "invalid configuration: {one}"),
            many => {
                write!(f, "invalid configuration ({} problems)", many.len())?;
                for p in many {
                    write!(f, "; {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl StdError for ConfigError {}

/// Collects configuration problems while a builder validates, so `build()` reports every
/// problem at once: `check` each fallible step, then `finish` with the built value.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    problems: Vec<ConfigProblem>,
}

impl Problems {
    /// Records `problem`.
    pub(crate) fn push(&mut self, problem: ConfigError) {
        self.problems.extend(problem.problems);
    }

    /// Records a problem with `setting`.
    pub(crate) fn add(&mut self, setting: impl Into<String>, message: impl Into<String>) {
        self.problems.push(ConfigProblem::new(setting, message));
    }

    /// How many problems were recorded.
    #[cfg(feature = "jwt")]
    pub(crate) fn len(&self) -> usize {
        self.problems.len()
    }

    /// The value of `result`, or `None` with its problems recorded.
    pub(crate) fn check<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|e| self.push(e)).ok()
    }

    /// `value` when nothing was recorded, otherwise every problem.
    pub(crate) fn finish<T>(self, value: impl FnOnce() -> T) -> Result<T, ConfigError> {
        match ConfigError::from_problems(self.problems) {
            None => Ok(value()),
            Some(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_not_rejections() {
        assert!(!AuthError::unavailable("down").is_rejection());
        assert!(!AuthError::internal("bug").is_rejection());
        assert!(AuthError::missing_credentials().is_rejection());
        assert!(AuthError::insufficient_scope(["a"]).is_rejection());
    }

    #[test]
    fn source_is_exposed_through_error_source() {
        let err = AuthError::internal(std::io::Error::other("boom"));
        assert_eq!(err.source().unwrap().to_string(), "boom");
    }

    #[test]
    fn insufficient_scope_without_scopes_has_none() {
        let scopes: [&str; 0] = [];
        assert!(
            AuthError::insufficient_scope(scopes)
                .required_scopes()
                .is_empty()
        );
    }

    #[test]
    fn config_error_lists_every_problem() {
        let mut e = ConfigError::new("A", "missing");
        e.merge(ConfigError::new("B", "empty entry"));
        let text = e.to_string();
        assert!(
            text.contains("A: missing") && text.contains("B: empty entry"),
            "{text}"
        );
        assert_eq!(e.problems().len(), 2);
    }
}
