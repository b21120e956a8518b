//! JWT access tokens: this server's own HS256 secret, a JWKS URL, one or several OIDC
//! issuers, and trusted issuers with their own settings (`MCP_ISSUERS`).

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::ConfigError;
use crate::authenticators::jwt::{
    Algorithm, JwtAuthenticator, JwtBuilder, JwtKey, MAX_TRUSTED_ISSUERS, TrustedIssuer,
};
use crate::env::EnvReader;
use crate::oauth::ReqwestFetcher;

use super::list;

/// The variable of the trusted issuers' table.
pub(super) const ISSUERS_VAR: &str = "MCP_ISSUERS";

/// The JWT settings read.
pub(super) struct JwtSettings {
    /// `None` when no JWT variable is set.
    pub(super) builder: Option<JwtBuilder>,
    /// The issuers the metadata lists when `MCP_AUTHORIZATION_SERVERS` is not set: those of
    /// `MCP_OIDC_ISSUER` and `MCP_ISSUERS`.
    pub(super) authorization_servers: Vec<String>,
    /// The setting behind each trusted issuer, in the order added to the builder, to name
    /// its problems (`MCP_OIDC_ISSUER`, `MCP_ISSUERS[1]`).
    pub(super) trusted_names: Vec<String>,
}

/// JWT settings.
pub(super) fn load_jwt(
    env: &mut EnvReader,
    audiences: &[String],
    fetcher: &ReqwestFetcher,
) -> JwtSettings {
    // `MCP_JWT_SECRET`, or the file named by `MCP_JWT_SECRET_FILE`.
    let secret = env.optional_secret("MCP_JWT_SECRET", |name, v, _| {
        JwtKey::hmac(v.trim(), Algorithm::HS256).map_err(|e| {
            let message = e.problems().first().map_or_else(
                || "is not a usable HS256 secret".to_owned(),
                |p| p.message().to_owned(),
            );
            ConfigError::new(name, message)
        })
    });
    let jwks_url = env.raw("MCP_JWKS_URL").map(|v| v.trim().to_owned());
    let oidc_issuers = load_oidc_issuers(env);
    let issuers = env
        .raw("MCP_JWT_ISSUER")
        .map(|v| list(&v))
        .unwrap_or_default();
    let table = load_issuers(env);
    let mut settings = JwtSettings {
        builder: None,
        authorization_servers: oidc_issuers.clone().unwrap_or_default(),
        trusted_names: Vec::new(),
    };
    for (_, t) in &table {
        settings
            .authorization_servers
            .extend(t.authorization_servers());
    }
    if secret.is_none() && jwks_url.is_none() && oidc_issuers.is_none() && table.is_empty() {
        return settings;
    }
    // One OIDC issuer is the builder's own key source, as it has always been; several are
    // trusted issuers, each discovered, each its own expected `iss`.
    let (own_oidc, several) = match oidc_issuers {
        Some(mut list) if list.len() == 1 => (list.pop(), Vec::new()),
        Some(list) => (None, list),
        None => (None, Vec::new()),
    };
    check_key_sources(
        env,
        jwks_url.is_some(),
        own_oidc.is_some(),
        &several,
        !table.is_empty(),
        &issuers,
    );
    let remote =
        jwks_url.is_some() || own_oidc.is_some() || !several.is_empty() || !table.is_empty();
    let mut b = JwtAuthenticator::builder()
        .verified_token_cache(10_000)
        .fetcher(fetcher.clone());
    if let Some(key) = secret {
        // MCP_JWT_SECRET tokens are this server's own: beside an identity provider they must
        // carry `iss` = this server's resource URI (the first audience, MCP_PUBLIC_URL by
        // default), so whoever holds the secret cannot mint tokens in the provider's name.
        // Alone, they carry MCP_JWT_ISSUER, or any `iss` when that is not set.
        b = match (remote, audiences.first()) {
            (true, Some(own)) => b.key(key.issuer(own.clone())),
            (false, _) if issuers.is_empty() => b.key(key).allow_any_issuer(),
            _ => b.key(key),
        };
    }
    if let Some(url) = jwks_url {
        b = b.jwks_url(url);
    }
    if let Some(issuer) = own_oidc {
        b = b.oidc_issuer(issuer);
    }
    for i in issuers {
        b = b.issuer(i);
    }
    for a in audiences {
        b = b.audience(a);
    }
    for issuer in several {
        b = b.trusted_issuer(TrustedIssuer::new(issuer).discovery());
        settings.trusted_names.push("MCP_OIDC_ISSUER".to_owned());
    }
    for (name, t) in table {
        b = b.trusted_issuer(t);
        settings.trusted_names.push(name);
    }
    settings.builder = Some(b);
    settings
}

