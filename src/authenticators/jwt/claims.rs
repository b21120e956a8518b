//! Parsing and checking the JWT header and claims: strict JSON (duplicate members refused),
//! registered-claim types, audience canonicalisation, and the mapping into [`AuthContext`].

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::context::{AuthContext, AuthMethod};
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

/// Why claims were refused; decides the description and the log detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimError {
    Expired,
    NotYetValid,
    IssuedInFuture,
    BadIssuer,
    BadAudience,
    Malformed(&'static str),
    MissingClaim,
    Rejected,
}

impl ClaimError {
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "iat_in_future",
            Self::BadIssuer => "issuer_mismatch",
            Self::BadAudience => "audience_mismatch",
            Self::Malformed(d) => d,
            Self::MissingClaim => "required_claim_missing",
            Self::Rejected => "claims_check_failed",
        }
    }
}

/// Reads a NumericDate: a non-negative JSON number of seconds (integer or finite float below
/// 2^53). Strings, negatives and absurd values are refused.
fn numeric_date(v: &Value) -> Option<u64> {
    const MAX: f64 = 9_007_199_254_740_992.0; // 2^53
    if let Some(u) = v.as_u64() {
        return (u as f64 <= MAX).then_some(u);
    }
    let f = v.as_f64()?;
    (f.is_finite() && (0.0..=MAX).contains(&f)).then(|| f.floor() as u64)
}

use crate::oauth::canonical_resource as canonical_audience;

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
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            role_paths: vec!["roles".into()],
            permissions_as_scopes: false,
        }
    }
}

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

/// Checks registered claims and builds the context (with the raw claims text); returns it
/// with its expiry. `issuers` are those of the key that verified the signature.
pub(crate) fn check_and_map(
    claims: Registered,
    raw: String,
    rules: &ClaimRules,
    issuers: &Issuers,
    mapping: &ClaimMapping,
    now: SystemTime,
) -> Result<(AuthContext, u64), ClaimError> {
    let now = secs(now);
    let leeway = rules.leeway.as_secs();

    let exp = match &claims.exp {
        Some(v) => numeric_date(v).ok_or(ClaimError::Malformed("bad_exp"))?,
        None => return Err(ClaimError::Malformed("missing_exp")),
    };
    // RFC 7519 §4.1.4: the current time must be before `exp` (plus leeway).
    if now >= exp.saturating_add(leeway) {
        return Err(ClaimError::Expired);
    }
    if let Some(v) = &claims.nbf {
        let nbf = numeric_date(v).ok_or(ClaimError::Malformed("bad_nbf"))?;
        if nbf > now.saturating_add(leeway) {
            return Err(ClaimError::NotYetValid);
        }
    }
    if let Some(v) = &claims.iat {
        let iat = numeric_date(v).ok_or(ClaimError::Malformed("bad_iat"))?;
        if iat > now.saturating_add(leeway) {
            return Err(ClaimError::IssuedInFuture);
        }
    }

    let iss = match &claims.iss {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(ClaimError::Malformed("bad_iss")),
        None => None,
    };
    if !issuers.accepts(iss) {
        return Err(ClaimError::BadIssuer);
    }

    let aud: Vec<&str> = match &claims.aud {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or(ClaimError::Malformed("bad_aud")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ClaimError::Malformed("bad_aud")),
        None => Vec::new(),
    };
    let matches = aud.iter().any(|a| {
        let a = canonical_audience(a);
        rules.audiences.contains(&a)
    });
    if !matches {
        return Err(ClaimError::BadAudience);
    }

    let sub = match &claims.sub {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err(ClaimError::Malformed("bad_sub")),
    };
    if claims.required_seen < rules.required.len() {
        return Err(ClaimError::MissingClaim);
    }

    let mut scopes: BTreeSet<String> = BTreeSet::new();
    match &claims.scope {
        Some(Value::String(s)) => {
            scopes.extend(s.split(' ').filter(|s| !s.is_empty()).map(String::from))
        }
        Some(_) => return Err(ClaimError::Malformed("bad_scope")),
        None => {}
    }
    let mut list_claim = |value: &Option<Value>| -> Result<(), ClaimError> {
        match value {
            Some(Value::String(s)) => {
                scopes.extend(s.split(' ').filter(|s| !s.is_empty()).map(String::from))
            }
            Some(Value::Array(items)) => {
                for v in items {
                    scopes.insert(
                        v.as_str()
                            .ok_or(ClaimError::Malformed("bad_scope"))?
                            .to_owned(),
                    );
                }
            }
            Some(_) => return Err(ClaimError::Malformed("bad_scope")),
            None => {}
        }
        Ok(())
    };
    list_claim(&claims.scp)?;
    list_claim(&claims.permissions)?;

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
            Some(Value::String(s)) => {
                roles.extend(s.split(' ').filter(|s| !s.is_empty()).map(String::from))
            }
            _ => {}
        }
    }

    let mut b = AuthContext::builder(sub, AuthMethod::Jwt)
        .scopes(scopes)
        .roles(roles)
        .audience(aud.iter().map(|s| (*s).to_owned()));
    // `exp` is at most 2^53 (`numeric_date`), which a `SystemTime` holds; checked anyway.
    if let Some(t) = UNIX_EPOCH.checked_add(Duration::from_secs(exp)) {
        b = b.expires_at(t);
    }
    if let Some(i) = iss {
        b = b.issuer(i);
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
    Ok((b.claims_json(raw).build(), exp))
}

