//! [`HttpsOnlyLayer`]: requests that did not arrive over HTTPS are refused.

use std::sync::Arc;

use http::Request;

use super::future::{Refusal, guard_service};
use crate::request_info::{TlsConnection, TrustedProxies, last_forwarded};

/// Refuses requests that did not arrive over HTTPS with 403 `https_required` (MCP: tokens
/// travel only over TLS). A request counts as HTTPS when it carries a [`TlsConnection`]
/// extension (set by your TLS acceptor), or, with
/// [`trust_forwarded_proto`](HttpsOnlyLayer::trust_forwarded_proto), when its TCP peer is a
/// trusted proxy and the last `X-Forwarded-Proto` value is `https`. The request target's
/// scheme is never a signal: a client chooses it (absolute-form targets, h2c `:scheme`).
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct HttpsOnlyLayer {
    settings: Arc<Settings>,
}

/// The settings of an [`HttpsOnlyLayer`].
#[derive(Debug, Clone, Default)]
struct Settings {
    proxies: Option<Arc<TrustedProxies>>,
    allow_plain_http: bool,
}

impl HttpsOnlyLayer {
    /// Refuse plain HTTP.
    pub fn new() -> Self {
        Self::default()
    }

    /// Believe `X-Forwarded-Proto: https` from these proxies only (the TCP peer must be one
    /// of them; the proxy must set the header and drop any a client sent).
    pub fn trust_forwarded_proto(mut self, proxies: TrustedProxies) -> Self {
        Arc::make_mut(&mut self.settings).proxies = Some(Arc::new(proxies));
        self
    }

    /// Development opt-out: let plain HTTP through (logged once per layer at `warn`).
    pub fn allow_plain_http(mut self) -> Self {
        tracing::warn!(target: crate::telemetry::REJECTION_TARGET, "HttpsOnlyLayer: plain HTTP allowed (development mode)");
        Arc::make_mut(&mut self.settings).allow_plain_http = true;
        self
    }
}

impl Settings {
    /// The refusal of a request that did not arrive over HTTPS.
    fn check<B>(&self, req: &Request<B>) -> Option<Refusal> {
        let secure = self.allow_plain_http
            || req.extensions().get::<TlsConnection>().is_some()
            || self.proxies.as_ref().is_some_and(|p| {
                p.trusts_peer(req.extensions())
                    && last_forwarded(req.headers(), "x-forwarded-proto")
                        .is_some_and(|v| v.eq_ignore_ascii_case("https"))
            });
        (!secure).then_some(Refusal::forbidden(
            "https_required",
            "this server accepts HTTPS requests only",
        ))
    }
}

/// The service built by [`HttpsOnlyLayer`].
#[derive(Debug, Clone)]
pub struct HttpsOnly<S> {
    inner: S,
    settings: Arc<Settings>,
}

guard_service!(HttpsOnlyLayer => HttpsOnly);

#[cfg(test)]
mod tests {
    use super::super::test_request as req;
    use super::*;

    #[test]
    fn https_is_recognised_only_from_trustworthy_signals() {
        let strict = Settings::default();
        assert!(
            strict.check(&req("https://h/mcp", &[])).is_some(),
            "an absolute-form https target over plain HTTP is chosen by the client (L7)"
        );
        assert!(strict.check(&req("/mcp", &[])).is_some());
        let fwd = [("x-forwarded-proto", "https")];
        assert!(
            strict.check(&req("/mcp", &fwd)).is_some(),
            "untrusted header"
        );
        let proxied = Settings {
            proxies: Some(Arc::new(TrustedProxies::parse("p", "10.0.0.0/8").unwrap())),
            allow_plain_http: false,
        };
        let from = |ip: [u8; 4], h: &[(&str, &str)]| {
            let mut r = req("/mcp", h);
            r.extensions_mut()
                .insert(std::net::SocketAddr::from((ip, 4000)));
            r
        };
        assert!(proxied.check(&from([10, 0, 0, 1], &fwd)).is_none());
        assert!(
            proxied.check(&from([192, 0, 2, 1], &fwd)).is_some(),
            "X-Forwarded-Proto from a peer that is not a trusted proxy"
        );
        assert!(
            proxied.check(&req("/mcp", &fwd)).is_some(),
            "no peer address: nothing is trusted"
        );
        assert!(
            proxied
                .check(&from(
                    [10, 0, 0, 1],
                    &[("x-forwarded-proto", "https, http")]
                ))
                .is_some(),
            "the nearest proxy's value counts"
        );
        let mut tls = req("/mcp", &[]);
        tls.extensions_mut().insert(TlsConnection);
        assert!(strict.check(&tls).is_none());
        let status = strict.check(&req("/mcp", &[])).unwrap().status();
        assert_eq!(status, 403);
    }
}
