//! The `htu` rule (RFC 9449 §4.3 step 9): the proof's URI equals the request's public URI,
//! without query and fragment, both normalised (RFC 3986 §6.2.2–6.2.3: case of scheme and
//! host, default port, dot segments, empty path) before they are compared.
//!
//! The request's public URI is never read from the request's `Host`: behind a proxy the
//! server does not see it, and an attacker chooses it. It comes from configuration: the
//! exact resource URL(s) of the endpoint, or the public origin followed by the request path.

use http::request::Parts;
use url::Url;

/// Longest `htu` accepted before parsing.
pub(super) const MAX_HTU_LEN: usize = 2048;

/// What `htu` must equal.
#[derive(Debug, Clone)]
pub(super) enum Htu {
    /// One of these URLs (normalised), whatever the request path (the layer guards one
    /// endpoint: the MCP resource URL).
    Exact(Vec<String>),
    /// This origin (normalised, no trailing slash) followed by the request's path.
    Origin(String),
}

/// `raw` normalised, without query and fragment; `None` when it is not an absolute
/// `http`/`https` URL without user information.
pub(super) fn normalize(raw: &str) -> Option<String> {
    if raw.len() > MAX_HTU_LEN {
        return None;
    }
    let mut url = Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.into())
}

/// The origin of `raw` (`scheme://host[:port]`), normalised.
pub(super) fn origin(raw: &str) -> Option<String> {
    let url = Url::parse(&normalize(raw)?).ok()?;
    Some(url.origin().ascii_serialization())
}

/// The path the client asked for: the original URI when a router stripped a prefix (axum's
/// `nest_service`), else the request's own.
fn request_path(parts: &Parts) -> &str {
    #[cfg(feature = "axum")]
    if let Some(original) = parts.extensions.get::<axum::extract::OriginalUri>() {
        return original.0.path();
    }
    parts.uri.path()
}

impl Htu {
    /// Whether the proof's `htu` names this request.
    pub(super) fn matches(&self, claim: &str, parts: &Parts) -> bool {
        let Some(claim) = normalize(claim) else {
            return false;
        };
        match self {
            Self::Exact(urls) => urls.contains(&claim),
            Self::Origin(origin) => {
                let path = request_path(parts);
                normalize(&format!("{origin}{path}")).is_some_and(|want| want == claim)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(path: &str) -> Parts {
        http::Request::post(path).body(()).unwrap().into_parts().0
    }

    #[test]
    fn normalisation_follows_rfc_3986() {
        let want = "https://mcp.example.com/mcp";
        for same in [
            "https://mcp.example.com/mcp",
            "HTTPS://MCP.Example.COM/mcp",
            "https://mcp.example.com:443/mcp",
            "https://mcp.example.com/a/../mcp",
            "https://mcp.example.com/./mcp",
            "https://mcp.example.com/mcp?x=1",
            "https://mcp.example.com/mcp#frag",
        ] {
            assert_eq!(normalize(same).as_deref(), Some(want), "{same}");
        }
        assert_eq!(
            normalize("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080/")
        );
        for other in [
            "https://mcp.example.com/MCP",
            "https://mcp.example.com/mcp/",
            "http://mcp.example.com/mcp",
            "https://mcp.example.com:8443/mcp",
        ] {
            assert_ne!(normalize(other).as_deref(), Some(want), "{other}");
        }
        for bad in [
            "/mcp",
            "mcp.example.com/mcp",
            "ftp://mcp.example.com/mcp",
            "https://user:pw@mcp.example.com/mcp",
            "urn:x:y",
            "",
        ] {
            assert_eq!(normalize(bad), None, "{bad}");
        }
        assert_eq!(
            normalize(&format!("https://h/{}", "a".repeat(MAX_HTU_LEN))),
            None
        );
    }

    #[test]
    fn exact_urls_ignore_the_request_path_and_origins_use_it() {
        let exact = Htu::Exact(vec![normalize("https://mcp.example.com/mcp").unwrap()]);
        assert!(exact.matches("https://MCP.example.com:443/mcp?q", &parts("/")));
        assert!(!exact.matches("https://evil.example.com/mcp", &parts("/mcp")));
        let origin = Htu::Origin(origin("https://mcp.example.com/ignored").unwrap());
        assert!(origin.matches("https://mcp.example.com/tools/x", &parts("/tools/x?y")));
        assert!(!origin.matches("https://mcp.example.com/tools/y", &parts("/tools/x")));
        assert!(!origin.matches("http://mcp.example.com/tools/x", &parts("/tools/x")));
    }
}
