//! The one place where an [`AuthError`] becomes an HTTP response.
//!
//! | kind | status | `WWW-Authenticate` |
//! |---|---|---|
//! | [`MissingCredentials`](AuthErrorKind::MissingCredentials) | 401 | challenge, no `error=` (RFC 6750 §3.1) |
//! | [`InvalidToken`](AuthErrorKind::InvalidToken), [`Expired`](AuthErrorKind::Expired), [`Revoked`](AuthErrorKind::Revoked) | 401 | `error="invalid_token"` |
//! | [`InsufficientScope`](AuthErrorKind::InsufficientScope) | 403 | `error="insufficient_scope", scope="…"` |
//! | [`InvalidRequest`](AuthErrorKind::InvalidRequest) | 400 | `error="invalid_request"` |
//! | [`InvalidDpopProof`](AuthErrorKind::InvalidDpopProof) | 401 | `error="invalid_dpop_proof"` in the `DPoP` challenge only |
//! | [`InsufficientUserAuthentication`](AuthErrorKind::InsufficientUserAuthentication) | 401 | `error="insufficient_user_authentication"` with `acr_values` and/or `max_age` (RFC 9470) |
//! | [`UseDpopNonce`](AuthErrorKind::UseDpopNonce) | 401 | `error="use_dpop_nonce"` in the `DPoP` challenge only; `DPoP-Nonce` header |
//! | [`Unavailable`](AuthErrorKind::Unavailable) | 503 | none; `Retry-After` |
//! | [`Internal`](AuthErrorKind::Internal) | 500 | none |
//!
//! Every challenge carries `realm`, `scope` (for 401, when configured) and
//! `resource_metadata` (RFC 9728 §5.1, when configured) from the layer's [`Challenge`]
//! configuration, never from the request. Values are quoted and escaped; descriptions are
//! reduced to the characters RFC 6750 allows. The body is a small JSON object naming the
//! error; it never contains a credential. Replace the whole response with a
//! [`RejectionResponse`].
//!
//! Inside this module: `challenge.rs` ([`Scheme`], [`Challenge`] and the quoting rules of
//! `WWW-Authenticate`) and, here, the status and body of a refusal ([`Rejection`]) and the
//! responders ([`RejectionResponse`], [`DefaultRejection`]).
//!
//! # Example
//!
//! ```
//! use mcp_auth::{AuthError, Challenge, Rejection};
//!
//! let challenge = Challenge::bearer()
//!     .resource_metadata("https://mcp.example.com/.well-known/oauth-protected-resource/mcp");
//! let err = AuthError::insufficient_scope(["data:write"]);
//! let res = Rejection::new(&err, &challenge).default_response();
//! assert_eq!(res.status(), 403);
//! assert_eq!(
//!     res.headers()["www-authenticate"],
//!     "Bearer error=\"insufficient_scope\", scope=\"data:write\", \
//!      resource_metadata=\"https://mcp.example.com/.well-known/oauth-protected-resource/mcp\""
//! );
//! ```

use std::sync::Arc;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::error::{AuthError, AuthErrorKind};

mod challenge;

pub(crate) use self::challenge::join_scopes;
pub use self::challenge::{Challenge, Scheme};

/// The RFC 6750 `error` code of a kind, for kinds that have one.
fn error_code(kind: AuthErrorKind) -> Option<&'static str> {
    match kind {
        AuthErrorKind::InvalidToken | AuthErrorKind::Expired | AuthErrorKind::Revoked => {
            Some("invalid_token")
        }
        AuthErrorKind::InsufficientScope => Some("insufficient_scope"),
        AuthErrorKind::InvalidRequest => Some("invalid_request"),
        AuthErrorKind::InvalidDpopProof => Some("invalid_dpop_proof"),
        AuthErrorKind::UseDpopNonce => Some("use_dpop_nonce"),
        AuthErrorKind::InsufficientUserAuthentication => Some("insufficient_user_authentication"),
        _ => None,
    }
}

