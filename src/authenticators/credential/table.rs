//! [`CredentialTable`]: the digests of static credentials, indexed for constant-time lookup
//! (see the [module docs](super)), and what [`ApiKeyAuthenticator`] and
//! [`BearerAuthenticator`] share on top of it.
//!
//! [`ApiKeyAuthenticator`]: crate::authenticators::api_key::ApiKeyAuthenticator
//! [`BearerAuthenticator`]: crate::authenticators::bearer::BearerAuthenticator

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::SystemTime;

use subtle::ConstantTimeEq;

use crate::context::{AuthContext, AuthMethod, Scopes};
use crate::env::SecretOrigin;
use crate::error::{AuthError, ConfigError};
use crate::secret::digest;

use super::syntax::read_setting;
use super::{Credential, MAX_SECRET_LEN, MIN_SECRET_LEN};

/// A hasher for keys that are already uniformly distributed (digest prefixes).
#[derive(Default)]
struct PrefixHasher(u64);

impl Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type PrefixMap<V> = HashMap<u64, V, BuildHasherDefault<PrefixHasher>>;

/// The bucket of a digest: its first 8 bytes.
fn prefix(d: &[u8; 32]) -> u64 {
    let [a, b, c, e, f, g, h, i, ..] = *d;
    u64::from_le_bytes([a, b, c, e, f, g, h, i])
}

struct Entry {
    digest: [u8; 32],
    context: AuthContext,
    expires_at: Option<SystemTime>,
}

/// Result of looking up a presented secret.
pub(crate) enum Lookup<'a> {
    Valid(&'a AuthContext),
    Expired,
    Unknown,
}

impl Lookup<'_> {
    /// The decision for a known secret (its context, or `expired` with the client-visible
    /// `invalid` text); `None` for an unknown one, which the caller decides.
    pub(crate) fn known(self, invalid: &'static str) -> Option<Result<AuthContext, AuthError>> {
        match self {
            Lookup::Valid(ctx) => Some(Ok(ctx.clone())),
            Lookup::Expired => Some(Err(AuthError::expired(invalid))),
            Lookup::Unknown => None,
        }
    }
}

/// Digests of static credentials, indexed for constant-time lookup. `Debug` shows only how
/// many credentials it holds.
pub(crate) struct CredentialTable {
    method: AuthMethod,
    default_subject: &'static str,
    default_scopes: Scopes,
    buckets: PrefixMap<Vec<Entry>>,
    len: usize,
}

impl CredentialTable {
    pub(crate) fn new(method: AuthMethod, default_subject: &'static str) -> Self {
        Self {
            method,
            default_subject,
            default_scopes: Scopes::new(),
            buckets: PrefixMap::default(),
            len: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn set_default_scopes(&mut self, scopes: Scopes) {
        self.default_scopes = scopes;
    }

    /// Adds a credential after checking it; `valid_char` is the allowed character set. The
    /// error message names no value.
    pub(crate) fn insert(
        &mut self,
        cred: Credential,
        valid_char: fn(u8) -> bool,
    ) -> Result<(), String> {
        let d = check_secret(cred.secret.expose().as_bytes(), valid_char)?;
        let bucket = self.buckets.entry(prefix(&d)).or_default();
        if bucket.iter().any(|e| bool::from(e.digest.ct_eq(&d))) {
            return Err("the secret duplicates an earlier one".into());
        }
        let subject = cred
            .subject
            .unwrap_or_else(|| format!("{}-{}", self.default_subject, self.len.saturating_add(1)));
        let mut builder = AuthContext::builder(subject, self.method.clone())
            .scopes(cred.scopes.as_ref().unwrap_or(&self.default_scopes))
            .roles(cred.roles);
        if let Some(id) = cred.id {
            builder = builder.credential_id(id);
        }
        if let Some(at) = cred.expires_at {
            builder = builder.expires_at(at);
        }
        bucket.push(Entry {
            digest: d,
            context: builder.build(),
            expires_at: cred.expires_at,
        });
        self.len = self.len.saturating_add(1);
        Ok(())
    }

    /// Adds one credential configured in code; errors name `setting`.
    pub(crate) fn insert_one(
        &mut self,
        cred: Credential,
        setting: &str,
        valid_char: fn(u8) -> bool,
    ) -> Result<(), ConfigError> {
        let n = self.len.saturating_add(1);
        self.insert(cred, valid_char)
            .map_err(|msg| ConfigError::new(setting, format!("credential {n}: {msg}")))
    }

    /// Adds every credential of a setting's value: the entries of a comma-separated list in
    /// the environment syntax (`origin` [`SecretOrigin::Variable`]) or the lines of a
    /// credentials file ([`SecretOrigin::File`]). Every bad entry or line is reported by
    /// position, parse errors and check failures alike.
    pub(crate) fn insert_setting(
        &mut self,
        setting: &str,
        value: &str,
        origin: SecretOrigin,
        valid_char: fn(u8) -> bool,
    ) -> Result<(), ConfigError> {
        read_setting(setting, value, origin, |cred| self.insert(cred, valid_char))
    }

    /// Looks up a presented secret: hash, bucket, constant-time compare of every entry in the
    /// bucket.
    #[cfg(feature = "api-key")]
    pub(crate) fn lookup(&self, presented: &[u8], now: SystemTime) -> Lookup<'_> {
        self.lookup_digest(&digest(presented), now)
    }

    /// [`CredentialTable::lookup`] of a secret already hashed.
    pub(crate) fn lookup_digest(&self, d: &[u8; 32], now: SystemTime) -> Lookup<'_> {
        let Some(bucket) = self.buckets.get(&prefix(d)) else {
            return Lookup::Unknown;
        };
        let mut found = None;
        for e in bucket {
            if bool::from(e.digest.ct_eq(d)) {
                found = Some(e);
            }
        }
        match found {
            None => Lookup::Unknown,
            Some(e) if e.expires_at.is_some_and(|at| now >= at) => Lookup::Expired,
            Some(e) => Lookup::Valid(&e.context),
        }
    }
}

