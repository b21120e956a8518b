//! [`Forward`]: the service at the end of the auth stack that sends each authenticated,
//! authorized request to the upstream and streams its answer back.
//!
//! - Request bodies of POSTs are read (bounded by [`DEFAULT_MAX_BODY`], as the scope layer
//!   reads them) to learn which JSON-RPC ids ask for a listing; other bodies stream through.
//! - Responses stream back as they arrive (SSE event by event); only the answers to
//!   listing requests are read and filtered. What already arrived with the head leaves with
//!   it, in one write (the `prefetch` module).
//! - Headers: the hop-by-hop ones are removed both ways. The client's credentials never
//!   reach the upstream; the caller's identity does, in identity headers, and optionally in
//!   a minted JWT.
//! - The upstream unreachable: 502 `{"error":"bad_gateway"}`; no response headers within the
//!   timeout: 504 `{"error":"gateway_timeout"}`; details only in the log.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use mcp_auth::AuthContext;
use mcp_auth::request_info::client_addr;
use mcp_auth::scope::{DEFAULT_MAX_BODY, ScopePolicy};

use crate::config::{MAX_LISTING_ANSWER, ProxyConfig, Upstream};
use crate::headers::{self, Forwarding, IdentityHeaders};
use crate::hosts::AllowedHosts;
use crate::listing::Pending;
use crate::metrics::{Metrics, ProxyReason};
use crate::mint::UpstreamJwt;
use crate::prefetch;
use crate::sse::FilteredSse;
use crate::upstream::{ConnSlot, Connector, SendError};

/// The forwarding service: a `tower::Service<Request<Body>>` that never fails (every problem
/// is a response). Cheap to clone.
#[derive(Clone)]
pub struct Forward {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Forward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forward")
            .field("upstream", &self.shared.upstream.uri)
            .field("timeout", &self.shared.timeout)
            .finish_non_exhaustive()
    }
}

struct Shared {
    connector: Connector,
    upstream: Upstream,
    timeout: Duration,
    identity: IdentityHeaders,
    forwarding: Forwarding,
    jwt: Option<UpstreamJwt>,
    policy: Arc<ScopePolicy>,
    metrics: Arc<Metrics>,
    hosts: AllowedHosts,
}

impl Forward {
    /// The service for `config`, filtering listings with `policy`, counting into `metrics`,
    /// accepting requests for `hosts`.
    pub(crate) fn new(
        config: ProxyConfig,
        policy: Arc<ScopePolicy>,
        metrics: Arc<Metrics>,
        hosts: AllowedHosts,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                connector: Connector::new(&config.upstream.uri, config.timeout),
                upstream: config.upstream,
                timeout: config.timeout,
                identity: config.identity,
                forwarding: config.forwarding,
                jwt: config.jwt,
                policy,
                metrics,
                hosts,
            }),
        }
    }
}

impl tower::Service<Request<Body>> for Forward {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // The pool has no backpressure to offer; every request is accepted.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        let shared = self.shared.clone();
        Box::pin(async move { Ok(shared.forward(req).await) })
    }
}

/// The proxy's own answer: `{"error": code}` with `status`, tagged for the metrics.
pub(crate) fn refusal(status: StatusCode, code: &str, reason: &'static str) -> Response<Body> {
    let mut res = Response::new(Body::from(format!("{{\"error\":\"{code}\"}}")));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res.extensions_mut().insert(ProxyReason(reason));
    res
}

fn bad_gateway(reason: &'static str) -> Response<Body> {
    refusal(StatusCode::BAD_GATEWAY, "bad_gateway", reason)
}