#[cfg(test)]
mod tests {
    use serde_json::Map;

    use super::*;

    fn rules() -> ClaimRules {
        ClaimRules {
            audiences: vec![canonical_audience("https://mcp.example.com/mcp")],
            leeway: Duration::from_secs(60),
            required: vec![],
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_800_000_000)
    }

    fn base() -> Map<String, Value> {
        serde_json::from_value(serde_json::json!({
            "sub": "alice", "iss": "https://as.example.com", "aud": "https://mcp.example.com/mcp",
            "exp": 1_800_000_600u64, "iat": 1_800_000_000u64
        }))
        .unwrap()
    }

    fn run(
        c: Map<String, Value>,
        mapping: &ClaimMapping,
    ) -> Result<(AuthContext, u64), ClaimError> {
        let text = serde_json::to_string(&c).unwrap();
        let reg = parse_claims(text.as_bytes(), mapping, &[]).expect("parses");
        let issuers = Issuers::OneOf(vec!["https://as.example.com".into()]);
        check_and_map(reg, text, &rules(), &issuers, mapping, now())
    }

    fn check(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<AuthContext, ClaimError> {
        let mut c = base();
        edit(&mut c);
        run(c, &ClaimMapping::default()).map(|(ctx, _)| ctx)
    }

    #[test]
    fn duplicate_members_are_refused() {
        let m = ClaimMapping::default();
        assert!(parse_claims(br#"{"scope":"a","scope":"a b"}"#, &m, &[]).is_none());
        assert!(parse_claims(br#"{"tenant":1,"tenant":2}"#, &m, &[]).is_none());
        assert!(parse_claims(br#"{"t\u0065nant":1,"tenant":2}"#, &m, &[]).is_none());
        assert!(parse_claims(br#"{"scope":"a"}"#, &m, &[]).is_some());
        assert!(parse_claims(b"[1]", &m, &[]).is_none());
        assert!(parse_claims(br#"{"a":1} {"b":2}"#, &m, &[]).is_none());
        assert!(serde_json::from_str::<Header<'_>>(r#"{"alg":"HS256","alg":"none"}"#).is_err());
    }

    #[test]
    fn audience_canonicalisation_lowercases_scheme_and_host_only() {
        assert_eq!(
            canonical_audience("HTTPS://MCP.Example.COM/Mcp/"),
            "https://mcp.example.com/Mcp"
        );
        assert_eq!(
            canonical_audience("https://mcp.example.com"),
            "https://mcp.example.com"
        );
        assert_eq!(canonical_audience("api://Default"), "api://default");
        assert_eq!(canonical_audience("My-API"), "My-API");
    }

    #[test]
    fn audience_near_misses_are_refused() {
        for aud in [
            "https://mcp.example.com.evil.com/mcp",
            "https://mcp.example.com/other",
            "https://mcp.example.com@evil/mcp",
            "https://mcp.example.com",
        ] {
            assert_eq!(
                check(|c| {
                    c.insert("aud".into(), aud.into());
                })
                .unwrap_err(),
                ClaimError::BadAudience,
                "{aud}"
            );
        }
        for aud in [
            "https://MCP.example.com/mcp/",
            "HTTPS://mcp.example.com/mcp",
        ] {
            assert!(
                check(|c| {
                    c.insert("aud".into(), aud.into());
                })
                .is_ok(),
                "{aud}"
            );
        }
        let arr = serde_json::json!(["https://other", "https://mcp.example.com/mcp"]);
        assert!(
            check(|c| {
                c.insert("aud".into(), arr);
            })
            .is_ok()
        );
    }

    #[test]
    fn audience_of_wrong_type_or_missing_is_refused() {
        for aud in [
            serde_json::json!(123),
            serde_json::json!({"a": 1}),
            serde_json::json!(null),
            serde_json::json!([1, 2]),
        ] {
            assert!(
                check(|c| {
                    c.insert("aud".into(), aud);
                })
                .is_err()
            );
        }
        assert_eq!(
            check(|c| {
                c.remove("aud");
            })
            .unwrap_err(),
            ClaimError::BadAudience
        );
        assert_eq!(
            check(|c| {
                c.insert("aud".into(), serde_json::json!([]));
            })
            .unwrap_err(),
            ClaimError::BadAudience
        );
    }

    #[test]
    fn time_claims_are_checked_with_leeway() {
        let t = 1_800_000_000u64;
        assert!(
            check(|c| {
                c.insert("exp".into(), (t - 30).into());
            })
            .is_ok()
        );
        assert_eq!(
            check(|c| {
                c.insert("exp".into(), (t - 90).into());
            })
            .unwrap_err(),
            ClaimError::Expired
        );
        assert_eq!(
            check(|c| {
                c.insert("nbf".into(), (t + 3600).into());
            })
            .unwrap_err(),
            ClaimError::NotYetValid
        );
        assert_eq!(
            check(|c| {
                c.insert("iat".into(), (t + 86_400).into());
            })
            .unwrap_err(),
            ClaimError::IssuedInFuture
        );
        for bad in [
            serde_json::json!("1999999999"),
            serde_json::json!(-1),
            serde_json::json!(1e300),
            serde_json::json!(null),
        ] {
            assert!(
                check(|c| {
                    c.insert("exp".into(), bad);
                })
                .is_err()
            );
        }
        assert!(
            check(|c| {
                c.remove("exp");
            })
            .is_err()
        );
        assert!(
            check(|c| {
                c.insert("nbf".into(), "99999999999".into());
            })
            .is_err()
        );
    }

    #[test]
    fn issuer_must_be_an_exact_string() {
        assert_eq!(
            check(|c| {
                c.insert("iss".into(), "https://as.example.com/".into());
            })
            .unwrap_err(),
            ClaimError::BadIssuer
        );
        assert_eq!(
            check(|c| {
                c.remove("iss");
            })
            .unwrap_err(),
            ClaimError::BadIssuer
        );
        assert!(
            check(|c| {
                c.insert("iss".into(), 123.into());
            })
            .is_err()
        );
        let arr = serde_json::json!(["https://evil", "https://as.example.com"]);
        assert!(
            check(|c| {
                c.insert("iss".into(), arr);
            })
            .is_err()
        );
    }

    #[test]
    fn subject_is_required() {
        assert!(
            check(|c| {
                c.remove("sub");
            })
            .is_err()
        );
        assert!(
            check(|c| {
                c.insert("sub".into(), 5.into());
            })
            .is_err()
        );
    }

    #[test]
    fn scopes_come_from_scope_and_scp_and_roles_from_paths() {
        let mut c = base();
        c.insert("scope".into(), "read  write".into());
        c.insert("scp".into(), serde_json::json!(["admin"]));
        c.insert("permissions".into(), serde_json::json!(["perm:x"]));
        c.insert(
            "realm_access".into(),
            serde_json::json!({"roles": ["editor"]}),
        );
        c.insert("azp".into(), "client-1".into());
        let mapping = ClaimMapping {
            role_paths: vec!["realm_access.roles".into()],
            permissions_as_scopes: true,
        };
        let (ctx, _) = run(c, &mapping).unwrap();
        assert_eq!(ctx.scopes().to_space_separated(), "admin perm:x read write");
        assert!(ctx.has_role("editor"));
        assert_eq!(ctx.client_id(), Some("client-1"));
        assert_eq!(ctx.principal(), "https://as.example.com|alice|client-1");
        assert!(ctx.claims().unwrap().contains_key("realm_access"));
    }

    #[test]
    fn non_string_scope_is_refused() {
        assert!(
            check(|c| {
                c.insert("scope".into(), serde_json::json!(["read"]));
            })
            .is_err()
        );
    }
}
