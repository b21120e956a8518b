//! Finding the MCP operation(s) of a request: from the `Mcp-Method` / `Mcp-Name` headers
//! (MCP 2026-07-28) and from the JSON-RPC body, strictly enough that no body reads differently
//! here than in rmcp.

use std::borrow::Cow;
use std::fmt;

use http::HeaderMap;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// One JSON-RPC request or notification, as far as authorization cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    // Borrowed for the MCP methods (no allocation per operation), owned for any other.
    method: Cow<'static, str>,
    name: Option<String>,
    uri: Option<String>,
}

impl Operation {
    /// An operation on `method`, with the tool/prompt `name` or resource `uri` it targets.
    #[must_use]
    pub fn new(method: impl Into<String>, name: Option<String>, uri: Option<String>) -> Self {
        Self {
            method: Cow::Owned(method.into()),
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

/// Most messages a batch may hold (the default of [`ScopeLayer::max_batch`]); a longer batch
/// is refused (`batch_too_large`) after reading one element past the limit.
///
/// [`ScopeLayer::max_batch`]: super::ScopeLayer::max_batch
pub(crate) const DEFAULT_MAX_BATCH: usize = 100;

/// Most operations one body may yield (the URIs of `subscriptions/listen` count one each); more
/// are refused (`too_many_targets`) without being collected.
pub(crate) const MAX_OPERATIONS: usize = 1000;

/// The object members the decision reads or rmcp refuses to see twice. Every other member is
/// skimmed (`IgnoredAny`) and, like rmcp's derived structs do, not tracked; tracking these
/// few costs one bit each, so the reading stays linear in the body for every input.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Member {
    Jsonrpc,
    Id,
    Method,
    Params,
    Result,
    Error,
    Name,
    Uri,
    Ref,
    Notifications,
    Meta,
    Arguments,
    Type,
    ResourceSubscriptions,
    Other,
}

impl Member {
    fn classify(key: &str) -> Self {
        match key {
            "jsonrpc" => Self::Jsonrpc,
            "id" => Self::Id,
            "method" => Self::Method,
            "params" => Self::Params,
            "result" => Self::Result,
            "error" => Self::Error,
            "name" => Self::Name,
            "uri" => Self::Uri,
            "ref" => Self::Ref,
            "notifications" => Self::Notifications,
            "_meta" => Self::Meta,
            "arguments" => Self::Arguments,
            "type" => Self::Type,
            "resourceSubscriptions" => Self::ResourceSubscriptions,
            _ => Self::Other,
        }
    }
}

/// An object key, decoded (so `"n\u0061me"` is `name`) and classified without allocating.
struct MemberSeed;

impl<'de> DeserializeSeed<'de> for MemberSeed {
    type Value = Member;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Member, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for MemberSeed {
    type Value = Member;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Member, E> {
        Ok(Member::classify(v))
    }
}

/// Duplicate detection for the tracked members of one object: one bit per [`Member`].
#[derive(Default)]
struct Seen(u32);

impl Seen {
    /// Refuses a second occurrence of a tracked member; `tracked` lists the members this
    /// object level reads (the others count as [`Member::Other`] and are never tracked).
    fn first<E: de::Error>(&mut self, m: Member, tracked: &[Member]) -> Result<Member, E> {
        if m == Member::Other || !tracked.contains(&m) {
            return Ok(Member::Other);
        }
        let bit = 1u32 << (m as u32);
        if self.0 & bit != 0 {
            return Err(E::custom("duplicate_key"));
        }
        self.0 |= bit;
        Ok(m)
    }
}

/// Skims a map or sequence to its end (values the decision does not use).
fn drain_map<'de, A: MapAccess<'de>>(mut access: A) -> Result<(), A::Error> {
    while access.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

/// A value that should be a string: the string, or "something else" (skimmed, never built).
enum Text {
    Str(String),
    Other,
}

impl Text {
    /// `None` when absent, the string, or the error `what` for any other JSON value.
    fn string<E: de::Error>(v: Option<Self>, what: &'static str) -> Result<Option<String>, E> {
        match v {
            None => Ok(None),
            Some(Self::Str(s)) => Ok(Some(s)),
            Some(Self::Other) => Err(E::custom(what)),
        }
    }
}

struct TextSeed;

impl<'de> DeserializeSeed<'de> for TextSeed {
    type Value = Text;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Text, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TextSeed {
    type Value = Text;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Text, E> {
        Ok(Text::Str(v))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Text, E> {
        Ok(Text::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Text, E> {
        Ok(Text::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Text, E> {
        Ok(Text::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Text, E> {
        Ok(Text::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Text, E> {
        Ok(Text::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Text, A::Error> {
        drain_map(access).map(|()| Text::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Text, A::Error> {
        drain_seq(seq).map(|()| Text::Other)
    }
}

/// The MCP method names (rmcp 3.9's client-to-server methods), kept without allocating.
const METHODS: &[&str] = &[
    // The most frequent first: the list is searched in order.
    "tools/call",
    "initialize",
    "ping",
    "server/discover",
    "completion/complete",
    "logging/setLevel",
    "prompts/get",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "resources/directory/read",
    "subscriptions/listen",
    "tools/list",
    "tasks/get",
    "tasks/update",
    "tasks/cancel",
    "skills/list",
    "skills/get",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/roots/list_changed",
];

/// `method`: a string (a static one, not allocated, when it is an MCP method), or `None` for
/// any other JSON value (skimmed).
struct MethodSeed;

impl<'de> DeserializeSeed<'de> for MethodSeed {
    type Value = Option<Cow<'static, str>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MethodSeed {
    type Value = Option<Cow<'static, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(match METHODS.iter().find(|m| **m == v) {
            Some(m) => Cow::Borrowed(m),
            None => Cow::Owned(v.to_owned()),
        }))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        drain_map(access).map(|()| None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq).map(|()| None)
    }
}

/// `params.ref` of `completion/complete`, read as rmcp's `Reference` (tagged by `type`).
enum Reference {
    Prompt(String),
    Resource(String),
    /// Not an object, no string `type`, an unknown `type`, the field the type needs missing or
    /// not a string, or both `name` and `uri` (ambiguous: refused rather than guessed).
    Bad,
}

struct RefSeed;

impl<'de> DeserializeSeed<'de> for RefSeed {
    type Value = Reference;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Reference, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RefSeed {
    type Value = Reference;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a completion reference")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Reference, A::Error> {
        const TRACKED: &[Member] = &[Member::Type, Member::Name, Member::Uri];
        let mut seen = Seen::default();
        let (mut kind, mut name, mut uri) = (None, None, None);
        while let Some(m) = access.next_key_seed(MemberSeed)? {
            match seen.first(m, TRACKED)? {
                Member::Type => kind = Some(access.next_value_seed(TextSeed)?),
                Member::Name => name = Some(access.next_value_seed(TextSeed)?),
                Member::Uri => uri = Some(access.next_value_seed(TextSeed)?),
                _ => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(match (kind, name, uri) {
            (Some(Text::Str(t)), Some(Text::Str(n)), None) if t == "ref/prompt" => {
                Reference::Prompt(n)
            }
            (Some(Text::Str(t)), None, Some(Text::Str(u))) if t == "ref/resource" => {
                Reference::Resource(u)
            }
            _ => Reference::Bad,
        })
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Reference, A::Error> {
        drain_seq(seq).map(|()| Reference::Bad)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Reference, E> {
        Ok(Reference::Bad)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Reference, E> {
        Ok(Reference::Bad)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Reference, E> {
        Ok(Reference::Bad)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Reference, E> {
        Ok(Reference::Bad)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Reference, E> {
        Ok(Reference::Bad)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Reference, E> {
        Ok(Reference::Bad)
    }
}

/// `params.notifications` of `subscriptions/listen` (rmcp's `SubscriptionFilter`), as far as
/// it names resources: `resourceSubscriptions`, an optional array of URI strings.
enum Subscriptions {
    /// The URIs (none when the member is absent or `null`).
    Uris(Vec<String>),
    /// `notifications` not an object, or `resourceSubscriptions` not an array of strings.
    Bad,
}

/// The `resourceSubscriptions` array: strings, at most [`MAX_OPERATIONS`] (more: refused
/// at once, whatever the method).
struct UrisSeed;

impl<'de> DeserializeSeed<'de> for UrisSeed {
    type Value = Subscriptions;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Subscriptions, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for UrisSeed {
    type Value = Subscriptions;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of resource URIs")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Subscriptions, A::Error> {
        let mut uris = Vec::new();
        while let Some(t) = seq.next_element_seed(TextSeed)? {
            let Text::Str(uri) = t else {
                return drain_seq(seq).map(|()| Subscriptions::Bad);
            };
            // Refused at once, whatever the method: no client needs this many.
            if uris.len() >= MAX_OPERATIONS {
                return Err(de::Error::custom("too_many_targets"));
            }
            uris.push(uri);
        }
        Ok(Subscriptions::Uris(uris))
    }
    // rmcp reads `Option<Vec<String>>`: `null` is no subscription.
    fn visit_unit<E: de::Error>(self) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Uris(Vec::new()))
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Subscriptions, A::Error> {
        drain_map(access).map(|()| Subscriptions::Bad)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Bad)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Bad)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Bad)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Bad)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Bad)
    }
}

/// The `notifications` object.
struct FilterSeed;

impl<'de> DeserializeSeed<'de> for FilterSeed {
    type Value = Subscriptions;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Subscriptions, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FilterSeed {
    type Value = Subscriptions;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a subscription filter")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Subscriptions, A::Error> {
        const TRACKED: &[Member] = &[Member::ResourceSubscriptions];
        let mut seen = Seen::default();
        let mut subs = Subscriptions::Uris(Vec::new());
        while let Some(m) = access.next_key_seed(MemberSeed)? {
            if seen.first(m, TRACKED)? == Member::ResourceSubscriptions {
                subs = access.next_value_seed(UrisSeed)?;
            } else {
                access.next_value::<IgnoredAny>()?;
            }
        }
        Ok(subs)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Subscriptions, A::Error> {
        drain_seq(seq).map(|()| Subscriptions::Bad)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Bad)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Bad)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Bad)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Bad)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Bad)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Bad)
    }
}

/// Members of `params` that can name a target. Read whatever the method (`params` may come
/// before `method`); which ones count is decided once the method is known.
#[derive(Default)]
struct Params {
    name: Option<Text>,
    uri: Option<Text>,
    reference: Option<Reference>,
    subscriptions: Option<Subscriptions>,
}

struct ParamsSeed;

impl<'de> DeserializeSeed<'de> for ParamsSeed {
    type Value = Params;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Params, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ParamsSeed {
    type Value = Params;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Params, A::Error> {
        const TRACKED: &[Member] = &[
            Member::Name,
            Member::Uri,
            Member::Ref,
            Member::Notifications,
            Member::Meta,
            Member::Arguments,
        ];
        let mut seen = Seen::default();
        let mut p = Params::default();
        while let Some(m) = access.next_key_seed(MemberSeed)? {
            match seen.first(m, TRACKED)? {
                Member::Name => p.name = Some(access.next_value_seed(TextSeed)?),
                Member::Uri => p.uri = Some(access.next_value_seed(TextSeed)?),
                Member::Ref => p.reference = Some(access.next_value_seed(RefSeed)?),
                Member::Notifications => {
                    p.subscriptions = Some(access.next_value_seed(FilterSeed)?);
                }
                _ => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(p)
    }
    // `"params": null` carries nothing.
    fn visit_unit<E: de::Error>(self) -> Result<Params, E> {
        Ok(Params::default())
    }
    // Positional params carry no name or uri.
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params, A::Error> {
        drain_seq(seq).map(|()| Params::default())
    }
}

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
    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<(), A::Error> {
        const TRACKED: &[Member] = &[
            Member::Jsonrpc,
            Member::Id,
            Member::Method,
            Member::Params,
            Member::Result,
            Member::Error,
        ];
        let mut seen = Seen::default();
        let mut method = None;
        let mut params = Params::default();
        while let Some(m) = access.next_key_seed(MemberSeed)? {
            match seen.first(m, TRACKED)? {
                Member::Method => method = Some(access.next_value_seed(MethodSeed)?),
                Member::Params => params = access.next_value_seed(ParamsSeed)?,
                _ => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
        }
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
/// (every element counts; `ScopeLayer::max_batch` sets another limit). One [`Operation`] per target:
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
pub(crate) fn parse_operations_limited(
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
    Ok(Some(Operation {
        method: Cow::Owned(method),
        name,
        uri,
    }))
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

    fn targets(body: &str) -> Vec<(String, Option<String>, Option<String>)> {
        parse_operations(body.as_bytes())
            .unwrap()
            .into_iter()
            .map(|o| (o.method.into_owned(), o.name, o.uri))
            .collect()
    }

    fn t(
        method: &str,
        name: Option<&str>,
        uri: Option<&str>,
    ) -> (String, Option<String>, Option<String>) {
        (
            method.to_owned(),
            name.map(str::to_owned),
            uri.map(str::to_owned),
        )
    }

    /// A body of `{head}"k0":0,"k1":0,…{tail}` with `n` distinct short keys.
    fn many_keys(head: &str, n: usize, tail: &str) -> String {
        let mut body = String::from(head);
        for i in 0..n {
            if i > 0 {
                body.push(',');
            }
            body.push_str(&format!("\"{i:x}\":0"));
        }
        body.push_str(tail);
        body
    }

    #[test]
    fn two_hundred_thousand_distinct_keys_parse_in_linear_time() {
        // Quadratic duplicate detection took minutes on this (H1); linear takes milliseconds.
        for (head, tail) in [
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":{"#,
                "}}",
            ),
            (r#"{"jsonrpc":"2.0","id":1,"method":"ping","#, "}"),
        ] {
            let body = many_keys(head, 200_000, tail);
            let start = std::time::Instant::now();
            let ops = parse_operations(body.as_bytes()).unwrap();
            let took = start.elapsed();
            assert_eq!(ops[0].method(), "ping");
            // Quadratic detection needed 2·10¹⁰ comparisons here (minutes in a debug build);
            // linear reading takes a fraction of a second. Loose for shared, loaded machines.
            assert!(took < std::time::Duration::from_secs(10), "{took:?}");
        }
    }

    #[test]
    fn duplicates_of_members_not_read_are_left_to_the_server() {
        // rmcp's derived structs ignore unknown members, repeated or not.
        assert_eq!(
            targets(r#"{"method":"tools/call","x":1,"x":2,"params":{"name":"a","y":1,"y":2}}"#),
            [t("tools/call", Some("a"), None)]
        );
        // The members rmcp reads are refused when repeated, escaped or not.
        for dup in [
            r#"{"jsonrpc":"2.0","jsonrpc":"2.0","method":"ping"}"#,
            r#"{"id":1,"i\u0064":2,"method":"ping"}"#,
            r#"{"method":"tools/call","params":{"name":"a","arguments":{},"arguments":{}}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","name":"b"}}}"#,
            r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","type":"ref/resource","name":"a"}}}"#,
            r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["a"],"resourceSubscriptions":["b"]}}}"#,
            r#"{"method":"resources/directory/read","params":{"uri":"a","uri":"b"}}"#,
        ] {
            assert_eq!(codes(dup), "duplicate_key", "{dup}");
        }
    }

    #[test]
    fn every_method_that_names_a_target_yields_it() {
        assert_eq!(
            targets(
                r#"{"jsonrpc":"2.0","id":1,"method":"resources/directory/read","params":{"uri":"file:///secret/"}}"#
            ),
            [t("resources/directory/read", None, Some("file:///secret/"))]
        );
        assert_eq!(
            targets(
                r#"{"jsonrpc":"2.0","id":1,"method":"skills/get","params":{"uri":"skill://ops/SKILL.md"}}"#
            ),
            [t("skills/get", None, Some("skill://ops/SKILL.md"))]
        );
        assert_eq!(
            targets(
                r#"{"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true,"resourceSubscriptions":["file:///a","file:///secret/k"]}}}"#
            ),
            [
                t("subscriptions/listen", None, Some("file:///a")),
                t("subscriptions/listen", None, Some("file:///secret/k"))
            ]
        );
        // No URI subscribed: the method alone.
        for none in [
            r#"{"method":"subscriptions/listen","params":{"notifications":{}}}"#,
            r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":null}}}"#,
            r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":[]}}}"#,
        ] {
            assert_eq!(
                targets(none),
                [t("subscriptions/listen", None, None)],
                "{none}"
            );
        }
        assert_eq!(
            targets(
                r#"{"method":"completion/complete","params":{"argument":{"name":"x","value":"y"},"ref":{"type":"ref/prompt","name":"secret_prompt"}}}"#
            ),
            [t("completion/complete", Some("secret_prompt"), None)]
        );
        assert_eq!(
            targets(
                r#"{"method":"completion/complete","params":{"ref":{"uri":"file:///secret/{x}","type":"ref/resource"}}}"#
            ),
            [t("completion/complete", None, Some("file:///secret/{x}"))]
        );
        assert_eq!(
            targets(r#"{"method":"resources/subscribe","params":{"uri":"file:///a"}}"#),
            [t("resources/subscribe", None, Some("file:///a"))]
        );
        // Unknown methods keep their name/uri for the policy.
        assert_eq!(
            targets(r#"{"method":"vendor/thing","params":{"uri":"file:///a","name":"n"}}"#),
            [t("vendor/thing", Some("n"), Some("file:///a"))]
        );
        // `ref`/`notifications` of other methods are not targets (and need not be valid).
        assert_eq!(
            targets(r#"{"method":"tools/call","params":{"name":"a","ref":5,"notifications":[1]}}"#),
            [t("tools/call", Some("a"), None)]
        );
    }

    #[test]
    fn malformed_targets_of_the_new_methods_are_refused() {
        for (body, code) in [
            (r#"{"method":"skills/get","params":{}}"#, "missing_uri"),
            (r#"{"method":"resources/directory/read"}"#, "missing_uri"),
            (
                r#"{"method":"resources/unsubscribe","params":{"uri":7}}"#,
                "bad_uri",
            ),
            (
                r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":["a",7]}}}"#,
                "bad_subscriptions",
            ),
            (
                r#"{"method":"subscriptions/listen","params":{"notifications":{"resourceSubscriptions":"a"}}}"#,
                "bad_subscriptions",
            ),
            (
                r#"{"method":"subscriptions/listen","params":{"notifications":null}}"#,
                "bad_subscriptions",
            ),
            (
                r#"{"method":"subscriptions/listen","params":{}}"#,
                "bad_subscriptions",
            ),
            (
                r#"{"method":"subscriptions/listen","params":{"uri":"x","notifications":{}}}"#,
                "ambiguous_target",
            ),
            (r#"{"method":"completion/complete","params":{}}"#, "bad_ref"),
            (
                r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt"}}}"#,
                "bad_ref",
            ),
            (
                r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":5}}}"#,
                "bad_ref",
            ),
            (
                r#"{"method":"completion/complete","params":{"ref":{"type":"ref/other","name":"a"}}}"#,
                "bad_ref",
            ),
            (
                r#"{"method":"completion/complete","params":{"ref":{"type":0,"uri":"a"}}}"#,
                "bad_ref",
            ),
            (
                r#"{"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"a","uri":"b"}}}"#,
                "bad_ref",
            ),
            (
                r#"{"method":"completion/complete","params":{"ref":"ref/prompt"}}"#,
                "bad_ref",
            ),
            (
                r#"{"method":"completion/complete","params":{"name":"a","ref":{"type":"ref/prompt","name":"a"}}}"#,
                "ambiguous_target",
            ),
        ] {
            assert_eq!(codes(body), code, "{body}");
        }
    }

    #[test]
    fn batches_and_subscriptions_are_capped() {
        let msg = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let batch = |n: usize| format!("[{}]", vec![msg; n].join(","));
        assert_eq!(parse_operations(batch(100).as_bytes()).unwrap().len(), 100);
        assert_eq!(codes(&batch(101)), "batch_too_large");
        assert_eq!(codes(&batch(10_000)), "batch_too_large");
        assert_eq!(
            parse_operations_limited(batch(3).as_bytes(), 2)
                .unwrap_err()
                .reason(),
            "batch_too_large"
        );
        let uris = |n: usize| {
            let list: Vec<String> = (0..n).map(|i| format!("\"file:///{i}\"")).collect();
            format!(
                r#"{{"method":"subscriptions/listen","params":{{"notifications":{{"resourceSubscriptions":[{}]}}}}}}"#,
                list.join(",")
            )
        };
        assert_eq!(parse_operations(uris(1000).as_bytes()).unwrap().len(), 1000);
        assert_eq!(codes(&uris(1001)), "too_many_targets");
        // Refused at once, even for a method that does not read them.
        let other = uris(5000).replace("subscriptions/listen", "tools/list");
        assert_eq!(codes(&other), "too_many_targets");
        // A body that is not UTF-8 is refused whole, even inside a skimmed value.
        assert_eq!(
            parse_operations(b"{\"method\":\"ping\",\"x\":\"\xff\"}")
                .unwrap_err()
                .reason(),
            "invalid_json"
        );
        // Across a batch too.
        let two = format!("[{},{}]", uris(600), uris(600));
        assert_eq!(codes(&two), "too_many_targets");
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

    #[test]
    fn batches_of_responses_and_null_params_are_read() {
        use crate::scope::parse_operations;
        let ops = parse_operations(br#"[{"jsonrpc":"2.0","id":1,"result":{}}]"#).unwrap();
        assert!(ops.is_empty());
        assert!(parse_operations(b"[]").is_err());
        let ops =
            parse_operations(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":null}"#).unwrap();
        assert_eq!(ops[0].method(), "ping");
    }
    #[test]
    fn values_the_decision_does_not_use_are_skipped_not_decoded() {
        use crate::scope::parse_operations;
        // Found by fuzzing: a lone surrogate inside `arguments`. The parser skips values it
        // does not decide on (as fast as a serde skim); rmcp refuses such a body itself, so it
        // is never dispatched. What the decision uses (method, name, uri) is decoded strictly.
        let lone = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{"k":"\ud800"}}}"#;
        assert!(serde_json::from_slice::<serde_json::Value>(lone).is_err());
        assert_eq!(parse_operations(lone).unwrap()[0].name(), Some("a"));
        let bad_name =
            br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"\ud800"}}"#;
        assert!(parse_operations(bad_name).is_err());
    }
}
