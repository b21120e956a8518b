//! [`OriginLayer`]: `Origin` validation, the MCP streamable-HTTP rule against DNS rebinding.

use std::sync::Arc;

use http::Request;
use http::header::ORIGIN;

use super::future::{Refusal, guard_service};
use crate::request_info::{RepeatedHeader, only_value};

/// Refuses requests whose `Origin` header is present and not allowed, with 403 (MCP
/// streamable-HTTP transport: servers must validate `Origin` against DNS rebinding). A request
/// without `Origin` (not from a browser) passes. Origins compare case-insensitively as
/// `scheme://host[:port]`; an entry ending in `:*` allows any port of that host
/// (`http://localhost:*`); `null` is refused unless listed.
#[derive(Debug, Clone)]
#[must_use]
pub struct OriginLayer {
    settings: Arc<AllowedOrigins>,
}

/// The allowed origins of an [`OriginLayer`], lowercase, without a trailing `/`.
#[derive(Debug)]
struct AllowedOrigins(Vec<String>);

impl OriginLayer {
    /// Allows exactly these origins (`https://app.example.com`, `http://localhost:6274`).
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(origins: I) -> Self {
        let allowed = origins
            .into_iter()
            .map(|o| o.as_ref().trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        Self {
            settings: Arc::new(AllowedOrigins(allowed)),
        }
    }
}

impl AllowedOrigins {
    /// Whether `origin` (as sent) is allowed.
    fn allows(&self, origin: &http::HeaderValue) -> bool {
        origin.to_str().is_ok_and(|o| {
            let o = o.trim().trim_end_matches('/').to_ascii_lowercase();
            self.0.iter().any(|a| match a.strip_suffix(":*") {
                Some(host) => o.strip_prefix(host).is_some_and(|rest| {
                    rest.is_empty()
                        || rest
                            .strip_prefix(':')
                            .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                }),
                None => *a == o,
            })
        })
    }

    /// The refusal of a request with a foreign `Origin`, or more than one.
    fn check<B>(&self, req: &Request<B>) -> Option<Refusal> {
        // No Origin: not a browser's cross-origin call. More than one: refused.
        let allowed = match only_value(req.headers(), ORIGIN) {
            Ok(None) => return None,
            Ok(Some(origin)) => self.allows(origin),
            Err(RepeatedHeader) => false,
        };
        (!allowed).then_some(Refusal::forbidden(
            "forbidden_origin",
            "this origin may not call this server",
        ))
    }
}

/// The service built by [`OriginLayer`].
#[derive(Debug, Clone)]
pub struct ValidateOrigin<S> {
    inner: S,
    settings: Arc<AllowedOrigins>,
}

guard_service!(OriginLayer => ValidateOrigin);

#[cfg(test)]
mod tests {
    use super::super::test_request as req;
    use super::*;
    use http::StatusCode;

    #[test]
    fn origins_are_checked_when_present() {
        let o = OriginLayer::new([
            "https://App.example.com/",
            "http://localhost:6274",
            "http://127.0.0.1:*",
        ]);
        let check = |h: &[(&str, &str)]| o.settings.check(&req("/mcp", h)).map(|r| r.status());
        assert_eq!(check(&[]), None);
        assert_eq!(check(&[("origin", "https://app.example.com")]), None);
        assert_eq!(check(&[("origin", "http://localhost:6274")]), None);
        assert_eq!(
            check(&[("origin", "http://localhost:6275")]),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(check(&[("origin", "null")]), Some(StatusCode::FORBIDDEN));
        assert_eq!(check(&[("origin", "http://127.0.0.1:3000")]), None);
        assert_eq!(check(&[("origin", "http://127.0.0.1")]), None);
        assert_eq!(
            check(&[("origin", "http://127.0.0.1.evil.test:80")]),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            check(&[("origin", "http://127.0.0.1:80@evil.test")]),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            check(&[("origin", "https://app.example.com.evil.test")]),
            Some(StatusCode::FORBIDDEN)
        );
    }
}
