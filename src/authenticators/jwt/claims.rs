//! Parsing and checking the JWT header and claims: strict JSON (duplicate members refused),
//! registered-claim types, and the mapping into [`AuthContext`] (the time and audience rules
//! are shared with introspection: [`crate::authenticators::claims`]).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::authenticators::binding::confirmation;
use crate::authenticators::claims::ClaimError;
use crate::authenticators::claims::{audience_bound, check_exp, check_iat, check_nbf};
use crate::context::{AuthContext, AuthMethod, Confirmation};
use crate::strict_json::Key;

/// The claims this crate reads, captured in one pass over the payload that also refuses any
/// duplicate member name (RFC 7519 §4: no two parsers may disagree about a claim's value).
/// Other claims are skipped without being materialised.
#[derive(Default)]
pub(crate) struct Registered {
    exp: Option<Value>,
    nbf: Option<Value>,
    iat: Option<Value>,
    iss: Option<Value>,
    aud: Option<Value>,
    sub: Option<Value>,
    scope: Option<Value>,
    scp: Option<Value>,
    permissions: Option<Value>,
    client_id: Option<Value>,
    azp: Option<Value>,
    jti: Option<Value>,
    cnf: Option<Value>,
    /// The tenant claim ([`ClaimMapping::tenant_claim`], e.g. Entra's `tid`).
    tenant: Option<Value>,
    /// Values of the first segments of role paths (`realm_access` for `realm_access.roles`).
    role_roots: Vec<(String, Value)>,
    /// How many of the required claims are present.
    required_seen: usize,
}

/// Parses the claims payload against a mapping.
pub(crate) struct ClaimsSeed<'m> {
    pub(crate) mapping: &'m ClaimMapping,
    pub(crate) required: &'m [String],
}

impl<'de> DeserializeSeed<'de> for ClaimsSeed<'_> {
    type Value = Registered;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Registered, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ClaimsSeed<'_> {
    type Value = Registered;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Registered, A::Error> {
        let mut r = Registered::default();
        // Linear duplicate check: the payload is only parsed after its signature verified, and
        // tokens are at most 16 KiB.
        let mut seen: Vec<Cow<'de, str>> = Vec::with_capacity(16);
        while let Some(Key(k)) = access.next_key::<Key<'de>>()? {
            if seen.contains(&k) {
                return Err(de::Error::custom("duplicate claim"));
            }
            let slot = match k.as_ref() {
                "exp" => Some(&mut r.exp),
                "nbf" => Some(&mut r.nbf),
                "iat" => Some(&mut r.iat),
                "iss" => Some(&mut r.iss),
                "aud" => Some(&mut r.aud),
                "sub" => Some(&mut r.sub),
                "scope" => Some(&mut r.scope),
                "scp" => Some(&mut r.scp),
                "permissions" if self.mapping.permissions_as_scopes => Some(&mut r.permissions),
                "client_id" => Some(&mut r.client_id),
                "azp" => Some(&mut r.azp),
                "jti" => Some(&mut r.jti),
                "cnf" => Some(&mut r.cnf),
                name if self.mapping.tenant_claim.as_deref() == Some(name) => Some(&mut r.tenant),
                _ => None,
            };
            let is_role_root = self
                .mapping
                .role_paths
                .iter()
                .any(|p| p.split('.').next() == Some(k.as_ref()));
            match slot {
                Some(slot) => *slot = Some(access.next_value::<Value>()?),
                None if is_role_root => r
                    .role_roots
                    .push((k.to_string(), access.next_value::<Value>()?)),
                None => {
                    access.next_value::<de::IgnoredAny>()?;
                }
            }
            if self.required.iter().any(|c| c.as_str() == k.as_ref()) {
                r.required_seen += 1;
            }
            seen.push(k);
        }
        Ok(r)
    }
}

/// Parses a claims payload: a JSON object with unique member names, nothing after it.
pub(crate) fn parse_claims(
    payload: &[u8],
    mapping: &ClaimMapping,
    required: &[String],
) -> Option<Registered> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let r = ClaimsSeed { mapping, required }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(r)
}

/// Reads `iss` from a payload whose signature is not verified yet, only to choose the key
/// source (the routing of [trusted issuers](super::TrustedIssuer)). The rules are those of
/// [`parse_claims`]: a JSON object, nothing after it, no second `iss` (compared decoded);
/// other members are skipped unread (their duplicates refuse the token after the signature
/// check, when the claims are parsed). Returns `iss` (`None` when absent), or the log detail
/// of the refusal: `bad_claims`, or `bad_iss` for an `iss` that is not a string.
pub(crate) fn unverified_issuer(payload: &[u8]) -> Result<Option<String>, &'static str> {
    struct IssOnly;
    impl<'de> Visitor<'de> for IssOnly {
        type Value = Option<Value>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Option<Value>, A::Error> {
            let mut iss = None;
            while let Some(Key(k)) = access.next_key::<Key<'de>>()? {
                if k == "iss" {
                    if iss.is_some() {
                        return Err(de::Error::custom("duplicate claim"));
                    }
                    iss = Some(access.next_value::<Value>()?);
                } else {
                    access.next_value::<de::IgnoredAny>()?;
                }
            }
            Ok(iss)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(payload);
    let iss = de.deserialize_map(IssOnly).map_err(|_| "bad_claims")?;
    de.end().map_err(|_| "bad_claims")?;
    match iss {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err("bad_iss"),
    }
}

