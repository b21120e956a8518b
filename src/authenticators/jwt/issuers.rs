//! [`TrustedIssuer`]: several issuers on one authenticator, each with its own keys, audiences,
//! leeway and claim mapping, chosen by the token's `iss`; issuer templates for multi-tenant
//! identity providers (`https://login.microsoftonline.com/{tenant}/v2.0`).
//!
//! The `iss` of a token is read before its signature is checked, **only to choose the key
//! source**: the token is then verified with that issuer's keys alone (no signature attempt
//! with another issuer's keys, no fetch for an `iss` nobody trusts), and the verified `iss`
//! must be exactly the one it was routed by. The read follows the claims parser's rules (a
//! JSON object of at most the token's 16 KiB, nothing after it, a second `iss` refuses the
//! token), and an `iss` longer than every configured issuer is refused unhashed.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::AlgorithmFamily;

use super::claims::{ClaimMapping, ClaimRules, Issuers, READ_CLAIMS};
use super::jwks::{JwksCache, JwksPolicy, KeySource};
use super::keys::{KeySet, Origin, VerifyKey, keys_from_jwk_set};
use super::{Domain, JwkSet, JwtKey, MAX_LEEWAY, SourceId};
use crate::error::Problems;
use crate::oauth::{DynFetcher, check_url};

/// Most trusted issuers on one authenticator.
pub const MAX_TRUSTED_ISSUERS: usize = 64;
/// Most tenants allowed for one issuer template.
pub const MAX_TENANTS: usize = 256;
/// Longest issuer (or issuer template) accepted in configuration.
pub const MAX_ISSUER_LEN: usize = 1024;
/// Longest tenant accepted, in configuration and in a token's `iss`.
pub const MAX_TENANT_LEN: usize = 128;
/// The placeholder of an issuer template.
pub const TENANT_PLACEHOLDER: &str = "{tenant}";

const ENTRA_TEMPLATE: &str = "https://login.microsoftonline.com/{tenant}/v2.0";
const ENTRA_COMMON_JWKS: &str = "https://login.microsoftonline.com/common/discovery/v2.0/keys";

/// Where a trusted issuer's fetched keys come from.
#[derive(Debug, Clone)]
enum Remote {
    /// OIDC discovery from the issuer (from each allowed tenant's issuer, for a template).
    Discovery,
    /// This JWKS URL (one for every tenant of a template).
    Url(String),
}

/// One issuer whose tokens a [`JwtAuthenticator`](super::JwtAuthenticator) accepts, with its
/// own key source and rules; add it with
/// [`JwtBuilder::trusted_issuer`](super::JwtBuilder::trusted_issuer). Settings it does not
/// set (audiences, leeway, role claims, `permissions` as scopes) are the builder's.
///
/// The issuer is either exact (`https://idp-a.example.com`) or a template with one
/// `{tenant}` (`https://login.microsoftonline.com/{tenant}/v2.0`), which needs an allow-list
/// of [`tenants`](Self::tenants) or an explicit [`any_tenant`](Self::any_tenant). The tenant
/// of an accepted token is [`AuthContext::tenant`](crate::AuthContext::tenant).
///
/// ```
/// use mcp_auth::authenticators::jwt::{JwtAuthenticator, TrustedIssuer};
///
/// let auth = JwtAuthenticator::builder()
///     .audience("https://mcp.example.com/mcp")
///     .trusted_issuer(TrustedIssuer::new("https://login.example.com/realms/mcp").discovery())
///     .trusted_issuer(
///         TrustedIssuer::new("https://example.auth0.com/")
///             .jwks_url("https://example.auth0.com/.well-known/jwks.json")
///             .permissions_as_scopes(),
///     )
///     .trusted_issuer(TrustedIssuer::entra().tenants(["5f3c0a4e-0000-4000-8000-00000000aaaa"]))
///     .build()
///     .unwrap();
/// # let _ = auth;
/// ```
#[derive(Clone)]
#[must_use]
pub struct TrustedIssuer {
    issuer: String,
    keys: Vec<JwtKey>,
    jwk_sets: Vec<JwkSet>,
    remote: Vec<Remote>,
    audiences: Vec<String>,
    leeway: Option<Duration>,
    role_paths: Option<Vec<String>>,
    permissions_as_scopes: bool,
    tenants: Vec<String>,
    any_tenant: bool,
    tenant_claim: Option<String>,
}