/// The status code for an error kind.
#[must_use]
fn status_for(kind: AuthErrorKind) -> StatusCode {
    match kind {
        AuthErrorKind::MissingCredentials
        | AuthErrorKind::InvalidToken
        | AuthErrorKind::Expired
        | AuthErrorKind::Revoked
        | AuthErrorKind::InvalidDpopProof
        | AuthErrorKind::UseDpopNonce
        | AuthErrorKind::InsufficientUserAuthentication => StatusCode::UNAUTHORIZED,
        AuthErrorKind::InsufficientScope => StatusCode::FORBIDDEN,
        AuthErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        AuthErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        AuthErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The `DPoP-Nonce` response header (RFC 9449 §8).
pub(crate) const DPOP_NONCE: http::HeaderName = http::HeaderName::from_static("dpop-nonce");

/// Seconds sent in `Retry-After` on a 503 whose error names no delay.
const DEFAULT_RETRY_AFTER_SECS: u64 = 5;

/// A refusal about to be answered: the error and the layer's challenge configuration.
#[derive(Debug, Clone, Copy)]
pub struct Rejection<'a> {
    error: &'a AuthError,
    challenge: &'a Challenge,
}

impl<'a> Rejection<'a> {
    /// Pairs an error with the challenge configuration of the layer that refused it.
    #[must_use]
    pub fn new(error: &'a AuthError, challenge: &'a Challenge) -> Self {
        Self { error, challenge }
    }

    /// The error.
    #[must_use]
    pub fn error(&self) -> &'a AuthError {
        self.error
    }

    /// The challenge configuration.
    #[must_use]
    pub fn challenge(&self) -> &'a Challenge {
        self.challenge
    }

    /// The status code this crate answers with.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        status_for(self.error.kind())
    }

    /// The `WWW-Authenticate` values (one per scheme, Bearer first); empty for 5xx.
    #[must_use]
    pub fn www_authenticate(&self) -> Vec<HeaderValue> {
        if !self.error.is_rejection() {
            return Vec::new();
        }
        self.challenge
            .schemes()
            .iter()
            .map(|s| self.challenge.render(s, self.error))
            .collect()
    }

    /// The JSON body: `{"error": "...", "error_description": "...", "scope": "..."}`.
    #[must_use]
    pub fn json_body(&self) -> Bytes {
        let kind = self.error.kind();
        let code = error_code(kind).unwrap_or(match kind {
            AuthErrorKind::MissingCredentials => "unauthorized",
            AuthErrorKind::Unavailable => "temporarily_unavailable",
            _ => "server_error",
        });
        let description = if kind.is_rejection() {
            self.error
                .description()
                .unwrap_or(match kind {
                    AuthErrorKind::MissingCredentials => "authentication required",
                    AuthErrorKind::InsufficientScope => "insufficient scope",
                    _ => "request refused",
                })
                .to_owned()
        } else if kind == AuthErrorKind::Unavailable {
            "authentication temporarily unavailable".to_owned()
        } else {
            "internal error".to_owned()
        };
        let mut body = serde_json::Map::new();
        body.insert("error".into(), code.into());
        body.insert("error_description".into(), description.into());
        if !self.error.acr_values().is_empty() {
            body.insert(
                "acr_values".into(),
                join_scopes(self.error.acr_values().iter()).into(),
            );
        }
        if let Some(max_age) = self.error.max_age() {
            body.insert("max_age".into(), max_age.into());
        }
        if kind == AuthErrorKind::InsufficientScope && !self.error.required_scopes().is_empty() {
            body.insert(
                "scope".into(),
                join_scopes(self.error.required_scopes().iter()).into(),
            );
        }
        Bytes::from(serde_json::Value::Object(body).to_string())
    }

    /// The response this crate sends by default.
    #[must_use]
    pub fn default_response(&self) -> Response<Bytes> {
        let mut res = json_response(self.status(), self.json_body());
        let headers = res.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        for value in self.www_authenticate() {
            headers.append(WWW_AUTHENTICATE, value);
        }
        if let Some(nonce) = self
            .error
            .dpop_nonce()
            .and_then(|n| HeaderValue::from_str(n).ok())
        {
            headers.insert(DPOP_NONCE, nonce);
        }
        if self.error.kind() == AuthErrorKind::Unavailable {
            let secs = self
                .error
                .retry_after()
                .map_or(DEFAULT_RETRY_AFTER_SECS, |d| d.as_secs().max(1));
            headers.insert(RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// A JSON refusal, `{"error": code, "error_description": description}` with `status`: the
/// body of every refusal that is not an authentication rejection (origin, HTTPS, malformed
/// MCP requests, failure limits, session bindings), in the same shape as
/// [`Rejection::json_body`].
pub(crate) fn json_error(status: StatusCode, code: &str, description: &str) -> Response<Bytes> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        error: &'a str,
        error_description: &'a str,
    }
    let body = Body {
        error: code,
        error_description: description,
    };
    // Two string fields always serialize; an empty body would be a bug, not a panic.
    let body = serde_json::to_vec(&body).unwrap_or_default();
    json_response(status, Bytes::from(body))
}

/// 503 `temporarily_unavailable` with `Retry-After`, for a layer whose store cannot answer
/// (fail closed): `what` is the description, e.g. "sessions are temporarily unavailable".
pub(crate) fn store_unavailable(what: &str) -> Response<Bytes> {
    let mut res = json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        what,
    );
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(DEFAULT_RETRY_AFTER_SECS));
    res
}

