//! The `Mcp-Method` / `Mcp-Name` headers (MCP 2026-07-28): the operation they name, and
//! whether they agree with the operations of the body.
//!
//! The layer always decides from the body; the headers are only checked against it, so an
//! intermediary that routes on them cannot be led astray by a request that says one thing in
//! its headers and another in its body. From protocol version 2026-07-28 on
//! (`MCP-Protocol-Version`) the headers are required: `Mcp-Method` on every request and
//! notification, `Mcp-Name` for the methods that have a target. For older or absent versions
//! they are optional, and checked when present. `Mcp-Name` values in the Base64 sentinel form
//! (`=?base64?…?=`) are decoded first. `Mcp-Param-*` headers are left to the MCP server, which
//! knows the tool schemas that declare them; no decision here reads tool arguments.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderMap;

use super::operation::{Operation, OperationError};

/// The first protocol version whose requests carry the mirrored headers.
pub const STANDARD_HEADERS_VERSION: &str = "2026-07-28";

/// The `MCP-Protocol-Version` header.
const PROTOCOL_VERSION: &str = "mcp-protocol-version";

/// Longest header value decoded from the Base64 sentinel form.
const MAX_SENTINEL_LEN: usize = 8 * 1024;

/// A header value in the Base64 sentinel form (`=?base64?<standard base64>?=`), decoded;
/// any other value as it is.
///
/// # Errors
///
/// When the sentinel holds invalid Base64 or UTF-8, or is longer than 8 KiB.
pub fn decode_header_value(value: &str) -> Result<String, OperationError> {
    let Some(inner) = value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    else {
        return Ok(value.to_owned());
    };
    if inner.len() > MAX_SENTINEL_LEN {
        return Err(OperationError("bad_header"));
    }
    let bytes = STANDARD
        .decode(inner)
        .map_err(|_| OperationError("bad_header"))?;
    String::from_utf8(bytes).map_err(|_| OperationError("bad_header"))
}

/// The operation named by the `Mcp-Method` / `Mcp-Name` headers, if present (`Mcp-Name`
/// decoded from the Base64 sentinel form).
///
/// # Errors
///
/// When a header is repeated, not visible ASCII, or a sentinel does not decode.
pub fn operation_from_headers(headers: &HeaderMap) -> Result<Option<Operation>, OperationError> {
    let one = |name: &str| -> Result<Option<String>, OperationError> {
        crate::request_info::only_value(headers, name)
            .map_err(|_| OperationError("duplicate_header"))?
            .map(|v| {
                v.to_str()
                    .map_err(|_| OperationError("bad_header"))
                    .and_then(decode_header_value)
            })
            .transpose()
    };
    let name = one("mcp-name")?;
    let Some(method) = one("mcp-method")? else {
        if name.is_some() {
            // A target without its method: nothing to check it against.
            return Err(OperationError("name_without_method"));
        }
        return Ok(None);
    };
    let (name, uri) = if method == "resources/read" {
        (None, name)
    } else {
        (name, None)
    };
    Ok(Some(Operation::new(method, name, uri)))
}

/// Whether the request's protocol version requires the mirrored headers (2026-07-28 or
/// later; dates compare as text).
///
/// # Errors
///
/// When `MCP-Protocol-Version` is repeated or not visible ASCII.
pub fn requires_mirrored_headers(headers: &HeaderMap) -> Result<bool, OperationError> {
    let version = crate::request_info::only_value(headers, PROTOCOL_VERSION)
        .map_err(|_| OperationError("duplicate_header"))?
        .map(|v| v.to_str().map_err(|_| OperationError("bad_header")))
        .transpose()?;
    Ok(version.is_some_and(|v| v.trim() >= STANDARD_HEADERS_VERSION))
}

/// Methods whose target travels in `Mcp-Name`: `params.name` or `params.uri`.
fn has_named_target(method: &str) -> bool {
    matches!(
        method,
        "tools/call"
            | "prompts/get"
            | "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
    )
}

/// Methods whose `Mcp-Name` carries `params.taskId`, which no decision here reads.
fn names_a_task(method: &str) -> bool {
    matches!(method, "tasks/get" | "tasks/update" | "tasks/cancel")
}

/// Whether the headers (`h`, absent when the request has no `Mcp-Method`) describe the
/// body's operations; `required`: the protocol version requires them.
pub(super) fn headers_match(
    h: Option<&Operation>,
    body: &[Operation],
    required: bool,
) -> Result<(), &'static str> {
    match h {
        // Nothing to mirror: a body of JSON-RPC responses.
        None if body.is_empty() => Ok(()),
        None if required => Err("missing required Mcp-Method header"),
        None => Ok(()),
        Some(h) => {
            if required && has_named_target(h.method()) && h.name().or(h.uri()).is_none() {
                return Err("missing required Mcp-Name header");
            }
            if headers_agree(h, body) {
                Ok(())
            } else {
                Err("Mcp-Method/Mcp-Name headers do not match the body")
            }
        }
    }
}