impl fmt::Debug for TrustedIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrustedIssuer")
            .field("issuer", &self.issuer)
            .field("keys", &self.keys)
            .field("jwk_sets", &self.jwk_sets.len())
            .field("remote", &self.remote)
            .field("audiences", &self.audiences)
            .field("leeway", &self.leeway)
            .field("tenants", &self.tenants.len())
            .field("any_tenant", &self.any_tenant)
            .field("tenant_claim", &self.tenant_claim)
            .finish_non_exhaustive()
    }
}

impl TrustedIssuer {
    /// Trusts `issuer`: the exact `iss` of its tokens, or a template with one `{tenant}`.
    /// Give it a key source: [`discovery`](Self::discovery), [`jwks_url`](Self::jwks_url),
    /// [`key`](Self::key) or [`jwk_set`](Self::jwk_set).
    pub fn new(issuer: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            keys: Vec::new(),
            jwk_sets: Vec::new(),
            remote: Vec::new(),
            audiences: Vec::new(),
            leeway: None,
            role_paths: None,
            permissions_as_scopes: false,
            tenants: Vec::new(),
            any_tenant: false,
            tenant_claim: None,
        }
    }

    /// Microsoft Entra ID's v2.0 tokens from any of several tenants: the template
    /// `https://login.microsoftonline.com/{tenant}/v2.0`, keys from Entra's common JWKS
    /// (one set for every tenant), and the token's `tid` claim must name the tenant of its
    /// `iss`. Still needs [`tenants`](Self::tenants) or [`any_tenant`](Self::any_tenant).
    pub fn entra() -> Self {
        Self::new(ENTRA_TEMPLATE)
            .jwks_url(ENTRA_COMMON_JWKS)
            .tenant_claim("tid")
    }

    /// Finds the keys by discovery from the issuer (OpenID configuration, then OAuth
    /// authorization-server metadata, whose `issuer` must match exactly). For a template,
    /// from each allowed tenant's issuer, each with its own cache (not with `any_tenant`).
    pub fn discovery(mut self) -> Self {
        self.remote.push(Remote::Discovery);
        self
    }

    /// Fetches the keys from this JWKS URL (https, or http to a loopback host); for a
    /// template, one set for every tenant.
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.remote.push(Remote::Url(url.into()));
        self
    }

    /// Adds a configured key (it verifies this issuer's tokens only).
    pub fn key(mut self, key: JwtKey) -> Self {
        self.keys.push(key);
        self
    }

    /// Adds a static JWK set (trusted configuration: `oct` keys are allowed here).
    pub fn jwk_set(mut self, set: JwkSet) -> Self {
        self.jwk_sets.push(set);
        self
    }

    /// Accepts this issuer's tokens whose `aud` names this audience (may be called several
    /// times); without one, the builder's audiences.
    pub fn audience(mut self, audience: impl AsRef<str>) -> Self {
        self.audiences
            .push(crate::oauth::canonical_resource(audience.as_ref()));
        self
    }

    /// Clock leeway for this issuer's tokens (at most 300 s); default: the builder's.
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = Some(leeway);
        self
    }

    /// Claim paths holding roles in this issuer's tokens; default: the builder's.
    pub fn roles_claims<I: IntoIterator<Item = S>, S: Into<String>>(mut self, paths: I) -> Self {
        self.role_paths = Some(paths.into_iter().map(Into::into).collect());
        self
    }

    /// Also reads scopes from a `permissions` array in this issuer's tokens (Auth0 RBAC).
    pub fn permissions_as_scopes(mut self) -> Self {
        self.permissions_as_scopes = true;
        self
    }

    /// The tenants a template accepts (at most [`MAX_TENANTS`], each at most
    /// [`MAX_TENANT_LEN`] characters of `A-Z a-z 0-9 - . _ ~`). A token of another tenant is
    /// refused without any fetch.
    pub fn tenants<I: IntoIterator<Item = S>, S: Into<String>>(mut self, tenants: I) -> Self {
        self.tenants.extend(tenants.into_iter().map(Into::into));
        self
    }

    /// Accepts every tenant of a template (an explicit opt-in: any organisation with an
    /// account at the provider can then obtain tokens for this server, if the audience
    /// matches). Keys must come from one JWKS URL or configuration, not per-tenant discovery.
    pub fn any_tenant(mut self) -> Self {
        self.any_tenant = true;
        self
    }

    /// Requires this claim (Entra: `tid`) to be a string equal to the tenant of the token's
    /// `iss`. Only for templates.
    pub fn tenant_claim(mut self, claim: impl Into<String>) -> Self {
        self.tenant_claim = Some(claim.into());
        self
    }

    /// The issuer, or template, as configured.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The issuers to list as `authorization_servers` in the protected resource metadata:
    /// the issuer itself, or each allowed tenant's issuer for a template (none with
    /// `any_tenant` alone: name the one clients should use yourself).
    #[must_use]
    pub fn authorization_servers(&self) -> Vec<String> {
        match self.template() {
            None => vec![self.issuer.clone()],
            Some((prefix, suffix)) => self
                .tenants
                .iter()
                .map(|t| format!("{prefix}{t}{suffix}"))
                .collect(),
        }
    }

    /// Whether keys are fetched (a JWKS URL or discovery).
    pub(crate) fn fetches(&self) -> bool {
        !self.remote.is_empty()
    }

    /// The parts of a template around `{tenant}`; `None` for an exact issuer.
    fn template(&self) -> Option<(&str, &str)> {
        self.issuer.split_once(TENANT_PLACEHOLDER)
    }
}

