//! The one place where an [`AuthError`] becomes an HTTP response.
//!
//! | kind | status | `WWW-Authenticate` |
//! |---|---|---|
//! | [`MissingCredentials`](AuthErrorKind::MissingCredentials) | 401 | challenge, no `error=` (RFC 6750 §3.1) |
//! | [`InvalidToken`](AuthErrorKind::InvalidToken), [`Expired`](AuthErrorKind::Expired), [`Revoked`](AuthErrorKind::Revoked) | 401 | `error="invalid_token"` |
//! | [`InsufficientScope`](AuthErrorKind::InsufficientScope) | 403 | `error="insufficient_scope", scope="…"` |
//! | [`InvalidRequest`](AuthErrorKind::InvalidRequest) | 400 | `error="invalid_request"` |
//! | [`Unavailable`](AuthErrorKind::Unavailable) | 503 | none; `Retry-After` |
//! | [`Internal`](AuthErrorKind::Internal) | 500 | none |
//!
//! Every challenge carries `realm`, `scope` (for 401, when configured) and
//! `resource_metadata` (RFC 9728 §5.1, when configured) from the layer's [`Challenge`]
//! configuration, never from the request. Values are quoted and escaped; descriptions are
//! reduced to the characters RFC 6750 allows. The body is a small JSON object naming the
//! error; it never contains a credential. Replace the whole response with a
//! [`RejectionResponse`].
//!
//! # Example
//!
//! ```
//! use mcp_auth::rejection::{Challenge, Rejection};
//! use mcp_auth::AuthError;
//!
//! let challenge = Challenge::bearer()
//!     .resource_metadata("https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
//! let err = AuthError::insufficient_scope(["data:write"]);
//! let res = Rejection::new(&err, &challenge).default_response();
//! assert_eq!(res.status(), 403);
//! assert_eq!(
//!     res.headers()["www-authenticate"],
//!     "Bearer error=\"insufficient_scope\", scope=\"data:write\", \
//!      resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
//! );
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Response, StatusCode};

use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::request_info::{TrustedProxies, forwarded_origin};

/// One authentication scheme offered in `WWW-Authenticate` challenges.
#[derive(Clone, PartialEq, Eq)]
pub struct Scheme {
    name: Cow<'static, str>,
    params: Vec<(Cow<'static, str>, String)>,
}

impl Scheme {
    /// `Bearer` (RFC 6750). MCP clients look for this scheme.
    #[must_use]
    pub const fn bearer() -> Self {
        Self {
            name: Cow::Borrowed("Bearer"),
            params: Vec::new(),
        }
    }

    /// `ApiKey header="<name>"`: there is no registered scheme for API keys, but every 401
    /// needs a challenge (RFC 9110 §11.6.1); this one tells clients which header to use.
    #[must_use]
    pub fn api_key(header: &HeaderName) -> Self {
        Self {
            name: Cow::Borrowed("ApiKey"),
            params: vec![(Cow::Borrowed("header"), header.as_str().to_owned())],
        }
    }

    /// A custom scheme.
    ///
    /// # Errors
    ///
    /// When `name` is not an HTTP token (RFC 9110 §5.6.2).
    pub fn custom(name: impl Into<String>) -> Result<Self, ConfigError> {
        let name = name.into();
        if name.is_empty() || !name.bytes().all(is_tchar) {
            return Err(ConfigError::new(
                "scheme",
                "not a valid HTTP auth-scheme token",
            ));
        }
        Ok(Self {
            name: Cow::Owned(name),
            params: Vec::new(),
        })
    }