/// The JOSE header members this crate reads. Members it does not know (`jku`, `x5u`, `jwk`,
/// `x5c`, …) are ignored: keys come from configuration only. serde's derive refuses duplicate
/// members.
#[derive(Deserialize)]
pub(crate) struct Header<'a> {
    #[serde(borrow)]
    pub(crate) alg: Cow<'a, str>,
    #[serde(default, borrow)]
    pub(crate) kid: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) typ: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    pub(crate) cty: Option<Cow<'a, str>>,
    #[serde(default)]
    pub(crate) crit: Option<de::IgnoredAny>,
}

/// What the claims must satisfy.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    pub(crate) audiences: Vec<String>,
    pub(crate) leeway: Duration,
    pub(crate) required: Vec<String>,
}

/// How claims become an [`AuthContext`].
#[derive(Debug, Clone)]
pub(crate) struct ClaimMapping {
    pub(crate) role_paths: Vec<String>,
    pub(crate) permissions_as_scopes: bool,
    /// The claim that must name the tenant of a templated issuer (Entra: `tid`).
    pub(crate) tenant_claim: Option<String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            role_paths: vec!["roles".into()],
            permissions_as_scopes: false,
            tenant_claim: None,
        }
    }
}

/// The claims the parser reads into [`Registered`] by name: a tenant claim may not be one
/// of them.
pub(crate) const READ_CLAIMS: [&str; 13] = [
    "exp",
    "nbf",
    "iat",
    "iss",
    "aud",
    "sub",
    "scope",
    "scp",
    "permissions",
    "client_id",
    "azp",
    "jti",
    "cnf",
];

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The issuers whose tokens a key may verify (RFC 8725 §3.8 and CLM-18: each key source is
/// bound to its issuer, so one source's key cannot vouch for another issuer's tokens).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Issuers {
    /// `iss` must be present and equal one of these exactly.
    OneOf(Vec<String>),
    /// Any `iss`, or none (only after an explicit `allow_any_issuer()`).
    Any,
}

impl Issuers {
    pub(crate) fn accepts(&self, iss: Option<&str>) -> bool {
        match self {
            Self::Any => true,
            Self::OneOf(list) => iss.is_some_and(|i| list.iter().any(|want| want == i)),
        }
    }
}

/// Which `iss` a verified token may carry.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Expected<'a> {
    /// One the key that verified the signature is bound to.
    Keys(&'a Issuers),
    /// Exactly the issuer the token was routed by (a trusted issuer's keys verified it), and,
    /// for a templated issuer, its tenant.
    Routed {
        iss: &'a str,
        tenant: Option<&'a str>,
    },
}

/// Checks registered claims and builds the context (with the raw claims text); returns it
/// with its expiry. `expected` says which issuers the verifying key may vouch for.
///
/// The steps, in order: [`check_times`], [`issuer`], [`tenant`], the audience
/// ([`audience_bound`]), [`subject`], required claims, [`collect_scopes`], [`collect_roles`],
/// [`into_context`].
pub(crate) fn check_and_map(
    claims: Registered,
    raw: String,
    rules: &ClaimRules,
    expected: Expected<'_>,
    mapping: &ClaimMapping,
    now: SystemTime,
) -> Result<(AuthContext, u64), ClaimError> {
    let exp = check_times(&claims, secs(now), rules.leeway.as_secs())?;
    let iss = issuer(&claims, expected)?;
    let tenant = tenant(&claims, expected, mapping)?;
    let aud = audience_bound(claims.aud.as_ref(), &rules.audiences)?;
    let sub = subject(&claims)?;
    if claims.required_seen < rules.required.len() {
        return Err(ClaimError::MissingClaim);
    }
    let scopes = collect_scopes(&claims)?;
    let roles = collect_roles(&claims, mapping);
    let cnf = confirmation(claims.cnf.as_ref())?;
    let named = Named {
        sub,
        iss,
        tenant,
        aud: &aud,
        exp,
    };
    Ok((into_context(&claims, named, scopes, roles, raw, cnf), exp))
}

/// `exp` (required), `nbf` and `iat`, with leeway. Returns `exp`.
fn check_times(claims: &Registered, now: u64, leeway: u64) -> Result<u64, ClaimError> {
    let exp = match &claims.exp {
        Some(v) => check_exp(v, now, leeway)?,
        None => return Err(ClaimError::Malformed("missing_exp")),
    };
    if let Some(v) = &claims.nbf {
        check_nbf(v, now, leeway)?;
    }
    if let Some(v) = &claims.iat {
        check_iat(v, now, leeway)?;
    }
    Ok(exp)
}