/// Whether `tenant` may stand for `{tenant}`: 1 to [`MAX_TENANT_LEN`] URI-unreserved
/// characters, so it can never change what the rest of the issuer means.
pub(crate) fn valid_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= MAX_TENANT_LEN
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Which tenants a routed issuer accepts.
enum Tenants {
    /// An exact issuer: none.
    Exact,
    /// These, each with its own key source when keys are discovered per tenant.
    Allowed(HashMap<String, Option<SourceId>>),
    /// Any valid tenant.
    Any,
}

/// One trusted issuer, built.
pub(crate) struct RoutedDomain {
    pub(crate) domain: Domain,
    tenants: Tenants,
}

/// A template's fixed parts, and the domain it routes to.
struct Template {
    prefix: String,
    suffix: String,
    domain: usize,
}

/// The routing table of the trusted issuers: exact issuers by hash, then templates in the
/// order configured (they cannot overlap: [`Routes::build`] refuses that).
#[derive(Default)]
pub(crate) struct Routes {
    exact: HashMap<String, usize>,
    templates: Vec<Template>,
    domains: Vec<RoutedDomain>,
    /// The longest `iss` any route can match; longer ones are refused unhashed.
    longest: usize,
}

/// Where a token goes: the trusted issuer's domain, the key source for its tenant, and the
/// tenant (borrowed from the `iss`).
pub(crate) struct Route<'a> {
    pub(crate) domain: &'a Domain,
    pub(crate) source: Option<SourceId>,
    pub(crate) tenant: Option<&'a str>,
}

impl fmt::Debug for Routes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Routes")
            .field("exact", &self.exact.len())
            .field("templates", &self.templates.len())
            .finish()
    }
}

impl Routes {
    pub(crate) fn is_empty(&self) -> bool {
        self.domains.is_empty()
    }

