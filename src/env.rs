//! [`EnvReader`]: reads settings from environment variables and reports every missing or
//! invalid one in a single [`ConfigError`].
//!
//! # Example
//!
//! ```
//! use mcp_auth::env::EnvReader;
//! use mcp_auth::ConfigError;
//!
//! let mut env = EnvReader::from_pairs([("MCP_BIND", "not-an-address"), ("MCP_API_KEYS", "")]);
//! let bind = env.optional("MCP_BIND", |name, v| {
//!     v.parse::<std::net::SocketAddr>()
//!         .map_err(|_| ConfigError::new(name, "is not a socket address"))
//! });
//! let keys = env.required("MCP_AUTH_TOKENS", |_, v| Ok(v.to_owned()));
//! assert!(bind.is_none() && keys.is_none());
//! let err = env.finish().unwrap_err();
//! assert_eq!(err.problems().len(), 2); // both reported at once
//! ```

use std::collections::HashMap;
use std::fmt;

use crate::error::{ConfigError, ConfigProblem};

/// Collects settings from the environment (or from given pairs, for tests).
pub struct EnvReader {
    source: Source,
    problems: Vec<ConfigProblem>,
}

enum Source {
    Process,
    Pairs(HashMap<String, String>),
}

impl fmt::Debug for EnvReader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values may be secrets: show only the problems.
        f.debug_struct("EnvReader")
            .field("problems", &self.problems)
            .finish_non_exhaustive()
    }
}

impl Default for EnvReader {
    fn default() -> Self {
        Self::new()
    }
}

impl EnvReader {
    /// Reads the process environment.
    #[must_use]
    pub fn new() -> Self {
        Self {
            source: Source::Process,
            problems: Vec::new(),
        }
    }

    /// Reads the given pairs instead of the environment.
    #[must_use]
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            source: Source::Pairs(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            problems: Vec::new(),
        }
    }

    /// The raw value of `name`; a variable that is not valid UTF-8 is recorded as a problem.
    pub fn raw(&mut self, name: &str) -> Option<String> {
        match &self.source {
            Source::Pairs(map) => map.get(name).cloned(),
            Source::Process => match std::env::var(name) {
                Ok(v) => Some(v),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => {
                    self.problems
                        .push(ConfigProblem::new(name, "is not valid UTF-8"));
                    None
                }
            },
        }
    }

    /// Parses `name` if it is set; `parse` gets the name and the value.
    pub fn optional<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, ConfigError>,
    ) -> Option<T> {
        let value = self.raw(name)?;
        match parse(name, &value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.extend(e.problems().iter().cloned());
                None
            }
        }
    }

    /// Parses `name`, recording a problem when it is not set.
    pub fn required<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, ConfigError>,
    ) -> Option<T> {
        let present = match &self.source {
            Source::Pairs(map) => map.contains_key(name),
            Source::Process => std::env::var_os(name).is_some(),
        };
        if !present {
            self.problems.push(ConfigProblem::new(name, "is not set"));
            return None;
        }
        self.optional(name, parse)
    }

    /// Records a problem found by the caller.
    pub fn problem(&mut self, name: &str, message: impl Into<String>) {
        self.problems.push(ConfigProblem::new(name, message));
    }

    /// `Ok` when nothing was wrong, else every problem at once.
    ///
    /// # Errors
    ///
    /// The collected problems.
    pub fn finish(self) -> Result<(), ConfigError> {
        match ConfigError::from_problems(self.problems) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_required_variable_is_named() {
        let mut env = EnvReader::from_pairs::<_, String, String>([]);
        assert!(
            env.required("MCP_API_KEYS", |_, v| Ok(v.to_owned()))
                .is_none()
        );
        let err = env.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: MCP_API_KEYS: is not set"
        );
    }

    #[test]
    fn problems_never_contain_values() {
        let mut env = EnvReader::from_pairs([("MCP_API_KEYS", "secret-value-1234, ")]);
        let _ = env.required("MCP_API_KEYS", crate::Credential::parse_list);
        let err = env.finish().unwrap_err();
        assert!(!err.to_string().contains("secret-value"), "{err}");
        assert!(err.to_string().contains("entry 2 is empty"), "{err}");
    }
}
