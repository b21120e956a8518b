//! Audit events: one structured [`tracing`] event, on target [`AUDIT_TARGET`], for every
//! authentication success and failure, every authorization denial, every request refused for
//! too many failures, and every transport refusal. Enable them with a subscriber filter such
//! as `mcp_auth::audit=info`.
//!
//! | field | when | value |
//! |---|---|---|
//! | `event` | always | `authn_success`, `authn_failure`, `authz_denied`, `rate_limited`, `transport_refused` |
//! | `reason` | not on success | stable code: `missing_credentials`, `invalid_token`, `expired`, `revoked`, `invalid_request`, `unavailable`, `internal`, `insufficient_scope`, `too_many_failures`, `https_required`, `forbidden_origin`, `foreign_session` (another principal's `Mcp-Session-Id`), `unknown_session` (a session id the store does not know) |
//! | `detail` | when known | finer cause, e.g. `audience_mismatch`, `bad_signature`, `introspection_400` (the authorization server answered 400), `unlisted_operation`, `ambiguous_uri` (a resource URI not in canonical form), `missing_role` |
//! | `http_method`, `path` | always | the request line (path without query; with feature `axum`, the path before nesting) |
//! | `principal` | success, denial | the caller's stable key (`AuthContext::principal`) |
//! | `auth_method` | success, denial | `api_key`, `bearer`, `jwt`, `introspection`, or a custom name |
//! | `client_addr` | when known | the client address ([`crate::request_info::client_addr`]): the peer's, or behind trusted proxies the one they report ([`crate::hardening::ClientAddrLayer`]) |
//! | `mcp_method`, `tool` | when known | from `Mcp-Method` / `Mcp-Name` headers, or the body (scope layer) |
//! | `request_id` | when sent | the `X-Request-Id` header, if short and plain |
//! | `error` | `unavailable`, `internal` | the cause (a store or network error's message), bounded |
//!
//! No event ever carries a credential, a header value other than those listed, or part of
//! either. Success events are at `debug`; failures the server could not decide (`unavailable`,
//! `internal`) at `warn`, with an `error` field naming the cause; the others at `info`.
//!
//! Every value is bounded, whatever the request holds: `path` at [`MAX_PATH`] bytes,
//! `http_method` at 32, `mcp_method` and `request_id` at 64, `tool` at 128 (whether from a
//! header or the body), `principal` at 256 and `error` at 512. A longer value is cut on a
//! character boundary and ends in [`TRUNCATED`]. Header-derived values that are not plain
//! (visible ASCII letters, digits and `-_./:`) are left out.
//!
//! A refusal is logged once: as its audit event when this target is enabled, otherwise as one
//! event on [`REJECTION_TARGET`].
//!
//! ```
//! assert_eq!(mcp_auth::telemetry::AUDIT_TARGET, "mcp_auth::audit");
//! ```

use std::borrow::Cow;

use http::request::Parts;
use http::{HeaderMap, Request};

use crate::context::AuthContext;
use crate::error::AuthError;

/// The `tracing` target of audit events.
pub const AUDIT_TARGET: &str = "mcp_auth::audit";

/// The `tracing` target of JWT key-source events (JWKS refreshes, skipped keys).
pub const JWT_TARGET: &str = "mcp_auth::jwt";

/// Longest `path` logged, in bytes; a longer one is cut and ends in [`TRUNCATED`].
pub const MAX_PATH: usize = 256;

/// The marker that ends a logged value that was cut to its bound.
pub const TRUNCATED: &str = "…[truncated]";

pub(crate) const MAX_HTTP_METHOD: usize = 32;
pub(crate) const MAX_MCP_METHOD: usize = 64;
pub(crate) const MAX_TOOL: usize = 128;
pub(crate) const MAX_REQUEST_ID: usize = 64;
pub(crate) const MAX_PRINCIPAL: usize = 256;
pub(crate) const MAX_ERROR: usize = 512;

/// `value` fit for a log line: at most `max` bytes, cut on a character boundary and marked
/// with [`TRUNCATED`] when longer. The one bound every logged request-derived value goes
/// through (audit events and rejection events alike).
pub(crate) fn bounded(value: &str, max: usize) -> Cow<'_, str> {
    if value.len() <= max {
        return Cow::Borrowed(value);
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        // `end` > 0 here: 0 is always a character boundary.
        end = end.saturating_sub(1);
    }
    let head = value.get(..end).unwrap_or("");
    let mut out = String::with_capacity(end.saturating_add(TRUNCATED.len()));
    out.push_str(head);
    out.push_str(TRUNCATED);
    Cow::Owned(out)
}

