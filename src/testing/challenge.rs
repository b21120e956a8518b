//! Reading `WWW-Authenticate` challenges (RFC 9110 §11.6.1) and asserting on them in tests.

use std::collections::HashSet;
use std::fmt;

use http::HeaderMap;
use http::header::WWW_AUTHENTICATE;

use super::fail;

/// One challenge of a `WWW-Authenticate` header: a scheme and either auth-params or a token68.
/// Scheme and parameter names compare case-insensitively; values as sent (quoted strings
/// unescaped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedChallenge {
    scheme: String,
    params: Vec<(String, String)>,
    token68: Option<String>,
}

impl ParsedChallenge {
    /// The auth-scheme as sent (`Bearer`).
    #[must_use]
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// Whether the scheme is `scheme` (case-insensitive).
    #[must_use]
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The auth-params in order, names as sent and values unescaped.
    #[must_use]
    pub fn params(&self) -> &[(String, String)] {
        &self.params
    }

    /// The value of the parameter `name` (case-insensitive).
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The token68 of a challenge that carries one instead of parameters
    /// (`Negotiate abc==`).
    #[must_use]
    pub fn token68(&self) -> Option<&str> {
        self.token68.as_deref()
    }

    /// The `scope` parameter split on spaces (empty without one).
    #[must_use]
    pub fn scopes(&self) -> Vec<&str> {
        self.param("scope")
            .map(|s| s.split(' ').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default()
    }
}

impl fmt::Display for ParsedChallenge {
    /// The challenge in its canonical form: every parameter value quoted.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.scheme)?;
        if let Some(t) = &self.token68 {
            return write!(f, " {t}");
        }
        for (i, (name, value)) in self.params.iter().enumerate() {
            let sep = if i == 0 { " " } else { ", " };
            write!(f, "{sep}{name}=\"")?;
            for c in value.chars() {
                if c == '"' || c == '\\' {
                    f.write_str("\\")?;
                }
                write!(f, "{c}")?;
            }
            f.write_str("\"")?;
        }
        Ok(())
    }
}

/// Why a `WWW-Authenticate` value could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeParseError {
    header: usize,
    offset: usize,
    reason: &'static str,
}

impl ChallengeParseError {
    /// Which `WWW-Authenticate` header (0 for the first).
    #[must_use]
    pub fn header(&self) -> usize {
        self.header
    }

    /// The byte offset in that header's value where reading stopped.
    #[must_use]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// What was wrong.
    #[must_use]
    pub fn reason(&self) -> &str {
        self.reason
    }
}

impl fmt::Display for ChallengeParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WWW-Authenticate header {} at byte {}: {}",
            self.header, self.offset, self.reason
        )
    }
}

impl std::error::Error for ChallengeParseError {}

/// Every challenge of every `WWW-Authenticate` header, in order.
///
/// The grammar is RFC 9110 §11.6.1: `#challenge`, each `auth-scheme [ 1*SP ( token68 /
/// #auth-param ) ]`, an auth-param `token BWS "=" BWS ( token / quoted-string )`; empty list
/// elements (`, ,`) are skipped. A parameter named twice in one challenge, a parameter before
/// any scheme, or one after a token68 is an error. Linear in the length of the headers.
///
/// # Errors
///
/// When a header does not follow the grammar (an unclosed quoted string, a missing comma, a
/// character that cannot start a token, …).
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use mcp_auth::testing::challenges;
///
/// let mut headers = HeaderMap::new();
/// headers.append("www-authenticate", HeaderValue::from_static(
///     r#"Bearer error="invalid_token", scope="a b", DPoP algs="ES256""#));
/// headers.append("www-authenticate", HeaderValue::from_static("Basic realm=x"));
/// let all = challenges(&headers).unwrap();
/// assert_eq!(all.len(), 3);
/// assert!(all[0].is("bearer"));
/// assert_eq!(all[0].param("ERROR"), Some("invalid_token"));
/// assert_eq!(all[0].scopes(), ["a", "b"]);
/// assert_eq!(all[1].param("algs"), Some("ES256"));
/// assert_eq!(all[2].param("realm"), Some("x"));
/// ```
pub fn challenges(headers: &HeaderMap) -> Result<Vec<ParsedChallenge>, ChallengeParseError> {
    let mut out = Vec::new();
    for (i, value) in headers.get_all(WWW_AUTHENTICATE).iter().enumerate() {
        parse_into(value.as_bytes(), i, &mut out)?;
    }
    Ok(out)
}

