//! [`MetadataService`]: the tower service that serves a [`ProtectedResource`]'s metadata
//! document at its well-known paths, with the CORS answers browser-based clients need.

use std::convert::Infallible;
use std::future::{Ready, ready};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_MAX_AGE, ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, VARY,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::Full;
use tower_service::Service;

use super::protected_resource::ProtectedResource;

/// Serves the protected resource metadata: `GET`/`HEAD` on either of
/// [`ProtectedResource::well_known_paths`] → 200 `application/json` with
/// `Access-Control-Allow-Origin: *`; `OPTIONS` → 204 CORS preflight answer; other methods →
/// 405; other paths → 404. Mount it outside any auth layer.
#[derive(Clone, Debug)]
pub struct MetadataService {
    pr: ProtectedResource,
}

/// The methods the metadata is served for, as `Allow` and the preflight answer name them.
const METHODS: &str = "GET, HEAD, OPTIONS";

impl MetadataService {
    /// The service for `pr` (see [`ProtectedResource::service`]).
    pub(super) fn new(pr: ProtectedResource) -> Self {
        Self { pr }
    }

    /// The response to `req` (the service's `call`, usable without tower).
    pub fn respond<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if !self.pr.serves(req.uri().path()) {
            return plain(StatusCode::NOT_FOUND);
        }
        let mut res = match *req.method() {
            Method::GET | Method::HEAD => self.document(req),
            Method::OPTIONS => preflight(),
            _ => method_not_allowed(),
        };
        res.headers_mut()
            .insert(ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        res
    }

    /// 200 with the document (`HEAD`: its headers, no body).
    fn document<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        let body = self.pr.document_for(req.headers(), req.extensions());
        let len = body.len();
        let body = if req.method() == Method::HEAD {
            Bytes::new()
        } else {
            body
        };
        let mut res = Response::new(Full::new(body));
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h.insert(CONTENT_LENGTH, HeaderValue::from(len));
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        );
        if self.pr.follows_forwarded_headers() {
            // The document depends on these headers (L11).
            h.insert(
                VARY,
                HeaderValue::from_static("X-Forwarded-Host, X-Forwarded-Proto"),
            );
        }
        res
    }
}

/// 204: the answer to a CORS preflight.
fn preflight() -> Response<Full<Bytes>> {
    let mut res = plain(StatusCode::NO_CONTENT);
    let h = res.headers_mut();
    h.insert(
        ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static(METHODS),
    );
    h.insert(ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("*"));
    h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    res
}

/// 405 naming the methods served.
fn method_not_allowed() -> Response<Full<Bytes>> {
    let mut res = plain(StatusCode::METHOD_NOT_ALLOWED);
    res.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(METHODS));
    res
}

/// An empty response with `status`.
fn plain(status: StatusCode) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = status;
    res
}