/// `MCP_OIDC_ISSUER`: one issuer, or several separated by commas (no templates: those need
/// their tenants, in `MCP_ISSUERS`).
fn load_oidc_issuers(env: &mut EnvReader) -> Option<Vec<String>> {
    let raw = env.raw("MCP_OIDC_ISSUER")?;
    let issuers = list(&raw);
    if issuers.is_empty() {
        env.problem("MCP_OIDC_ISSUER", "is empty");
        return None;
    }
    if issuers.len() > MAX_TRUSTED_ISSUERS {
        env.problem(
            "MCP_OIDC_ISSUER",
            format!("names more than {MAX_TRUSTED_ISSUERS} issuers"),
        );
        return None;
    }
    if issuers.iter().any(|i| i.contains(['{', '}'])) {
        env.problem(
            "MCP_OIDC_ISSUER",
            "an issuer template (`{tenant}`) needs its tenants: configure it in MCP_ISSUERS",
        );
        return None;
    }
    Some(issuers)
}

/// One remote key source at most besides trusted issuers, and each bound to an issuer.
fn check_key_sources(
    env: &mut EnvReader,
    jwks_url: bool,
    oidc_issuer: bool,
    several: &[String],
    table: bool,
    issuers: &[String],
) {
    if jwks_url && (oidc_issuer || !several.is_empty()) {
        env.problem(
            "MCP_JWKS_URL",
            "set either MCP_JWKS_URL or MCP_OIDC_ISSUER, not both",
        );
    }
    // Every key source is bound to an issuer: the keys at MCP_JWKS_URL to MCP_JWT_ISSUER
    // (a JWKS shared by many tenants would otherwise vouch for all of them).
    if jwks_url && !oidc_issuer && issuers.is_empty() {
        env.problem(
            "MCP_JWKS_URL",
            "needs MCP_JWT_ISSUER (the `iss` of the tokens its keys sign), or set \
             MCP_OIDC_ISSUER instead to discover the keys and the issuer",
        );
    }
    // Trusted issuers are each their own `iss` (and MCP_JWT_SECRET's tokens then carry this
    // server's): without MCP_JWKS_URL or one MCP_OIDC_ISSUER, MCP_JWT_ISSUER would bind
    // nothing.
    if (!several.is_empty() || table) && !jwks_url && !oidc_issuer && !issuers.is_empty() {
        env.problem(
            "MCP_JWT_ISSUER",
            "beside several MCP_OIDC_ISSUER or MCP_ISSUERS, each issuer is its own expected \
             `iss`: leave MCP_JWT_ISSUER unset (it binds MCP_JWKS_URL's keys)",
        );
    }
}

/// The settings of one entry of `MCP_ISSUERS`.
const ISSUER_KEYS: [&str; 9] = [
    "issuer",
    "jwks_url",
    "audience",
    "leeway",
    "tenants",
    "any_tenant",
    "tenant_claim",
    "roles_claims",
    "permissions_as_scopes",
];