    /// The scheme name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is the `Bearer` scheme (case-insensitive).
    #[must_use]
    pub fn is_bearer(&self) -> bool {
        self.name.eq_ignore_ascii_case("bearer")
    }
}

impl fmt::Debug for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheme")
            .field("name", &self.name)
            .field("params", &self.params)
            .finish()
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// What a layer's challenges say: schemes, `realm`, `scope` for 401s, and
/// `resource_metadata`.
///
/// Built from configuration only. The schemes normally come from the authenticator
/// ([`Authenticator::schemes`](crate::Authenticator::schemes)); `Bearer` is always listed
/// first, because MCP clients read the first challenge.
#[derive(Debug, Clone, Default)]
pub struct Challenge {
    schemes: Vec<Scheme>,
    realm: Option<String>,
    scope: Option<String>,
    resource_metadata: Option<String>,
    forwarded: Option<ForwardedMetadata>,
}

/// Trusted-proxy mode of a challenge: `resource_metadata` is rebuilt per request from the
/// forwarding headers of a trusted proxy (`X-Forwarded-Proto` and `X-Forwarded-Host`).
#[derive(Debug, Clone)]
struct ForwardedMetadata {
    proxies: Arc<TrustedProxies>,
    well_known_path: String,
}

impl Challenge {
    /// A `Bearer` challenge with no parameters.
    #[must_use]
    pub fn bearer() -> Self {
        Self::with_schemes(vec![Scheme::bearer()])
    }

    /// A challenge offering `schemes` (Bearer first; an empty list means Bearer).
    #[must_use]
    pub fn with_schemes(mut schemes: Vec<Scheme>) -> Self {
        if schemes.is_empty() {
            schemes.push(Scheme::bearer());
        }
        let mut seen = Vec::new();
        schemes.retain(|s| {
            let dup = seen.contains(s);
            if !dup {
                seen.push(s.clone());
            }
            !dup
        });
        // Stable sort: Bearer first, the rest in the given order.
        schemes.sort_by_key(|s| !s.is_bearer());
        Self {
            schemes,
            ..Self::default()
        }
    }

    /// Sets `realm`.
    #[must_use]
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Sets the scopes named in 401 challenges (the scopes needed for basic use). An empty
    /// list sends no `scope` parameter: an empty `scope=""` breaks clients.
    #[must_use]
    pub fn scope<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, scopes: I) -> Self {
        let joined = join_scopes(scopes.into_iter());
        self.scope = (!joined.is_empty()).then_some(joined);
        self
    }

    /// Sets the `resource_metadata` URL (RFC 9728 §5.1): where clients find the protected
    /// resource metadata. Must be the public URL; never derived from the request.
    #[must_use]
    pub fn resource_metadata(mut self, url: impl Into<String>) -> Self {
        self.resource_metadata = Some(url.into());
        self
    }

    /// Trusted-proxy mode: from a request whose peer is one of `proxies`, `resource_metadata`
    /// becomes the forwarded origin followed by `well_known_path` (see [`Self::for_request`]).
    pub(crate) fn forwarded_metadata(
        mut self,
        proxies: Arc<TrustedProxies>,
        well_known_path: String,
    ) -> Self {
        self.forwarded = Some(ForwardedMetadata {
            proxies,
            well_known_path,
        });
        self
    }

    /// The challenge for one request: in trusted-proxy mode, `resource_metadata` follows the
    /// forwarding headers of a trusted proxy; otherwise this challenge as configured.
    pub(crate) fn for_request(&self, parts: &http::request::Parts) -> Cow<'_, Self> {
        let Some(fwd) = &self.forwarded else {
            return Cow::Borrowed(self);
        };
        if !fwd.proxies.trusts_peer(&parts.extensions) {
            return Cow::Borrowed(self);
        }
        match forwarded_origin(&parts.headers) {
            Some(origin) => Cow::Owned(
                self.clone()
                    .resource_metadata(format!("{origin}{}", fwd.well_known_path)),
            ),
            None => Cow::Borrowed(self),
        }
    }

    /// The schemes offered, Bearer first.
    #[must_use]
    pub fn schemes(&self) -> &[Scheme] {
        &self.schemes
    }

    /// The configured `resource_metadata` URL.
    #[must_use]
    pub fn resource_metadata_url(&self) -> Option<&str> {
        self.resource_metadata.as_deref()
    }

    fn render(&self, scheme: &Scheme, err: &AuthError) -> HeaderValue {
        let mut out = String::with_capacity(64);
        out.push_str(&scheme.name);
        let mut first = true;
        let mut param = |out: &mut String, name: &str, value: &str| {
            out.push_str(if first { " " } else { ", " });
            first = false;
            out.push_str(name);
            out.push_str("=\"");
            push_quoted(out, value);
            out.push('"');
        };
        if let Some(realm) = &self.realm {
            param(&mut out, "realm", realm);
        }
        for (name, value) in &scheme.params {
            param(&mut out, name, value);
        }
        let code = error_code(err.kind());
        if let Some(code) = code {
            param(&mut out, "error", code);
            if let Some(desc) = err.description() {
                param(&mut out, "error_description", &description_chars(desc));
            }
        }
        if err.kind() == AuthErrorKind::InsufficientScope {
            let joined = join_scopes(err.required_scopes().iter());
            if !joined.is_empty() {
                param(&mut out, "scope", &joined);
            }
        } else if let Some(scope) = &self.scope {
            param(&mut out, "scope", scope);
        }
        if let Some(url) = &self.resource_metadata {
            param(&mut out, "resource_metadata", url);
        }
        // Every character pushed is visible ASCII or space, so this cannot fail; fall back to
        // the bare scheme name rather than panic.
        HeaderValue::try_from(out).unwrap_or_else(|_| {
            HeaderValue::try_from(scheme.name.as_ref())
                .unwrap_or(HeaderValue::from_static("Bearer"))
        })
    }
}

