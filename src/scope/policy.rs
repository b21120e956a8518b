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
    unlisted: Unlisted,
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
            .field("unlisted", &self.unlisted)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl ScopePolicy {
    /// An empty policy whose unlisted operations get `unlisted` (state it: there is no
    /// default, so a forgotten tool is a decision, not an accident).
    #[must_use]
    pub fn new(unlisted: Unlisted) -> Self {
        Self {
            every_request: None,
            methods: HashMap::new(),
            tools: HashMap::new(),
            prompts: HashMap::new(),
            resources: Vec::new(),
            unlisted,
            implication: Arc::new(ExactScopes),
            roles: RoleHierarchy::new(),
        }
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

    /// The rules that apply to `op`; `None` when no rule names its method or target and
    /// unlisted operations are denied.
    fn rules_for<'a>(&'a self, op: &Operation) -> Option<Vec<&'a Requirement>> {
        let mut rules = Vec::new();
        let mut listed = false;
        if let Some(r) = self.methods.get(op.method()) {
            rules.push(r);
            listed = true;
        }
        let target = match (op.method(), op.name(), op.uri()) {
            ("tools/call", Some(n), _) => self.tools.get(n),
            ("prompts/get", Some(n), _) => self.prompts.get(n),
            ("resources/read", _, Some(uri)) => self
                .resources
                .iter()
                .filter(|(p, exact, _)| {
                    if *exact {
                        uri == p
                    } else {
                        uri.starts_with(p.as_str())
                    }
                })
                .max_by_key(|(p, exact, _)| (*exact, p.len()))
                .map(|(_, _, r)| r),
            _ => None,
        };
        if let Some(r) = target {
            rules.push(r);
            listed = true;
        }
        (listed || self.unlisted == Unlisted::Allow).then_some(rules)
    }

    fn has_scope(&self, ctx: &AuthContext, required: &str) -> bool {
        ctx.scopes()
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
}
