//! Reading the MCP operations of a JSON-RPC body, strictly enough that no body reads
//! differently here than in rmcp, and in time linear in the body for every input.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use self::values::{
    Lenient, Member, MethodSeed, Params, ParamsSeed, Reference, Subscriptions, Text, each_member,
};
use super::operation::{Operation, OperationError};

mod values;

/// Most messages a batch may hold (the default of [`ScopeLayer::max_batch`]); a longer batch
/// is refused (`batch_too_large`) after reading one element past the limit.
///
/// [`ScopeLayer::max_batch`]: super::ScopeLayer::max_batch
pub(super) const DEFAULT_MAX_BATCH: usize = 100;

/// Most operations one body may yield (the URIs of `subscriptions/listen` count one each); more
/// are refused (`too_many_targets`) without being collected.
const MAX_OPERATIONS: usize = 1000;

/// Appends the operations of one message (one per target) to `ops`.
fn operations<E: de::Error>(
    method: Cow<'static, str>,
    params: Params,
    ops: &mut Vec<Operation>,
) -> Result<(), E> {
    let name = Text::string(params.name, "bad_name")?;
    let uri = Text::string(params.uri, "bad_uri")?;
    let mut push = |method: Cow<'static, str>, name, uri| {
        if ops.len() >= MAX_OPERATIONS {
            return Err(E::custom("too_many_targets"));
        }
        ops.push(Operation { method, name, uri });
        Ok(())
    };
    match method.as_ref() {
        // The target is in `ref`; a `name` or `uri` beside it would be a second reading.
        "completion/complete" => {
            if name.is_some() || uri.is_some() {
                return Err(E::custom("ambiguous_target"));
            }
            match params.reference {
                Some(Reference::Prompt(n)) => push(method, Some(n), None),
                Some(Reference::Resource(u)) => push(method, None, Some(u)),
                Some(Reference::Bad) | None => Err(E::custom("bad_ref")),
            }
        }
        // One operation per subscribed URI; none subscribed: the method alone.
        "subscriptions/listen" => {
            if name.is_some() || uri.is_some() {
                return Err(E::custom("ambiguous_target"));
            }
            match params.subscriptions {
                Some(Subscriptions::Uris(uris)) if uris.is_empty() => push(method, None, None),
                Some(Subscriptions::Uris(uris)) => {
                    for u in uris {
                        push(method.clone(), None, Some(u))?;
                    }
                    Ok(())
                }
                Some(Subscriptions::Bad) | None => Err(E::custom("bad_subscriptions")),
            }
        }
        "tools/call" | "prompts/get" if name.is_none() => Err(E::custom("missing_name")),
        "resources/read"
        | "resources/subscribe"
        | "resources/unsubscribe"
        | "resources/directory/read"
        | "skills/get"
            if uri.is_none() =>
        {
            Err(E::custom("missing_uri"))
        }
        _ => push(method, name, uri),
    }
}

/// One message; its operations are appended to `ops`.
struct MessageSeed<'a> {
    ops: &'a mut Vec<Operation>,
}

impl<'de> DeserializeSeed<'de> for MessageSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for MessageSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message object")
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<(), A::Error> {
        const TRACKED: &[Member] = &[
            Member::Jsonrpc,
            Member::Id,
            Member::Method,
            Member::Params,
            Member::Result,
            Member::Error,
        ];
        let mut method = None;
        let mut params = Params::default();
        each_member(access, TRACKED, |m, access| {
            match m {
                Member::Method => method = Some(access.next_value_seed(Lenient(MethodSeed))?),
                Member::Params => params = access.next_value_seed(Lenient(ParamsSeed))?,
                _ => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        })?;
        match method {
            // A response (no method) is not an operation.
            None => Ok(()),
            Some(None) => Err(de::Error::custom("bad_method")),
            Some(Some(m)) => operations(m, params, self.ops),
        }
    }
}

