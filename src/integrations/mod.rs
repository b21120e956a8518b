//! Framework integrations, the top tier: nothing else in the crate imports them.
//!
//! - [`axum`] (feature `axum`): [`AuthContext`](crate::AuthContext) as an axum extractor.
//! - [`rmcp`] (feature `rmcp`): the caller in rmcp tool handlers, scope checks inside tools,
//!   and [`ScopedServer`](rmcp::ScopedServer), which filters listings per caller.
//!
//! ```
//! // Without a framework feature this module is empty; the layers work with any tower stack.
//! let _ = mcp_auth::AuthContext::builder("alice", mcp_auth::AuthMethod::ApiKey).build();
//! ```

#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "rmcp")]
pub mod rmcp;
