//! [`Refusal`]: why [`ScopeLayer`](super::ScopeLayer) does not call its inner service, and
//! the response, log event and audit event each refusal gets.

use bytes::Bytes;
use http::header::ALLOW;
use http::request::Parts;
use http::{HeaderValue, Response, StatusCode};

use super::operation::Operation;
use crate::context::AuthContext;
use crate::error::AuthError;
use crate::rejection::{Challenge, Rejection, json_error};
use crate::telemetry::{REJECTION_TARGET, log_rejection};

/// The methods the layer lets through (`Allow` of its 405).
const ALLOWED: &str = "GET, HEAD, POST, DELETE, OPTIONS";

/// What stands in the way of calling the inner service.
pub(super) enum Refusal {
    /// Refused by the policy; the request's first operation, for the audit event.
    Auth(Box<(AuthError, Option<Operation>)>),
    /// Refused before any policy decision: status, error code, description.
    Status(StatusCode, &'static str, &'static str),
    /// The mirrored headers disagree with the body, or required ones are missing: 400 with
    /// the JSON-RPC error `-32020` for the request's id.
    HeaderMismatch(serde_json::Value, &'static str),
}

/// JSON-RPC error code of a header/body mismatch (MCP 2026-07-28, `HeaderMismatch`).
pub const HEADER_MISMATCH: i64 = -32020;

/// No auth layer ran before this one: a wiring bug, answered 500 and said so.
pub(super) const WIRING_BUG: Refusal = Refusal::Status(
    StatusCode::INTERNAL_SERVER_ERROR,
    "server_error",
    "ScopeLayer found no AuthContext: install it inside an mcp-auth layer",
);

/// A method other than GET, HEAD, POST, DELETE and OPTIONS (405, with `Allow`).
pub(super) const METHOD_NOT_ALLOWED: Refusal = Refusal::Status(
    StatusCode::METHOD_NOT_ALLOWED,
    "method_not_allowed",
    "this endpoint accepts GET, HEAD, POST, DELETE and OPTIONS",
);

impl Refusal {
    /// A 400 `invalid_request` saying `description`.
    pub(super) const fn bad_request(description: &'static str) -> Self {
        Self::Status(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// The response, after the log event (and, for a policy refusal, the audit event).
    pub(super) fn into_response(self, parts: &Parts, challenge: &Challenge) -> Response<Bytes> {
        match self {
            Self::Auth(refused) => {
                let (err, op) = *refused;
                log_rejection(&err, parts);
                crate::telemetry::denied(
                    parts,
                    parts.extensions.get::<AuthContext>(),
                    &err,
                    op.as_ref().map(|o| (o.method(), o.name())),
                );
                let challenge = challenge.for_request(parts);
                let mut res = Rejection::new(&err, &challenge).default_response();
                res.extensions_mut().insert(err);
                res
            }
            Self::HeaderMismatch(id, message) => {
                tracing::debug!(target: REJECTION_TARGET, reason = "header_mismatch", status = 400, "request refused");
                let body = serde_json::json!({
                    "jsonrpc": "2.0",
                    "id": id,
                    "error": {"code": HEADER_MISMATCH, "message": message},
                });
                let mut res = Response::new(Bytes::from(body.to_string()));
                *res.status_mut() = StatusCode::BAD_REQUEST;
                res.headers_mut().insert(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                res
            }
            Self::Status(status, code, description) if status.is_server_error() => {
                tracing::error!(target: REJECTION_TARGET, reason = code, "{description}");
                json_error(status, code, description)
            }
            Self::Status(status, code, description) => {
                tracing::debug!(target: REJECTION_TARGET, reason = code, status = status.as_u16(), "request refused");
                let mut res = json_error(status, code, description);
                if status == StatusCode::METHOD_NOT_ALLOWED {
                    res.headers_mut()
                        .insert(ALLOW, HeaderValue::from_static(ALLOWED));
                }
                res
            }
        }
    }
}
