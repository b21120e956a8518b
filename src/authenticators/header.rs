//! Strict credential extraction from request headers, shared by every layer and usable by
//! custom authenticators.
//!
//! | input | result |
//! |---|---|
//! | no `Authorization`, or another scheme (`Basic …`) | [`MissingCredentials`](crate::AuthErrorKind::MissingCredentials) |
//! | `Bearer <token68>`, scheme in any case, one or more spaces | the token |
//! | `Bearer`, `Bearer `, `Bearer a b`, `Bearer\tx`, non-ASCII, longer than [`MAX_BEARER_LEN`] | [`InvalidToken`](crate::AuthErrorKind::InvalidToken) |
//! | two `Authorization` headers | [`InvalidRequest`](crate::AuthErrorKind::InvalidRequest) |
//! | `access_token` or `api_key` in the query string (any case, percent-encoded or not) | [`InvalidRequest`](crate::AuthErrorKind::InvalidRequest) |
//!
//! # Example
//!
//! ```
//! use mcp_auth::authenticators::header::bearer_token;
//! use mcp_auth::AuthErrorKind;
//!
//! let parts = |v: &str| http::Request::builder().header("authorization", v).body(()).unwrap().into_parts().0;
//! assert_eq!(bearer_token(&parts("bEaReR  abc.def")).unwrap(), "abc.def");
//! assert_eq!(bearer_token(&parts("Basic dTpw")).unwrap_err().kind(), AuthErrorKind::MissingCredentials);
//! assert_eq!(bearer_token(&parts("Bearer a b")).unwrap_err().kind(), AuthErrorKind::InvalidToken);
//! ```

use http::request::Parts;
use http::{HeaderName, HeaderValue, header::AUTHORIZATION};

use crate::error::AuthError;
use crate::request_info::only_value;

/// Longest bearer token accepted (8 KiB). Longer values are refused before any work.
pub const MAX_BEARER_LEN: usize = 8 * 1024;

/// The only value of header `name`: `Ok(None)` when absent, 400 `invalid_request` when it
/// appears more than once.
///
/// # Errors
///
/// [`AuthError::invalid_request`] for a repeated header.
pub fn single_header<'a>(
    parts: &'a Parts,
    name: &HeaderName,
) -> Result<Option<&'a HeaderValue>, AuthError> {
    only_value(&parts.headers, name)
        .map_err(|_| AuthError::invalid_request("the credential header appears more than once"))
}

/// Whether `b` may appear in an RFC 6750 b64token / RFC 9110 token68 (before the trailing `=`).
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
}

/// Whether `s` is a token68: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
#[must_use]
pub fn is_token68(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty() && body.bytes().all(is_token68_char)
}

/// Whether `b` may appear in a static bearer token (token68 characters and `=`).
#[cfg(feature = "bearer")]
pub(crate) fn is_token68_byte(b: u8) -> bool {
    is_token68_char(b) || b == b'='
}

/// Visible ASCII except space: what an API key header value may hold.
#[cfg(feature = "api-key")]
pub(crate) fn is_visible_ascii(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// Query parameters that name a credential, refused by [`reject_query_token`].
pub const QUERY_CREDENTIAL_NAMES: [&str; 2] = ["access_token", "api_key"];

/// Refuses a request that carries a credential parameter ([`QUERY_CREDENTIAL_NAMES`]:
/// `access_token`, `api_key`) in its query string (MCP: tokens must not be in the URI;
/// RFC 6750 §2.3 is not supported). Names are compared without case and after
/// percent-decoding (`acc%65ss_token`, `api%5Fkey`), with or without a value.
///
/// # Errors
///
/// [`AuthError::invalid_request`] when the query has such a parameter.
pub fn reject_query_token(parts: &Parts) -> Result<(), AuthError> {
    reject_query_credential(parts, None)
}

/// [`reject_query_token`], also refusing the parameter `extra` (an API key header's name).
pub(crate) fn reject_query_credential(parts: &Parts, extra: Option<&str>) -> Result<(), AuthError> {
    let Some(query) = parts.uri.query() else {
        return Ok(());
    };
    let found = query.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        QUERY_CREDENTIAL_NAMES
            .iter()
            .copied()
            .chain(extra)
            .any(|want| name_matches(name, want))
    });
    if found {
        Err(AuthError::invalid_request(
            "credentials must not be sent in the query string",
        ))
    } else {
        Ok(())
    }
}

