//! Scope and role requirements, scope implication, role hierarchies, and the per-operation
//! policy that combines them.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use super::operation::Operation;
use crate::context::AuthContext;
use crate::error::AuthError;

/// Whether a granted scope covers a required one. MCP 2026-07-28: servers must account for
/// scope hierarchies, where a broader scope implies narrower ones.
pub trait ScopeImplication: Send + Sync + 'static {
    /// `true` when holding `granted` satisfies a requirement of `required`.
    fn implies(&self, granted: &str, required: &str) -> bool;
}

/// Exact match only (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct ExactScopes;

impl ScopeImplication for ExactScopes {
    fn implies(&self, granted: &str, required: &str) -> bool {
        granted == required
    }
}

/// Prefix wildcards bounded at a `:` segment: `data:*` implies every scope starting with
/// `data:` (`data:read`, `data:x:y`), and nothing else.
///
/// Only a granted scope of the form `<prefix>:*`, with a non-empty `<prefix>`, is a wildcard.
/// `data*`, `d*`, `:*` and a bare `*` imply nothing but themselves, so a scope an authorization
/// server issues with a trailing `*` that was not meant as a wildcard cannot grant
/// `database:drop`.
///
/// ```
/// use mcp_auth::scope::{PrefixWildcard, ScopeImplication};
///
/// assert!(PrefixWildcard.implies("data:*", "data:read"));
/// assert!(!PrefixWildcard.implies("data*", "database:drop"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PrefixWildcard;

impl ScopeImplication for PrefixWildcard {
    fn implies(&self, granted: &str, required: &str) -> bool {
        if granted == required {
            return true;
        }
        // `prefix` keeps its trailing `:`, so the match ends at a segment boundary.
        match granted.strip_suffix('*') {
            Some(prefix) if prefix.len() > 1 && prefix.ends_with(':') => {
                required.starts_with(prefix) && required.len() > prefix.len()
            }
            _ => false,
        }
    }
}

/// Explicit pairs: `data:write` implies `data:read`, transitively.
///
/// ```
/// use mcp_auth::scope::{ImpliedScopes, ScopeImplication};
///
/// let rel = ImpliedScopes::new().pair("data:admin", "data:write").pair("data:write", "data:read");
/// assert!(rel.implies("data:admin", "data:read"));
/// assert!(!rel.implies("data:read", "data:write"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ImpliedScopes {
    edges: HashMap<String, Vec<String>>,
}

impl ImpliedScopes {
    /// No pairs yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `broader` implies `narrower`.
    #[must_use]
    pub fn pair(mut self, broader: impl Into<String>, narrower: impl Into<String>) -> Self {
        self.edges
            .entry(broader.into())
            .or_default()
            .push(narrower.into());
        self
    }
}

impl ScopeImplication for ImpliedScopes {
    fn implies(&self, granted: &str, required: &str) -> bool {
        if granted == required {
            return true;
        }
        // Depth-first over the pairs; `seen` guards against cycles.
        let mut stack = vec![granted];
        let mut seen = BTreeSet::new();
        while let Some(s) = stack.pop() {
            if !seen.insert(s) {
                continue;
            }
            for n in self.edges.get(s).into_iter().flatten() {
                if n == required {
                    return true;
                }
                stack.push(n);
            }
        }
        false
    }
}

/// Both relations: prefix wildcards and explicit pairs.
#[derive(Debug, Clone, Default)]
pub struct WildcardAndPairs(pub ImpliedScopes);

impl ScopeImplication for WildcardAndPairs {
    fn implies(&self, granted: &str, required: &str) -> bool {
        PrefixWildcard.implies(granted, required) || self.0.implies(granted, required)
    }
}

/// Roles and the roles each one includes (`admin` ⊇ `editor` ⊇ `viewer`), transitively.
#[derive(Debug, Clone, Default)]
pub struct RoleHierarchy {
    includes: HashMap<String, Vec<String>>,
}

impl RoleHierarchy {
    /// No inclusions: a role satisfies only itself.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// `role` includes `included`.
    #[must_use]
    pub fn include(mut self, role: impl Into<String>, included: impl Into<String>) -> Self {
        self.includes
            .entry(role.into())
            .or_default()
            .push(included.into());
        self
    }

    /// Whether holding `held` satisfies a requirement of `required`.
    #[must_use]
    pub fn satisfies(&self, held: &str, required: &str) -> bool {
        if held == required {
            return true;
        }
        let mut stack = vec![held];
        let mut seen = BTreeSet::new();
        while let Some(r) = stack.pop() {
            if !seen.insert(r) {
                continue;
            }
            for n in self.includes.get(r).into_iter().flatten() {
                if n == required {
                    return true;
                }
                stack.push(n);
            }
        }
        false
    }
}

/// What one rule requires: every scope of `all`, at least one of `any` (when not empty), and
/// the role, if set. Two requirements are equal when they hold the same scopes in any order
/// (the order only decides how a challenge lists them).
#[derive(Debug, Clone, Default)]
pub struct Requirement {
    all: Vec<String>,
    any: Vec<String>,
    role: Option<String>,
}

impl PartialEq for Requirement {
    fn eq(&self, other: &Self) -> bool {
        fn same_set(a: &[String], b: &[String]) -> bool {
            let a: BTreeSet<&str> = a.iter().map(String::as_str).collect();
            let b: BTreeSet<&str> = b.iter().map(String::as_str).collect();
            a == b
        }
        self.role == other.role
            && same_set(&self.all, &other.all)
            && same_set(&self.any, &other.any)
    }
}

impl Eq for Requirement {}

impl Requirement {
    /// Requires every one of `scopes`.
    #[must_use]
    pub fn all<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self {
            all: scopes.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Requires at least one of `scopes`.
    #[must_use]
    pub fn any<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Self {
            any: scopes.into_iter().map(Into::into).collect(),
            ..Self::default()
        }
    }

    /// Requires a role (or one that includes it).
    #[must_use]
    pub fn role(role: impl Into<String>) -> Self {
        Self {
            role: Some(role.into()),
            ..Self::default()
        }
    }

