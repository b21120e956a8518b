//! What the unit tests of the scope module share.

use super::{ImpliedScopes, Requirement, ScopePolicy, WildcardAndPairs};

/// `policy` with the data tools: `read_data`, `write_data` and `delete_data` need
/// `data:read`, `data:write` and `data:admin`, and `data:write` implies `data:read`.
pub(super) fn with_data_tools(policy: ScopePolicy) -> ScopePolicy {
    policy
        .tool("read_data", Requirement::all(["data:read"]))
        .tool("write_data", Requirement::all(["data:write"]))
        .tool("delete_data", Requirement::all(["data:admin"]))
        .implication(WildcardAndPairs(
            ImpliedScopes::new().pair("data:write", "data:read"),
        ))
}