/// `iss`: a string, if present, accepted by the verifying key's issuers (or exactly the
/// issuer the token was routed by).
fn issuer<'c>(
    claims: &'c Registered,
    expected: Expected<'_>,
) -> Result<Option<&'c str>, ClaimError> {
    let iss = match &claims.iss {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(ClaimError::Malformed("bad_iss")),
        None => None,
    };
    let accepted = match expected {
        Expected::Keys(issuers) => issuers.accepts(iss),
        Expected::Routed { iss: routed, .. } => iss == Some(routed),
    };
    if accepted {
        Ok(iss)
    } else {
        Err(ClaimError::BadIssuer)
    }
}

/// The tenant of a templated issuer; when the mapping names a tenant claim (Entra: `tid`),
/// that claim must be a string equal to it.
fn tenant<'e>(
    claims: &Registered,
    expected: Expected<'e>,
    mapping: &ClaimMapping,
) -> Result<Option<&'e str>, ClaimError> {
    let Expected::Routed {
        tenant: Some(tenant),
        ..
    } = expected
    else {
        return Ok(None);
    };
    if mapping.tenant_claim.is_some() {
        match &claims.tenant {
            Some(Value::String(t)) if t == tenant => {}
            _ => return Err(ClaimError::TenantMismatch),
        }
    }
    Ok(Some(tenant))
}

/// `sub`: a non-empty string.
fn subject(claims: &Registered) -> Result<String, ClaimError> {
    match &claims.sub {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        _ => Err(ClaimError::Malformed("bad_sub")),
    }
}

/// Scopes from `scope` (a space-separated string), `scp` and `permissions` (a string or an
/// array of strings).
fn collect_scopes(claims: &Registered) -> Result<BTreeSet<String>, ClaimError> {
    let mut scopes: BTreeSet<String> = BTreeSet::new();
    match &claims.scope {
        Some(Value::String(s)) => scopes.extend(split_spaces(s)),
        Some(_) => return Err(ClaimError::Malformed("bad_scope")),
        None => {}
    }
    for list in [&claims.scp, &claims.permissions] {
        match list {
            Some(Value::String(s)) => scopes.extend(split_spaces(s)),
            Some(Value::Array(items)) => {
                for v in items {
                    let s = v.as_str().ok_or(ClaimError::Malformed("bad_scope"))?;
                    scopes.insert(s.to_owned());
                }
            }
            Some(_) => return Err(ClaimError::Malformed("bad_scope")),
            None => {}
        }
    }
    Ok(scopes)
}

fn split_spaces(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split(' ').filter(|s| !s.is_empty()).map(String::from)
}

/// Roles at the mapping's claim paths: an array (its strings) or a space-separated string;
/// anything else, or a missing path, adds none.
fn collect_roles(claims: &Registered, mapping: &ClaimMapping) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    for path in &mapping.role_paths {
        let mut segs = path.split('.');
        let root = segs.next().unwrap_or("");
        let mut cur = claims
            .role_roots
            .iter()
            .find(|(k, _)| k == root)
            .map(|(_, v)| v);
        for seg in segs {
            cur = cur.and_then(|c| c.get(seg));
        }
        match cur {
            Some(Value::Array(items)) => {
                roles.extend(items.iter().filter_map(|r| r.as_str().map(String::from)))
            }
            Some(Value::String(s)) => roles.extend(split_spaces(s)),
            _ => {}
        }
    }
    roles
}

/// The checked registered claims that name the caller and the token.
struct Named<'c> {
    sub: String,
    iss: Option<&'c str>,
    tenant: Option<&'c str>,
    aud: &'c [&'c str],
    exp: u64,
}

/// The context: subject, scopes, roles, audiences, expiry, issuer, client (`client_id`, else
/// `azp`), token id (`jti`), the binding (`cnf`) and the raw claims.
fn into_context(
    claims: &Registered,
    named: Named<'_>,
    scopes: BTreeSet<String>,
    roles: Vec<String>,
    raw: String,
    cnf: Confirmation,
) -> AuthContext {
    let mut b = AuthContext::builder(named.sub, AuthMethod::Jwt)
        .confirmation(cnf)
        .scopes(scopes)
        .roles(roles)
        .audience(named.aud.iter().map(|s| (*s).to_owned()));
    // `exp` is at most 2^53 (`numeric_date`), which a `SystemTime` holds; checked anyway.
    if let Some(t) = UNIX_EPOCH.checked_add(Duration::from_secs(named.exp)) {
        b = b.expires_at(t);
    }
    if let Some(i) = named.iss {
        b = b.issuer(i);
    }
    if let Some(t) = named.tenant {
        b = b.tenant(t);
    }
    if let Some(c) = claims
        .client_id
        .as_ref()
        .or(claims.azp.as_ref())
        .and_then(Value::as_str)
    {
        b = b.client_id(c);
    }
    if let Some(jti) = claims.jti.as_ref().and_then(Value::as_str) {
        b = b.credential_id(jti);
    }
    b.claims_json(raw).build()
}

#[cfg(test)]
mod tests;
