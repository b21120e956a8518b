//! Finding the MCP operation(s) of a request: from the `Mcp-Method` / `Mcp-Name` headers
//! (MCP 2026-07-28) and from the JSON-RPC body, strictly enough that no body reads differently
//! here than in rmcp.

use std::borrow::Cow;
use std::fmt;

use http::HeaderMap;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::json::Key;

/// One JSON-RPC request or notification, as far as authorization cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    method: String,
    name: Option<String>,
    uri: Option<String>,
}

impl Operation {
    /// An operation on `method`, with the tool/prompt `name` or resource `uri` it targets.
    #[must_use]
    pub fn new(method: impl Into<String>, name: Option<String>, uri: Option<String>) -> Self {
        Self {
            method: method.into(),
            name,
            uri,
        }
    }

    /// The JSON-RPC method.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// `params.name` (tools/call, prompts/get).
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// `params.uri` (resources/read).
    #[must_use]
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }
}

/// Why a body could not be read as JSON-RPC for authorization (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationError(&'static str);

impl OperationError {
    /// A short reason code.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for OperationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for OperationError {}

/// Fields of `params` that matter, with duplicate names refused.
#[derive(Default)]
struct Params {
    name: Option<serde_json::Value>,
    uri: Option<serde_json::Value>,
}

struct ParamsVisitor;

impl<'de> Visitor<'de> for ParamsVisitor {
    type Value = Params;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Params, A::Error> {
        let mut p = Params::default();
        let mut seen: Vec<Cow<'de, str>> = Vec::new();
        while let Some(Key(k)) = access.next_key::<Key<'de>>()? {
            if seen.contains(&k) {
                return Err(de::Error::custom("duplicate_key"));
            }
            match k.as_ref() {
                "name" => p.name = Some(access.next_value()?),
                "uri" => p.uri = Some(access.next_value()?),
                _ => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
            seen.push(k);
        }
        Ok(p)
    }
    // `"params": null` carries nothing.
    fn visit_unit<E: de::Error>(self) -> Result<Params, E> {
        Ok(Params::default())
    }
    // Positional params carry no name or uri.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Params, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Params::default())
    }
}

struct MessageVisitor;

impl<'de> Visitor<'de> for MessageVisitor {
    type Value = Option<Operation>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Option<Operation>, A::Error> {
        let mut method: Option<serde_json::Value> = None;
        let mut params = Params::default();
        let mut seen: Vec<Cow<'de, str>> = Vec::new();
        while let Some(Key(k)) = access.next_key::<Key<'de>>()? {
            if seen.contains(&k) {
                return Err(de::Error::custom("duplicate_key"));
            }
            match k.as_ref() {
                "method" => method = Some(access.next_value()?),
                "params" => params = access.next_value_seed(ParamsSeed)?,
                _ => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
            seen.push(k);
        }
        // A response (no method) is not an operation.
        let Some(method) = method else {
            return Ok(None);
        };
        let serde_json::Value::String(method) = method else {
            return Err(de::Error::custom("bad_method"));
        };
        let text = |v: Option<serde_json::Value>, what: &'static str| match v {
            None => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(de::Error::custom(what)),
        };
        let name = text(params.name, "bad_name")?;
        let uri = text(params.uri, "bad_uri")?;
        if matches!(method.as_str(), "tools/call" | "prompts/get") && name.is_none() {
            return Err(de::Error::custom("missing_name"));
        }
        if method == "resources/read" && uri.is_none() {
            return Err(de::Error::custom("missing_uri"));
        }
        Ok(Some(Operation { method, name, uri }))
    }
}

struct ParamsSeed;

impl<'de> DeserializeSeed<'de> for ParamsSeed {
    type Value = Params;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Params, D::Error> {
        d.deserialize_any(ParamsVisitor)
    }
}

struct MessageSeed;

