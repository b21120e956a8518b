//! Reading a request's body for [`ScopeLayer`](super::ScopeLayer): identity-encoded only,
//! bounded in size and in time, and read whole before any decision, so the inner service gets
//! exactly the bytes that were decided on.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_ENCODING, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::request::Parts;
use http::{HeaderName, HeaderValue, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::jsonrpc::parse_operations_limited;
use super::operation::Operation;
use super::refusal::Refusal;

/// How much of a body the layer reads, and for how long (see [`ScopeLayer`](super::ScopeLayer)).
#[derive(Clone, Copy)]
pub(super) struct BodyLimits {
    /// Largest body read; more gets 413.
    pub(super) max_body: usize,
    /// Most messages in a batch; more gets 400.
    pub(super) max_batch: usize,
    /// Time allowed to receive the whole body; slower gets 408.
    pub(super) timeout: Duration,
}

/// The error a body read with [`Limited`] reports.
pub(super) type ReadError = Box<dyn std::error::Error + Send + Sync>;

const TOO_SLOW: Refusal = Refusal::Status(
    StatusCode::REQUEST_TIMEOUT,
    "request_timeout",
    "the request body was not received in time",
);

const TOO_LARGE: Refusal = Refusal::Status(
    StatusCode::PAYLOAD_TOO_LARGE,
    "body_too_large",
    "request body too large",
);

const ENCODED: Refusal = Refusal::Status(
    StatusCode::UNSUPPORTED_MEDIA_TYPE,
    "unsupported_encoding",
    "only identity content encoding is accepted",
);

const BODY_ON_BODYLESS: Refusal =
    Refusal::bad_request("a GET, HEAD, DELETE or OPTIONS request must not carry a body");

/// Reads a POST body whole (identity-encoded, at most `limits.max_body` bytes, within
/// `limits.timeout`) and the JSON-RPC operations it carries (batches of at most
/// `limits.max_batch` messages).
///
/// # Errors
///
/// 415 for a `Content-Encoding` other than `identity`; 413 for a body declared or found
/// larger than the limit; 408 when it is not received in time; 400 when it cannot be read or
/// is not a JSON-RPC request this server accepts.
pub(super) async fn read_operations<B: Body<Error: Into<ReadError>>>(
    parts: &Parts,
    body: B,
    limits: &BodyLimits,
) -> Result<(Bytes, Vec<Operation>), Refusal> {
    if any_value(parts, CONTENT_ENCODING, |v| {
        !v.as_bytes().eq_ignore_ascii_case(b"identity")
    }) {
        return Err(ENCODED);
    }
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > u64::try_from(limits.max_body).unwrap_or(u64::MAX)) {
        return Err(TOO_LARGE);
    }
    let read = Limited::new(body, limits.max_body).collect();
    let bytes = match within(limits.timeout, read).await {
        None => return Err(TOO_SLOW),
        Some(Ok(collected)) => collected.to_bytes(),
        Some(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return Err(TOO_LARGE),
        Some(Err(_)) => {
            return Err(Refusal::bad_request("the request body could not be read"));
        }
    };
    let ops = parse_operations_limited(&bytes, limits.max_batch)
        .map_err(|e| parse_refusal(e.reason()))?;
    Ok((bytes, ops))
}

/// Makes sure a GET, HEAD, DELETE or OPTIONS request carries no body: none declared (a
/// `Content-Length` above 0, any `Transfer-Encoding`) and, whatever the headers say, not one
/// byte sent within `timeout` (an HTTP/2 DATA frame needs no `Content-Length`).
///
/// # Errors
///
/// 400 for a body declared or sent; 408 when the body does not end in time.
pub(super) async fn expect_no_body<B: Body<Error: Into<ReadError>>>(
    parts: &Parts,
    body: B,
    timeout: Duration,
) -> Result<(), Refusal> {
    if any_value(parts, CONTENT_LENGTH, |v| v != "0")
        || parts.headers.contains_key(TRANSFER_ENCODING)
    {
        return Err(BODY_ON_BODYLESS);
    }
    match within(timeout, Limited::new(body, 0).collect()).await {
        None => Err(TOO_SLOW),
        Some(Ok(_)) => Ok(()),
        Some(Err(_)) => Err(BODY_ON_BODYLESS),
    }
}

/// Whether `test` holds for any value of the header `name`.
fn any_value(parts: &Parts, name: HeaderName, test: impl Fn(&HeaderValue) -> bool) -> bool {
    parts.headers.get_all(name).iter().any(test)
}

/// The reason given for a body `parse_operations` refused (400).
fn parse_refusal(reason: &str) -> Refusal {
    Refusal::bad_request(match reason {
        "batch_too_large" => "the batch holds more messages than this server accepts",
        "too_many_targets" => "the request names more targets than this server accepts",
        _ => "the body is not a JSON-RPC request this server accepts",
    })
}

/// Runs `fut` for at most `limit` when a Tokio timer is available (`None` on timeout); see
/// [`ScopeLayer::body_timeout`](super::ScopeLayer::body_timeout).
async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    #[cfg(any(feature = "jwt", feature = "introspection", feature = "redis"))]
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            return tokio::time::timeout(limit, fut).await.ok();
        }
    }
    #[cfg(not(any(feature = "jwt", feature = "introspection", feature = "redis")))]
    let _ = limit;
    Some(fut.await)
}