    /// Adds a set of alternatives (at least one of `scopes`) to this requirement.
    #[must_use]
    pub fn and_any<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.any = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a role requirement to this one.
    #[must_use]
    pub fn and_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// The scopes to name in a challenge for this requirement: every `all` scope, and the
    /// first `any` scope when none is held.
    fn challenge_scopes(&self) -> impl Iterator<Item = &str> {
        self.all
            .iter()
            .map(String::as_str)
            .chain(self.any.first().map(String::as_str))
    }
}

/// Why a requirement's text could not be read (see [`Requirement`]'s `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementParseError(&'static str);

impl fmt::Display for RequirementParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for RequirementParseError {}

/// Reads the text form used in configuration: whitespace-separated tokens, where a plain
/// token is a scope required in full, `a|b|c` is a set of alternatives (at least one of them;
/// one such set per requirement), and `role:NAME` requires a role. The empty string requires
/// authentication only. Scope tokens follow RFC 6749 §3.3 (printable ASCII without `"` or
/// `\`), with `|` reserved as the separator.
///
/// ```
/// use mcp_auth::scope::Requirement;
///
/// let r: Requirement = "data:write audit|admin role:editor".parse().unwrap();
/// assert_eq!(r, Requirement::all(["data:write"]).and_any(["audit", "admin"]).and_role("editor"));
/// assert_eq!("".parse::<Requirement>().unwrap(), Requirement::default());
/// assert!("a|b c|d".parse::<Requirement>().is_err());
/// ```
impl std::str::FromStr for Requirement {
    type Err = RequirementParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        };
        let mut req = Requirement::default();
        for token in text.split_ascii_whitespace() {
            if let Some(role) = token.strip_prefix("role:") {
                if req.role.is_some() {
                    return Err(RequirementParseError("more than one role:"));
                }
                if !valid(role) || role.contains('|') {
                    return Err(RequirementParseError("bad role name"));
                }
                req.role = Some(role.to_owned());
            } else if token.contains('|') {
                if !req.any.is_empty() {
                    return Err(RequirementParseError("more than one a|b set"));
                }
                let alternatives: Vec<&str> = token.split('|').collect();
                if !alternatives.iter().all(|s| valid(s)) {
                    return Err(RequirementParseError("bad scope in an a|b set"));
                }
                req.any = alternatives.into_iter().map(String::from).collect();
            } else if valid(token) {
                if !req.all.iter().any(|s| s == token) {
                    req.all.push(token.to_owned());
                }
            } else {
                return Err(RequirementParseError("bad scope"));
            }
        }
        Ok(req)
    }
}

/// What a [`ScopePolicy`] does with an operation no rule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unlisted {
    /// Any authenticated caller may perform it.
    Allow,
    /// Refused with 403.
    Deny,
}

/// Which rules apply to which MCP operations. Rules add up: an operation needs the
/// every-request rule, its method's rule, and its tool's / resource's / prompt's rule.
///
/// # Targeted methods
///
/// These methods name a tool, prompt or resource, and need that target's rule (or
/// [`unlisted_targets`](Self::unlisted_targets) set to `Allow`) besides their method rule:
///
/// | method | target | rules |
/// |---|---|---|
/// | `tools/call` | `params.name` | [`tool`](Self::tool) |
/// | `prompts/get` | `params.name` | [`prompt`](Self::prompt) |
/// | `completion/complete` with `ref/prompt` | the prompt's name | [`prompt`](Self::prompt) |
/// | `resources/read`, `resources/subscribe`, `resources/unsubscribe` | `params.uri` | [`resource`](Self::resource), [`resource_prefix`](Self::resource_prefix) |
/// | `resources/directory/read` | `params.uri` (the directory) | resource rules |
/// | `skills/get` | `params.uri` (the skill's `SKILL.md`) | resource rules |
/// | `subscriptions/listen` | every URI of `params.notifications.resourceSubscriptions` | resource rules, for each URI |
/// | `completion/complete` with `ref/resource` | the resource template's URI | resource rules |
///
/// [`parse_operations`](super::parse_operations) yields one [`Operation`] per target (one per
/// subscribed URI of `subscriptions/listen`); a `subscriptions/listen` without resource URIs
/// (list-changed notifications only) is an untargeted method.
///
/// Any other method is untargeted: it needs its [`method`](Self::method) rule, or
/// [`unlisted_methods`](Self::unlisted_methods) set to `Allow`. **Except** an untargeted
/// method whose `params` carry a `name` or `uri` (a custom method, or a method added to MCP
/// after this crate): it may name a target this policy cannot see, so it is refused, even with
/// `unlisted_methods(Unlisted::Allow)`, unless the method is listed with
/// [`method`](Self::method) (then its method rule applies) or both unlisted defaults are
/// `Allow`.
///
/// # Resource URIs
///
/// When the policy has any resource rule, a resource URI is matched in a canonical form:
/// scheme and host in lower case, percent-encodings in upper-case hex (rules are read the
/// same way). A URI that a handler could resolve to another resource than its text names is
/// refused (403, whatever the rules), because no prefix rule can be trusted on it:
///
/// - a `.` or `..` path segment (`file:///public/../secret/k`), or an empty one (`a//b`);
/// - a percent-encoded unreserved character, `/`, `\` or `%` (`%2e`, `%2F`, `%5c`, `%25`,
///   `%41`…, any case), or a `%` not followed by two hex digits;
/// - a backslash, an ASCII control character, or userinfo (`user@`) in the authority.
///
/// Write prefix rules ending in `/` (`file:///public/`), or they also cover
/// `file:///publicity`. Other equivalent spellings (an explicit default port,
/// `file://localhost/`) are distinct strings to the rules.
#[derive(Clone)]
pub struct ScopePolicy {
    every_request: Option<Requirement>,
    methods: HashMap<String, Requirement>,
    tools: HashMap<String, Requirement>,
    prompts: HashMap<String, Requirement>,
    resources: Vec<(String, bool, Requirement)>,
    unlisted_methods: Unlisted,
    unlisted_targets: Unlisted,
    implication: Arc<dyn ScopeImplication>,
    roles: RoleHierarchy,
}