struct BodyVisitor {
    max_batch: usize,
}

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Vec<Operation>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message or batch")
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Vec<Operation>, A::Error> {
        let mut ops = Vec::with_capacity(1);
        MessageSeed { ops: &mut ops }.visit_map(access)?;
        Ok(ops)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Operation>, A::Error> {
        let mut ops = Vec::new();
        let mut messages = 0usize;
        loop {
            if messages >= self.max_batch {
                // One element past the limit is read (skimmed) to tell a full batch from a
                // longer one; nothing more.
                if seq.next_element::<IgnoredAny>()?.is_some() {
                    return Err(de::Error::custom("batch_too_large"));
                }
                break;
            }
            if seq
                .next_element_seed(MessageSeed { ops: &mut ops })?
                .is_none()
            {
                break;
            }
            messages = messages.saturating_add(1);
        }
        // A batch of responses carries no operation; an empty array is not JSON-RPC.
        if messages == 0 {
            return Err(de::Error::custom("empty_batch"));
        }
        Ok(ops)
    }
}

/// Reads the operations of a JSON-RPC body: one message or a batch of at most 100 messages
/// (every element counts; `ScopeLayer::max_batch` sets another limit). One [`Operation`] per
/// target:
///
/// - `tools/call`, `prompts/get`: `params.name` (required);
/// - `resources/read`, `resources/subscribe`, `resources/unsubscribe`,
///   `resources/directory/read`, `skills/get`: `params.uri` (required);
/// - `completion/complete`: `params.ref`, a `ref/prompt` (its `name`) or a `ref/resource`
///   (its `uri`);
/// - `subscriptions/listen`: one operation per URI of
///   `params.notifications.resourceSubscriptions` (the method alone when there is none);
/// - any other method: `params.name` and `params.uri` when present (the policy decides what an
///   unlisted method carrying them gets).
///
/// Refused: duplicates of the members read (`jsonrpc`, `id`, `method`, `params`, `result`,
/// `error` in a message; `name`, `uri`, `ref`, `notifications`, `_meta`, `arguments` in
/// `params`; `type`, `name`, `uri` in `ref`; `resourceSubscriptions`), compared decoded; a
/// non-string `method`, `name` or `uri`; a target missing or malformed for the methods above;
/// a `name`/`uri` beside `ref` or `notifications`; more than 1000 operations in one body;
/// trailing data. Other members are skimmed, never built, and their duplicates are left to the
/// server, as rmcp's derived structs ignore them, so the cost is linear in the body size for
/// every input.
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
/// let listen = br#"{"jsonrpc":"2.0","id":2,"method":"subscriptions/listen",
///     "params":{"notifications":{"resourceSubscriptions":["file:///a","file:///b"]}}}"#;
/// let uris: Vec<_> = parse_operations(listen).unwrap().iter().map(|o| o.uri().unwrap().to_owned()).collect();
/// assert_eq!(uris, ["file:///a", "file:///b"]);
/// ```
pub fn parse_operations(body: &[u8]) -> Result<Vec<Operation>, OperationError> {
    parse_operations_limited(body, DEFAULT_MAX_BATCH)
}

/// [`parse_operations`] with a batch limit of `max_batch` messages.
pub(super) fn parse_operations_limited(
    body: &[u8],
    max_batch: usize,
) -> Result<Vec<Operation>, OperationError> {
    const CODES: [&str; 13] = [
        "duplicate_key",
        "bad_method",
        "bad_name",
        "bad_uri",
        "bad_ref",
        "bad_subscriptions",
        "ambiguous_target",
        "missing_name",
        "missing_uri",
        "empty_batch",
        "batch_too_large",
        "too_many_targets",
        "invalid_json",
    ];
    // JSON text is UTF-8 (RFC 8259 §8.1), and rmcp decodes every string of a message, so a
    // body that is not UTF-8 is refused whole; checked once here, the keys need no check each.
    let Ok(text) = std::str::from_utf8(body) else {
        return Err(OperationError("invalid_json"));
    };
    let mut de = serde_json::Deserializer::from_str(text);
    let result = de
        .deserialize_any(BodyVisitor { max_batch })
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

#[cfg(test)]
mod tests;
