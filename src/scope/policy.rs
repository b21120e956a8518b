//! Scope and role requirements, scope implication, role hierarchies, and the per-operation
//! policy that combines them.

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

/// Prefix wildcards: `data:*` implies every scope starting with `data:`. A bare `*` is not a
/// wildcard (it would grant everything by accident).
#[derive(Debug, Clone, Copy, Default)]
pub struct PrefixWildcard;

impl ScopeImplication for PrefixWildcard {
    fn implies(&self, granted: &str, required: &str) -> bool {
        if granted == required {
            return true;
        }
        match granted.strip_suffix('*') {
            Some(prefix) if !prefix.is_empty() => {
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
/// the role, if set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirement {
    all: Vec<String>,
    any: Vec<String>,
    role: Option<String>,
}

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
    /// tool, prompt or resource no rule names is refused.
    #[must_use]
    pub fn unlisted_methods(mut self, unlisted: Unlisted) -> Self {
        self.unlisted_methods = unlisted;
        self
    }

    /// What happens to a tool (`tools/call`), prompt (`prompts/get`) or resource
    /// (`resources/read`, `resources/subscribe`) that no target rule names. A rule on the
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

    /// Required for `prompts/get` of this prompt.
    #[must_use]
    pub fn prompt(mut self, name: impl Into<String>, req: Requirement) -> Self {
        self.prompts.insert(name.into(), req);
        self
    }

    /// Required for `resources/read` of this exact URI.
    #[must_use]
    pub fn resource(mut self, uri: impl Into<String>, req: Requirement) -> Self {
        self.resources.push((uri.into(), true, req));
        self
    }

    /// Required for `resources/read` of URIs starting with `prefix` (the longest matching
    /// prefix applies).
    #[must_use]
    pub fn resource_prefix(mut self, prefix: impl Into<String>, req: Requirement) -> Self {
        self.resources.push((prefix.into(), false, req));
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

    /// The rules that apply to `op`; `None` when it is unlisted and unlisted operations of
    /// its kind are denied.
    fn rules_for<'a>(&'a self, op: &Operation) -> Option<Vec<&'a Requirement>> {
        let method_rule = self.methods.get(op.method());
        let (targeted, target_rule) = match (op.method(), op.name(), op.uri()) {
            ("tools/call", n, _) => (true, n.and_then(|n| self.tools.get(n))),
            ("prompts/get", n, _) => (true, n.and_then(|n| self.prompts.get(n))),
            ("resources/read" | "resources/subscribe", _, uri) => {
                (true, uri.and_then(|u| self.resource_rule(u)))
            }
            _ => (false, None),
        };
        let listed = if targeted {
            target_rule.is_some() || self.unlisted_targets == Unlisted::Allow
        } else {
            method_rule.is_some() || self.unlisted_methods == Unlisted::Allow
        };
        listed.then(|| method_rule.into_iter().chain(target_rule).collect())
    }

    /// The exact-URI rule, else the longest matching prefix rule.
    fn resource_rule(&self, uri: &str) -> Option<&Requirement> {
        self.resources
            .iter()
            .filter(|(p, exact, _)| {
                if *exact {
                    uri == p
                } else {
                    uri.starts_with(p.as_str())
                }
            })
            .max_by_key(|(p, exact, _)| (*exact, p.len()))
            .map(|(_, _, r)| r)
    }

    /// Whether the caller may perform `op` (every-request rule included): what listing
    /// filters use to hide tools, prompts and resources a caller could not use.
    #[must_use]
    pub fn permits(&self, ctx: &AuthContext, op: &Operation) -> bool {
        let every = self.every_request.iter().all(|r| self.satisfied(ctx, r));
        every
            && self
                .rules_for(op)
                .is_some_and(|rules| rules.iter().all(|r| self.satisfied(ctx, r)))
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
        for op in ops {
            match self.rules_for(op) {
                Some(r) => rules.extend(r),
                None => denied_unlisted = true,
            }
        }
        if !denied_unlisted && rules.iter().all(|r| self.satisfied(ctx, r)) {
            return Ok(());
        }
        let mut needed: Vec<&str> = Vec::new();
        for s in rules.iter().flat_map(|r| r.challenge_scopes()) {
            if !needed.contains(&s) {
                needed.push(s);
            }
        }
        let err = AuthError::insufficient_scope(needed);
        Err(if denied_unlisted {
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
}