/// A header value fit for a log: one value, at most `max` bytes, visible ASCII letters,
/// digits and `-_./:` only; anything else is left out (`None`).
fn plain<'a>(headers: &'a HeaderMap, name: &str, max: usize) -> Option<&'a str> {
    let v = crate::request_info::only_value(headers, name).ok()??;
    if v.len() > max || v.is_empty() {
        return None;
    }
    v.to_str().ok().filter(|s| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:".contains(&b))
    })
}

struct Fields<'a> {
    http_method: Cow<'a, str>,
    path: Cow<'a, str>,
    client_addr: Option<std::net::IpAddr>,
    mcp_method: Option<&'a str>,
    tool: Option<&'a str>,
    request_id: Option<&'a str>,
}

fn fields<'a>(
    method: &'a http::Method,
    uri: &'a http::Uri,
    headers: &'a HeaderMap,
    extensions: &'a http::Extensions,
) -> Fields<'a> {
    #[cfg(feature = "axum")]
    let uri = extensions
        .get::<axum::extract::OriginalUri>()
        .map_or(uri, |o| &o.0);
    Fields {
        http_method: bounded(method.as_str(), MAX_HTTP_METHOD),
        path: bounded(uri.path(), MAX_PATH),
        client_addr: crate::request_info::client_addr(extensions),
        mcp_method: plain(headers, "mcp-method", MAX_MCP_METHOD),
        tool: plain(headers, "mcp-name", MAX_TOOL),
        request_id: plain(headers, "x-request-id", MAX_REQUEST_ID),
    }
}

/// One audit event on [`AUDIT_TARGET`] at `$level`: the event's own fields (each followed by
/// a comma), then the request fields every audit event but `authz_denied` ends with, in this
/// order.
macro_rules! audit_event {
    ($level:expr, $f:ident, $($fields:tt)*) => {
        tracing::event!(
            target: AUDIT_TARGET,
            $level,
            $($fields)*
            http_method = %$f.http_method,
            path = &*$f.path,
            client_addr = opt($f.client_addr),
            mcp_method = $f.mcp_method.unwrap_or(""),
            tool = $f.tool.unwrap_or(""),
            request_id = $f.request_id.unwrap_or(""),
        )
    };
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> tracing::field::DisplayValue<String> {
    tracing::field::display(v.map(|v| v.to_string()).unwrap_or_default())
}

/// Whether the audit event of `err` is enabled (then it is the refusal's only log line).
pub(crate) fn failure_enabled(err: &AuthError) -> bool {
    if err.is_rejection() {
        tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO)
    } else {
        tracing::enabled!(target: AUDIT_TARGET, tracing::Level::WARN)
    }
}

/// The cause of a failure the server could not decide, bounded; empty for rejections.
pub(crate) fn error_source(err: &AuthError) -> String {
    std::error::Error::source(err)
        .map(bounded_error)
        .unwrap_or_default()
}

/// An error's message, bounded like every logged value (for other modules' log lines).
pub(crate) fn bounded_error(err: &(impl std::fmt::Display + ?Sized)) -> String {
    bounded(&err.to_string(), MAX_ERROR).into_owned()
}

/// Authentication succeeded.
pub(crate) fn success(parts: &Parts, ctx: &AuthContext) {
    if !tracing::enabled!(target: AUDIT_TARGET, tracing::Level::DEBUG) {
        return;
    }
    let f = fields(&parts.method, &parts.uri, &parts.headers, &parts.extensions);
    audit_event!(
        tracing::Level::DEBUG,
        f,
        event = "authn_success",
        principal = &*bounded(ctx.principal(), MAX_PRINCIPAL),
        auth_method = &*bounded(ctx.method().as_str(), MAX_MCP_METHOD),
    );
}

/// Authentication failed (or could not be decided).
pub(crate) fn failure(parts: &Parts, err: &AuthError) {
    if !failure_enabled(err) {
        return;
    }
    let f = fields(&parts.method, &parts.uri, &parts.headers, &parts.extensions);
    if err.is_rejection() {
        audit_event!(
            tracing::Level::INFO,
            f,
            event = "authn_failure",
            reason = err.reason(),
            detail = err.detail().unwrap_or(""),
        );
    } else {
        audit_event!(
            tracing::Level::WARN,
            f,
            event = "authn_failure",
            reason = err.reason(),
            detail = err.detail().unwrap_or(""),
            error = error_source(err).as_str(),
        );
    }
}