/// The challenges of one `WWW-Authenticate` value (see [`challenges`]).
///
/// # Errors
///
/// As [`challenges`].
pub fn parse_challenges(value: &str) -> Result<Vec<ParsedChallenge>, ChallengeParseError> {
    let mut out = Vec::new();
    parse_into(value.as_bytes(), 0, &mut out)?;
    Ok(out)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A cursor over one header value. Every loop advances `pos`, so reading is linear.
struct Reader<'a> {
    input: &'a [u8],
    pos: usize,
    header: usize,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn peek_at(&self, at: usize) -> Option<u8> {
        self.input.get(at).copied()
    }

    fn error(&self, reason: &'static str) -> ChallengeParseError {
        ChallengeParseError {
            header: self.header,
            offset: self.pos,
            reason,
        }
    }

    fn skip_ows(&mut self) {
        while self.peek().is_some_and(is_ows) {
            self.pos += 1;
        }
    }

    /// Skips whitespace and empty list elements.
    fn skip_separators(&mut self) {
        while self.peek().is_some_and(|b| is_ows(b) || b == b',') {
            self.pos += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.pos;
        while self.peek().is_some_and(is_tchar) {
            self.pos += 1;
        }
        let bytes = self.input.get(start..self.pos)?;
        (!bytes.is_empty()).then(|| String::from_utf8_lossy(bytes).into_owned())
    }

    /// A token68 at the cursor, when one is there and ends the list element (`1*char *"="`,
    /// then whitespace, then a comma or the end); the cursor does not move otherwise.
    fn token68(&mut self) -> Option<String> {
        let start = self.pos;
        let mut at = start;
        while self.peek_at(at).is_some_and(is_token68_char) {
            at += 1;
        }
        if at == start {
            return None;
        }
        while self.peek_at(at) == Some(b'=') {
            at += 1;
        }
        let end = at;
        while self.peek_at(at).is_some_and(is_ows) {
            at += 1;
        }
        if !matches!(self.peek_at(at), None | Some(b',')) {
            return None;
        }
        let bytes = self.input.get(start..end)?;
        self.pos = end;
        Some(String::from_utf8_lossy(bytes).into_owned())
    }

    /// A quoted string at the cursor (which is on the opening quote), unescaped.
    fn quoted(&mut self) -> Result<String, ChallengeParseError> {
        let open = self.pos;
        self.pos += 1;
        let mut value = Vec::new();
        loop {
            match self.peek() {
                None => {
                    self.pos = open;
                    return Err(self.error("unclosed quoted string"));
                }
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(String::from_utf8_lossy(&value).into_owned());
                }
                Some(b'\\') => {
                    let Some(next) = self.peek_at(self.pos + 1) else {
                        self.pos = open;
                        return Err(self.error("unclosed quoted string"));
                    };
                    value.push(next);
                    self.pos += 2;
                }
                Some(b) if b == b'\t' || b >= 0x20 && b != 0x7f => {
                    value.push(b);
                    self.pos += 1;
                }
                Some(_) => return Err(self.error("control character in a quoted string")),
            }
        }
    }

    /// After a list element: whitespace, then a comma or the end.
    fn end_of_element(&mut self) -> Result<(), ChallengeParseError> {
        self.skip_ows();
        match self.peek() {
            None | Some(b',') => Ok(()),
            Some(_) => Err(self.error("expected a comma or the end")),
        }
    }
}