/// `MCP_ISSUERS`: a JSON array of objects (in the TOML file an array of tables,
/// `[[issuers]]`), one per trusted issuer, each with the keys of [`ISSUER_KEYS`]. Every
/// problem is recorded, named `MCP_ISSUERS[<i>].<key>` (`i` from 0); values are never shown.
/// Returns each issuer with the name of its entry.
fn load_issuers(env: &mut EnvReader) -> Vec<(String, TrustedIssuer)> {
    let Some(text) = env.raw(ISSUERS_VAR) else {
        return Vec::new();
    };
    let origin = env
        .origin(ISSUERS_VAR)
        .map(|o| format!(" (from {o})"))
        .unwrap_or_default();
    let entries = match parse_entries(&text) {
        Ok(entries) => entries,
        Err(message) => {
            env.problem(ISSUERS_VAR, message);
            return Vec::new();
        }
    };
    let mut out = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let name = format!("{ISSUERS_VAR}[{i}]");
        let mut problem = |key: &str, message: &str| {
            let setting = if key.is_empty() {
                format!("{name}{origin}")
            } else {
                format!("{name}.{key}{origin}")
            };
            env.problem(&setting, message);
        };
        let Some(fields) = entry else {
            problem("", "must be an object (a [[issuers]] table)");
            continue;
        };
        if let Some(t) = trusted_issuer(fields, &mut problem) {
            out.push((name, t));
        }
    }
    out
}

/// One entry's trusted issuer; `None` when a field is missing or of the wrong type (each
/// reported through `problem`).
fn trusted_issuer(
    fields: Vec<(String, Value)>,
    problem: &mut dyn FnMut(&str, &str),
) -> Option<TrustedIssuer> {
    let mut ok = true;
    let get = |key: &str| fields.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    for (key, _) in &fields {
        if !ISSUER_KEYS.contains(&key.as_str()) {
            problem(&shown_key(key), "is not an issuer setting");
            ok = false;
        }
    }
    let string = |key: &str, problem: &mut dyn FnMut(&str, &str)| match get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => {
            problem(key, "must be a string");
            Err(())
        }
    };
    let issuer = string("issuer", problem);
    let jwks_url = string("jwks_url", problem);
    let tenant_claim = string("tenant_claim", problem);
    let strings = |key: &str, problem: &mut dyn FnMut(&str, &str)| match get(key) {
        None => Ok(Vec::new()),
        Some(Value::String(s)) => Ok(list(s)),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| problem(key, "must be a string or an array of strings")),
        Some(_) => {
            problem(key, "must be a string or an array of strings");
            Err(())
        }
    };
    let audiences = strings("audience", problem);
    let tenants = strings("tenants", problem);
    let roles = match get("roles_claims") {
        None => Ok(None),
        Some(_) => strings("roles_claims", problem).map(Some),
    };
    let flag = |key: &str, problem: &mut dyn FnMut(&str, &str)| match get(key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => {
            problem(key, "must be true or false");
            Err(())
        }
    };
    let any_tenant = flag("any_tenant", problem);
    let permissions = flag("permissions_as_scopes", problem);
    let leeway = match get("leeway") {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .map(|s| Some(Duration::from_secs(s)))
            .ok_or_else(|| {
                problem("leeway", "must be a whole number of seconds");
            }),
    };
    let issuer = match issuer {
        Ok(Some(i)) => Some(i),
        Ok(None) => {
            problem("issuer", "is not set");
            None
        }
        Err(()) => None,
    };
    let (
        Some(issuer),
        Ok(jwks_url),
        Ok(tenant_claim),
        Ok(audiences),
        Ok(tenants),
        Ok(roles),
        Ok(any_tenant),
        Ok(permissions),
        Ok(leeway),
        true,
    ) = (
        issuer,
        jwks_url,
        tenant_claim,
        audiences,
        tenants,
        roles,
        any_tenant,
        permissions,
        leeway,
        ok,
    )
    else {
        return None;
    };
    let mut t = TrustedIssuer::new(issuer);
    t = match jwks_url {
        Some(url) => t.jwks_url(url),
        None => t.discovery(),
    };
    for a in audiences {
        t = t.audience(a);
    }
    if let Some(l) = leeway {
        t = t.leeway(l);
    }
    if !tenants.is_empty() {
        t = t.tenants(tenants);
    }
    if any_tenant {
        t = t.any_tenant();
    }
    if let Some(c) = tenant_claim {
        t = t.tenant_claim(c);
    }
    if let Some(paths) = roles {
        t = t.roles_claims(paths);
    }
    if permissions {
        t = t.permissions_as_scopes();
    }
    Some(t)
}