    /// The route of a token whose (unverified) `iss` is `iss`; `Err` with the log detail
    /// when no trusted issuer matches (`unknown_issuer`) or the tenant is not allowed
    /// (`tenant_not_allowed`).
    pub(crate) fn find<'a>(&'a self, iss: &'a str) -> Result<Route<'a>, &'static str> {
        if iss.len() > self.longest {
            return Err("unknown_issuer");
        }
        if let Some(&i) = self.exact.get(iss)
            && let Some(d) = self.domains.get(i)
        {
            return Ok(Route {
                domain: &d.domain,
                source: d.domain.remote,
                tenant: None,
            });
        }
        for t in &self.templates {
            let Some(tenant) = iss
                .strip_prefix(t.prefix.as_str())
                .and_then(|rest| rest.strip_suffix(t.suffix.as_str()))
            else {
                continue;
            };
            let Some(d) = self.domains.get(t.domain) else {
                continue;
            };
            if !valid_tenant(tenant) {
                return Err("unknown_issuer");
            }
            let source = match &d.tenants {
                Tenants::Allowed(allowed) => match allowed.get(tenant) {
                    Some(own) => own.or(d.domain.remote),
                    None => return Err("tenant_not_allowed"),
                },
                Tenants::Any => d.domain.remote,
                Tenants::Exact => continue,
            };
            return Ok(Route {
                domain: &d.domain,
                source,
                tenant: Some(tenant),
            });
        }
        Err("unknown_issuer")
    }

    /// Whether `iss` would be routed (to check the builder's own key sources against).
    fn claims(&self, iss: &str) -> bool {
        self.exact.contains_key(iss)
            || self.templates.iter().any(|t| {
                iss.strip_prefix(t.prefix.as_str())
                    .and_then(|rest| rest.strip_suffix(t.suffix.as_str()))
                    .is_some_and(valid_tenant)
            })
    }

    /// Builds the routes of `trusted` (problems named `trusted issuer <i> <field>`, `i`
    /// counted from 0 in the order added, or `trusted issuers` for the set), creating their
    /// JWKS caches in `remotes`. `own` are the issuers the builder's own key sources are bound
    /// to: none may also be a trusted issuer.
    pub(crate) fn build(
        trusted: Vec<TrustedIssuer>,
        ctx: &BuildContext<'_>,
        own: &[String],
        remotes: &mut Vec<Arc<JwksCache>>,
        problems: &mut Problems,
    ) -> Self {
        let mut routes = Self::default();
        if trusted.len() > MAX_TRUSTED_ISSUERS {
            problems.add(
                "trusted issuers",
                format!("at most {MAX_TRUSTED_ISSUERS} trusted issuers"),
            );
            return routes;
        }
        for (i, t) in trusted.into_iter().enumerate() {
            let setting = |field: &str| format!("trusted issuer {i} {field}");
            let before = problems.len();
            check_issuer(&t, &setting, problems);
            let routed = build_domain(&t, ctx, &setting, remotes, problems);
            if problems.len() > before {
                continue;
            }
            let index = routes.domains.len();
            match t.template() {
                None => {
                    if routes.claims(&t.issuer) {
                        problems.add(setting("issuer"), "is trusted twice (or by a template)");
                        continue;
                    }
                    routes.longest = routes.longest.max(t.issuer.len());
                    routes.exact.insert(t.issuer.clone(), index);
                }
                Some((prefix, suffix)) => {
                    let overlaps = routes.templates.iter().any(|o| {
                        (o.prefix.starts_with(prefix) || prefix.starts_with(o.prefix.as_str()))
                            && (o.suffix.ends_with(suffix) || suffix.ends_with(o.suffix.as_str()))
                    }) || routes.exact.keys().any(|e| {
                        e.strip_prefix(prefix)
                            .and_then(|rest| rest.strip_suffix(suffix))
                            .is_some_and(valid_tenant)
                    });
                    if overlaps {
                        problems.add(
                            setting("issuer"),
                            "may match the same `iss` as another trusted issuer",
                        );
                        continue;
                    }
                    routes.longest = routes
                        .longest
                        .max(prefix.len() + MAX_TENANT_LEN + suffix.len());
                    routes.templates.push(Template {
                        prefix: prefix.to_owned(),
                        suffix: suffix.to_owned(),
                        domain: index,
                    });
                }
            }
            routes.domains.push(routed);
        }
        if own.iter().any(|iss| routes.claims(iss)) {
            problems.add(
                "trusted issuers",
                "an issuer the builder's own keys are bound to is also a trusted issuer: \
                 give it one place",
            );
        }
        routes
    }
}

/// What every trusted issuer shares with the builder.
pub(crate) struct BuildContext<'a> {
    pub(crate) audiences: &'a [String],
    pub(crate) leeway: Duration,
    pub(crate) required: &'a [String],
    pub(crate) mapping: &'a ClaimMapping,
    pub(crate) fetcher: Option<&'a Arc<dyn DynFetcher>>,
    pub(crate) policy: &'a JwksPolicy,
    pub(crate) allow_symmetric: bool,
}