/// Reads `= value` (the cursor is on the `=`) and the end of the list element, adding the
/// parameter `name` (which started at `start`) to `current`.
fn read_param(
    r: &mut Reader<'_>,
    current: &mut Open,
    name: String,
    start: usize,
) -> Result<(), ChallengeParseError> {
    r.pos += 1;
    r.skip_ows();
    let value = if r.peek() == Some(b'"') {
        r.quoted()?
    } else {
        r.token()
            .ok_or_else(|| r.error("expected a token or a quoted string"))?
    };
    if !current.names.insert(name.to_ascii_lowercase()) {
        r.pos = start;
        return Err(r.error("a parameter named twice in one challenge"));
    }
    current.challenge.params.push((name, value));
    r.end_of_element()
}

/// One challenge being read, with the lowercase names of its parameters so far.
struct Open {
    challenge: ParsedChallenge,
    names: HashSet<String>,
}

fn parse_into(
    input: &[u8],
    header: usize,
    out: &mut Vec<ParsedChallenge>,
) -> Result<(), ChallengeParseError> {
    let mut r = Reader {
        input,
        pos: 0,
        header,
    };
    let mut open: Option<Open> = None;
    loop {
        r.skip_separators();
        if r.peek().is_none() {
            break;
        }
        let start = r.pos;
        let Some(name) = r.token() else {
            return Err(r.error("expected an auth-scheme or a parameter name"));
        };
        let had_space = r.peek().is_some_and(is_ows);
        r.skip_ows();
        if r.peek() == Some(b'=') {
            // An auth-param of the open challenge.
            let Some(current) = open.as_mut() else {
                r.pos = start;
                return Err(r.error("a parameter before any auth-scheme"));
            };
            if current.challenge.token68.is_some() {
                r.pos = start;
                return Err(r.error("a parameter after a token68"));
            }
            read_param(&mut r, current, name, start)?;
            continue;
        }
        // A new challenge: `name` is its scheme.
        if let Some(done) = open.take() {
            out.push(done.challenge);
        }
        let mut current = Open {
            challenge: ParsedChallenge {
                scheme: name,
                params: Vec::new(),
                token68: None,
            },
            names: HashSet::new(),
        };
        match r.peek() {
            None | Some(b',') => {}
            Some(_) if !had_space => return Err(r.error("expected a space after the scheme")),
            Some(_) => {
                if let Some(t) = r.token68() {
                    current.challenge.token68 = Some(t);
                } else {
                    // Then it is the challenge's first auth-param: a bare token here would be
                    // a second challenge without the comma before it.
                    let param_start = r.pos;
                    let param_name = r.token();
                    r.skip_ows();
                    match param_name {
                        Some(param_name) if r.peek() == Some(b'=') => {
                            read_param(&mut r, &mut current, param_name, param_start)?;
                        }
                        _ => {
                            r.pos = param_start;
                            return Err(r.error("expected a token68 or an auth-param"));
                        }
                    }
                }
            }
        }
        open = Some(current);
    }
    if let Some(done) = open {
        out.push(done.challenge);
    }
    Ok(())
}

/// Asserts that `headers` carry a `scheme` challenge (case-insensitive) and returns it for
/// more assertions; each panics with the headers and the parsed challenges in its message.
///
/// ```
/// use http::{HeaderMap, HeaderValue};
/// use mcp_auth::testing::assert_challenge;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("www-authenticate", HeaderValue::from_static(
///     r#"Bearer error="insufficient_scope", scope="data:read data:write", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp""#));
/// assert_challenge(&headers, "Bearer")
///     .first()
///     .error("insufficient_scope")
///     .param("resource_metadata", "https://mcp.example.com/.well-known/oauth-protected-resource/mcp")
///     .scope_contains("data:write")
///     .no_param("realm");
/// ```
///
/// # Panics
///
/// When the headers do not parse or carry no `scheme` challenge.
#[track_caller]
pub fn assert_challenge(headers: &HeaderMap, scheme: &str) -> ChallengeAssert {
    let all = match challenges(headers) {
        Ok(all) => all,
        Err(e) => fail(format_args!(
            "WWW-Authenticate does not parse ({e}): {:?}",
            raw(headers)
        )),
    };
    let found = all.iter().enumerate().find(|(_, c)| c.is(scheme));
    let Some((index, challenge)) = found.map(|(i, c)| (i, c.clone())) else {
        fail(format_args!(
            "no {scheme} challenge in WWW-Authenticate {:?}",
            raw(headers)
        ))
    };
    ChallengeAssert {
        challenge,
        all,
        index,
    }
}

