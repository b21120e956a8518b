//! Which tool needs which scopes: the built-in table, its `MCP_TOOL_SCOPES` syntax, and the
//! scopes static credentials carry.

use mcp_auth::scope::{ImpliedScopes, Requirement, ScopePolicy, Unlisted, WildcardAndPairs};

/// Scopes a static credential carries when its configuration names none.
pub const DEFAULT_SCOPES: [&str; 3] = ["data:read", "data:write", "data:admin"];

/// The built-in per-tool table (see the [crate docs](crate#scopes)).
pub const DEFAULT_TOOL_SCOPES: &str =
    "whoami=;read_data=data:read;write_data=data:write;delete_data=data:admin";

/// The scopes a 401 asks for: enough for basic use (`whoami`, `read_data`).
pub const BASIC_SCOPES: [&str; 1] = ["data:read"];

/// The scope policy for a `tool=requirement;…` table: protocol methods (`initialize`,
/// `tools/list`, `ping`, …) are open to any authenticated caller, tools the table does not
/// name are refused, `data:write` implies `data:read` and `data:*` every `data:` scope.
///
/// ```
/// use mcp_auth_example_server::{DEFAULT_TOOL_SCOPES, scope_policy};
///
/// assert!(scope_policy(DEFAULT_TOOL_SCOPES).is_ok());
/// assert!(scope_policy("whoami").is_err()); // not tool=requirement
/// ```
pub fn scope_policy(table: &str) -> Result<ScopePolicy, String> {
    let mut policy = ScopePolicy::new(Unlisted::Deny)
        .unlisted_methods(Unlisted::Allow)
        .implication(WildcardAndPairs(
            ImpliedScopes::new().pair("data:write", "data:read"),
        ));
    for entry in table.split(';').map(str::trim).filter(|e| !e.is_empty()) {
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