/// The issuer itself, its tenants and tenant claim.
fn check_issuer(t: &TrustedIssuer, setting: &dyn Fn(&str) -> String, problems: &mut Problems) {
    let issuer = setting("issuer");
    if t.issuer.is_empty() || t.issuer.len() > MAX_ISSUER_LEN {
        problems.add(&issuer, format!("must be 1 to {MAX_ISSUER_LEN} characters"));
    }
    match t.template() {
        None => {
            if t.issuer.contains(['{', '}']) {
                problems.add(
                    &issuer,
                    "a template holds exactly one `{tenant}` and no other braces",
                );
            }
            if !t.tenants.is_empty() || t.any_tenant || t.tenant_claim.is_some() {
                problems.add(
                    setting("tenants"),
                    "tenants, any_tenant and tenant_claim are for issuer templates (with `{tenant}`)",
                );
            }
        }
        Some((prefix, suffix)) => {
            if prefix.contains(['{', '}']) || suffix.contains(['{', '}']) {
                problems.add(
                    &issuer,
                    "a template holds exactly one `{tenant}` and no other braces",
                );
            }
            check_tenants(t, setting, problems);
        }
    }
    if let Some(claim) = &t.tenant_claim
        && (claim.is_empty() || claim.len() > 64 || READ_CLAIMS.contains(&claim.as_str()))
    {
        problems.add(
            setting("tenant_claim"),
            "must be 1 to 64 characters and not a registered claim this crate reads",
        );
    }
}

/// A template's tenants: an allow-list or `any_tenant`, not both; bounded; well formed.
fn check_tenants(t: &TrustedIssuer, setting: &dyn Fn(&str) -> String, problems: &mut Problems) {
    match (t.tenants.is_empty(), t.any_tenant) {
        (true, false) => problems.add(
            setting("tenants"),
            "an issuer template needs its allowed tenants, or any_tenant to accept every tenant",
        ),
        (false, true) => problems.add(setting("tenants"), "set tenants or any_tenant, not both"),
        _ => {}
    }
    if t.tenants.len() > MAX_TENANTS {
        problems.add(setting("tenants"), format!("at most {MAX_TENANTS} tenants"));
    } else if !t.tenants.iter().all(|x| valid_tenant(x)) {
        problems.add(
            setting("tenants"),
            format!("each must be 1 to {MAX_TENANT_LEN} characters of A-Z a-z 0-9 - . _ ~"),
        );
    }
    if t.any_tenant && matches!(t.remote.as_slice(), [Remote::Discovery]) {
        problems.add(
            setting("any_tenant"),
            "keys discovered per tenant need a tenant allow-list (one cache each); with \
             any_tenant, set the provider's common jwks_url",
        );
    }
}

