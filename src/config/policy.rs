//! The per-tool table (`MCP_TOOL_SCOPES`) and scope implications (`MCP_SCOPE_IMPLIES`).

use crate::scope::{ImpliedScopes, Requirement, ScopePolicy, Unlisted, WildcardAndPairs};

/// The scope policy for a `tool=requirement;…` table, with `a>b,…` implications (`a` implies
/// `b`) and wildcards (`data:*` implies every `data:` scope).
///
/// Protocol methods (`initialize`, `tools/list`, `ping`, …) are open to any authenticated
/// caller. With a table, tools it does not name are refused; with none (`None`), every tool
/// is open to any authenticated caller. A requirement is space-separated scopes all required,
/// one `a|b` set of alternatives, an optional `role:NAME`, and for authentication step-up
/// `acr:VALUE` (any of several) and `max_age:SECONDS`; an empty requirement means
/// authentication only.
///
/// ```
/// use mcp_auth::config::tool_policy;
///
/// let policy = tool_policy(Some("whoami=;read_data=data:read"), Some("data:write>data:read")).unwrap();
/// assert!(policy.scopes().contains("data:read"));
/// assert!(tool_policy(Some("whoami"), None).is_err()); // not tool=requirement
/// assert!(tool_policy(None, Some("data:write")).is_err()); // not a>b
/// ```
///
/// # Errors
///
/// A message naming the entry at fault.
pub fn tool_policy(table: Option<&str>, implies: Option<&str>) -> Result<ScopePolicy, String> {
    let mut pairs = ImpliedScopes::new();
    for entry in implies
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (higher, lower) = entry
            .split_once('>')
            .map(|(h, l)| (h.trim(), l.trim()))
            .filter(|(h, l)| !h.is_empty() && !l.is_empty())
            .ok_or_else(|| format!("implication {entry:?} is not scope>implied-scope"))?;
        pairs = pairs.pair(higher, lower);
    }
    let unlisted = if table.is_some() {
        Unlisted::Deny
    } else {
        Unlisted::Allow
    };
    let mut policy = ScopePolicy::new(unlisted)
        .unlisted_methods(Unlisted::Allow)
        .implication(WildcardAndPairs(pairs));
    for entry in table
        .unwrap_or("")
        .split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (tool, requirement) = entry
            .split_once('=')
            .ok_or_else(|| format!("entry {entry:?} is not tool=requirement"))?;
        let tool = tool.trim();
        if tool.is_empty() {
            return Err("an entry has no tool name".to_owned());
        }
        let requirement: Requirement = requirement
            .parse()
            .map_err(|e| format!("the requirement for {tool:?}: {e}"))?;
        policy = policy.tool(tool, requirement);
    }
    Ok(policy)
}

/// Scopes written as a list: separated by spaces and/or commas.
pub(super) fn scope_list(v: &str) -> Vec<String> {
    v.split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