impl<'de> DeserializeSeed<'de> for MessageSeed {
    type Value = Option<Operation>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Operation>, D::Error> {
        d.deserialize_map(MessageVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Vec<Operation>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message or batch")
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Vec<Operation>, A::Error> {
        Ok(MessageVisitor.visit_map(access)?.into_iter().collect())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Operation>, A::Error> {
        let mut ops = Vec::new();
        let mut messages = 0usize;
        while let Some(op) = seq.next_element_seed(MessageSeed)? {
            ops.extend(op);
            messages += 1;
        }
        // A batch of responses carries no operation; an empty array is not JSON-RPC.
        if messages == 0 {
            return Err(de::Error::custom("empty_batch"));
        }
        Ok(ops)
    }
}

/// Reads the operations of a JSON-RPC body: one message or a batch (every element counts).
/// Duplicate keys in a message or its `params`, a non-string `method`, `name` or `uri`, and a
/// `tools/call` / `prompts/get` without `name` are errors, as is trailing data.
///
/// # Errors
///
/// [`OperationError`] with a reason code.
///
/// ```
/// use mcp_auth::scope::parse_operations;
///
/// let ops = parse_operations(br#"[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_data"}},
///                                 {"jsonrpc":"2.0","method":"notifications/initialized"}]"#).unwrap();
/// assert_eq!(ops[0].name(), Some("read_data"));
/// assert_eq!(ops[1].method(), "notifications/initialized");
/// let dup = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","name":"delete_data"}}"#;
/// assert_eq!(parse_operations(dup).unwrap_err().reason(), "duplicate_key");
/// ```
pub fn parse_operations(body: &[u8]) -> Result<Vec<Operation>, OperationError> {
    const CODES: [&str; 7] = [
        "duplicate_key",
        "bad_method",
        "bad_name",
        "bad_uri",
        "missing_name",
        "missing_uri",
        "empty_batch",
    ];
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = de
        .deserialize_any(BodyVisitor)
        .and_then(|ops| de.end().map(|()| ops));
    result.map_err(|e| {
        let msg = e.to_string();
        let code = CODES
            .iter()
            .find(|c| msg.starts_with(**c))
            .copied()
            .unwrap_or("invalid_json");
        OperationError(code)
    })
}

/// The operation named by the `Mcp-Method` / `Mcp-Name` headers, if present.
///
/// # Errors
///
/// When a header is repeated or not visible ASCII/UTF-8.
pub fn operation_from_headers(headers: &HeaderMap) -> Result<Option<Operation>, OperationError> {
    let one = |name: &str| -> Result<Option<String>, OperationError> {
        let mut values = headers.get_all(name).iter();
        let first = values.next();
        if values.next().is_some() {
            return Err(OperationError("duplicate_header"));
        }
        first
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
    Ok(Some(Operation { method, name, uri }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(body: &str) -> &'static str {
        parse_operations(body.as_bytes()).unwrap_err().reason()
    }

    #[test]
    fn duplicate_keys_anywhere_that_matters_are_refused() {
        assert_eq!(
            codes(r#"{"method":"tools/call","method":"tools/list","params":{"name":"a"}}"#),
            "duplicate_key"
        );
        assert_eq!(
            codes(r#"{"method":"tools/call","params":{"name":"a","name":"b"}}"#),
            "duplicate_key"
        );
        assert_eq!(
            codes(r#"{"method":"tools/call","params":{"name":"a"},"params":{"name":"b"}}"#),
            "duplicate_key"
        );
        assert_eq!(
            codes(r#"{"method":"tools/call","params":{"n\u0061me":"a","name":"b"}}"#),
            "duplicate_key"
        );
    }

    #[test]
    fn tool_calls_need_a_string_name() {
        assert_eq!(
            codes(r#"{"method":"tools/call","params":{}}"#),
            "missing_name"
        );
        assert_eq!(
            codes(r#"{"method":"tools/call","params":{"name":null}}"#),
            "bad_name"
        );
        assert_eq!(
            codes(r#"{"method":"tools/call","params":{"name":5}}"#),
            "bad_name"
        );
        assert_eq!(codes(r#"{"method":"tools/call"}"#), "missing_name");
    }

    #[test]
    fn batches_report_every_operation() {
        let ops = parse_operations(
            br#"[{"method":"tools/call","params":{"name":"read_data"}},{"method":"tools/call","params":{"name":"delete_data"}}]"#,
        )
        .unwrap();
        let names: Vec<_> = ops.iter().map(|o| o.name().unwrap()).collect();
        assert_eq!(names, ["read_data", "delete_data"]);
        assert_eq!(codes("[]"), "empty_batch");
    }

    #[test]
    fn responses_are_not_operations_and_garbage_is_invalid() {
        assert!(
            parse_operations(br#"{"jsonrpc":"2.0","id":1,"result":{}}"#)
                .unwrap()
                .is_empty()
        );
        assert_eq!(codes("{"), "invalid_json");
        assert_eq!(codes(r#"{"method":"a"} x"#), "invalid_json");
        assert_eq!(codes(r#"{"method":7}"#), "bad_method");
        assert_eq!(
            codes(r#"{"method":"resources/read","params":{}}"#),
            "missing_uri"
        );
    }

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
}