impl fmt::Debug for ScopePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopePolicy")
            .field("every_request", &self.every_request)
            .field("methods", &self.methods)
            .field("tools", &self.tools)
            .field("prompts", &self.prompts)
            .field("resources", &self.resources)
            .field("unlisted_methods", &self.unlisted_methods)
            .field("unlisted_targets", &self.unlisted_targets)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl ScopePolicy {
    /// An empty policy whose unlisted methods and targets get `unlisted` (state it: there is
    /// no default, so a forgotten tool is a decision, not an accident).
    #[must_use]
    pub fn new(unlisted: Unlisted) -> Self {
        Self {
            every_request: None,
            methods: HashMap::new(),
            tools: HashMap::new(),
            prompts: HashMap::new(),
            resources: Vec::new(),
            unlisted_methods: unlisted,
            unlisted_targets: unlisted,
            implication: Arc::new(ExactScopes),
            roles: RoleHierarchy::new(),
        }
    }

    /// What happens to a JSON-RPC method without a target (`initialize`, `ping`,
    /// `tools/list`, notifications, …) that no [`method`](Self::method) rule names.
    ///
    /// `ScopePolicy::new(Unlisted::Deny).unlisted_methods(Unlisted::Allow)` is the usual
    /// choice for an MCP server: protocol methods work for any authenticated caller, while a
    /// tool, prompt or resource no rule names is refused. An unlisted method whose `params`
    /// carry `name` or `uri` is refused all the same unless unlisted targets are allowed too
    /// (see [Targeted methods](Self#targeted-methods)).
    #[must_use]
    pub fn unlisted_methods(mut self, unlisted: Unlisted) -> Self {
        self.unlisted_methods = unlisted;
        self
    }

    /// What happens to a tool, prompt or resource that no target rule names (see
    /// [Targeted methods](Self#targeted-methods) for the methods that name one). A rule on the
    /// method alone (say `tools/call`) does not list its targets.
    #[must_use]
    pub fn unlisted_targets(mut self, unlisted: Unlisted) -> Self {
        self.unlisted_targets = unlisted;
        self
    }

    /// Required for every request, GET and DELETE included.
    #[must_use]
    pub fn every_request(mut self, req: Requirement) -> Self {
        self.every_request = Some(req);
        self
    }

    /// Required for a JSON-RPC method (`tools/list`, `resources/read`, …).
    #[must_use]
    pub fn method(mut self, method: impl Into<String>, req: Requirement) -> Self {
        self.methods.insert(method.into(), req);
        self
    }

    /// Required for `tools/call` of this tool.
    #[must_use]
    pub fn tool(mut self, name: impl Into<String>, req: Requirement) -> Self {
        self.tools.insert(name.into(), req);
        self
    }

    /// Required for `prompts/get` of this prompt, and for `completion/complete` of its
    /// arguments.
    #[must_use]
    pub fn prompt(mut self, name: impl Into<String>, req: Requirement) -> Self {
        self.prompts.insert(name.into(), req);
        self
    }

    /// Required for every resource method on this exact URI (`resources/read`,
    /// `resources/directory/read`, `skills/get`, subscriptions, completion of a template; see
    /// [Targeted methods](Self#targeted-methods)). The URI is compared in canonical form (see
    /// [Resource URIs](Self#resource-uris)).
    #[must_use]
    pub fn resource(mut self, uri: impl Into<String>, req: Requirement) -> Self {
        let uri = uri.into();
        let uri = fold_case(&uri).into_owned();
        self.resources.push((uri, true, req));
        self
    }

    /// Required for every resource method on URIs starting with `prefix` (the longest
    /// matching prefix applies; an exact rule wins over prefixes). End the prefix with `/`.
    /// URIs are compared in canonical form, and ambiguous ones are refused (see
    /// [Resource URIs](Self#resource-uris)).
    ///
    /// ```
    /// use mcp_auth::scope::{Operation, Requirement, ScopePolicy, Unlisted};
    /// use mcp_auth::{AuthContext, AuthMethod};
    ///
    /// let policy = ScopePolicy::new(Unlisted::Deny)
    ///     .resource_prefix("file:///public/", Requirement::default());
    /// let caller = AuthContext::builder("ann", AuthMethod::Jwt).build();
    /// let read = |uri: &str| Operation::new("resources/read", None, Some(uri.into()));
    /// assert!(policy.permits(&caller, &read("file:///public/a.txt")));
    /// assert!(!policy.permits(&caller, &read("file:///public/../secret/k")));
    /// assert!(!policy.permits(&caller, &read("file:///public/%2e%2e/secret/k")));
    /// ```
    #[must_use]
    pub fn resource_prefix(mut self, prefix: impl Into<String>, req: Requirement) -> Self {
        let prefix = prefix.into();
        let prefix = fold_case(&prefix).into_owned();
        self.resources.push((prefix, false, req));
        self
    }

    /// The scope implication relation (default: exact match).
    #[must_use]
    pub fn implication(mut self, rel: impl ScopeImplication) -> Self {
        self.implication = Arc::new(rel);
        self
    }

    /// The role hierarchy (default: none).
    #[must_use]
    pub fn roles(mut self, roles: RoleHierarchy) -> Self {
        self.roles = roles;
        self
    }

    /// Every scope named anywhere in the policy (for `scopes_supported`).
    #[must_use]
    pub fn scopes(&self) -> BTreeSet<&str> {
        let rules = self
            .every_request
            .iter()
            .chain(self.methods.values())
            .chain(self.tools.values())
            .chain(self.prompts.values())
            .chain(self.resources.iter().map(|(_, _, r)| r));
        rules
            .flat_map(|r| r.all.iter().chain(r.any.iter()).map(String::as_str))
            .collect()
    }

    /// The rules that apply to `op`, or why it is refused whatever the caller holds.
    fn rules_for<'a>(&'a self, op: &Operation) -> Rules<'a> {
        let method_rule = self.methods.get(op.method());
        let target_rule = match target(op) {
            Target::None => {
                // A method this policy does not know as targeted may still name a target
                // (a custom method, or one MCP adds later): only a rule on the method, or a
                // policy open to unlisted targets too, lets it through.
                let names_something = op.name().is_some() || op.uri().is_some();
                let listed = method_rule.is_some()
                    || (self.unlisted_methods == Unlisted::Allow
                        && (!names_something || self.unlisted_targets == Unlisted::Allow));
                return if listed {
                    Rules::Apply(method_rule.into_iter().collect())
                } else {
                    Rules::Unlisted
                };
            }
            Target::Tool(name) => name.and_then(|n| self.tools.get(n)),
            Target::Prompt(name) => name.and_then(|n| self.prompts.get(n)),
            Target::Resource(uri) => match uri.map(|u| self.resource_rule(u)) {
                Some(Err(AmbiguousUri)) => return Rules::AmbiguousUri,
                Some(Ok(rule)) => rule,
                None => None,
            },
            Target::Ambiguous => return Rules::Unlisted,
        };
        if target_rule.is_some() || self.unlisted_targets == Unlisted::Allow {
            Rules::Apply(method_rule.into_iter().chain(target_rule).collect())
        } else {
            Rules::Unlisted
        }
    }

    /// The exact-URI rule, else the longest matching prefix rule, on the URI's canonical
    /// form; `Err` for a URI refused as ambiguous (only checked when there are resource
    /// rules: without any, the URI does not change the decision).
    fn resource_rule(&self, uri: &str) -> Result<Option<&Requirement>, AmbiguousUri> {
        if self.resources.is_empty() {
            return Ok(None);
        }
        let uri = canonical_uri(uri)?;
        Ok(self
            .resources
            .iter()
            .filter(|(p, exact, _)| {
                if *exact {
                    *uri == **p
                } else {
                    uri.starts_with(p.as_str())
                }
            })
            .max_by_key(|(p, exact, _)| (*exact, p.len()))
            .map(|(_, _, r)| r))
    }

    /// Whether the caller may perform `op` (every-request rule included): what listing
    /// filters use to hide tools, prompts and resources a caller could not use.
    #[must_use]
    pub fn permits(&self, ctx: &AuthContext, op: &Operation) -> bool {
        let every = self.every_request.iter().all(|r| self.satisfied(ctx, r));
        every
            && match self.rules_for(op) {
                Rules::Apply(rules) => rules.iter().all(|r| self.satisfied(ctx, r)),
                Rules::Unlisted | Rules::AmbiguousUri => false,
            }
    }

    /// Checks one requirement with this policy's scope implication and role hierarchy: for
    /// decisions that depend on a tool's arguments, made inside the handler.
    ///
    /// ```
    /// use mcp_auth::scope::{ImpliedScopes, Requirement, ScopePolicy, Unlisted};
    /// use mcp_auth::{AuthContext, AuthMethod};
    ///
    /// let policy = ScopePolicy::new(Unlisted::Deny)
    ///     .implication(ImpliedScopes::new().pair("files:write", "files:read"));
    /// let caller = AuthContext::builder("bob", AuthMethod::Jwt).scopes(["files:write"]).build();
    /// assert!(policy.require(&caller, &Requirement::all(["files:read"])).is_ok());
    /// let err = policy.require(&caller, &Requirement::all(["files:admin"])).unwrap_err();
    /// assert_eq!(err.required_scopes(), ["files:admin"]);
    /// ```
    ///
    /// # Errors
    ///
    /// [`AuthError::insufficient_scope`] naming the requirement's scopes.
    pub fn require(&self, ctx: &AuthContext, req: &Requirement) -> Result<(), AuthError> {
        if self.satisfied(ctx, req) {
            return Ok(());
        }
        let err = AuthError::insufficient_scope(req.challenge_scopes().collect::<Vec<_>>());
        Err(match req.role.as_deref() {
            Some(role) if !self.has_role(ctx, role) => err
                .with_description("this operation needs a role the caller does not have")
                .with_detail("missing_role"),
            _ => err.with_description("this operation needs more scope"),
        })
    }

    fn has_scope(&self, ctx: &AuthContext, required: &str) -> bool {
        // The exact grant first: one lookup, no walk of the implication relation.
        ctx.has_scope(required)
            || ctx
                .scopes()
                .iter()
                .any(|g| self.implication.implies(g, required))
    }

    fn has_role(&self, ctx: &AuthContext, required: &str) -> bool {
        ctx.roles().any(|h| self.roles.satisfies(h, required))
    }

    fn satisfied(&self, ctx: &AuthContext, r: &Requirement) -> bool {
        r.all.iter().all(|s| self.has_scope(ctx, s))
            && (r.any.is_empty() || r.any.iter().any(|s| self.has_scope(ctx, s)))
            && r.role
                .as_deref()
                .is_none_or(|role| self.has_role(ctx, role))
    }

    /// Decides a request carrying `ops` (empty for GET/DELETE). On refusal the error is 403
    /// `insufficient_scope` naming every scope the request needs (all operations of a batch,
    /// in one challenge, as MCP 2026-07-28 asks).
    ///
    /// # Errors
    ///
    /// [`AuthError::insufficient_scope`] when any rule is not met or an unlisted operation is
    /// denied.
    pub fn check(&self, ctx: &AuthContext, ops: &[Operation]) -> Result<(), AuthError> {
        let mut rules: Vec<&Requirement> = self.every_request.iter().collect();
        let mut denied_unlisted = false;
        let mut denied_uri = false;
        for op in ops {
            match self.rules_for(op) {
                Rules::Apply(r) => rules.extend(r),
                Rules::Unlisted => denied_unlisted = true,
                Rules::AmbiguousUri => denied_uri = true,
            }
        }
        if !denied_unlisted && !denied_uri && rules.iter().all(|r| self.satisfied(ctx, r)) {
            return Ok(());
        }
        let mut needed: Vec<&str> = Vec::new();
        for s in rules.iter().flat_map(|r| r.challenge_scopes()) {
            if !needed.contains(&s) {
                needed.push(s);
            }
        }
        let err = AuthError::insufficient_scope(needed);
        Err(if denied_uri {
            err.with_description("this resource URI is not in canonical form")
                .with_detail("ambiguous_uri")
        } else if denied_unlisted {
            err.with_description("this operation is not allowed")
                .with_detail("unlisted_operation")
        } else if rules.iter().any(|r| {
            r.role
                .as_deref()
                .is_some_and(|role| !self.has_role(ctx, role))
        }) {
            err.with_description("this operation needs a role the caller does not have")
                .with_detail("missing_role")
        } else {
            err.with_description("this operation needs more scope")
        })
    }
}

