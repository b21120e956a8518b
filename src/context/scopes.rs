//! [`Scopes`]: the granted scopes of an [`AuthContext`](super::AuthContext), ordered and
//! deduplicated.

use std::collections::BTreeSet;
use std::fmt;

/// A set of OAuth scopes (or any permission strings), ordered and deduplicated.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// An empty set.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a space-separated scope string (the OAuth `scope` format). Extra whitespace is
    /// ignored.
    #[must_use]
    pub fn from_space_separated(s: &str) -> Self {
        s.split_ascii_whitespace().collect()
    }

    /// Whether `scope` is in the set.
    #[must_use]
    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    /// Whether every scope of `required` is in the set.
    #[must_use]
    pub fn contains_all<'a>(&self, required: impl IntoIterator<Item = &'a str>) -> bool {
        required.into_iter().all(|s| self.contains(s))
    }

    /// Adds a scope; returns whether it was new.
    pub fn insert(&mut self, scope: impl Into<String>) -> bool {
        self.0.insert(scope.into())
    }

    /// The scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        self.0.iter().map(String::as_str)
    }

    /// Number of scopes.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The scopes joined by single spaces (the OAuth `scope` format).
    #[must_use]
    pub fn to_space_separated(&self) -> String {
        let mut out = String::new();
        for (i, s) in self.iter().enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(s);
        }
        out
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<S: Into<String>> FromIterator<S> for Scopes {
    fn from_iter<I: IntoIterator<Item = S>>(iter: I) -> Self {
        Self(iter.into_iter().map(Into::into).collect())
    }
}

impl<S: Into<String>> Extend<S> for Scopes {
    fn extend<I: IntoIterator<Item = S>>(&mut self, iter: I) {
        self.0.extend(iter.into_iter().map(Into::into));
    }
}

impl<'a> IntoIterator for &'a Scopes {
    type Item = &'a str;
    type IntoIter =
        std::iter::Map<std::collections::btree_set::Iter<'a, String>, fn(&String) -> &str>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_space_separated_and_dedupe() {
        let s = Scopes::from_space_separated("  b a  b ");
        assert_eq!(s.to_space_separated(), "a b");
        assert!(s.contains_all(["a", "b"]));
        assert!(!s.contains_all(["a", "c"]));
    }
}