/// The domain of one trusted issuer: its keys, key sources (created in `remotes`) and rules.
fn build_domain(
    t: &TrustedIssuer,
    ctx: &BuildContext<'_>,
    setting: &dyn Fn(&str) -> String,
    remotes: &mut Vec<Arc<JwksCache>>,
    problems: &mut Problems,
) -> RoutedDomain {
    let bound = match t.template() {
        None => Issuers::OneOf(vec![t.issuer.clone()]),
        // Routed tokens are checked against the `iss` they were routed by instead.
        Some(_) => Issuers::OneOf(Vec::new()),
    };
    let keys = static_keys(t, &bound, setting, problems);
    let audiences = if t.audiences.is_empty() {
        ctx.audiences.to_vec()
    } else {
        t.audiences.clone()
    };
    if audiences.is_empty() {
        problems.add(
            setting("audience"),
            "no audience configured (here or on the builder): MCP servers must refuse tokens \
             not issued for them",
        );
    }
    let leeway = t.leeway.unwrap_or(ctx.leeway);
    if leeway > MAX_LEEWAY {
        problems.add(setting("leeway"), "must be at most 300 s");
    }
    let remote = match t.remote.as_slice() {
        [] => None,
        [one] => Some(one),
        _ => {
            problems.add(
                setting("jwks_url"),
                "set one remote key source: a JWKS URL or discovery",
            );
            None
        }
    };
    if t.keys.is_empty() && t.jwk_sets.is_empty() && t.remote.is_empty() {
        problems.add(
            setting("jwks_url"),
            "no key source (a JWKS URL, discovery, or configured keys)",
        );
    }
    let symmetric = keys
        .iter()
        .any(|k| k.algs.iter().any(|a| a.family() == AlgorithmFamily::Hmac));
    if symmetric && remote.is_some() {
        problems.add(
            setting("keys"),
            "an HMAC key beside the issuer's published keys could mint its tokens: give the \
             secret its own issuer",
        );
    }
    let (shared, tenants) = match (remote, t.template()) {
        (Some(Remote::Url(url)), _) => {
            problems.check(check_url(&setting("jwks_url"), url));
            let source = add_cache(ctx, KeySource::Url(url.clone()), remotes);
            (source, tenant_table(t, |_| None))
        }
        (Some(Remote::Discovery), None) => {
            problems.check(check_url(&setting("issuer"), &t.issuer));
            let source = add_cache(ctx, KeySource::Issuer(t.issuer.clone()), remotes);
            (source, Tenants::Exact)
        }
        (Some(Remote::Discovery), Some((prefix, suffix))) => {
            problems.check(check_url(
                &setting("issuer"),
                &format!("{prefix}tenant{suffix}"),
            ));
            // Refused above with any_tenant or too many tenants: no cache for those.
            let bounded = !t.any_tenant && t.tenants.len() <= MAX_TENANTS;
            let tenants = tenant_table(t, |tenant| {
                let issuer = format!("{prefix}{tenant}{suffix}");
                bounded
                    .then(|| add_cache(ctx, KeySource::Issuer(issuer), remotes))
                    .flatten()
            });
            (None, tenants)
        }
        (None, _) => (None, tenant_table(t, |_| None)),
    };
    let mut mapping = ctx.mapping.clone();
    if let Some(paths) = &t.role_paths {
        mapping.role_paths = paths.clone();
    }
    mapping.permissions_as_scopes |= t.permissions_as_scopes;
    mapping.tenant_claim = t.tenant_claim.clone();
    RoutedDomain {
        domain: Domain {
            static_keys: KeySet::new(keys),
            remote: shared,
            remote_issuers: bound,
            rules: ClaimRules {
                audiences,
                leeway,
                required: ctx.required.to_vec(),
            },
            mapping,
        },
        tenants,
    }
}

/// A new JWKS cache in `remotes` (none without a fetcher: that problem is the builder's).
fn add_cache(
    ctx: &BuildContext<'_>,
    source: KeySource,
    remotes: &mut Vec<Arc<JwksCache>>,
) -> Option<SourceId> {
    let fetcher = ctx.fetcher?.clone();
    remotes.push(Arc::new(JwksCache::new(
        source,
        fetcher,
        ctx.policy.clone(),
        ctx.allow_symmetric,
    )));
    Some(remotes.len() - 1)
}

/// The tenants of a template (each with the key source `source` gives it), `Any`, or
/// `Exact` for an exact issuer.
fn tenant_table(t: &TrustedIssuer, mut source: impl FnMut(&str) -> Option<SourceId>) -> Tenants {
    if t.template().is_none() {
        return Tenants::Exact;
    }
    if t.any_tenant {
        return Tenants::Any;
    }
    let mut allowed = HashMap::with_capacity(t.tenants.len());
    for tenant in &t.tenants {
        if !allowed.contains_key(tenant) {
            let s = source(tenant);
            allowed.insert(tenant.clone(), s);
        }
    }
    Tenants::Allowed(allowed)
}

/// The configured keys and JWK sets of a trusted issuer, bound to it.
fn static_keys(
    t: &TrustedIssuer,
    bound: &Issuers,
    setting: &dyn Fn(&str) -> String,
    problems: &mut Problems,
) -> Vec<VerifyKey> {
    let mut keys = Vec::new();
    for k in &t.keys {
        if !k.issuers().is_empty() {
            problems.add(
                setting("keys"),
                "a trusted issuer's key is bound to that issuer: leave out `JwtKey::issuer`",
            );
            continue;
        }
        match k.build() {
            Ok(mut v) => {
                v.issuers = bound.clone();
                keys.push(v);
            }
            Err(e) => {
                for p in e.problems() {
                    problems.add(setting("keys"), p.message());
                }
            }
        }
    }
    for set in &t.jwk_sets {
        let (good, skipped) = keys_from_jwk_set(set, Origin::Configured);
        for s in skipped {
            problems.add(setting("keys"), s);
        }
        keys.extend(good.into_iter().map(|mut k| {
            k.issuers = bound.clone();
            k
        }));
    }
    keys
}
