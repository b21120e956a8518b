//! Audit events: one structured [`tracing`] event, on target [`AUDIT_TARGET`], for every
//! authentication success and failure, every authorization denial, every request refused for
//! too many failures, and every transport refusal. Enable them with a subscriber filter such
//! as `mcp_auth::audit=info`.
//!
//! | field | when | value |
//! |---|---|---|
//! | `event` | always | `authn_success`, `authn_failure`, `authz_denied`, `rate_limited`, `transport_refused` |
//! | `reason` | not on success | stable code: `missing_credentials`, `invalid_token`, `expired`, `revoked`, `invalid_request`, `unavailable`, `internal`, `insufficient_scope`, `too_many_failures`, `https_required`, `forbidden_origin` |
//! | `detail` | when known | finer cause, e.g. `audience_mismatch`, `bad_signature`, `unlisted_operation`, `missing_role` |
//! | `http_method`, `path` | always | the request line (path without query; with feature `axum`, the path before nesting) |
//! | `principal` | success, denial | the caller's stable key (`AuthContext::principal`) |
//! | `auth_method` | success, denial | `api_key`, `bearer`, `jwt`, `introspection`, or a custom name |
//! | `client_addr` | when known | the peer address ([`crate::transport::client_addr`]) |
//! | `mcp_method`, `tool` | when known | from `Mcp-Method` / `Mcp-Name` headers, or the body (scope layer) |
//! | `request_id` | when sent | the `X-Request-Id` header, if short and plain |
//!
//! No event ever carries a credential, a header value other than those listed, or part of
//! either. Success events are at `debug`, the others at `info`.
//!
//! ```
//! assert_eq!(mcp_auth::audit::AUDIT_TARGET, "mcp_auth::audit");
//! ```

use http::request::Parts;
use http::{HeaderMap, Request};

use crate::context::AuthContext;
use crate::error::AuthError;

/// The `tracing` target of audit events.
pub const AUDIT_TARGET: &str = "mcp_auth::audit";

/// A header value fit for a log: short, visible ASCII without quotes or separators.
fn plain<'a>(headers: &'a HeaderMap, name: &str, max: usize) -> Option<&'a str> {
    let mut values = headers.get_all(name).iter();
    let v = values.next()?;
    if values.next().is_some() || v.len() > max || v.is_empty() {
        return None;
    }
    v.to_str().ok().filter(|s| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:".contains(&b))
    })
}

struct Fields<'a> {
    http_method: &'a http::Method,
    path: &'a str,
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
        http_method: method,
        path: uri.path(),
        client_addr: crate::transport::client_addr(extensions),
        mcp_method: plain(headers, "mcp-method", 64),
        tool: plain(headers, "mcp-name", 128),
        request_id: plain(headers, "x-request-id", 64),
    }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> tracing::field::DisplayValue<String> {
    tracing::field::display(v.map(|v| v.to_string()).unwrap_or_default())
}

/// Authentication succeeded.
pub(crate) fn success(parts: &Parts, ctx: &AuthContext) {
    if !tracing::enabled!(target: AUDIT_TARGET, tracing::Level::DEBUG) {
        return;
    }
    let f = fields(&parts.method, &parts.uri, &parts.headers, &parts.extensions);
    tracing::debug!(
        target: AUDIT_TARGET,
        event = "authn_success",
        principal = ctx.principal(),
        auth_method = ctx.method().as_str(),
        http_method = %f.http_method,
        path = f.path,
        client_addr = opt(f.client_addr),
        mcp_method = f.mcp_method.unwrap_or(""),
        tool = f.tool.unwrap_or(""),
        request_id = f.request_id.unwrap_or(""),
    );
}

/// Authentication failed (or could not be decided).
pub(crate) fn failure(parts: &Parts, err: &AuthError) {
    if !tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
        return;
    }
    let f = fields(&parts.method, &parts.uri, &parts.headers, &parts.extensions);
    tracing::info!(
        target: AUDIT_TARGET,
        event = "authn_failure",
        reason = err.reason(),
        detail = err.detail().unwrap_or(""),
        http_method = %f.http_method,
        path = f.path,
        client_addr = opt(f.client_addr),
        mcp_method = f.mcp_method.unwrap_or(""),
        tool = f.tool.unwrap_or(""),
        request_id = f.request_id.unwrap_or(""),
    );
}

/// The authenticated caller may not perform the operation(s).
pub(crate) fn denied(
    parts: &Parts,
    ctx: Option<&AuthContext>,
    err: &AuthError,
    op: Option<&crate::scope::Operation>,
) {
    if !tracing::enabled!(target: AUDIT_TARGET, tracing::Level::INFO) {
        return;
    }
    let f = fields(&parts.method, &parts.uri, &parts.headers, &parts.extensions);
    tracing::info!(
        target: AUDIT_TARGET,
        event = "authz_denied",
        reason = err.reason(),
        detail = err.detail().unwrap_or(""),
        principal = ctx.map(AuthContext::principal).unwrap_or(""),
        auth_method = ctx.map(|c| c.method().as_str()).unwrap_or(""),
        http_method = %f.http_method,
        path = f.path,
        client_addr = opt(f.client_addr),
        mcp_method = op.map(|o| o.method()).or(f.mcp_method).unwrap_or(""),
        tool = op.and_then(|o| o.name()).or(f.tool).unwrap_or(""),
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
    tracing::info!(
        target: AUDIT_TARGET,
        event,
        reason,
        http_method = %f.http_method,
        path = f.path,
        client_addr = opt(f.client_addr),
        mcp_method = f.mcp_method.unwrap_or(""),
        tool = f.tool.unwrap_or(""),
        request_id = f.request_id.unwrap_or(""),
    );
}