/// Whether the `Mcp-Method`/`Mcp-Name` headers (`h`) describe the body's operations: one
/// message of that method whose target (name or URI) is the `Mcp-Name` value. The methods the
/// MCP spec gives an `Mcp-Name` (`tools/call`, `prompts/get`, `resources/read`) need it; for
/// the others a missing `Mcp-Name` checks the method only (`subscriptions/listen` may then
/// yield one operation per URI). A task's `Mcp-Name` (its id) is not compared.
pub(super) fn headers_agree(h: &Operation, body: &[Operation]) -> bool {
    let target = |o: &Operation| o.name().or(o.uri()).map(str::to_owned);
    let named = matches!(h.method(), "tools/call" | "prompts/get" | "resources/read");
    match (body, target(h)) {
        ([b], Some(_)) if names_a_task(h.method()) => b.method() == h.method(),
        ([b], Some(t)) => b.method() == h.method() && target(b).as_deref() == Some(t.as_str()),
        ([b], None) => b.method() == h.method() && !named,
        (many, None) => {
            h.method() == "subscriptions/listen"
                && !many.is_empty()
                && many.iter().all(|b| b.method() == h.method())
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_name_the_operation() {
        let mut h = HeaderMap::new();
        assert_eq!(operation_from_headers(&h).unwrap(), None);
        h.insert("mcp-method", "tools/call".parse().unwrap());
        h.insert("mcp-name", "read_data".parse().unwrap());
        let op = operation_from_headers(&h).unwrap().unwrap();
        assert_eq!((op.method(), op.name()), ("tools/call", Some("read_data")));
        h.append("mcp-name", "x".parse().unwrap());
        assert_eq!(
            operation_from_headers(&h).unwrap_err().reason(),
            "duplicate_header"
        );
    }

    #[test]
    fn headers_are_checked_against_every_target() {
        let op = |m: &str, n: Option<&str>, u: Option<&str>| {
            Operation::new(m, n.map(str::to_owned), u.map(str::to_owned))
        };
        let skill = [op("skills/get", None, Some("skill://a"))];
        assert!(headers_agree(&op("skills/get", None, None), &skill));
        assert!(headers_agree(
            &op("skills/get", Some("skill://a"), None),
            &skill
        ));
        assert!(!headers_agree(
            &op("skills/get", Some("skill://b"), None),
            &skill
        ));
        assert!(!headers_agree(
            &op("resources/read", None, None),
            &[op("resources/read", None, Some("x"))]
        ));
        assert!(headers_agree(
            &op("resources/read", None, Some("x")),
            &[op("resources/read", None, Some("x"))]
        ));
        let listen = [
            op("subscriptions/listen", None, Some("a")),
            op("subscriptions/listen", None, Some("b")),
        ];
        assert!(headers_agree(
            &op("subscriptions/listen", None, None),
            &listen
        ));
        assert!(!headers_agree(
            &op("subscriptions/listen", Some("a"), None),
            &listen
        ));
        assert!(!headers_agree(&op("tools/list", None, None), &[]));
        // A task's id is not compared.
        assert!(headers_agree(
            &op("tasks/get", Some("t-1"), None),
            &[op("tasks/get", None, None)]
        ));
        assert!(!headers_agree(
            &op("tools/list", None, None),
            &[op("tools/list", None, None), op("tools/list", None, None)]
        ));
    }

    #[test]
    fn sentinel_values_are_decoded_and_bad_ones_refused() {
        assert_eq!(decode_header_value("read_data").unwrap(), "read_data");
        assert_eq!(
            decode_header_value("=?base64?ZGVsZXRlX2RhdGE=?=").unwrap(),
            "delete_data"
        );
        assert_eq!(decode_header_value("=?base64?w6k=?=").unwrap(), "é");
        for bad in [
            "=?base64?!!!?=",
            "=?base64?/w==?=",
            &format!("=?base64?{}?=", "A".repeat(9000)),
        ] {
            assert!(decode_header_value(bad).is_err(), "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert("mcp-method", "tools/call".parse().unwrap());
        h.insert("mcp-name", "=?base64?ZGVsZXRlX2RhdGE=?=".parse().unwrap());
        let op = operation_from_headers(&h).unwrap().unwrap();
        assert_eq!(op.name(), Some("delete_data"));
    }

    #[test]
    fn the_protocol_version_decides_whether_headers_are_required() {
        let op = |m: &str, n: Option<&str>| Operation::new(m, n.map(str::to_owned), None);
        let call = [op("tools/call", Some("read_data"))];
        let mut h = HeaderMap::new();
        assert!(!requires_mirrored_headers(&h).unwrap());
        for (version, required) in [
            ("2025-06-18", false),
            ("2025-11-25", false),
            ("2026-07-28", true),
            ("2027-01-01", true),
        ] {
            h.insert("mcp-protocol-version", version.parse().unwrap());
            assert_eq!(
                requires_mirrored_headers(&h).unwrap(),
                required,
                "{version}"
            );
        }
        h.append("mcp-protocol-version", "2025-06-18".parse().unwrap());
        assert!(requires_mirrored_headers(&h).is_err());
        // Missing headers: fine before 2026-07-28, refused from it on.
        assert!(headers_match(None, &call, false).is_ok());
        assert_eq!(
            headers_match(None, &call, true),
            Err("missing required Mcp-Method header")
        );
        let method_only = op("tools/call", None);
        assert_eq!(
            headers_match(Some(&method_only), &call, true),
            Err("missing required Mcp-Name header")
        );
        assert!(headers_match(Some(&op("tools/call", Some("read_data"))), &call, true).is_ok());
        // Responses carry no method: nothing is required.
        assert!(headers_match(None, &[], true).is_ok());
        // A name without a method.
        let mut h = HeaderMap::new();
        h.insert("mcp-name", "read_data".parse().unwrap());
        assert_eq!(
            operation_from_headers(&h).unwrap_err().reason(),
            "name_without_method"
        );
    }
}