/// What [`ScopePolicy::rules_for`] found for one operation.
enum Rules<'a> {
    /// These rules apply (besides the every-request rule).
    Apply(Vec<&'a Requirement>),
    /// Unlisted, and unlisted operations of its kind are denied.
    Unlisted,
    /// A resource URI refused as ambiguous.
    AmbiguousUri,
}

/// What an operation targets, by method (see [`ScopePolicy`]'s "Targeted methods").
enum Target<'o> {
    /// An untargeted method.
    None,
    Tool(Option<&'o str>),
    Prompt(Option<&'o str>),
    Resource(Option<&'o str>),
    /// Names both a prompt and a resource: no rule can be chosen.
    Ambiguous,
}

fn target(op: &Operation) -> Target<'_> {
    match (op.method(), op.name(), op.uri()) {
        ("tools/call", name, _) => Target::Tool(name),
        ("prompts/get", name, _) => Target::Prompt(name),
        (
            "resources/read"
            | "resources/subscribe"
            | "resources/unsubscribe"
            | "resources/directory/read"
            | "skills/get",
            _,
            uri,
        ) => Target::Resource(uri),
        ("subscriptions/listen", _, Some(uri)) => Target::Resource(Some(uri)),
        ("completion/complete", Some(_), Some(_)) => Target::Ambiguous,
        ("completion/complete", None, Some(uri)) => Target::Resource(Some(uri)),
        ("completion/complete", name, None) => Target::Prompt(name),
        _ => Target::None,
    }
}

/// A resource URI that could name another resource than its text says.
#[derive(Debug, PartialEq, Eq)]
struct AmbiguousUri;

/// Whether `s` is an RFC 3986 scheme (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`).
fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

/// Splits `uri` into scheme (with its `:`), authority (with its `//`), and the rest.
fn split_uri(uri: &str) -> (&str, &str, &str) {
    // Every split point follows an ASCII character, so the checked splits always succeed.
    let (scheme, rest) = uri
        .find(':')
        .filter(|&i| uri.get(..i).is_some_and(is_scheme))
        .and_then(|i| uri.split_at_checked(i + 1))
        .unwrap_or(("", uri));
    if rest.starts_with("//") {
        let end = rest
            .get(2..)
            .and_then(|r| r.find(['/', '?', '#']))
            .map_or(rest.len(), |i| i + 2);
        let (authority, rest) = rest.split_at_checked(end).unwrap_or((rest, ""));
        (scheme, authority, rest)
    } else {
        (scheme, "", rest)
    }
}

/// Scheme and host in lower case, percent-encodings in upper-case hex: the case-insensitive
/// parts of a URI folded, nothing else changed (rules are read this way too).
fn fold_case(uri: &str) -> Cow<'_, str> {
    let (scheme, authority, rest) = split_uri(uri);
    let host_start = authority.rfind('@').map_or(0, |i| i + 1);
    let (userinfo, host) = authority
        .split_at_checked(host_start)
        .unwrap_or(("", authority));
    let lower_hex = {
        let b = uri.as_bytes();
        b.iter().enumerate().any(|(i, &c)| {
            c == b'%'
                && b.get(i + 1..i + 3)
                    .is_some_and(|h| h.iter().any(u8::is_ascii_lowercase))
        })
    };
    if !lower_hex
        && !scheme.bytes().any(|b| b.is_ascii_uppercase())
        && !host.bytes().any(|b| b.is_ascii_uppercase())
    {
        return Cow::Borrowed(uri);
    }
    let mut out = String::with_capacity(uri.len());
    out.push_str(&scheme.to_ascii_lowercase());
    out.push_str(userinfo);
    out.push_str(&host.to_ascii_lowercase());
    out.push_str(rest);
    // Upper-case the two hex digits after each `%` (ASCII only, so char boundaries hold).
    let mut hex_left = 0u8;
    Cow::Owned(
        out.chars()
            .map(|c| {
                if hex_left > 0 {
                    hex_left -= 1;
                    c.to_ascii_uppercase()
                } else {
                    if c == '%' {
                        hex_left = 2;
                    }
                    c
                }
            })
            .collect(),
    )
}

