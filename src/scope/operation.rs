//! [`Operation`]: one JSON-RPC request or notification as authorization sees it, and
//! [`OperationError`], why a request's operations could not be read.

use std::borrow::Cow;
use std::fmt;

/// One JSON-RPC request or notification, as far as authorization cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    // Borrowed for the MCP methods (no allocation per operation), owned for any other.
    pub(super) method: Cow<'static, str>,
    pub(super) name: Option<String>,
    pub(super) uri: Option<String>,
}

impl Operation {
    /// An operation on `method`, with the tool/prompt `name` or resource `uri` it targets.
    #[must_use]
    pub fn new(method: impl Into<String>, name: Option<String>, uri: Option<String>) -> Self {
        Self {
            method: Cow::Owned(method.into()),
            name,
            uri,
        }
    }

    /// The JSON-RPC method.
    #[must_use]
    pub fn method(&self) -> &str {
        &self.method
    }

    /// `params.name` (tools/call, prompts/get).
    #[must_use]
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// `params.uri` (resources/read).
    #[must_use]
    pub fn uri(&self) -> Option<&str> {
        self.uri.as_deref()
    }
}

/// Why a body could not be read as JSON-RPC for authorization (answered with 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationError(pub(super) &'static str);

impl OperationError {
    /// A short reason code.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        self.0
    }
}

impl fmt::Display for OperationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for OperationError {}
