//! Prometheus text metrics: requests by status class and reason, and the upstream's latency
//! to response headers. Hand-rolled counters; served by [`crate::metrics_router`] on its own
//! listener (`MCP_PROXY_METRICS_BIND`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{Response, StatusCode};
use mcp_auth::AuthError;

/// Upper bounds (seconds) of the latency histogram's buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Why the proxy itself answered instead of the upstream: put in the response's extensions,
/// read by the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProxyReason(pub(crate) &'static str);

/// The proxy's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests answered, by (status class, reason).
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    /// Upstream latency to response headers: one count per bucket, then +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Metrics {
    /// Empty counters.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one answered request.
    pub fn record<B>(&self, res: &Response<B>) {
        let key = (class(res.status()), reason(res));
        // A poisoned lock only means another thread panicked mid-increment: keep counting.
        let mut map = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *map.entry(key).or_insert(0) += 1;
    }

    /// Records one upstream round trip to response headers.
    pub fn observe_upstream(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let at = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        if let Some(b) = self.buckets.get(at) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Requests counted so far with this status class (`"2xx"`) and reason.
    #[must_use]
    pub fn requests(&self, class: &str, reason: &str) -> u64 {
        let map = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.iter()
            .filter(|((c, r), _)| *c == class && *r == reason)
            .map(|(_, n)| *n)
            .sum()
    }

    /// The Prometheus text exposition of every metric.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP mcp_proxy_requests_total Requests answered, by status class and reason.\n\
             # TYPE mcp_proxy_requests_total counter\n",
        );
        {
            let map = self
                .requests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((class, reason), n) in map.iter() {
                let _ = writeln!(
                    out,
                    "mcp_proxy_requests_total{{class=\"{class}\",reason=\"{reason}\"}} {n}"
                );
            }
        }
        out.push_str(
            "# HELP mcp_proxy_upstream_response_seconds Time from forwarding a request to the upstream's response headers.\n\
             # TYPE mcp_proxy_upstream_response_seconds histogram\n",
        );
        let mut cumulative = 0;
        for (i, bucket) in self.buckets.iter().enumerate() {
            cumulative += bucket.load(Ordering::Relaxed);
            let le = BUCKETS
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), ToString::to_string);
            let _ = writeln!(
                out,
                "mcp_proxy_upstream_response_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "mcp_proxy_upstream_response_seconds_sum {sum}");
        let _ = writeln!(
            out,
            "mcp_proxy_upstream_response_seconds_count {cumulative}"
        );
        out
    }
}

/// `"2xx"` for 200 and so on.
fn class(status: StatusCode) -> &'static str {
    match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The reason label: the auth stack's refusal (`invalid_token`, `insufficient_scope`, ...), the
/// proxy's own (`upstream_unreachable`, `upstream_timeout`, ...), `ok`, or a name for the
/// status of other refusals (origin, failure limit, sessions, body limits).
fn reason<B>(res: &Response<B>) -> &'static str {
    if let Some(err) = res.extensions().get::<AuthError>() {
        return err.reason();
    }
    if let Some(ProxyReason(r)) = res.extensions().get::<ProxyReason>() {
        return r;
    }
    match res.status().as_u16() {
        100..=399 => "ok",
        400 => "bad_request",
        403 => "forbidden",
        404 => "not_found",
        405 => "method_not_allowed",
        406 => "not_acceptable",
        413 => "body_too_large",
        415 => "unsupported_media_type",
        429 => "too_many_failures",
        401..=499 => "client_error",
        502 => "upstream_error",
        503 => "unavailable",
        _ => "server_error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted_by_class_and_reason() {
        let m = Metrics::new();
        m.record(&Response::new(()));
        let mut timeout = Response::new(());
        *timeout.status_mut() = StatusCode::GATEWAY_TIMEOUT;
        timeout
            .extensions_mut()
            .insert(ProxyReason("upstream_timeout"));
        m.record(&timeout);
        let mut denied = Response::new(());
        *denied.status_mut() = StatusCode::FORBIDDEN;
        denied
            .extensions_mut()
            .insert(AuthError::insufficient_scope(["data:admin"]));
        m.record(&denied);
        m.record(&denied);
        assert_eq!(m.requests("2xx", "ok"), 1);
        assert_eq!(m.requests("5xx", "upstream_timeout"), 1);
        assert_eq!(m.requests("4xx", "insufficient_scope"), 2);
        let text = m.render();
        assert!(
            text.contains(
                "mcp_proxy_requests_total{class=\"4xx\",reason=\"insufficient_scope\"} 2"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_histogram_is_cumulative() {
        let m = Metrics::new();
        m.observe_upstream(Duration::from_millis(3));
        m.observe_upstream(Duration::from_millis(300));
        m.observe_upstream(Duration::from_secs(60));
        let text = m.render();
        assert!(text.contains("_bucket{le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("_bucket{le=\"0.5\"} 2\n"), "{text}");
        assert!(text.contains("_bucket{le=\"30\"} 2\n"), "{text}");
        assert!(text.contains("_bucket{le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("_count 3\n"), "{text}");
    }
}
