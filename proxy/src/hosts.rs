//! The `Host` check (DNS rebinding protection) that rmcp does for the example server: the
//! proxy rewrites `Host` for the upstream, so the upstream's own check can no longer see the
//! client's, and the proxy does it instead (`MCP_ALLOWED_HOSTS`).

use http::HeaderMap;
use http::uri::{Authority, Uri};

/// The loopback names allowed by default (rmcp's default), beside `MCP_PUBLIC_URL`'s host.
const LOOPBACK: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Allowed `Host` values: a name (any port) or `name:port`. Empty: any host.
#[derive(Debug, Clone)]
pub(crate) struct AllowedHosts(Vec<(String, Option<u16>)>);

impl AllowedHosts {
    /// `configured` (`MCP_ALLOWED_HOSTS`), or by default loopback and the public URL's host.
    pub(crate) fn new(configured: Option<&[String]>, public_host: &str) -> Self {
        let list: Vec<String> = match configured {
            Some(c) => c.to_vec(),
            None => LOOPBACK
                .iter()
                .map(|h| (*h).to_owned())
                .chain(std::iter::once(public_host.to_owned()))
                .collect(),
        };
        Self(list.iter().filter_map(|h| parse(h)).collect())
    }

    /// Whether the request's host (`Host`, or the URI's authority for HTTP/2) is allowed. A
    /// request with no readable host is refused unless any host is allowed.
    pub(crate) fn allows(&self, uri: &Uri, headers: &HeaderMap) -> bool {
        if self.0.is_empty() {
            return true;
        }
        let host = match headers.get(http::header::HOST) {
            Some(v) => v.to_str().ok().and_then(parse),
            None => uri.authority().map(|a| normalize(a.host(), a.port_u16())),
        };
        let Some((name, port)) = host else {
            return false;
        };
        self.0
            .iter()
            .any(|(n, p)| *n == name && p.is_none_or(|p| Some(p) == port))
    }
}

fn normalize(host: &str, port: Option<u16>) -> (String, Option<u16>) {
    (
        host.trim_matches('[')
            .trim_matches(']')
            .to_ascii_lowercase(),
        port,
    )
}

fn parse(value: &str) -> Option<(String, Option<u16>)> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    match Authority::try_from(value) {
        Ok(a) => Some(normalize(a.host(), a.port_u16())),
        Err(_) => Some(normalize(value, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(hosts: &AllowedHosts, host: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(http::header::HOST, host.parse().unwrap());
        hosts.allows(&Uri::from_static("/"), &h)
    }

    #[test]
    fn loopback_and_the_public_host_by_default() {
        let hosts = AllowedHosts::new(None, "mcp.example.com");
        for ok in [
            "127.0.0.1:8080",
            "localhost",
            "[::1]:9",
            "MCP.example.com:443",
        ] {
            assert!(allows(&hosts, ok), "{ok}");
        }
        for bad in ["evil.example", "127.0.0.2:8080", "mcp.example.com.evil"] {
            assert!(!allows(&hosts, bad), "{bad}");
        }
        assert!(!hosts.allows(&Uri::from_static("/"), &HeaderMap::new()));
    }

    #[test]
    fn a_configured_list_replaces_the_default_and_an_empty_one_allows_any() {
        let hosts = AllowedHosts::new(Some(&["api.example.com:8443".to_owned()]), "x");
        assert!(allows(&hosts, "api.example.com:8443"));
        assert!(!allows(&hosts, "api.example.com:8444"));
        assert!(!allows(&hosts, "127.0.0.1"));
        assert!(allows(&AllowedHosts::new(Some(&[]), "x"), "anything"));
    }
}
