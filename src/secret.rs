//! [`Secret`]: a string that never prints and is wiped from memory when dropped.
//!
//! # Example
//!
//! ```
//! use mcp_auth::Secret;
//!
//! let key = Secret::new("sk_live_0123456789abcdef");
//! assert_eq!(format!("{key:?}"), "Secret([REDACTED])");
//! assert_eq!(key.to_string(), "[REDACTED]");
//! assert_eq!(key.expose(), "sk_live_0123456789abcdef");
//! assert!(key == Secret::new("sk_live_0123456789abcdef")); // constant-time
//! ```

use std::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A secret string (API key, token, signing secret).
///
/// `Debug` and `Display` print `[REDACTED]`; equality is constant-time in the contents; the
/// memory is zeroed on drop (its whole allocation, and every clone's). Read the value with
/// [`Secret::expose`] only where it is needed.
///
/// `Secret::new` takes ownership of a `String` without copying it; from a `&str` it copies,
/// and the caller's original is the caller's to wipe.
#[derive(Clone)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// Wraps a value already in zeroizing memory, without copying it.
    pub(crate) fn from_zeroizing(value: Zeroizing<String>) -> Self {
        Self(value)
    }

    /// The secret value. Never log or echo it. A copy made from it (`to_owned`, a key
    /// object built from it) is not wiped by this type.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (not secret: it is visible on the wire anyway).
    #[must_use]
    pub fn len(&self) -> usize {
        self.expose().len()
    }

    /// Whether the secret is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Self) -> bool {
        // Length differences are visible on the wire; the contents are compared in constant time.
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for Secret {}

/// SHA-256 of a presented or configured secret.
pub(crate) fn digest(secret: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(secret).into()
}

/// `prefix` followed by `N` bytes from the operating system's random source, URL-safe
/// base64 without padding: token values, token ids, `jti`s. The random bytes are wiped after
/// use; `None` when the random source fails.
#[cfg(any(feature = "bearer", feature = "jwt"))]
pub(crate) fn random_urlsafe<const N: usize>(prefix: &str) -> Option<String> {
    use base64::Engine as _;
    let mut bytes = zeroize::Zeroizing::new([0u8; N]);
    getrandom::fill(bytes.as_mut()).ok()?;
    let mut out = String::with_capacity(prefix.len().saturating_add(N.saturating_mul(4) / 3 + 1));
    out.push_str(prefix);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(bytes.as_ref(), &mut out);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("hunter2-hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(!format!("{s}").contains("hunter2"));
        assert!(!format!("{s:#?}").contains("hunter2"));
    }

    #[test]
    fn equality_compares_contents() {
        assert_eq!(Secret::new("abc"), Secret::new("abc"));
        assert_ne!(Secret::new("abc"), Secret::new("abd"));
        assert_ne!(Secret::new("abc"), Secret::new("abcd"));
    }
}
