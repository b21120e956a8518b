//! [`Requirement`]: what one rule asks of a caller, and its text form.

use std::collections::BTreeSet;
use std::fmt;

/// What one rule requires: every scope of `all`, at least one of `any` (when not empty), and
/// the role, if set; and, for authentication step-up (RFC 9470), an authentication context
/// class (`acr`, one of a set) and/or an authentication no older than a maximum age
/// (`auth_time`). Two requirements are equal when they hold the same scopes and values in any
/// order (the order only decides how a challenge lists them).
#[derive(Debug, Clone, Default)]
pub struct Requirement {
    pub(super) all: Vec<String>,
    pub(super) any: Vec<String>,
    pub(super) role: Option<String>,
    pub(super) acr: Vec<String>,
    pub(super) max_age: Option<u64>,
}

impl PartialEq for Requirement {
    fn eq(&self, other: &Self) -> bool {
        fn same_set(a: &[String], b: &[String]) -> bool {
            let a: BTreeSet<&str> = a.iter().map(String::as_str).collect();
            let b: BTreeSet<&str> = b.iter().map(String::as_str).collect();
            a == b
        }
        self.role == other.role
            && self.max_age == other.max_age
            && same_set(&self.all, &other.all)
            && same_set(&self.any, &other.any)
            && same_set(&self.acr, &other.acr)
    }
}

impl Eq for Requirement {}

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

    /// Adds a set of alternatives (at least one of `scopes`) to this requirement.
    #[must_use]
    pub fn and_any<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.any = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// Adds a role requirement to this one.
    #[must_use]
    pub fn and_role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }

    /// Also requires the caller to have authenticated with one of these authentication
    /// context classes (the token's `acr` claim; RFC 9470).
    #[must_use]
    pub fn and_acr<I: IntoIterator<Item = S>, S: Into<String>>(mut self, acr_values: I) -> Self {
        self.acr = acr_values.into_iter().map(Into::into).collect();
        self
    }

    /// Also requires the caller to have authenticated at most `max_age` ago (the token's
    /// `auth_time` claim; RFC 9470), in whole seconds.
    #[must_use]
    pub fn and_max_age(mut self, max_age: std::time::Duration) -> Self {
        self.max_age = Some(max_age.as_secs());
        self
    }

    /// Whether this requirement asks for an authentication strength or age.
    pub(super) fn asks_step_up(&self) -> bool {
        !self.acr.is_empty() || self.max_age.is_some()
    }

    /// The scopes to name in a challenge for this requirement: every `all` scope, and the
    /// first `any` scope when none is held.
    pub(super) fn challenge_scopes(&self) -> impl Iterator<Item = &str> {
        self.all
            .iter()
            .map(String::as_str)
            .chain(self.any.first().map(String::as_str))
    }
}

/// Why a requirement's text could not be read (see [`Requirement`]'s `FromStr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementParseError(&'static str);

impl fmt::Display for RequirementParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for RequirementParseError {}

/// Reads the text form used in configuration: whitespace-separated tokens, where a plain
/// token is a scope required in full, `a|b|c` is a set of alternatives (at least one of them;
/// one such set per requirement), `role:NAME` requires a role, `acr:VALUE` an authentication
/// context class (several `acr:` tokens: any one of them), and `max_age:SECONDS` an
/// authentication at most that old. The empty string requires authentication only. Scope
/// tokens follow RFC 6749 §3.3 (printable ASCII without `"` or `\`), with `|` reserved as the
/// separator; `role:`, `acr:` and `max_age:` are reserved prefixes.
///
/// ```
/// use mcp_auth::scope::Requirement;
///
/// let r: Requirement = "data:write audit|admin role:editor".parse().unwrap();
/// assert_eq!(r, Requirement::all(["data:write"]).and_any(["audit", "admin"]).and_role("editor"));
/// let r: Requirement = "data:admin acr:urn:example:mfa max_age:300".parse().unwrap();
/// assert_eq!(
///     r,
///     Requirement::all(["data:admin"])
///         .and_acr(["urn:example:mfa"])
///         .and_max_age(std::time::Duration::from_secs(300))
/// );
/// assert_eq!("".parse::<Requirement>().unwrap(), Requirement::default());
/// assert!("a|b c|d".parse::<Requirement>().is_err());
/// ```
impl std::str::FromStr for Requirement {
    type Err = RequirementParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let valid = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
        };
        let mut req = Requirement::default();
        for token in text.split_ascii_whitespace() {
            if let Some(acr) = token.strip_prefix("acr:") {
                if !valid(acr) || acr.contains('|') {
                    return Err(RequirementParseError("bad acr value"));
                }
                if !req.acr.iter().any(|a| a == acr) {
                    req.acr.push(acr.to_owned());
                }
            } else if let Some(age) = token.strip_prefix("max_age:") {
                if req.max_age.is_some() {
                    return Err(RequirementParseError("more than one max_age:"));
                }
                let secs =
                    age.parse::<u64>()
                        .ok()
                        .filter(|s| *s > 0)
                        .ok_or(RequirementParseError(
                            "max_age: needs whole seconds above 0",
                        ))?;
                req.max_age = Some(secs);
            } else if let Some(role) = token.strip_prefix("role:") {
                if req.role.is_some() {
                    return Err(RequirementParseError("more than one role:"));
                }
                if !valid(role) || role.contains('|') {
                    return Err(RequirementParseError("bad role name"));
                }
                req.role = Some(role.to_owned());
            } else if token.contains('|') {
                if !req.any.is_empty() {
                    return Err(RequirementParseError("more than one a|b set"));
                }
                let alternatives: Vec<&str> = token.split('|').collect();
                if !alternatives.iter().all(|s| valid(s)) {
                    return Err(RequirementParseError("bad scope in an a|b set"));
                }
                req.any = alternatives.into_iter().map(String::from).collect();
            } else if valid(token) {
                if !req.all.iter().any(|s| s == token) {
                    req.all.push(token.to_owned());
                }
            } else {
                return Err(RequirementParseError("bad scope"));
            }
        }
        Ok(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_text_form() {
        let parse = |s: &str| s.parse::<Requirement>();
        assert_eq!(parse("  ").unwrap(), Requirement::default());
        assert_eq!(
            parse("a b a").unwrap(),
            Requirement::all(["a", "b"]),
            "duplicates collapse"
        );
        assert_eq!(parse("role:viewer").unwrap(), Requirement::role("viewer"));
        assert_eq!(parse("x|y").unwrap(), Requirement::any(["x", "y"]));
        for bad in [
            "a||b",
            "|a",
            "role:",
            "role:a role:b",
            "a|b c|d",
            "q\"x",
            "caf\u{e9}",
            "acr:",
            "acr:a|b",
            "max_age:0",
            "max_age:x",
            "max_age:5 max_age:6",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requirements_with_the_same_scopes_in_another_order_are_equal() {
        // Found by tests/properties.rs (`"0 A"` vs `"A 0"`): the text form is order-insensitive.
        let a: Requirement = "0 A x|y role:r".parse().unwrap();
        let b: Requirement = "y|x role:r A 0".parse().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, "0 B x|y role:r".parse::<Requirement>().unwrap());
        assert_ne!(a, "0 A x|y".parse::<Requirement>().unwrap());
        assert_ne!(a, "0 A x|z role:r".parse::<Requirement>().unwrap());
    }
}
