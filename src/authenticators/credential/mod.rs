//! Static credentials (API keys, static bearer tokens): configuration, environment syntax,
//! and the digest table both layers look them up in.
//!
//! A credential is configured with [`Credential`] in code, as one entry of a comma-separated
//! environment variable, or as one line of a credentials file (`MCP_API_KEYS_FILE`, see
//! [`crate::env`]).
//!
//! # In a variable
//!
//! ```text
//! SECRET[;sub=NAME][;scopes=SCOPE SCOPE…][;roles=ROLE ROLE…][;exp=WHEN][;id=ID]
//! ```
//!
//! `WHEN` is Unix seconds or `YYYY-MM-DDTHH:MM:SSZ`. Whitespace around entries and around
//! each `;` part is trimmed (so a trailing newline is harmless); empty entries are refused.
//! `sub` and `id` hold no whitespace. Since entries are split at `,` and the secret ends at the
//! first `;`, a secret holding `,` or `;` cannot be written in a variable: it would be cut in
//! two (and each half might be long enough to pass). Put such secrets in a file.
//!
//! # In a file
//!
//! One credential per line; the secret is everything up to the first space or tab, so it may
//! hold any visible ASCII character, `,` and `;` included. Attributes follow after
//! whitespace, in the same `;`-separated syntax (a leading `;` is allowed):
//!
//! ```text
//! # API keys for the MCP server
//! k,with;odd=chars-0123456789 sub=alice;scopes=data:read data:write
//! k-ci-0123456789abcdef ;sub=ci;exp=2030-01-01T00:00:00Z
//! ```
//!
//! Blank lines are skipped, and so are comment lines: `#` alone or followed by whitespace (a
//! secret is never a lone `#`). A secret containing `;sub=`, `;scopes=`, `;roles=`, `;exp=` or
//! `;id=` is refused: that is the variable syntax pasted into a file, and taking it whole
//! would drop the attributes (and the scopes they limit). Lines end at `\n` or `\r\n`.
//!
//! # Errors never show secrets
//!
//! Every problem names the variable and the entry's position (`entry 2`, `line 7`), never
//! any part of the value, not even an attribute name written where the secret was expected.
//! Secrets must be at least [`MIN_SECRET_LEN`] visible ASCII characters.
//!
//! The table stores SHA-256 digests, never secrets. Lookup hashes the presented secret, picks
//! a bucket by the digest's first 8 bytes (a hash map, so cost does not grow with the number
//! of credentials) and compares full digests with [`subtle::ConstantTimeEq`].
//!
//! # Example
//!
//! ```
//! use mcp_auth::Credential;
//!
//! let creds = Credential::parse_list(
//!     "MCP_API_KEYS",
//!     "key-aaaaaaaaaaaaaaaa;sub=alice;scopes=data:read data:write, key-bbbbbbbbbbbbbbbb;exp=2030-01-01T00:00:00Z",
//! )
//! .unwrap();
//! assert_eq!(creds.len(), 2);
//! assert_eq!(creds[0].subject_name(), Some("alice"));
//!
//! let err = Credential::parse_list("MCP_API_KEYS", "key-aaaaaaaaaaaaaaaa,,").unwrap_err();
//! assert!(err.to_string().contains("MCP_API_KEYS"));
//! assert!(!err.to_string().contains("key-aaaa")); // never the value
//!
//! let lines = "# keys\nk,ey;aaaaaaaaaaaaaaaa sub=bob;scopes=data:read\n";
//! let creds = Credential::parse_lines("MCP_API_KEYS_FILE", lines).unwrap();
//! assert_eq!(creds[0].subject_name(), Some("bob"));
//! ```

mod syntax;
mod table;
#[cfg(all(test, feature = "api-key"))]
mod tests;
mod timestamp;

use std::time::SystemTime;

use crate::context::Scopes;
use crate::secret::Secret;

pub(crate) use self::table::{CredentialTable, static_credential_methods};

/// Shortest secret accepted: 16 characters. A floor against typos and toy values, not a
/// strength guarantee: 16 characters drawn at random carry about 105 bits (visible ASCII) or
/// 97 bits (token68), far fewer if a person chose them. For 128 bits use at least 20 random
/// visible ASCII or 22 random base64url characters
/// ([`generate_token`](crate::authenticators::bearer::generate_token) makes 256-bit tokens).
pub const MIN_SECRET_LEN: usize = 16;

/// Longest secret accepted, and longest presented value hashed (longer ones are refused
/// before any work).
pub const MAX_SECRET_LEN: usize = 4096;

/// One configured static credential. `Debug` never shows the secret.
#[derive(Clone, Debug)]
pub struct Credential {
    secret: Secret,
    subject: Option<String>,
    scopes: Option<Scopes>,
    roles: Vec<String>,
    expires_at: Option<SystemTime>,
    id: Option<String>,
}

impl Credential {
    /// A credential with this secret. Its subject defaults to its position (`api-key-1`,
    /// `token-2`, …) unless set.
    #[must_use]
    pub fn new(secret: impl Into<Secret>) -> Self {
        Self {
            secret: secret.into(),
            subject: None,
            scopes: None,
            roles: Vec::new(),
            expires_at: None,
            id: None,
        }
    }

    /// Names the subject (the caller this credential belongs to).
    #[must_use]
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets the granted scopes. Without this, the authenticator's default scopes apply.
    #[must_use]
    pub fn scopes<I: IntoIterator<Item = S>, S: Into<String>>(mut self, scopes: I) -> Self {
        self.scopes = Some(scopes.into_iter().collect());
        self
    }

    /// Sets the granted roles.
    #[must_use]
    pub fn roles<I: IntoIterator<Item = S>, S: Into<String>>(mut self, roles: I) -> Self {
        self.roles = roles.into_iter().map(Into::into).collect();
        self
    }

    /// Sets when the credential stops working.
    #[must_use]
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Sets a non-secret id, reported as
    /// [`AuthContext::credential_id`](crate::AuthContext::credential_id) (for logs and
    /// rotation: two keys of one subject can be told apart).
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// The configured subject name, if any.
    #[must_use]
    pub fn subject_name(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// The configured scopes, if any.
    #[must_use]
    pub fn scope_set(&self) -> Option<&Scopes> {
        self.scopes.as_ref()
    }

    /// The configured expiry, if any.
    #[must_use]
    pub fn expiry(&self) -> Option<SystemTime> {
        self.expires_at
    }
}