/// The authenticated caller may not perform the operation(s). `op` is the refused
/// operation's MCP method and tool/prompt/resource name, when one was singled out.
pub(crate) fn denied(
    parts: &Parts,
    ctx: Option<&AuthContext>,
    err: &AuthError,
    op: Option<(&str, Option<&str>)>,
) {
    if !tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
        return;
    }
    let f = fields(&parts.method, &parts.uri, &parts.headers, &parts.extensions);
    // The body-derived names are as long as the body allows: bound them like the headers.
    let mcp_method = op
        .map(|(method, _)| bounded(method, MAX_MCP_METHOD))
        .or(f.mcp_method.map(Cow::Borrowed))
        .unwrap_or_default();
    let tool = op
        .and_then(|(_, name)| name)
        .map(|n| bounded(n, MAX_TOOL))
        .or(f.tool.map(Cow::Borrowed))
        .unwrap_or_default();
    tracing::info!(
        target: AUDIT_TARGET,
        event = "authz_denied",
        reason = err.reason(),
        detail = err.detail().unwrap_or(""),
        principal = &*ctx.map(|c| bounded(c.principal(), MAX_PRINCIPAL)).unwrap_or_default(),
        auth_method = &*ctx.map(|c| bounded(c.method().as_str(), MAX_MCP_METHOD)).unwrap_or_default(),
        http_method = %f.http_method,
        path = &*f.path,
        client_addr = opt(f.client_addr),
        mcp_method = &*mcp_method,
        tool = &*tool,
        request_id = f.request_id.unwrap_or(""),
    );
}

/// Refused for too many failed attempts.
pub(crate) fn rate_limited<B>(req: &Request<B>) {
    event(req, "rate_limited", "too_many_failures");
}

/// Refused by a transport guard.
pub(crate) fn refused<B>(req: &Request<B>, reason: &'static str) {
    event(req, "transport_refused", reason);
}

fn event<B>(req: &Request<B>, event: &'static str, reason: &'static str) {
    if !tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
        return;
    }
    let f = fields(req.method(), req.uri(), req.headers(), req.extensions());
    audit_event!(tracing::Level::INFO, f, event, reason,);
}

/// The `tracing` target of rejection events.
pub const REJECTION_TARGET: &str = "mcp_auth::rejection";

/// Logs a refused request on [`REJECTION_TARGET`]: rejections at `debug`, failures at `warn`,
/// with the reason code, the HTTP method and the path (bounded like every logged value, see
/// the [module docs](self)); never a header value.
///
/// A refusal is logged once: when its audit event ([`AUDIT_TARGET`]) is enabled,
/// that event is the only line and this one is skipped.
pub(crate) fn log_rejection(err: &AuthError, parts: &Parts) {
    if failure_enabled(err) {
        return;
    }
    let path = bounded(parts.uri.path(), MAX_PATH);
    let method = bounded(parts.method.as_str(), MAX_HTTP_METHOD);
    if err.is_rejection() {
        tracing::debug!(
            target: REJECTION_TARGET,
            reason = err.reason(),
            detail = err.detail().unwrap_or(""),
            http.method = %method,
            path = &*path,
            "request rejected"
        );
    } else {
        tracing::warn!(
            target: REJECTION_TARGET,
            reason = err.reason(),
            http.method = %method,
            path = &*path,
            error = error_source(err).as_str(),
            "authentication failed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_values_are_cut_on_a_character_boundary_and_marked() {
        assert_eq!(bounded("short", 8), "short");
        assert_eq!(bounded("exactly8", 8), "exactly8");
        let long = "a".repeat(64 * 1024);
        let cut = bounded(&long, MAX_PATH);
        assert_eq!(cut.len(), MAX_PATH + TRUNCATED.len());
        assert!(cut.ends_with(TRUNCATED));
        // A multi-byte character straddling the bound is dropped whole.
        let s = format!("{}é", "a".repeat(7));
        assert_eq!(bounded(&s, 8), format!("{}{TRUNCATED}", "a".repeat(7)));
        assert_eq!(bounded("ééé", 1), TRUNCATED);
    }
}
