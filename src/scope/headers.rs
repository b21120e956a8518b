//! The `Mcp-Method` / `Mcp-Name` headers (MCP 2026-07-28): the operation they name, and
//! whether they agree with the operations of the body.

use http::HeaderMap;

use super::operation::{Operation, OperationError};

/// The operation named by the `Mcp-Method` / `Mcp-Name` headers, if present.
///
/// # Errors
///
/// When a header is repeated or not visible ASCII/UTF-8.
pub fn operation_from_headers(headers: &HeaderMap) -> Result<Option<Operation>, OperationError> {
    let one = |name: &str| -> Result<Option<String>, OperationError> {
        crate::request_info::only_value(headers, name)
            .map_err(|_| OperationError("duplicate_header"))?
            .map(|v| {
                v.to_str()
                    .map(str::to_owned)
                    .map_err(|_| OperationError("bad_header"))
            })
            .transpose()
    };
    let Some(method) = one("mcp-method")? else {
        return Ok(None);
    };
    let name = one("mcp-name")?;
    let (name, uri) = if method == "resources/read" {
        (None, name)
    } else {
        (name, None)
    };
    Ok(Some(Operation::new(method, name, uri)))
}

/// Whether the `Mcp-Method`/`Mcp-Name` headers (`h`) describe the body's operations: one
/// message of that method whose target (name or URI) is the `Mcp-Name` value. The methods the
/// MCP spec gives an `Mcp-Name` (`tools/call`, `prompts/get`, `resources/read`) need it; for
/// the others a missing `Mcp-Name` checks the method only (`subscriptions/listen` may then
/// yield one operation per URI).
pub(super) fn headers_agree(h: &Operation, body: &[Operation]) -> bool {
    let target = |o: &Operation| o.name().or(o.uri()).map(str::to_owned);
    let named = matches!(h.method(), "tools/call" | "prompts/get" | "resources/read");
    match (body, target(h)) {
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
        assert!(!headers_agree(
            &op("tools/list", None, None),
            &[op("tools/list", None, None), op("tools/list", None, None)]
        ));
    }
}