/// The canonical form rules are matched on (see [`ScopePolicy`]'s "Resource URIs"), or
/// `Err` for a URI a handler could resolve to another resource than its text names.
fn canonical_uri(uri: &str) -> Result<Cow<'_, str>, AmbiguousUri> {
    if uri.bytes().any(|b| b.is_ascii_control() || b == b'\\') {
        return Err(AmbiguousUri);
    }
    let (_, authority, rest) = split_uri(uri);
    if authority.contains('@') {
        return Err(AmbiguousUri);
    }
    // Percent-encodings: two hex digits, and never a character that needs no encoding
    // (unreserved), a separator a handler may decode (`/`, `\`) or `%` itself (double
    // decoding).
    let bytes = uri.as_bytes();
    for (i, _) in bytes.iter().enumerate().filter(|&(_, &b)| b == b'%') {
        let decoded = match bytes.get(i + 1..i + 3) {
            Some(&[h, l]) => match (hex(h), hex(l)) {
                (Some(h), Some(l)) => h * 16 + l,
                _ => return Err(AmbiguousUri),
            },
            _ => return Err(AmbiguousUri),
        };
        if decoded.is_ascii_alphanumeric()
            || matches!(decoded, b'-' | b'.' | b'_' | b'~' | b'/' | b'\\' | b'%')
        {
            return Err(AmbiguousUri);
        }
    }
    // Dot segments and empty segments in the path (the part before `?` / `#`).
    let path = rest.split(['?', '#']).next().unwrap_or_default();
    let mut segments = path.split('/');
    // An absolute path starts with an empty segment; a relative one does not.
    if path.starts_with('/') {
        segments.next();
    }
    let mut segments = segments.peekable();
    while let Some(segment) = segments.next() {
        let last = segments.peek().is_none();
        if matches!(segment, "." | "..") || (segment.is_empty() && !last) {
            return Err(AmbiguousUri);
        }
    }
    Ok(fold_case(uri))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::AuthMethod;

    fn ctx(scopes: &[&str], roles: &[&str]) -> AuthContext {
        AuthContext::builder("u", AuthMethod::Jwt)
            .scopes(scopes.iter().copied())
            .roles(roles.iter().copied())
            .build()
    }

    fn call(tool: &str) -> Operation {
        Operation::new("tools/call", Some(tool.into()), None)
    }

    fn policy() -> ScopePolicy {
        ScopePolicy::new(Unlisted::Deny)
            .method("tools/list", Requirement::default())
            .tool("read_data", Requirement::all(["data:read"]))
            .tool("write_data", Requirement::all(["data:write"]))
            .tool("delete_data", Requirement::all(["data:admin"]))
            .tool("whoami", Requirement::default())
            .implication(WildcardAndPairs(
                ImpliedScopes::new().pair("data:write", "data:read"),
            ))
    }

    #[test]
    fn write_implies_read_but_not_admin() {
        let p = policy();
        let c = ctx(&["data:write"], &[]);
        assert!(p.check(&c, &[call("read_data")]).is_ok());
        assert!(p.check(&c, &[call("write_data")]).is_ok());
        let err = p.check(&c, &[call("delete_data")]).unwrap_err();
        assert_eq!(err.required_scopes(), ["data:admin"]);
    }

    #[test]
    fn prefix_wildcards_imply_narrower_scopes_only() {
        let w = PrefixWildcard;
        assert!(w.implies("data:*", "data:read"));
        assert!(!w.implies("data:*", "data:"));
        assert!(!w.implies("data:*", "database:read"));
        assert!(!w.implies("*", "data:read"));
        assert!(!w.implies("files:re", "files:read"));
        assert!(
            policy()
                .check(&ctx(&["data:*"], &[]), &[call("delete_data")])
                .is_ok()
        );
    }

    #[test]
    fn a_batch_needs_the_union_and_names_it_in_one_challenge() {
        let p = policy();
        let c = ctx(&["data:read"], &[]);
        let err = p
            .check(
                &c,
                &[call("read_data"), call("delete_data"), call("write_data")],
            )
            .unwrap_err();
        assert_eq!(
            err.required_scopes(),
            ["data:read", "data:admin", "data:write"]
        );
    }

    #[test]
    fn unlisted_operations_follow_the_stated_default() {
        let c = ctx(&["data:admin"], &[]);
        let err = policy().check(&c, &[call("format_disk")]).unwrap_err();
        assert_eq!(err.detail(), Some("unlisted_operation"));
        let open = ScopePolicy::new(Unlisted::Allow);
        assert!(open.check(&c, &[call("format_disk")]).is_ok());
    }

    #[test]
    fn roles_follow_the_hierarchy() {
        let p = ScopePolicy::new(Unlisted::Deny)
            .tool("publish", Requirement::role("editor"))
            .roles(
                RoleHierarchy::new()
                    .include("admin", "editor")
                    .include("editor", "viewer"),
            );
        assert!(p.check(&ctx(&[], &["admin"]), &[call("publish")]).is_ok());
        assert!(p.check(&ctx(&[], &["editor"]), &[call("publish")]).is_ok());
        let err = p
            .check(&ctx(&[], &["viewer"]), &[call("publish")])
            .unwrap_err();
        assert_eq!(err.detail(), Some("missing_role"));
    }

    #[test]
    fn any_of_needs_one_and_every_request_rules_always_apply() {
        let p = ScopePolicy::new(Unlisted::Allow)
            .every_request(Requirement::all(["mcp"]))
            .tool("t", Requirement::any(["a", "b"]));
        assert!(p.check(&ctx(&["mcp", "b"], &[]), &[call("t")]).is_ok());
        assert!(p.check(&ctx(&["mcp"], &[]), &[call("t")]).is_err());
        assert!(
            p.check(&ctx(&["b"], &[]), &[]).is_err(),
            "GET/DELETE still need `mcp`"
        );
    }

    #[test]
    fn longest_resource_prefix_applies() {
        let p = ScopePolicy::new(Unlisted::Deny)
            .resource_prefix("file:///", Requirement::all(["files:read"]))
            .resource_prefix("file:///secret/", Requirement::all(["files:secret"]));
        let read = |uri: &str| Operation::new("resources/read", None, Some(uri.into()));
        let c = ctx(&["files:read"], &[]);
        assert!(p.check(&c, &[read("file:///a.txt")]).is_ok());
        assert_eq!(
            p.check(&c, &[read("file:///secret/k")])
                .unwrap_err()
                .required_scopes(),
            ["files:secret"]
        );
    }

    fn res(method: &str, uri: &str) -> Operation {
        Operation::new(method, None, Some(uri.into()))
    }

    /// The policy of the review's M3 attack: protocol methods open, `file:///secret/` needs
    /// `files:secret`, the rest of `file:///` needs `files:read`, one prompt needs `p:x`.
    fn targets_policy() -> ScopePolicy {
        ScopePolicy::new(Unlisted::Deny)
            .unlisted_methods(Unlisted::Allow)
            .resource_prefix("file:///", Requirement::all(["files:read"]))
            .resource_prefix("file:///secret/", Requirement::all(["files:secret"]))
            .prompt("secret_prompt", Requirement::all(["p:x"]))
    }

    #[test]
    fn every_resource_method_needs_the_resource_rule() {
        let p = targets_policy();
        let reader = ctx(&["files:read"], &[]);
        let both = ctx(&["files:read", "files:secret"], &[]);
        for method in [
            "resources/read",
            "resources/subscribe",
            "resources/unsubscribe",
            "resources/directory/read",
            "skills/get",
            "subscriptions/listen",
            "completion/complete",
        ] {
            let secret = res(method, "file:///secret/ops/SKILL.md");
            let err = p.check(&reader, std::slice::from_ref(&secret)).unwrap_err();
            assert_eq!(err.required_scopes(), ["files:secret"], "{method}");
            assert!(!p.permits(&reader, &secret), "{method}");
            assert!(
                p.check(&both, std::slice::from_ref(&secret)).is_ok(),
                "{method}"
            );
            assert!(
                p.check(&reader, &[res(method, "file:///public/a")]).is_ok(),
                "{method}"
            );
            // No rule names `mem://`: an unlisted target, denied even with open methods.
            let err = p.check(&both, &[res(method, "mem://x")]).unwrap_err();
            assert_eq!(err.detail(), Some("unlisted_operation"), "{method}");
        }
    }

    #[test]
    fn subscriptions_listen_needs_the_rule_of_every_uri() {
        let p = targets_policy();
        let reader = ctx(&["files:read"], &[]);
        let listen = |uri: &str| res("subscriptions/listen", uri);
        // One operation per subscribed URI, as the parser yields them.
        let ops = [listen("file:///a"), listen("file:///secret/k")];
        assert_eq!(
            p.check(&reader, &ops).unwrap_err().required_scopes(),
            ["files:read", "files:secret"]
        );
        assert!(
            p.check(&ctx(&["files:read", "files:secret"], &[]), &ops)
                .is_ok()
        );
        // Without resource URIs (list-changed notifications only) it is a plain method.
        let bare = Operation::new("subscriptions/listen", None, None);
        assert!(p.check(&ctx(&[], &[]), std::slice::from_ref(&bare)).is_ok());
        let closed = ScopePolicy::new(Unlisted::Deny);
        assert!(closed.check(&reader, &[bare]).is_err());
    }

    #[test]
    fn completion_of_a_prompt_needs_the_prompt_rule() {
        let p = targets_policy();
        let complete = |name: &str| Operation::new("completion/complete", Some(name.into()), None);
        let err = p
            .check(&ctx(&[], &[]), &[complete("secret_prompt")])
            .unwrap_err();
        assert_eq!(err.required_scopes(), ["p:x"]);
        assert!(
            p.check(&ctx(&["p:x"], &[]), &[complete("secret_prompt")])
                .is_ok()
        );
        let err = p
            .check(&ctx(&["p:x"], &[]), &[complete("other")])
            .unwrap_err();
        assert_eq!(err.detail(), Some("unlisted_operation"));
        // Both a name and a URI: no single rule applies, refused.
        let both = Operation::new(
            "completion/complete",
            Some("secret_prompt".into()),
            Some("file:///a".into()),
        );
        assert!(p.check(&ctx(&["p:x", "files:read"], &[]), &[both]).is_err());
    }

    #[test]
    fn unlisted_methods_naming_a_target_are_denied_unless_listed() {
        let c = ctx(&["files:read", "files:secret"], &[]);
        let p = targets_policy();
        let custom_uri = res("acme/files/read", "file:///secret/k");
        let custom_name = Operation::new("acme/run", Some("format_disk".into()), None);
        let plain = Operation::new("acme/ping", None, None);
        for op in [&custom_uri, &custom_name] {
            let err = p.check(&c, std::slice::from_ref(op)).unwrap_err();
            assert_eq!(err.detail(), Some("unlisted_operation"), "{op:?}");
            assert!(!p.permits(&c, op));
        }
        assert!(p.check(&c, std::slice::from_ref(&plain)).is_ok());
        // A known untargeted method with a stray `name` is no exception.
        assert!(
            p.check(&c, &[Operation::new("tools/list", Some("x".into()), None)])
                .is_err()
        );
        // Listing the method lets it through, with its method rule.
        let listed = targets_policy().method("acme/files/read", Requirement::all(["acme"]));
        assert!(listed.check(&c, std::slice::from_ref(&custom_uri)).is_err());
        assert!(
            listed
                .check(&ctx(&["acme"], &[]), std::slice::from_ref(&custom_uri))
                .is_ok()
        );
        // A policy open to unlisted methods and targets alike stays open.
        let open = ScopePolicy::new(Unlisted::Allow);
        assert!(open.check(&c, &[custom_uri, custom_name]).is_ok());
    }

    #[test]
    fn prefix_wildcards_are_bounded_at_a_colon() {
        let w = PrefixWildcard;
        assert!(w.implies("data:*", "data:read"));
        assert!(w.implies("data:*", "data:x:y"));
        assert!(w.implies("data:x:*", "data:x:y"));
        assert!(!w.implies("data:x:*", "data:y"));
        for granted in ["data*", "d*", "*", ":*", "data:**"] {
            for required in ["data:read", "database:drop", "data:admin", "d"] {
                assert!(
                    !w.implies(granted, required),
                    "{granted} implies {required}"
                );
            }
        }
        let p = policy();
        assert!(
            p.check(&ctx(&["data*"], &[]), &[call("delete_data")])
                .is_err()
        );
        assert!(p.check(&ctx(&["d*"], &[]), &[call("read_data")]).is_err());
    }

    #[test]
    fn dot_segments_and_encoded_separators_do_not_get_a_prefix_rule() {
        let p = ScopePolicy::new(Unlisted::Allow)
            .resource_prefix("file:///public/", Requirement::default())
            .resource_prefix("file:///secret/", Requirement::all(["files:secret"]));
        let anyone = ctx(&[], &[]);
        let read = |uri: &str| res("resources/read", uri);
        assert!(p.check(&anyone, &[read("file:///public/x")]).is_ok());
        for uri in [
            "file:///public/../secret/x",
            "file:///public/./x",
            "file:///public/..",
            "file:///public/%2e%2e/secret/x",
            "file:///public/%2E%2E/secret/x",
            "file:///public/.%2e/secret/x",
            "file:///public%2f..%2fsecret/x",
            "file:///public/%2F/x",
            "file:///public/..%5csecret/x",
            "file:///public/..\\secret/x",
            "file:///public/%252e%252e/secret/x",
            "file:///public/%73ecret",
            "file:///public/%zz",
            "file:///public/%2",
            "file:///public//x",
            "file:///public/\u{0}x",
            "file:///public/x?..%2f",
            "https://user@host/public/",
        ] {
            let err = p.check(&anyone, &[read(uri)]).unwrap_err();
            assert_eq!(err.detail(), Some("ambiguous_uri"), "{uri}");
            assert!(!p.permits(&anyone, &read(uri)), "{uri}");
        }
        // A policy with no resource rule does not judge URIs.
        assert!(
            ScopePolicy::new(Unlisted::Allow)
                .check(&anyone, &[read("file:///a/../b")])
                .is_ok()
        );
    }

    #[test]
    fn scheme_host_and_hex_case_do_not_escape_a_rule() {
        let p = ScopePolicy::new(Unlisted::Allow)
            .resource_prefix("https://Example.com/secret/", Requirement::all(["s"]))
            .resource("file:///a%c3%a9", Requirement::all(["e"]));
        let anyone = ctx(&[], &[]);
        let read = |uri: &str| res("resources/read", uri);
        for uri in [
            "HTTPS://EXAMPLE.COM/secret/k",
            "https://example.com/secret/k",
            "hTTps://example.COM/secret/",
        ] {
            assert_eq!(
                p.check(&anyone, &[read(uri)])
                    .unwrap_err()
                    .required_scopes(),
                ["s"],
                "{uri}"
            );
        }
        // The path stays case-sensitive.
        assert!(
            p.check(&anyone, &[read("https://example.com/SECRET/k")])
                .is_ok()
        );
        for uri in ["file:///a%C3%A9", "FILE:///a%c3%A9"] {
            assert_eq!(
                p.check(&anyone, &[read(uri)])
                    .unwrap_err()
                    .required_scopes(),
                ["e"],
                "{uri}"
            );
        }
        // Templates (`{…}`) and non-hierarchical URIs are fine.
        assert!(
            p.check(
                &anyone,
                &[read("file:///{path}"), read("urn:isbn:0451450523")]
            )
            .is_ok()
        );
    }

    #[test]
    fn cyclic_pairs_terminate() {
        let rel = ImpliedScopes::new().pair("a", "b").pair("b", "a");
        assert!(rel.implies("a", "b"));
        assert!(!rel.implies("a", "c"));
    }

    #[test]
    fn unlisted_methods_and_targets_have_separate_defaults() {
        let p = ScopePolicy::new(Unlisted::Deny)
            .unlisted_methods(Unlisted::Allow)
            .method("tools/call", Requirement::all(["mcp"]))
            .tool("t", Requirement::default());
        let c = ctx(&["mcp"], &[]);
        let op = |m: &str| Operation::new(m, None, None);
        assert!(p.check(&c, &[op("initialize"), op("tools/list")]).is_ok());
        assert!(p.check(&c, &[call("t")]).is_ok());
        // A rule on `tools/call` does not list every tool.
        let err = p.check(&c, &[call("other")]).unwrap_err();
        assert_eq!(err.detail(), Some("unlisted_operation"));
        // The method rule still applies to listed tools.
        assert!(p.check(&ctx(&[], &[]), &[call("t")]).is_err());
        let read = Operation::new("resources/read", None, Some("file:///x".into()));
        assert!(
            p.check(&c, &[read]).is_err(),
            "an unnamed resource is a target"
        );
        let closed = ScopePolicy::new(Unlisted::Allow).unlisted_methods(Unlisted::Deny);
        assert!(closed.check(&c, &[op("ping")]).is_err());
        assert!(closed.check(&c, &[call("anything")]).is_ok());
    }

    #[test]
    fn permits_matches_check_for_single_operations() {
        let p = policy().every_request(Requirement::any(["data:read", "data:admin"]));
        for scopes in [&["data:read"][..], &["data:write"], &["data:admin"], &[]] {
            let c = ctx(scopes, &[]);
            for tool in ["read_data", "write_data", "delete_data", "whoami", "nope"] {
                let op = call(tool);
                assert_eq!(
                    p.permits(&c, &op),
                    p.check(&c, std::slice::from_ref(&op)).is_ok(),
                    "{scopes:?} {tool}"
                );
            }
        }
    }

    #[test]
    fn require_uses_implication_and_roles() {
        let p = policy().roles(RoleHierarchy::new().include("admin", "editor"));
        let c = ctx(&["data:write"], &["admin"]);
        assert!(
            p.require(&c, &Requirement::all(["data:read"]).and_role("editor"))
                .is_ok()
        );
        let err = p
            .require(&c, &Requirement::all(["data:read"]).and_role("owner"))
            .unwrap_err();
        assert_eq!(err.detail(), Some("missing_role"));
        let err = p
            .require(&c, &Requirement::any(["x:a", "x:b"]))
            .unwrap_err();
        assert_eq!(err.required_scopes(), ["x:a"]);
    }

    #[test]
    fn requirement_text_form() {
        let parse = |s: &str| s.parse::<Requirement>();
        assert_eq!(parse("  ").unwrap(), Requirement::default());
        assert_eq!(
            parse("a b a").unwrap(),
            Requirement::all(["a", "b"]),
            "duplicates collapse"
        );
        assert_eq!(parse("role:viewer").unwrap(), Requirement::role("viewer"));
        assert_eq!(parse("x|y").unwrap(), Requirement::any(["x", "y"]));
        for bad in [
            "a||b",
            "|a",
            "role:",
            "role:a role:b",
            "a|b c|d",
            "q\"x",
            "caf\u{e9}",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
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

    #[test]
    fn requirements_with_the_same_scopes_in_another_order_are_equal() {
        // Found by tests/properties.rs (`"0 A"` vs `"A 0"`): the text form is order-insensitive.
        let a: Requirement = "0 A x|y role:r".parse().unwrap();
        let b: Requirement = "y|x role:r A 0".parse().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, "0 B x|y role:r".parse::<Requirement>().unwrap());
        assert_ne!(a, "0 A x|y".parse::<Requirement>().unwrap());
        assert_ne!(a, "0 A x|z role:r".parse::<Requirement>().unwrap());
    }
}
