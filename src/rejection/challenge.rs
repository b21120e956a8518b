//! The challenge side of a refusal: the [`Scheme`]s a layer offers and the [`Challenge`]
//! configuration that renders `WWW-Authenticate` values, with the quoting rules of RFC 9110
//! and RFC 6750.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};

use super::error_code;
use crate::error::{AuthError, AuthErrorKind, ConfigError};
use crate::request_info::TrustedProxies;

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

    /// `DPoP algs="…"` (RFC 9449 §7.1): DPoP-bound tokens, with the proof algorithms the
    /// server accepts.
    ///
    /// ```
    /// use mcp_auth::Scheme;
    /// assert_eq!(Scheme::dpop(["ES256", "EdDSA"]).name(), "DPoP");
    /// ```
    #[must_use]
    pub fn dpop<I: IntoIterator<Item = S>, S: AsRef<str>>(algs: I) -> Self {
        let algs = join_scopes(algs.into_iter());
        let params = if algs.is_empty() {
            Vec::new()
        } else {
            vec![(Cow::Borrowed("algs"), algs)]
        };
        Self {
            name: Cow::Borrowed("DPoP"),
            params,
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

    /// Whether this is the `DPoP` scheme (case-insensitive).
    fn is_dpop(&self) -> bool {
        self.name.eq_ignore_ascii_case("dpop")
    }

    /// Whether this is the `Bearer` scheme (case-insensitive).
    pub(crate) fn is_bearer(&self) -> bool {
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
        match fwd
            .proxies
            .forwarded_origin(&parts.headers, &parts.extensions)
        {
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

    /// The `WWW-Authenticate` value for `scheme` refusing `err`.
    pub(super) fn render(&self, scheme: &Scheme, err: &AuthError) -> HeaderValue {
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
        // DPoP's own errors belong to the DPoP challenge; the others to every scheme.
        let dpop_only = matches!(
            err.kind(),
            AuthErrorKind::InvalidDpopProof | AuthErrorKind::UseDpopNonce
        );
        let code = error_code(err.kind()).filter(|_| !dpop_only || scheme.is_dpop());
        if let Some(code) = code {
            param(&mut out, "error", code);
            if let Some(desc) = err.description() {
                param(&mut out, "error_description", &description_chars(desc));
            }
        }
        if code.is_some() && !err.acr_values().is_empty() {
            param(
                &mut out,
                "acr_values",
                &join_scopes(err.acr_values().iter()),
            );
        }
        if let Some(max_age) = err.max_age().filter(|_| code.is_some()) {
            param(&mut out, "max_age", &max_age.to_string());
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

/// Scopes in the OAuth `scope` format: joined by single spaces, in the given order, empty
/// entries left out. The one join for every `scope` this crate sends (challenges, JSON
/// bodies, MCP errors).
pub(crate) fn join_scopes<S: AsRef<str>>(scopes: impl Iterator<Item = S>) -> String {
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

#[cfg(test)]
mod tests {
    use http::HeaderName;

    use super::*;
    use crate::rejection::Rejection;

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
    fn custom_scheme_names_must_be_tokens() {
        assert!(Scheme::custom("HMAC-SHA256").is_ok());
        assert!(Scheme::custom("bad scheme").is_err());
        assert!(Scheme::custom("").is_err());
    }
}