/// A key as a problem shows it: quoted, escaped, at most 40 characters.
fn shown_key(key: &str) -> String {
    let shown: String = key.chars().take(40).collect();
    let more = if shown.len() < key.len() { "…" } else { "" };
    format!("{shown:?}{more}")
}

/// An entry: its members in order (`None` when it is not an object).
type Entry = Option<Vec<(String, Value)>>;

/// Parses the JSON array of entries: objects whose member names are unique (a name given
/// twice is refused, not silently overridden), at most [`MAX_TRUSTED_ISSUERS`] of them.
fn parse_entries(text: &str) -> Result<Vec<Entry>, String> {
    struct Entries;
    impl<'de> Visitor<'de> for Entries {
        type Value = Vec<Entry>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Entry>, A::Error> {
            let mut out = Vec::new();
            while let Some(EntryValue(e)) = seq.next_element()? {
                if out.len() == MAX_TRUSTED_ISSUERS {
                    return Err(de::Error::custom("too many"));
                }
                out.push(e);
            }
            Ok(out)
        }
    }
    struct EntryValue(Entry);
    impl<'de> de::Deserialize<'de> for EntryValue {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = EntryValue;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("an object")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<EntryValue, A::Error> {
                    let mut fields: Vec<(String, Value)> = Vec::new();
                    while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                        if fields.iter().any(|(seen, _)| *seen == k) {
                            return Err(de::Error::custom("duplicate"));
                        }
                        fields.push((k.into_owned(), map.next_value()?));
                    }
                    Ok(EntryValue(Some(fields)))
                }
                fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<EntryValue, A::Error> {
                    while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                    Ok(EntryValue(None))
                }
                fn visit_str<E: de::Error>(self, _: &str) -> Result<EntryValue, E> {
                    Ok(EntryValue(None))
                }
                fn visit_bool<E: de::Error>(self, _: bool) -> Result<EntryValue, E> {
                    Ok(EntryValue(None))
                }
                fn visit_i64<E: de::Error>(self, _: i64) -> Result<EntryValue, E> {
                    Ok(EntryValue(None))
                }
                fn visit_u64<E: de::Error>(self, _: u64) -> Result<EntryValue, E> {
                    Ok(EntryValue(None))
                }
                fn visit_f64<E: de::Error>(self, _: f64) -> Result<EntryValue, E> {
                    Ok(EntryValue(None))
                }
                fn visit_unit<E: de::Error>(self) -> Result<EntryValue, E> {
                    Ok(EntryValue(None))
                }
            }
            d.deserialize_any(V)
        }
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let entries = de.deserialize_seq(Entries).map_err(|e| {
        if e.to_string().starts_with("too many") {
            format!("names more than {MAX_TRUSTED_ISSUERS} issuers")
        } else {
            "must be a JSON array of issuer objects (in the TOML file, [[issuers]] tables) \
             whose keys are each given once"
                .to_owned()
        }
    })?;
    de.end()
        .map_err(|_| "holds something after the JSON array".to_owned())?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_objects_with_unique_keys_and_bounded_in_number() {
        let e = parse_entries(r#"[{"issuer":"a"}, 1, [2], "x"]"#).unwrap();
        assert_eq!(e.len(), 4);
        assert!(e[0].is_some() && e[1..].iter().all(Option::is_none));
        assert!(parse_entries(r#"[{"issuer":"a","issuer":"b"}]"#).is_err());
        assert!(parse_entries(r#"{"issuer":"a"}"#).is_err());
        assert!(parse_entries(r#"[] []"#).is_err());
        let many = format!("[{}]", vec!["{}"; MAX_TRUSTED_ISSUERS + 1].join(","));
        assert!(parse_entries(&many).unwrap_err().contains("more than"));
        let enough = format!("[{}]", vec!["{}"; MAX_TRUSTED_ISSUERS].join(","));
        assert_eq!(parse_entries(&enough).unwrap().len(), MAX_TRUSTED_ISSUERS);
    }
}