/// `body` as an `application/json` response with `status`.
fn json_response(status: StatusCode, body: Bytes) -> Response<Bytes> {
    let mut res = Response::new(body);
    *res.status_mut() = status;
    res.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

/// Builds the response for a refused request. Implement it (or pass a closure
/// `Fn(&Rejection<'_>) -> Response<Bytes>`) to change the body or add headers; start from
/// [`Rejection::default_response`] to keep the status and challenges right.
pub trait RejectionResponse: Send + Sync + 'static {
    /// The response for `rejection`.
    fn response(&self, rejection: &Rejection<'_>) -> Response<Bytes>;
}

impl<F> RejectionResponse for F
where
    F: Fn(&Rejection<'_>) -> Response<Bytes> + Send + Sync + 'static,
{
    fn response(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        self(rejection)
    }
}

/// The default [`RejectionResponse`]: [`Rejection::default_response`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejection;

impl RejectionResponse for DefaultRejection {
    fn response(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        rejection.default_response()
    }
}

impl<R: RejectionResponse + ?Sized> RejectionResponse for Arc<R> {
    fn response(&self, rejection: &Rejection<'_>) -> Response<Bytes> {
        (**self).response(rejection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_rfc_6750_and_the_mcp_spec() {
        let ch = Challenge::bearer();
        let cases = [
            (AuthError::missing_credentials(), 401),
            (AuthError::invalid_token("x"), 401),
            (AuthError::expired("x"), 401),
            (AuthError::revoked("x"), 401),
            (AuthError::insufficient_scope(["a"]), 403),
            (AuthError::invalid_request("x"), 400),
            (AuthError::unavailable("down"), 503),
            (AuthError::internal("bug"), 500),
        ];
        for (err, status) in cases {
            let res = Rejection::new(&err, &ch).default_response();
            assert_eq!(res.status().as_u16(), status, "{err:?}");
            assert_eq!(res.headers()[CONTENT_TYPE], "application/json");
            let has_challenge = res.headers().contains_key(WWW_AUTHENTICATE);
            assert_eq!(has_challenge, status < 500, "{err:?}");
        }
    }

    #[test]
    fn unavailable_carries_retry_after() {
        let ch = Challenge::bearer();
        let res = Rejection::new(&AuthError::unavailable("down"), &ch).default_response();
        assert_eq!(res.headers()[RETRY_AFTER], "5");
        let err =
            AuthError::unavailable("down").with_retry_after(std::time::Duration::from_secs(30));
        let res = Rejection::new(&err, &ch).default_response();
        assert_eq!(res.headers()[RETRY_AFTER], "30");
    }

    #[test]
    fn failure_body_does_not_reveal_the_source() {
        let err = AuthError::internal(std::io::Error::other("db password=hunter2"));
        let body = Rejection::new(&err, &Challenge::bearer()).json_body();
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(
            text,
            r#"{"error":"server_error","error_description":"internal error"}"#
        );
    }

    #[test]
    fn insufficient_scope_body_names_the_missing_scopes() {
        let err = AuthError::insufficient_scope(["data:admin"]);
        let body = Rejection::new(&err, &Challenge::bearer()).json_body();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"], "insufficient_scope");
        assert_eq!(v["scope"], "data:admin");
    }
}
