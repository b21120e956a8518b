//! The canonical form resource URIs are matched in (see [`ScopePolicy`]'s "Resource URIs"), and
//! the URIs refused as ambiguous.
//!
//! [`ScopePolicy`]: super::ScopePolicy

use std::borrow::Cow;

/// A resource URI that could name another resource than its text says.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct AmbiguousUri;

/// Whether `s` is an RFC 3986 scheme (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`).
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Splits `uri` into scheme (with its `:`), authority (with its `//`), and the rest.
fn split_uri(uri: &str) -> (&str, &str, &str) {
    // Every split point follows an ASCII character, so the checked splits always succeed.
    let (scheme, rest) = uri
        .find(':')
        .filter(|&i| uri.get(..i).is_some_and(is_scheme))
        .and_then(|i| uri.split_at_checked(i + 1))
        .unwrap_or(("", uri));
    if rest.starts_with("//") {
        let end = rest
            .get(2..)
            .and_then(|r| r.find(['/', '?', '#']))
            .map_or(rest.len(), |i| i + 2);
        let (authority, rest) = rest.split_at_checked(end).unwrap_or((rest, ""));
        (scheme, authority, rest)
    } else {
        (scheme, "", rest)
    }
}

/// Scheme and host in lower case, percent-encodings in upper-case hex: the case-insensitive
/// parts of a URI folded, nothing else changed (rules are read this way too).
pub(super) fn fold_case(uri: &str) -> Cow<'_, str> {
    let (scheme, authority, rest) = split_uri(uri);
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let (userinfo, host) = authority
        .split_at_checked(host_start)
        .unwrap_or(("", authority));
    let lower_hex = {
        let b = uri.as_bytes();
        b.iter().enumerate().any(|(i, &c)| {
            c == b'%'
                && b.get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().any(u8::is_ascii_lowercase))
        })
    };
    if !lower_hex
        && !scheme.bytes().any(|b| b.is_ascii_uppercase())
        && !host.bytes().any(|b| b.is_ascii_uppercase())
    {
        return Cow::Borrowed(uri);
    }
    let mut out = String::with_capacity(uri.len());
    out.push_str(&scheme.to_ascii_lowercase());
    out.push_str(userinfo);
    out.push_str(&host.to_ascii_lowercase());
    out.push_str(rest);
    // Upper-case the two hex digits after each `%` (ASCII only, so char boundaries hold).
    let mut hex_left = 0u8;
    Cow::Owned(
        out.chars()
            .map(|c| {
                if hex_left > 0 {
                    hex_left -= 1;
                    c.to_ascii_uppercase()
                } else {
                    if c == '%' {
                        hex_left = 2;
                    }
                    c
                }
            })
            .collect(),
    )
}

/// The canonical form rules are matched on (see [`ScopePolicy`](super::ScopePolicy)'s "Resource
/// URIs"), or `Err` for a URI a handler could resolve to another resource than its text names.
pub(super) fn canonical_uri(uri: &str) -> Result<Cow<'_, str>, AmbiguousUri> {
    if uri.bytes().any(|b| b.is_ascii_control() || b == b'\\') {
        return Err(AmbiguousUri);
    }
    let (_, authority, rest) = split_uri(uri);
    if authority.contains('@') {
        return Err(AmbiguousUri);
    }
    // Percent-encodings: two hex digits, and never a character that needs no encoding
    // (unreserved), a separator a handler may decode (`/`, `\`) or `%` itself (double
    // decoding).
    let bytes = uri.as_bytes();
    for (i, _) in bytes.iter().enumerate().filter(|&(_, &b)| b == b'%') {
        let decoded = match bytes.get(i + 1..i + 3) {
            Some(&[h, l]) => match (hex(h), hex(l)) {
                (Some(h), Some(l)) => h * 16 + l,
                _ => return Err(AmbiguousUri),
            },
            _ => return Err(AmbiguousUri),
        };
        if decoded.is_ascii_alphanumeric()
            || matches!(decoded, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\' | b'%')
        {
            return Err(AmbiguousUri);
        }
    }
    // Dot segments and empty segments in the path (the part before `?` / `#`).
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.split('/');
    // An absolute path starts with an empty segment; a relative one does not.
    if path.starts_with('/') {
        segments.next();
    }
    let mut segments = segments.peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if matches!(segment, "." | "..") || (segment.is_empty() && !last) {
            return Err(AmbiguousUri);
        }
    }
    Ok(fold_case(uri))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}
