//! How the members of a JSON-RPC message are read: keys decoded and classified without
//! allocating, duplicates of the members that matter refused, and each value read by the one
//! [`Lenient`] visitor, which skims every shape its reader does not take.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::MAX_OPERATIONS;

/// The object members the decision reads or rmcp refuses to see twice. Every other member is
/// skimmed (`IgnoredAny`) and, like rmcp's derived structs do, not tracked; tracking these
/// few costs one bit each, so the reading stays linear in the body for every input.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Member {
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

/// Walks the members of one object: each key is classified, a second occurrence of a
/// `tracked` member is refused, and `read` gets every tracked member (it must read the value);
/// every other value is skimmed.
pub(super) fn each_member<'de, A: MapAccess<'de>>(
    mut access: A,
    tracked: &[Member],
    mut read: impl FnMut(Member, &mut A) -> Result<(), A::Error>,
) -> Result<(), A::Error> {
    let mut seen = Seen::default();
    while let Some(m) = access.next_key_seed(MemberSeed)? {
        match seen.first(m, tracked)? {
            Member::Other => {
                access.next_value::<IgnoredAny>()?;
            }
            m => read(m, &mut access)?,
        }
    }
    Ok(())
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

/// How one member's value is read: the JSON shapes it takes, and what any other shape reads
/// as. A shape a reader does not take is skimmed (a map or array to its end), never built.
pub(super) trait MemberValue<'de>: Sized {
    /// What the member reads as.
    type Value;
    /// What a value of a shape this reader does not take reads as; `None` refuses it (the
    /// body is then not JSON-RPC this server reads).
    const OTHERWISE: Option<Self::Value>;

    fn string<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        otherwise::<Self, E>()
    }
    fn null<E: de::Error>(self) -> Result<Self::Value, E> {
        otherwise::<Self, E>()
    }
    fn map<A: MapAccess<'de>>(self, access: A) -> Result<Self::Value, A::Error> {
        drain_map(access)?;
        otherwise::<Self, A::Error>()
    }
    fn seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        drain_seq(seq)?;
        otherwise::<Self, A::Error>()
    }
}

/// [`MemberValue::OTHERWISE`], or the refusal it stands for.
fn otherwise<'de, R: MemberValue<'de>, E: de::Error>() -> Result<R::Value, E> {
    R::OTHERWISE.ok_or_else(|| E::custom("unexpected JSON value"))
}

/// The seed and visitor of every member value: any JSON value, handed to its
/// [`MemberValue`] reader by shape (booleans and numbers always read as
/// [`MemberValue::OTHERWISE`]).
pub(super) struct Lenient<R>(pub(super) R);

