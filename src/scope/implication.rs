//! Scope implication ([`ScopeImplication`] and its relations) and role hierarchies
//! ([`RoleHierarchy`]): when a held scope or role satisfies a required one.

use std::collections::{BTreeSet, HashMap};
use std::fmt;

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
    edges: Graph,
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
        self.edges.add(broader.into(), narrower.into());
        self
    }
}

impl ScopeImplication for ImpliedScopes {
    fn implies(&self, granted: &str, required: &str) -> bool {
        self.edges.reaches(granted, required)
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
    includes: Graph,
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
        self.includes.add(role.into(), included.into());
        self
    }

    /// Whether holding `held` satisfies a requirement of `required`.
    #[must_use]
    pub fn satisfies(&self, held: &str, required: &str) -> bool {
        self.includes.reaches(held, required)
    }
}

/// Directed edges between names (broader → narrower), walked transitively: the relation
/// under both [`ImpliedScopes`] and [`RoleHierarchy`].
#[derive(Clone, Default)]
struct Graph(HashMap<String, Vec<String>>);

impl Graph {
    fn add(&mut self, from: String, to: String) {
        self.0.entry(from).or_default().push(to);
    }

    /// Whether `to` is `from` or reachable from it.
    fn reaches(&self, from: &str, to: &str) -> bool {
        if from == to {
            return true;
        }
        // Depth-first over the edges; `seen` guards against cycles.
        let mut stack = vec![from];
        let mut seen = BTreeSet::new();
        while let Some(node) = stack.pop() {
            if !seen.insert(node) {
                continue;
            }
            for next in self.0.get(node).into_iter().flatten() {
                if next == to {
                    return true;
                }
                stack.push(next);
            }
        }
        false
    }
}

// Shown as the map it is, as before the relation had a type of its own.
impl fmt::Debug for Graph {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cyclic_pairs_terminate() {
        let rel = ImpliedScopes::new().pair("a", "b").pair("b", "a");
        assert!(rel.implies("a", "b"));
        assert!(!rel.implies("a", "c"));
    }

    #[test]
    fn role_cycles_terminate_and_inclusion_is_transitive() {
        let roles = RoleHierarchy::new()
            .include("admin", "editor")
            .include("editor", "viewer")
            .include("viewer", "admin");
        assert!(roles.satisfies("admin", "viewer"));
        assert!(roles.satisfies("viewer", "editor"));
        assert!(!roles.satisfies("admin", "owner"));
    }

    #[test]
    fn relations_debug_as_their_edges() {
        let rel = ImpliedScopes::new().pair("a", "b");
        assert_eq!(
            format!("{rel:?}"),
            r#"ImpliedScopes { edges: {"a": ["b"]} }"#
        );
        let roles = RoleHierarchy::new().include("admin", "editor");
        assert_eq!(
            format!("{roles:?}"),
            r#"RoleHierarchy { includes: {"admin": ["editor"]} }"#
        );
    }
}
