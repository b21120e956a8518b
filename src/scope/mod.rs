//! Per-operation authorization for MCP: scopes and roles per JSON-RPC method, tool, resource
//! and prompt.
//!
//! This module holds the policy ([`ScopePolicy`]) and the strict reading of MCP operations from
//! requests ([`parse_operations`], [`operation_from_headers`]). Decisions are 403
//! `insufficient_scope` errors naming every scope the whole request needs, ready for
//! [`Rejection`](crate::Rejection).
//!
//! Every MCP method that names a tool, prompt or resource is decided on that target's rule:
//! `tools/call`, `prompts/get`, `completion/complete`, `resources/read`,
//! `resources/(un)subscribe`, `resources/directory/read`, `skills/get` and each URI of
//! `subscriptions/listen` (the table is in [`ScopePolicy`]'s docs). A method the policy does
//! not know as targeted but whose `params` carry `name` or `uri` is refused unless a rule lists
//! it. Resource URIs are matched in canonical form, and those a handler could resolve
//! elsewhere (`..`, `%2e`, `%2f`, `\`) are refused. Wildcard scopes are bounded at `:`
//! (`data:*`, see [`PrefixWildcard`]).
//!
//! # Example
//!
//! ```
//! use mcp_auth::scope::{ImpliedScopes, Requirement, ScopePolicy, Unlisted, WildcardAndPairs, parse_operations};
//! use mcp_auth::{AuthContext, AuthMethod};
//!
//! let policy = ScopePolicy::new(Unlisted::Deny)
//!     .method("tools/list", Requirement::default())
//!     .tool("read_data", Requirement::all(["data:read"]))
//!     .tool("delete_data", Requirement::all(["data:admin"]))
//!     .implication(WildcardAndPairs(ImpliedScopes::new().pair("data:write", "data:read")));
//!
//! let caller = AuthContext::builder("alice", AuthMethod::Jwt).scopes(["data:write"]).build();
//! let read = parse_operations(br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_data"}}"#).unwrap();
//! assert!(policy.check(&caller, &read).is_ok());
//!
//! let delete = parse_operations(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delete_data"}}"#).unwrap();
//! let err = policy.check(&caller, &delete).unwrap_err();
//! assert_eq!(err.required_scopes(), ["data:admin"]);
//! ```

#[cfg(test)]
mod fixtures;
mod headers;
mod implication;
mod jsonrpc;
mod layer;
mod operation;
mod policy;
mod read_body;
mod refusal;
mod requirement;
mod resource_uri;
mod step_up;

pub use self::headers::{
    STANDARD_HEADERS_VERSION, decode_header_value, operation_from_headers,
    requires_mirrored_headers,
};
pub use self::implication::{
    ExactScopes, ImpliedScopes, PrefixWildcard, RoleHierarchy, ScopeImplication, WildcardAndPairs,
};
pub use self::jsonrpc::parse_operations;
pub use self::layer::{DEFAULT_MAX_BODY, RequireScope, ScopeLayer};
pub use self::operation::{Operation, OperationError};
pub use self::policy::{ScopePolicy, Unlisted};
pub use self::refusal::HEADER_MISMATCH;
pub use self::requirement::{Requirement, RequirementParseError};
