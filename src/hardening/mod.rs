//! The layers outside the auth layer, in the order a request meets them:
//! [`ClientAddrLayer`] (the real client behind
//! [`TrustedProxies`](crate::request_info::TrustedProxies)), [`OriginLayer`] (`Origin`
//! validation, the MCP streamable-HTTP rule), [`HttpsOnlyLayer`] (HTTPS enforcement) and [`FailureLimitLayer`] (429 after too many failed attempts from one
//! client), then [`AuthLayer`](crate::AuthLayer). With feature `mtls`,
//! `ForwardedClientCertLayer` (right inside [`ClientAddrLayer`]) takes the client certificate
//! a trusted TLS-terminating proxy verified from its header.
//!
//! A request over plain HTTP, from a foreign page or from a client that keeps guessing is
//! refused before any credential is looked at.
//!
//! | layer | service | refuses with |
//! |---|---|---|
//! | [`ClientAddrLayer`] | [`ClientAddrService`] | nothing (sets [`ClientAddr`](crate::request_info::ClientAddr)) |
//! | `ForwardedClientCertLayer` (feature `mtls`) | `ForwardedClientCert` | nothing (sets [`ClientCertificate`](crate::request_info::ClientCertificate) from a trusted proxy's header) |
//! | [`OriginLayer`] | [`ValidateOrigin`] | 403 `forbidden_origin` |
//! | [`HttpsOnlyLayer`] | [`HttpsOnly`] | 403 `https_required` |
//! | [`FailureLimitLayer`] (and [`ReleaseLayer`] inside the auth layer) | [`FailureLimit`] ([`Release`]) | 429 `too_many_requests`, 503 when its store cannot answer |
//!
//! The two guards answer through one [`ResponseFuture`]: the inner service's future, or a
//! refusal ready at once. Every layer wraps the response body in
//! [`AuthBody`](crate::AuthBody), so a JSON refusal and the inner service's body share a type.
//!
//! # Example
//!
//! ```
//! use mcp_auth::hardening::{HttpsOnlyLayer, OriginLayer};
//! use mcp_auth::request_info::TlsConnection;
//! use tower::{Layer, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let inner = service_fn(|_req: http::Request<()>| async {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
//! });
//! let svc = OriginLayer::new(["https://app.example.com"]).layer(HttpsOnlyLayer::new().layer(inner));
//!
//! let mut evil = http::Request::get("/mcp")
//!     .header("origin", "https://evil.example")
//!     .body(())
//!     .unwrap();
//! evil.extensions_mut().insert(TlsConnection);
//! assert_eq!(svc.clone().oneshot(evil).await.unwrap().status(), 403);
//!
//! // Plain HTTP, even with an `https://` request target (the client chooses that).
//! let plain = http::Request::get("https://mcp.example.com/mcp").body(()).unwrap();
//! assert_eq!(svc.clone().oneshot(plain).await.unwrap().status(), 403);
//!
//! let mut ok = http::Request::get("/mcp")
//!     .header("origin", "https://APP.example.com")
//!     .body(())
//!     .unwrap();
//! ok.extensions_mut().insert(TlsConnection); // from your TLS acceptor
//! assert_eq!(svc.oneshot(ok).await.unwrap().status(), 200);
//! # }
//! ```

mod client_addr;
mod failure_limit;
#[cfg(feature = "mtls")]
mod forwarded_cert;
mod future;
mod https_only;
mod origin;
mod release;

pub use self::client_addr::{ClientAddrLayer, ClientAddrService};
pub use self::failure_limit::{FailureLimit, FailureLimitLayer};
#[cfg(feature = "mtls")]
pub use self::forwarded_cert::{
    CertHeader, ENVOY_HEADER, ForwardedClientCert, ForwardedClientCertLayer, MAX_HEADER_LEN,
    NGINX_HEADER,
};
pub use self::future::ResponseFuture;
pub use self::https_only::{HttpsOnly, HttpsOnlyLayer};
pub use self::origin::{OriginLayer, ValidateOrigin};
pub use self::release::{Release, ReleaseLayer};

/// A `GET` of `uri` with `headers`, for the guards' tests.
#[cfg(test)]
fn test_request(uri: &str, headers: &[(&str, &str)]) -> http::Request<()> {
    let mut b = http::Request::get(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(()).unwrap()
}