/// Asserts that `headers` carry no `WWW-Authenticate` header.
///
/// # Panics
///
/// When they do.
#[track_caller]
pub fn assert_no_challenge(headers: &HeaderMap) {
    if headers.contains_key(WWW_AUTHENTICATE) {
        fail(format_args!(
            "expected no WWW-Authenticate, found {:?}",
            raw(headers)
        ));
    }
}

fn raw(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(WWW_AUTHENTICATE)
        .iter()
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .collect()
}

/// Assertions on one challenge, from [`assert_challenge`]. Each returns `self` to chain more,
/// and panics with a readable message when it fails.
#[derive(Debug, Clone)]
pub struct ChallengeAssert {
    challenge: ParsedChallenge,
    all: Vec<ParsedChallenge>,
    index: usize,
}

impl ChallengeAssert {
    /// The challenge under test.
    #[must_use]
    pub fn challenge(&self) -> &ParsedChallenge {
        &self.challenge
    }

    /// Every challenge of the response, in order.
    #[must_use]
    pub fn all(&self) -> &[ParsedChallenge] {
        &self.all
    }

    #[track_caller]
    fn failed(&self, what: fmt::Arguments<'_>) -> ! {
        let rendered: Vec<String> = self.all.iter().map(ToString::to_string).collect();
        fail(format_args!(
            "{what}\n  challenge: {}\n  all challenges: {rendered:?}",
            self.challenge()
        ))
    }

    /// Asserts `error="<code>"`.
    #[track_caller]
    pub fn error(self, code: &str) -> Self {
        self.param("error", code)
    }

    /// Asserts there is no `error` parameter (a challenge to a request without credentials).
    #[track_caller]
    pub fn no_error(self) -> Self {
        self.no_param("error")
    }

    /// Asserts the parameter `name` (case-insensitive) has exactly `value`.
    #[track_caller]
    pub fn param(self, name: &str, value: &str) -> Self {
        match self.challenge().param(name) {
            Some(v) if v == value => self,
            Some(v) => self.failed(format_args!("expected {name}={value:?}, found {v:?}")),
            None => self.failed(format_args!("expected {name}={value:?}, found no {name}")),
        }
    }

    /// Asserts the parameter `name` is present (any value).
    #[track_caller]
    pub fn has_param(self, name: &str) -> Self {
        if self.challenge().param(name).is_none() {
            self.failed(format_args!("expected a {name} parameter"));
        }
        self
    }

    /// Asserts the parameter `name` is absent.
    #[track_caller]
    pub fn no_param(self, name: &str) -> Self {
        if let Some(v) = self.challenge().param(name) {
            self.failed(format_args!("expected no {name}, found {name}={v:?}"));
        }
        self
    }

    /// Asserts the `scope` parameter lists `scope` (space-separated, exact match per scope).
    #[track_caller]
    pub fn scope_contains(self, scope: &str) -> Self {
        if !self.challenge().scopes().contains(&scope) {
            self.failed(format_args!("expected scope to list {scope:?}"));
        }
        self
    }

    /// Asserts this challenge is the first of the response (MCP clients read the first).
    #[track_caller]
    pub fn first(self) -> Self {
        if self.index != 0 {
            self.failed(format_args!("expected this challenge to come first"));
        }
        self
    }
}

#[cfg(test)]
mod tests;