impl<B> Service<Request<B>> for MetadataService {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        ready(Ok(self.respond(&req)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ProtectedResource;
    use crate::oauth::protected_resource::tests::pr;
    use crate::oauth::uri::WELL_KNOWN_PATH;
    use crate::request_info::TrustedProxies;

    fn get(svc: &MetadataService, path: &str, headers: &[(&str, &str)]) -> Response<Full<Bytes>> {
        let mut req = Request::get(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        svc.respond(&req.body(()).unwrap())
    }

    async fn body(res: Response<Full<Bytes>>) -> serde_json::Value {
        use http_body_util::BodyExt;
        serde_json::from_slice(&res.into_body().collect().await.unwrap().to_bytes()).unwrap()
    }

    #[tokio::test]
    async fn both_paths_serve_the_exact_resource_and_cors() {
        let pr = ProtectedResource::builder("https://MCP.example.com/mcp")
            .authorization_server("https://as.example.com")
            .scopes_supported(["a", "offline_access", "a", "b"])
            .build()
            .unwrap();
        let svc = pr.service();
        for path in pr.well_known_paths() {
            let res = get(&svc, path, &[]);
            assert_eq!(res.status(), 200);
            assert_eq!(res.headers()["content-type"], "application/json");
            assert_eq!(res.headers()["access-control-allow-origin"], "*");
            let doc = body(res).await;
            assert_eq!(doc["resource"], "https://MCP.example.com/mcp", "byte-exact");
            assert_eq!(doc["scopes_supported"], serde_json::json!(["a", "b"]));
            assert_eq!(
                doc["authorization_servers"],
                serde_json::json!(["https://as.example.com"])
            );
        }
        assert_eq!(
            get(&svc, "/.well-known/oauth-protected-resource/other", &[]).status(),
            404
        );
        let pre = svc.respond(
            &Request::builder()
                .method(Method::OPTIONS)
                .uri(pr.well_known_paths()[0])
                .body(())
                .unwrap(),
        );
        assert_eq!(pre.status(), 204);
        assert_eq!(pre.headers()["access-control-allow-origin"], "*");
        let post = svc.respond(&Request::post(WELL_KNOWN_PATH).body(()).unwrap());
        assert_eq!(post.status(), 405);
    }

    fn from_peer(mut req: Request<()>, peer: [u8; 4]) -> Request<()> {
        req.extensions_mut()
            .insert(std::net::SocketAddr::from((peer, 4000)));
        req
    }

    fn get_from(
        svc: &MetadataService,
        peer: [u8; 4],
        headers: &[(&str, &str)],
    ) -> Response<Full<Bytes>> {
        let mut req = Request::get(WELL_KNOWN_PATH);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        svc.respond(&from_peer(req.body(()).unwrap(), peer))
    }

    #[tokio::test]
    async fn forwarding_headers_count_only_from_trusted_proxies() {
        let fwd = [
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "evil.example, public.example.com"),
        ];
        let plain = pr("http://127.0.0.1:8080/mcp");
        let doc = body(get_from(&plain.service(), [127, 0, 0, 1], &fwd)).await;
        assert_eq!(doc["resource"], "http://127.0.0.1:8080/mcp");

        let trusted = ProtectedResource::builder("http://127.0.0.1:8080/mcp")
            .authorization_server("https://as.example.com")
            .trust_forwarded_headers(TrustedProxies::parse("p", "10.0.0.0/8").unwrap())
            .build()
            .unwrap();
        let svc = trusted.service();
        let doc = body(get_from(&svc, [10, 0, 0, 2], &fwd)).await;
        assert_eq!(doc["resource"], "https://public.example.com/mcp");
        // A peer that is not a trusted proxy (M1), or no peer at all: configured URL.
        let doc = body(get_from(&svc, [192, 0, 2, 1], &fwd)).await;
        assert_eq!(doc["resource"], "http://127.0.0.1:8080/mcp");
        let doc = body(get(&svc, WELL_KNOWN_PATH, &fwd)).await;
        assert_eq!(doc["resource"], "http://127.0.0.1:8080/mcp");
        // Malformed values fall back to the configured URL.
        let bad = [
            ("x-forwarded-proto", "javascript"),
            ("x-forwarded-host", "x"),
        ];
        let doc = body(get_from(&svc, [10, 0, 0, 2], &bad)).await;
        assert_eq!(doc["resource"], "http://127.0.0.1:8080/mcp");
        let bad_host = [("x-forwarded-proto", "https"), ("x-forwarded-host", "a\"b")];
        let doc = body(get_from(&svc, [10, 0, 0, 2], &bad_host)).await;
        assert_eq!(doc["resource"], "http://127.0.0.1:8080/mcp");

        let head = |peer: [u8; 4]| {
            let mut req = Request::get("/mcp");
            for (k, v) in fwd {
                req = req.header(k, v);
            }
            from_peer(req.body(()).unwrap(), peer).into_parts().0
        };
        let challenge = trusted.challenge();
        assert_eq!(
            challenge
                .for_request(&head([10, 0, 0, 2]))
                .resource_metadata_url(),
            Some("https://public.example.com/.well-known/oauth-protected-resource/mcp")
        );
        assert_eq!(
            challenge
                .for_request(&head([192, 0, 2, 1]))
                .resource_metadata_url(),
            Some("http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp"),
            "a direct client cannot choose the URL challenges advertise"
        );
        let plain_challenge = plain.challenge();
        assert_eq!(
            plain_challenge
                .for_request(&head([10, 0, 0, 2]))
                .resource_metadata_url(),
            Some("http://127.0.0.1:8080/.well-known/oauth-protected-resource/mcp")
        );
    }

    #[test]
    fn metadata_that_follows_forwarded_headers_varies_on_them() {
        let plain = pr("https://mcp.example.com/mcp");
        let res = get(&plain.service(), WELL_KNOWN_PATH, &[]);
        assert!(res.headers().get("vary").is_none());
        let trusted = ProtectedResource::builder("https://mcp.example.com/mcp")
            .authorization_server("https://as.example.com")
            .trust_forwarded_headers(TrustedProxies::loopback())
            .build()
            .unwrap();
        for peer in [[127, 0, 0, 1], [192, 0, 2, 1]] {
            let res = get_from(&trusted.service(), peer, &[]);
            assert_eq!(res.headers()["vary"], "X-Forwarded-Host, X-Forwarded-Proto");
            assert_eq!(res.headers()["cache-control"], "public, max-age=300");
        }
    }
}