impl fmt::Debug for CredentialTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.len, f)
    }
}

/// Checks a configured secret's length and characters (`valid_char`); its digest when it
/// passes. The message names no value.
fn check_secret(secret: &[u8], valid_char: fn(u8) -> bool) -> Result<[u8; 32], String> {
    if secret.len() < MIN_SECRET_LEN {
        return Err(format!(
            "the secret is shorter than {MIN_SECRET_LEN} characters"
        ));
    }
    if secret.len() > MAX_SECRET_LEN {
        return Err(format!(
            "the secret is longer than {MAX_SECRET_LEN} characters"
        ));
    }
    if !secret.iter().all(|&b| valid_char(b)) {
        return Err("the secret has characters not allowed in its header".into());
    }
    Ok(digest(secret))
}

/// The builder methods [`ApiKeyAuthenticator`] and [`BearerAuthenticator`] share, written
/// once: each keeps its credentials in a [`CredentialTable`] field and checks their characters
/// with its own `valid_char`, and names them in its docs (`one`, `many`).
///
/// `from_env_var` goes in the impl block of the authenticator with no store (it starts from
/// `Self::new()`); `setters` in the one for every store.
///
/// [`ApiKeyAuthenticator`]: crate::authenticators::api_key::ApiKeyAuthenticator
/// [`BearerAuthenticator`]: crate::authenticators::bearer::BearerAuthenticator
macro_rules! static_credential_methods {
    (from_env_var, one: $one:literal, many: $many:literal) => {
        #[doc = concat!("The ", $many, " in environment variable `var`, or in the file")]
        #[doc = concat!("named by `<var>_FILE` (one ", $one, " per line, see")]
        /// [`crate::authenticators::credential`]).
        ///
        /// # Errors
        ///
        /// When the variable is missing, empty, or has an invalid entry (every problem listed).
        pub fn from_env_var(var: &str) -> Result<Self, $crate::error::ConfigError> {
            let mut env = $crate::env::EnvReader::new();
            let read = env.required_secret(var, |name, value, origin| {
                Self::new().with_setting(name, value, origin)
            });
            env.finish()?;
            Ok(read.unwrap_or_default())
        }
    };
    (
        setters,
        table: $table:ident,
        valid_char: $valid:path,
        one: $one:literal,
        many: $many:literal
    ) => {
        #[doc = concat!("Scopes for ", $many, " configured without `scopes=`. Applies to")]
        #[doc = concat!($many, " added afterwards.")]
        #[must_use]
        pub fn default_scopes<I, T>(mut self, scopes: I) -> Self
        where
            I: IntoIterator<Item = T>,
            T: Into<String>,
        {
            self.$table.set_default_scopes(scopes.into_iter().collect());
            self
        }

        #[doc = concat!("Adds every ", $one, " of a comma-separated list in the environment")]
        /// syntax; `setting` names the source in errors.
        ///
        /// # Errors
        ///
        /// Every invalid entry, each naming `setting` and its position.
        pub fn with_list(self, setting: &str, list: &str) -> Result<Self, $crate::ConfigError> {
            self.with_setting(setting, list, $crate::env::SecretOrigin::Variable)
        }

        #[doc = concat!("Adds every ", $one, " of a credentials file's text, one per line")]
        /// (syntax in [`crate::authenticators::credential`]: the secret may hold `,` and `;`);
        /// `setting` names the source in errors.
        ///
        /// # Errors
        ///
        /// Every invalid line, each naming `setting` and its line number; a file with none.
        pub fn with_lines(self, setting: &str, text: &str) -> Result<Self, $crate::ConfigError> {
            self.with_setting(setting, text, $crate::env::SecretOrigin::File)
        }

        /// [`Self::with_list`] for a value read from a variable, [`Self::with_lines`] for one
        /// read from a file: the parser for what
        /// [`EnvReader::optional_secret`](crate::env::EnvReader::optional_secret) hands over.
        ///
        /// # Errors
        ///
        /// As [`Self::with_list`] and [`Self::with_lines`].
        pub fn with_setting(
            mut self,
            setting: &str,
            value: &str,
            origin: $crate::env::SecretOrigin,
        ) -> Result<Self, $crate::error::ConfigError> {
            self.$table.insert_setting(setting, value, origin, $valid)?;
            Ok(self)
        }
    };
}
pub(crate) use static_credential_methods;
