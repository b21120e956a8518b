//! [`ScopePolicy`]: which rules apply to which MCP operations, and the decision on a request.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;

use super::implication::{ExactScopes, RoleHierarchy, ScopeImplication};
use super::operation::Operation;
use super::requirement::Requirement;
use super::resource_uri::{AmbiguousUri, canonical_uri, fold_case};
use crate::context::AuthContext;
use crate::error::AuthError;

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
    pub fn resource(self, uri: impl Into<String>, req: Requirement) -> Self {
        self.push_resource(&uri.into(), true, req)
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
    pub fn resource_prefix(self, prefix: impl Into<String>, req: Requirement) -> Self {
        self.push_resource(&prefix.into(), false, req)
    }

    /// Adds a resource rule on the canonical form of `uri`: for that URI alone (`exact`) or
    /// for every URI it starts.
    fn push_resource(mut self, uri: &str, exact: bool, req: Requirement) -> Self {
        self.resources
            .push((fold_case(uri).into_owned(), exact, req));
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
    /// [`AuthError::insufficient_scope`] naming the requirement's scopes;
    /// [`AuthError::insufficient_user_authentication`] when the scopes are there but the
    /// requirement's `acr` or `max_age` is not met.
    pub fn require(&self, ctx: &AuthContext, req: &Requirement) -> Result<(), AuthError> {
        if self.satisfied(ctx, req) {
            return super::step_up::check(ctx, &[req]);
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
    /// denied; [`AuthError::insufficient_user_authentication`] (401) when every scope is held
    /// but a rule's `acr` or `max_age` is not met (RFC 9470).
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
            // The scopes are there; now how (and how recently) the caller authenticated.
            return super::step_up::check(ctx, &rules);
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

#[cfg(test)]
mod tests;