/// Whether the raw query parameter `name`, percent-decoded, equals `want` without case.
/// Allocation-free; an invalid `%` escape stands for itself.
fn name_matches(name: &str, want: &str) -> bool {
    let mut raw = name.bytes();
    let mut want = want.bytes();
    loop {
        let decoded = match raw.next() {
            None => return want.next().is_none(),
            Some(b'%') => {
                let mut ahead = raw.clone();
                match (
                    ahead.next().and_then(hex_value),
                    ahead.next().and_then(hex_value),
                ) {
                    (Some(hi), Some(lo)) => {
                        raw = ahead;
                        hi.wrapping_mul(16).wrapping_add(lo)
                    }
                    _ => b'%',
                }
            }
            Some(b) => b,
        };
        match want.next() {
            Some(w) if w.eq_ignore_ascii_case(&decoded) => {}
            _ => return false,
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

const MALFORMED: &str = "malformed bearer token";

/// The bearer token of the request (see the [module docs](self) for every case).
///
/// # Errors
///
/// Missing credentials (no header or another scheme), an invalid token (bad syntax), or an
/// invalid request (two headers, a token in the query string).
pub fn bearer_token(parts: &Parts) -> Result<&str, AuthError> {
    reject_query_token(parts)?;
    let Some(value) = single_header(parts, &AUTHORIZATION)? else {
        return Err(AuthError::missing_credentials());
    };
    parse_bearer(value.as_bytes())
}

/// The access token of the request and the scheme it came with: `Bearer` or `DPoP` (RFC 9449
/// §7.1), the same syntax for both.
///
/// # Errors
///
/// As [`bearer_token`]: missing credentials (no header, or another scheme), an invalid
/// token, an invalid request.
#[cfg(feature = "dpop")]
pub(crate) fn access_token(parts: &Parts) -> Result<(TokenScheme, &str), AuthError> {
    reject_query_token(parts)?;
    let Some(value) = single_header(parts, &AUTHORIZATION)? else {
        return Err(AuthError::missing_credentials());
    };
    let raw = value.as_bytes();
    match parse_scheme_token(raw, b"dpop") {
        Err(e) if e.kind() == crate::error::AuthErrorKind::MissingCredentials => {
            parse_bearer(raw).map(|t| (TokenScheme::Bearer, t))
        }
        other => other.map(|t| (TokenScheme::Dpop, t)),
    }
}

/// The scheme an access token came with.
#[cfg(feature = "dpop")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenScheme {
    Bearer,
    Dpop,
}

/// Parses an `Authorization` value as `Bearer <token68>`.
pub(crate) fn parse_bearer(raw: &[u8]) -> Result<&str, AuthError> {
    parse_scheme_token(raw, b"bearer")
}

/// Parses an `Authorization` value as `<scheme> <token68>` (`want`: the scheme in lower case).
fn parse_scheme_token<'r>(raw: &'r [u8], want: &[u8]) -> Result<&'r str, AuthError> {
    let scheme_len = raw
        .iter()
        .position(|&b| b == b' ' || b == b'\t')
        .unwrap_or(raw.len());
    let (scheme, rest) = raw.split_at_checked(scheme_len).unwrap_or((raw, &[]));
    if !scheme.eq_ignore_ascii_case(want) {
        return Err(AuthError::missing_credentials());
    }
    if raw.len() > MAX_BEARER_LEN + 16 {
        return Err(AuthError::invalid_token(MALFORMED));
    }
    // RFC 6750 §2.1: "Bearer" 1*SP b64token. Several spaces are tolerated; a tab is not.
    let token = match (rest.first(), rest.iter().position(|&b| b != b' ')) {
        (Some(b' '), Some(start)) => rest.get(start..).unwrap_or_default(),
        _ => return Err(AuthError::invalid_token(MALFORMED)),
    };
    match std::str::from_utf8(token) {
        Ok(t) if t.len() <= MAX_BEARER_LEN && is_token68(t) => Ok(t),
        _ => Err(AuthError::invalid_token(MALFORMED)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AuthErrorKind;

    fn kind(raw: &[u8]) -> Result<&str, AuthErrorKind> {
        parse_bearer(raw).map_err(|e| e.kind())
    }

    /// Asserts that every value of `values` is refused with `want`.
    fn assert_each_refused(values: &[&str], want: AuthErrorKind) {
        for v in values {
            assert_eq!(kind(v.as_bytes()), Err(want), "{v:?}");
        }
    }

    #[test]
    fn scheme_is_case_insensitive() {
        for v in ["Bearer abc", "bearer abc", "BEARER abc", "bEaReR abc"] {
            assert_eq!(kind(v.as_bytes()), Ok("abc"), "{v}");
        }
    }

    #[test]
    fn several_spaces_before_the_token_are_tolerated() {
        assert_eq!(kind(b"Bearer    abc"), Ok("abc"));
    }

    #[test]
    fn tab_separator_is_an_invalid_token() {
        assert_eq!(kind(b"Bearer\tabc"), Err(AuthErrorKind::InvalidToken));
    }

    #[test]
    fn empty_or_bare_bearer_is_an_invalid_token() {
        assert_each_refused(
            &["Bearer", "Bearer ", "Bearer    "],
            AuthErrorKind::InvalidToken,
        );
    }

    #[test]
    fn tokens_outside_b64token_are_invalid() {
        assert_each_refused(
            &[
                "Bearer a b",
                "Bearer abc,def",
                "Bearer \"abc\"",
                "Bearer a, Bearer b",
                "Bearer abc ",
                "Bearer =abc",
            ],
            AuthErrorKind::InvalidToken,
        );
    }

    #[test]
    fn trailing_padding_is_allowed() {
        assert_eq!(kind(b"Bearer abc=="), Ok("abc=="));
    }

    #[test]
    fn other_schemes_count_as_missing_credentials() {
        assert_each_refused(
            &[
                "Basic dXNlcjpwYXNz",
                "Digest x",
                "Bearerx abc",
                "",
                "DPoP abc",
            ],
            AuthErrorKind::MissingCredentials,
        );
    }

    #[test]
    fn non_ascii_bytes_are_an_invalid_token() {
        assert_eq!(
            kind("Bearer abcé".as_bytes()),
            Err(AuthErrorKind::InvalidToken)
        );
        assert_eq!(kind(b"Bearer abc\xff"), Err(AuthErrorKind::InvalidToken));
    }

    #[test]
    fn oversized_token_is_refused_without_parsing() {
        let mut v = b"Bearer ".to_vec();
        v.extend(std::iter::repeat_n(b'a', MAX_BEARER_LEN + 1));
        assert_eq!(kind(&v), Err(AuthErrorKind::InvalidToken));
    }

    #[test]
    fn repeated_header_is_an_invalid_request() {
        let req = http::Request::builder()
            .header("authorization", "Bearer a")
            .header("authorization", "Bearer b")
            .body(())
            .unwrap();
        let err = bearer_token(&req.into_parts().0).unwrap_err();
        assert_eq!(err.kind(), AuthErrorKind::InvalidRequest);
    }

    #[test]
    fn query_string_token_is_an_invalid_request() {
        for uri in [
            "/mcp?access_token=abc",
            "/mcp?x=1&ACCESS_TOKEN=abc",
            "/mcp?access_token",
            "/mcp?api_key=abc",
            "/mcp?API_KEY",
            "/mcp?access%5Ftoken=abc",
            "/mcp?acc%65ss_token=abc",
            "/mcp?%61%63%63%65%73%73%5f%74%6f%6b%65%6e=abc",
            "/mcp?x=1&api%5fkey=abc",
        ] {
            let req = http::Request::builder()
                .uri(uri)
                .header("authorization", "Bearer a")
                .body(())
                .unwrap();
            let err = bearer_token(&req.into_parts().0).unwrap_err();
            assert_eq!(err.kind(), AuthErrorKind::InvalidRequest, "{uri}");
        }
        for uri in [
            "/mcp?my_access_token=1",
            "/mcp?access_token_x=1",
            "/mcp?access%5",
            "/mcp?api%5gkey=1",
            "/mcp?x=access_token",
        ] {
            let req = http::Request::builder().uri(uri).body(()).unwrap();
            assert_eq!(
                bearer_token(&req.into_parts().0).unwrap_err().kind(),
                AuthErrorKind::MissingCredentials,
                "{uri}"
            );
        }
        let req = http::Request::builder()
            .uri("/mcp?my_access_token=1")
            .body(())
            .unwrap();
        assert_eq!(
            bearer_token(&req.into_parts().0).unwrap_err().kind(),
            AuthErrorKind::MissingCredentials
        );
    }
}
