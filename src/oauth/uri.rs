//! Resource and endpoint URIs: the canonical form used for audience comparisons (RFC 8707),
//! the well-known metadata path (RFC 9728 §3.1) and the HTTPS rule for configured URLs.

use crate::error::ConfigError;

/// The well-known path of RFC 9728 metadata (§3.1).
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// The canonical form of a resource URI for comparisons (RFC 8707, MCP "Canonical Server
/// URI"): scheme and host lowercased, one trailing slash removed; path, query and userinfo
/// kept as they are. Values that are not URLs (`api://x` is one, `My-API` is not) are
/// returned unchanged but for the trailing slash.
///
/// ```
/// use mcp_auth::oauth::canonical_resource;
///
/// assert_eq!(canonical_resource("HTTPS://MCP.Example.COM/Mcp/"), "https://mcp.example.com/Mcp");
/// assert_eq!(canonical_resource("My-API"), "My-API");
/// ```
#[must_use]
pub fn canonical_resource(uri: &str) -> String {
    // One trailing slash goes (`https://h/mcp/` = `https://h/mcp`); `//` is a different
    // path and stays, which keeps this idempotent.
    let trimmed = match uri.strip_suffix('/') {
        Some(t) if !t.ends_with('/') => t,
        _ => uri,
    };
    let Some((scheme, rest)) = trimmed.split_once("://") else {
        return trimmed.to_owned();
    };
    let (authority, path) = match rest.find(['/', '?', '#']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    // Keep userinfo as is (it is case-sensitive); lowercase the host and port.
    let authority = match authority.rsplit_once('@') {
        Some((user, host)) => format!("{user}@{}", host.to_ascii_lowercase()),
        None => authority.to_ascii_lowercase(),
    };
    format!("{}://{authority}{path}", scheme.to_ascii_lowercase())
}

/// Refuses URLs that are not `https://`, except plain `http://` to a loopback host (local
/// identity providers, development servers and tests). The URL is parsed once, with the
/// parser the HTTP client uses (WHATWG, the `url` crate), so the host checked is the host
/// connected to; userinfo (`user@`) is refused.
pub(crate) fn check_url(setting: &str, url: &str) -> Result<(), ConfigError> {
    let refuse = || {
        ConfigError::new(
            setting,
            "must be an https:// URL (http:// only for loopback hosts), without user@",
        )
    };
    let parsed = url::Url::parse(url).map_err(|_| refuse())?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(refuse());
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(refuse()),
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(refuse()),
    }
}

/// Splits `scheme://authority` from the path and query of an absolute URL.
pub(crate) fn split_origin(url: &str) -> Option<(&str, &str)> {
    let after = url.find("://")? + 3;
    let end = url[after..]
        .find(['/', '?'])
        .map_or(url.len(), |i| after + i);
    Some(url.split_at(end))
}

/// The RFC 9728 §3.1 path for a resource whose path and query are `path_and_query`:
/// the well-known path inserted before the resource's path, the query kept.
pub(crate) fn well_known_path_for(path_and_query: &str) -> String {
    let (path, query) = match path_and_query.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_and_query, None),
    };
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut out = format!("{WELL_KNOWN_PATH}{path}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_with_the_parser_the_client_uses() {
        for ok in [
            "https://idp.example.com/jwks",
            "https://idp.example.com:8443",
            "http://127.0.0.1:8080/jwks",
            "http://127.9.0.1/x",
            "http://localhost/jwks",
            "http://LOCALHOST:9/jwks",
            "http://[::1]:9/x",
        ] {
            assert!(check_url("u", ok).is_ok(), "{ok}");
        }
        for bad in [
            // L1: reqwest connects to evil.example; `\\` ends the authority for http(s).
            "http://evil.example\\@localhost/",
            "http://idp.evil.example\\@127.0.0.1/jwks",
            "http://evil@localhost/",
            "https://user:pass@idp.example.com/",
            "https://user@idp.example.com/",
            "http://idp.example.com/jwks",
            "http://127.0.0.1.evil.com/",
            "http://localhost.evil.com/",
            "http://[::2]/",
            "ftp://x",
            "https://",
            "not a url",
            "file:///etc/passwd",
        ] {
            let err = check_url("jwks_uri", bad).expect_err(bad);
            assert_eq!(err.problems()[0].setting(), "jwks_uri", "{bad}");
        }
    }
}