fn join_scopes<S: AsRef<str>>(scopes: impl Iterator<Item = S>) -> String {
    let mut out = String::new();
    for s in scopes {
        let s = s.as_ref();
        if s.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(s);
    }
    out
}

/// Appends `value` as the inside of an HTTP quoted-string: `"` and `\` are backslash-escaped;
/// control and non-ASCII characters (which could split or corrupt the header) become `?`.
fn push_quoted(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            _ => out.push('?'),
        }
    }
}

/// RFC 6750 §3: `error_description` allows only %x20-21 / %x23-5B / %x5D-7E (no `"`, no `\`).
fn description_chars(desc: &str) -> Cow<'_, str> {
    let ok = |c: char| matches!(c, ' '..='~') && c != '"' && c != '\\';
    if desc.chars().all(ok) {
        Cow::Borrowed(desc)
    } else {
        Cow::Owned(desc.chars().map(|c| if ok(c) { c } else { '?' }).collect())
    }
}

fn error_code(kind: AuthErrorKind) -> Option<&'static str> {
    match kind {
        AuthErrorKind::InvalidToken | AuthErrorKind::Expired | AuthErrorKind::Revoked => {
            Some("invalid_token")
        }
        AuthErrorKind::InsufficientScope => Some("insufficient_scope"),
        AuthErrorKind::InvalidRequest => Some("invalid_request"),
        _ => None,
    }
}