impl<'de, R: MemberValue<'de>> DeserializeSeed<'de> for Lenient<R> {
    type Value = R::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<R::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de, R: MemberValue<'de>> Visitor<'de> for Lenient<R> {
    type Value = R::Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC member value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<R::Value, E> {
        self.0.string(v)
    }
    fn visit_unit<E: de::Error>(self) -> Result<R::Value, E> {
        self.0.null()
    }
    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<R::Value, A::Error> {
        self.0.map(access)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<R::Value, A::Error> {
        self.0.seq(seq)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<R::Value, E> {
        otherwise::<R, E>()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<R::Value, E> {
        otherwise::<R, E>()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<R::Value, E> {
        otherwise::<R, E>()
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<R::Value, E> {
        otherwise::<R, E>()
    }
}

/// A value that should be a string: the string, or "something else" (skimmed, never built).
pub(super) enum Text {
    Str(String),
    Other,
}

impl Text {
    /// `None` when absent, the string, or the error `what` for any other JSON value.
    pub(super) fn string<E: de::Error>(
        v: Option<Self>,
        what: &'static str,
    ) -> Result<Option<String>, E> {
        match v {
            None => Ok(None),
            Some(Self::Str(s)) => Ok(Some(s)),
            Some(Self::Other) => Err(E::custom(what)),
        }
    }
}

struct TextSeed;

impl MemberValue<'_> for TextSeed {
    type Value = Text;
    const OTHERWISE: Option<Text> = Some(Text::Other);
    fn string<E: de::Error>(self, v: &str) -> Result<Text, E> {
        Ok(Text::Str(v.to_owned()))
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
pub(super) struct MethodSeed;

impl MemberValue<'_> for MethodSeed {
    type Value = Option<Cow<'static, str>>;
    const OTHERWISE: Option<Self::Value> = Some(None);
    fn string<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Some(match METHODS.iter().find(|m| **m == v) {
            Some(m) => Cow::Borrowed(m),
            None => Cow::Owned(v.to_owned()),
        }))
    }
}

/// `params.ref` of `completion/complete`, read as rmcp's `Reference` (tagged by `type`).
pub(super) enum Reference {
    Prompt(String),
    Resource(String),
    /// Not an object, no string `type`, an unknown `type`, the field the type needs missing or
    /// not a string, or both `name` and `uri` (ambiguous: refused rather than guessed).
    Bad,
}

struct RefSeed;

impl<'de> MemberValue<'de> for RefSeed {
    type Value = Reference;
    const OTHERWISE: Option<Reference> = Some(Reference::Bad);
    fn map<A: MapAccess<'de>>(self, access: A) -> Result<Reference, A::Error> {
        const TRACKED: &[Member] = &[Member::Type, Member::Name, Member::Uri];
        let (mut kind, mut name, mut uri) = (None, None, None);
        each_member(access, TRACKED, |m, access| {
            let text = Some(access.next_value_seed(Lenient(TextSeed))?);
            match m {
                Member::Type => kind = text,
                Member::Name => name = text,
                _ => uri = text,
            }
            Ok(())
        })?;
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
}

/// `params.notifications` of `subscriptions/listen` (rmcp's `SubscriptionFilter`), as far as
/// it names resources: `resourceSubscriptions`, an optional array of URI strings.
pub(super) enum Subscriptions {
    /// The URIs (none when the member is absent or `null`).
    Uris(Vec<String>),
    /// `notifications` not an object, or `resourceSubscriptions` not an array of strings.
    Bad,
}

/// The `resourceSubscriptions` array: strings, at most [`MAX_OPERATIONS`] (more: refused
/// at once, whatever the method).
struct UrisSeed;

impl<'de> MemberValue<'de> for UrisSeed {
    type Value = Subscriptions;
    const OTHERWISE: Option<Subscriptions> = Some(Subscriptions::Bad);
    fn seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Subscriptions, A::Error> {
        let mut uris = Vec::new();
        while let Some(t) = seq.next_element_seed(Lenient(TextSeed))? {
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
    fn null<E: de::Error>(self) -> Result<Subscriptions, E> {
        Ok(Subscriptions::Uris(Vec::new()))
    }
}

/// The `notifications` object.
struct FilterSeed;

impl<'de> MemberValue<'de> for FilterSeed {
    type Value = Subscriptions;
    const OTHERWISE: Option<Subscriptions> = Some(Subscriptions::Bad);
    fn map<A: MapAccess<'de>>(self, access: A) -> Result<Subscriptions, A::Error> {
        const TRACKED: &[Member] = &[Member::ResourceSubscriptions];
        let mut subs = Subscriptions::Uris(Vec::new());
        each_member(access, TRACKED, |_, access| {
            subs = access.next_value_seed(Lenient(UrisSeed))?;
            Ok(())
        })?;
        Ok(subs)
    }
}

/// Members of `params` that can name a target. Read whatever the method (`params` may come
/// before `method`); which ones count is decided once the method is known.
#[derive(Default)]
pub(super) struct Params {
    pub(super) name: Option<Text>,
    pub(super) uri: Option<Text>,
    pub(super) reference: Option<Reference>,
    pub(super) subscriptions: Option<Subscriptions>,
}

pub(super) struct ParamsSeed;

impl<'de> MemberValue<'de> for ParamsSeed {
    type Value = Params;
    // `params` must be an object, an array or `null`.
    const OTHERWISE: Option<Params> = None;
    fn map<A: MapAccess<'de>>(self, access: A) -> Result<Params, A::Error> {
        const TRACKED: &[Member] = &[
            Member::Name,
            Member::Uri,
            Member::Ref,
            Member::Notifications,
            Member::Meta,
            Member::Arguments,
        ];
        let mut p = Params::default();
        each_member(access, TRACKED, |m, access| {
            match m {
                Member::Name => p.name = Some(access.next_value_seed(Lenient(TextSeed))?),
                Member::Uri => p.uri = Some(access.next_value_seed(Lenient(TextSeed))?),
                Member::Ref => p.reference = Some(access.next_value_seed(Lenient(RefSeed))?),
                Member::Notifications => {
                    p.subscriptions = Some(access.next_value_seed(Lenient(FilterSeed))?);
                }
                _ => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
            Ok(())
        })?;
        Ok(p)
    }
    // `"params": null` carries nothing.
    fn null<E: de::Error>(self) -> Result<Params, E> {
        Ok(Params::default())
    }
    // Positional params carry no name or uri.
    fn seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Params, A::Error> {
        drain_seq(seq).map(|()| Params::default())
    }
}