impl Shared {
    async fn forward(&self, req: Request<Body>) -> Response<Body> {
        let (parts, body) = req.into_parts();
        if !self.hosts.allows(&parts.uri, &parts.headers) {
            tracing::debug!(target: "mcp_auth_proxy", "request for a Host that is not allowed");
            return refusal(
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                "host_not_allowed",
            );
        }
        // The stack mounts this service at the endpoint: it sees the endpoint as `/`.
        if !matches!(parts.uri.path(), "/" | "") {
            return refusal(StatusCode::NOT_FOUND, "not_found", "not_found");
        }
        let Some(ctx) = parts.extensions.get::<AuthContext>().cloned() else {
            // The auth layer is missing: a wiring bug, never a pass.
            tracing::error!(target: "mcp_auth_proxy", "no AuthContext: the forwarding service runs outside the auth stack");
            return refusal(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal");
        };
        let (body, pending) = if parts.method == Method::POST {
            match Limited::new(body, DEFAULT_MAX_BODY).collect().await {
                Ok(collected) => {
                    let bytes = collected.to_bytes();
                    let pending = Pending::from_request(&bytes, &ctx, &self.policy);
                    (Body::from(bytes), pending)
                }
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    return refusal(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "body_too_large",
                        "body_too_large",
                    );
                }
                Err(_) => {
                    return refusal(StatusCode::BAD_REQUEST, "bad_request", "body_unreadable");
                }
            }
        } else {
            (body, None)
        };
        let authorization = match &self.jwt {
            Some(jwt) => match jwt.authorization(&ctx) {
                Ok(v) => Some(v),
                Err(_) => return bad_gateway("upstream_token_failed"),
            },
            None => None,
        };
        let headers = match headers::upstream_request(
            &parts.headers,
            &self.identity,
            &ctx,
            client_addr(&parts.extensions),
            &self.forwarding,
            authorization,
        ) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(
                    target: "mcp_auth_proxy",
                    field = e.0,
                    "the caller's identity cannot be sent as a header value (control or non-ASCII characters); request refused"
                );
                return refusal(
                    StatusCode::FORBIDDEN,
                    "identity_not_forwardable",
                    "identity_not_forwardable",
                );
            }
        };
        let mut headers = headers;
        if pending.is_some() {
            // A listing answer must be readable to be filtered: no compression.
            headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        }
        let mut upstream_req = Request::new(body);
        *upstream_req.method_mut() = parts.method.clone();
        *upstream_req.headers_mut() = headers;

        let started = Instant::now();
        let slot = parts.extensions.get::<ConnSlot>();
        let result =
            tokio::time::timeout(self.timeout, self.connector.send(slot, upstream_req)).await;
        let res = match result {
            Err(_) => {
                tracing::warn!(
                    target: "mcp_auth_proxy",
                    method = %parts.method,
                    timeout_ms = self.timeout.as_millis() as u64,
                    "the upstream sent no response headers in time"
                );
                return refusal(
                    StatusCode::GATEWAY_TIMEOUT,
                    "gateway_timeout",
                    "upstream_timeout",
                );
            }
            Ok(Err(e)) => {
                let reason = if matches!(e, SendError::Connect(_)) {
                    "upstream_unreachable"
                } else {
                    "upstream_error"
                };
                tracing::warn!(target: "mcp_auth_proxy", method = %parts.method, error = %error_chain(&e), reason, "upstream request failed");
                return bad_gateway(reason);
            }
            Ok(Ok(res)) => res,
        };
        self.metrics.observe_upstream(started.elapsed());
        tracing::debug!(
            target: "mcp_auth_proxy",
            method = %parts.method,
            status = res.status().as_u16(),
            subject = ctx.subject(),
            upstream_ms = started.elapsed().as_millis() as u64,
            "forwarded"
        );
        if res.status() == StatusCode::UNAUTHORIZED {
            // The upstream refused the proxy, not the client (whose credential the upstream
            // never sees): nothing the client could fix by authenticating again.
            tracing::warn!(target: "mcp_auth_proxy", "the upstream answered 401: it does not accept the proxy's credential");
            return bad_gateway("upstream_refused_credentials");
        }
        let (mut res_parts, incoming) = res.into_parts();
        headers::clean_response(&mut res_parts.headers);
        let Some(pending) = pending else {
            let body = prefetch::gather(incoming).await;
            return Response::from_parts(res_parts, Body::new(body));
        };
        let encoded = res_parts
            .headers
            .get(CONTENT_ENCODING)
            .is_some_and(|e| !e.as_bytes().eq_ignore_ascii_case(b"identity"));
        if encoded {
            tracing::warn!(target: "mcp_auth_proxy", "a listing answer came compressed although identity was asked for");
            return bad_gateway("listing_unreadable");
        }
        match media_type(&res_parts.headers) {
            Some(Media::Json) => filter_json(res_parts, incoming, pending).await,
            Some(Media::EventStream) => {
                res_parts.headers.remove(CONTENT_LENGTH);
                let body = FilteredSse::new(incoming, pending, MAX_LISTING_ANSWER);
                Response::from_parts(res_parts, Body::new(body))
            }
            None => Response::from_parts(res_parts, Body::new(incoming)),
        }
    }
}

/// The upstream's JSON answer to a POST with listings, filtered.
async fn filter_json(
    mut parts: http::response::Parts,
    incoming: hyper::body::Incoming,
    mut pending: Pending,
) -> Response<Body> {
    let bytes: Bytes = match Limited::new(incoming, MAX_LISTING_ANSWER).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) => {
            tracing::warn!(target: "mcp_auth_proxy", error = %e, "a listing answer could not be read");
            return bad_gateway("listing_unreadable");
        }
    };
    match pending.filter_json(&bytes) {
        Ok(None) => Response::from_parts(parts, Body::from(bytes)),
        Ok(Some(filtered)) => {
            parts.headers.remove(CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(filtered))
        }
        Err(_) => {
            tracing::warn!(target: "mcp_auth_proxy", "a listing answer is not JSON");
            bad_gateway("listing_unreadable")
        }
    }
}

enum Media {
    Json,
    EventStream,
}

fn media_type(headers: &http::HeaderMap) -> Option<Media> {
    let ct = headers.get(CONTENT_TYPE)?.to_str().ok()?;
    let essence = ct.split(';').next()?.trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Some(Media::Json)
    } else if essence.eq_ignore_ascii_case("text/event-stream") {
        Some(Media::EventStream)
    } else {
        None
    }
}

/// An error and its sources, for the log.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}