/// The status code for an error kind.
#[must_use]
pub(crate) fn status_for(kind: AuthErrorKind) -> StatusCode {
    match kind {
        AuthErrorKind::MissingCredentials
        | AuthErrorKind::InvalidToken
        | AuthErrorKind::Expired
        | AuthErrorKind::Revoked => StatusCode::UNAUTHORIZED,
        AuthErrorKind::InsufficientScope => StatusCode::FORBIDDEN,
        AuthErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        AuthErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        AuthErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Seconds sent in `Retry-After` on a 503 whose error names no delay.
pub(crate) const DEFAULT_RETRY_AFTER_SECS: u64 = 5;

/// A refusal about to be answered: the error and the layer's challenge configuration.
#[derive(Debug, Clone, Copy)]
pub struct Rejection<'a> {
    error: &'a AuthError,
    challenge: &'a Challenge,
}

impl<'a> Rejection<'a> {
    /// Pairs an error with the challenge configuration of the layer that refused it.
    #[must_use]
    pub fn new(error: &'a AuthError, challenge: &'a Challenge) -> Self {
        Self { error, challenge }
    }

    /// The error.
    #[must_use]
    pub fn error(&self) -> &'a AuthError {
        self.error
    }

    /// The challenge configuration.
    #[must_use]
    pub fn challenge(&self) -> &'a Challenge {
        self.challenge
    }

    /// The status code this crate answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        status_for(self.error.kind())
    }

    /// The `WWW-Authenticate` values (one per scheme, Bearer first); empty for 5xx.
    #[must_use]
    pub fn www_authenticate(&self) -> Vec<HeaderValue> {
        if !self.error.is_rejection() {
            return Vec::new();
        }
        self.challenge
            .schemes
            .iter()
            .map(|s| self.challenge.render(s, self.error))
            .collect()
    }

    /// The JSON body: `{"error": "...", "error_description": "...", "scope": "..."}`.
    #[must_use]
    pub fn json_body(&self) -> Bytes {
        let kind = self.error.kind();
        let code = error_code(kind).unwrap_or(match kind {
            AuthErrorKind::MissingCredentials => "unauthorized",
            AuthErrorKind::Unavailable => "temporarily_unavailable",
            _ => "server_error",
        });
        let description = if kind.is_rejection() {
            self.error
                .description()
                .unwrap_or(match kind {
                    AuthErrorKind::MissingCredentials => "authentication required",
                    AuthErrorKind::InsufficientScope => "insufficient scope",
                    _ => "request refused",
                })
                .to_owned()
        } else if kind == AuthErrorKind::Unavailable {
            "authentication temporarily unavailable".to_owned()
        } else {
            "internal error".to_owned()
        };
        let mut body = serde_json::Map::new();
        body.insert("error".into(), code.into());
        body.insert("error_description".into(), description.into());
        if kind == AuthErrorKind::InsufficientScope && !self.error.required_scopes().is_empty() {
            body.insert(
                "scope".into(),
                join_scopes(self.error.required_scopes().iter()).into(),
            );
        }
        Bytes::from(serde_json::Value::Object(body).to_string())
    }

    /// The response this crate sends by default.
    #[must_use]
    pub fn default_response(&self) -> Response<Bytes> {
        let mut res = json_response(self.status(), self.json_body());
        let headers = res.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for value in self.www_authenticate() {
            headers.append(WWW_AUTHENTICATE, value);
        }
        if self.error.kind() == AuthErrorKind::Unavailable {
            let secs = self
                .error
                .retry_after()
                .map_or(DEFAULT_RETRY_AFTER_SECS, |d| d.as_secs().max(1));
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// A JSON refusal, `{"error": code, "error_description": description}` with `status`: the
/// body of every refusal that is not an authentication rejection (origin, HTTPS, malformed
/// MCP requests, failure limits, session bindings), in the same shape as
/// [`Rejection::json_body`].
pub(crate) fn json_error(status: StatusCode, code: &str, description: &str) -> Response<Bytes> {
    let body = serde_json::json!({ "error": code, "error_description": description }).to_string();
    json_response(status, Bytes::from(body))
}

/// `body` as an `application/json` response with `status`.
fn json_response(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Builds the response for a refused request. Implement it (or pass a closure
/// `Fn(&Rejection<'_>) -> Response<Bytes>`) to change the body or add headers; start from
/// [`Rejection::default_response`] to keep the status and challenges right.
pub trait RejectionResponse: Send + Sync + 'static {
    /// The response for `rejection`.
    fn response(&self, rejection: &Rejection<'_>) -> Response<Bytes>;
}

impl<F> RejectionResponse for F
where
    F: Fn(&Rejection<'_>) -> Response<Bytes> + Send + Sync + 'static,
{
    fn response(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        self(rejection)
    }
}

/// The default [`RejectionResponse`]: [`Rejection::default_response`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejection;

impl RejectionResponse for DefaultRejection {
    fn response(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        rejection.default_response()
    }
}

impl<R: RejectionResponse + ?Sized> RejectionResponse for Arc<R> {
    fn response(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        (**self).response(rejection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(err: &AuthError, ch: &Challenge) -> Vec<String> {
        Rejection::new(err, ch)
            .www_authenticate()
            .into_iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn missing_credentials_challenge_has_no_error_code() {
        let ch =
            Challenge::bearer().resource_metadata("https://h/.well-known/oauth-protected-resource");
        let h = header(&AuthError::missing_credentials(), &ch);
        assert_eq!(
            h,
            ["Bearer resource_metadata=\"https://h/.well-known/oauth-protected-resource\""]
        );
    }

    #[test]
    fn bare_bearer_challenge_is_just_the_scheme() {
        assert_eq!(
            header(&AuthError::missing_credentials(), &Challenge::bearer()),
            ["Bearer"]
        );
    }

    #[test]
    fn invalid_token_challenge_names_the_error_and_description() {
        let h = header(
            &AuthError::expired("the access token expired"),
            &Challenge::bearer().realm("mcp"),
        );
        assert_eq!(
            h,
            [
                "Bearer realm=\"mcp\", error=\"invalid_token\", error_description=\"the access token expired\""
            ]
        );
    }

    #[test]
    fn quoted_values_escape_quotes_and_backslashes() {
        let ch = Challenge::bearer().realm("a\"b\\c");
        let h = header(&AuthError::missing_credentials(), &ch);
        assert_eq!(h, ["Bearer realm=\"a\\\"b\\\\c\""]);
    }

    #[test]
    fn control_characters_cannot_split_the_header() {
        let ch = Challenge::bearer().realm("x\r\nSet-Cookie: a=b");
        let h = header(&AuthError::invalid_token("bad\ttoken\n\"x\""), &ch);
        assert_eq!(
            h,
            [
                "Bearer realm=\"x??Set-Cookie: a=b\", error=\"invalid_token\", error_description=\"bad?token??x?\""
            ]
        );
    }

    #[test]
    fn insufficient_scope_lists_required_scopes_not_the_401_scope() {
        let ch = Challenge::bearer().scope(["mcp:basic"]);
        let h = header(
            &AuthError::insufficient_scope(["data:write", "data:read"]),
            &ch,
        );
        assert_eq!(
            h,
            ["Bearer error=\"insufficient_scope\", scope=\"data:write data:read\""]
        );
    }

    #[test]
    fn empty_scope_list_sends_no_scope_parameter() {
        let none: [&str; 0] = [];
        let ch = Challenge::bearer().scope(none);
        assert_eq!(header(&AuthError::missing_credentials(), &ch), ["Bearer"]);
        assert_eq!(
            header(&AuthError::insufficient_scope(none), &ch),
            ["Bearer error=\"insufficient_scope\""]
        );
    }

    #[test]
    fn bearer_challenge_comes_first_among_schemes() {
        let key = HeaderName::from_static("x-api-key");
        let ch = Challenge::with_schemes(vec![Scheme::api_key(&key), Scheme::bearer()]);
        let h = header(&AuthError::missing_credentials(), &ch);
        assert_eq!(h, ["Bearer", "ApiKey header=\"x-api-key\""]);
    }

    #[test]
    fn statuses_follow_rfc_6750_and_the_mcp_spec() {
        let ch = Challenge::bearer();
        let cases = [
            (AuthError::missing_credentials(), 401),
            (AuthError::invalid_token("x"), 401),
            (AuthError::expired("x"), 401),
            (AuthError::revoked("x"), 401),
            (AuthError::insufficient_scope(["a"]), 403),
            (AuthError::invalid_request("x"), 400),
            (AuthError::unavailable("down"), 503),
            (AuthError::internal("bug"), 500),
        ];
        for (err, status) in cases {
            let res = Rejection::new(&err, &ch).default_response();
            assert_eq!(res.status().as_u16(), status, "{err:?}");
            assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
            let has_challenge = res.headers().contains_key(WWW_AUTHENTICATE);
            assert_eq!(has_challenge, status < 500, "{err:?}");
        }
    }

    #[test]
    fn unavailable_carries_retry_after() {
        let ch = Challenge::bearer();
        let res = Rejection::new(&AuthError::unavailable("down"), &ch).default_response();
        assert_eq!(res.headers()[RETRY_AFTER], "5");
        let err =
            AuthError::unavailable("down").with_retry_after(std::time::Duration::from_secs(30));
        let res = Rejection::new(&err, &ch).default_response();
        assert_eq!(res.headers()[RETRY_AFTER], "30");
    }

    #[test]
    fn failure_body_does_not_reveal_the_source() {
        let err = AuthError::internal(std::io::Error::other("db password=hunter2"));
        let body = Rejection::new(&err, &Challenge::bearer()).json_body();
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(
            text,
            r#"{"error":"server_error","error_description":"internal error"}"#
        );
    }

    #[test]
    fn insufficient_scope_body_names_the_missing_scopes() {
        let err = AuthError::insufficient_scope(["data:admin"]);
        let body = Rejection::new(&err, &Challenge::bearer()).json_body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "insufficient_scope");
        assert_eq!(v["scope"], "data:admin");
    }

    #[test]
    fn custom_scheme_names_must_be_tokens() {
        assert!(Scheme::custom("HMAC-SHA256").is_ok());
        assert!(Scheme::custom("bad scheme").is_err());
        assert!(Scheme::custom("").is_err());
    }
}
