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

use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use subtle::ConstantTimeEq;

use crate::context::{AuthContext, AuthMethod, Scopes};
use crate::env::SecretOrigin;
use crate::error::{ConfigError, ConfigProblem};
use crate::secret::Secret;
use crate::secret::digest;

/// Shortest secret accepted: 16 characters. A floor against typos and toy values, not a
/// strength guarantee: 16 characters drawn at random carry about 105 bits (visible ASCII) or
/// 97 bits (token68), far fewer if a person chose them. For 128 bits use at least 20 random
/// visible ASCII or 22 random base64url characters ([`crate::authenticators::bearer::generate_token`] makes
/// 256-bit tokens).
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

    /// Sets a non-secret id, reported as [`AuthContext::credential_id`] (for logs and
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

    /// Parses one entry of the environment syntax (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// A message naming what is wrong (never any part of the value).
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (secret, attributes) = entry.split_once(';').unwrap_or((entry, ""));
        let secret = secret.trim();
        if secret.is_empty() {
            return Err("the secret is empty".into());
        }
        let mut cred = Credential::new(secret);
        cred.apply_attributes(attributes)?;
        Ok(cred)
    }

    /// Parses one line of a credentials file (see the [module docs](self)); `None` for a blank
    /// or comment line.
    ///
    /// # Errors
    ///
    /// A message naming what is wrong (never any part of the value).
    pub fn parse_line(line: &str) -> Result<Option<Self>, String> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(None);
        }
        let (secret, attributes) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        if secret == "#" {
            return Ok(None);
        }
        if secret
            .split(';')
            .skip(1)
            .any(|part| ATTRIBUTES.iter().any(|a| part.starts_with(a)))
        {
            return Err(
                "the secret contains `;name=` of an attribute: in a file, separate the attributes from the secret with a space"
                    .into(),
            );
        }
        let attributes = attributes.trim_start();
        let attributes = attributes.strip_prefix(';').unwrap_or(attributes);
        let mut cred = Credential::new(secret);
        cred.apply_attributes(attributes)?;
        Ok(Some(cred))
    }

    /// Applies `;`-separated `name=value` attributes. Messages name attributes by position
    /// or by their (known) name, never by what was written.
    fn apply_attributes(&mut self, attributes: &str) -> Result<(), String> {
        for (i, part) in attributes.split(';').map(str::trim).enumerate() {
            if part.is_empty() {
                continue;
            }
            let n = i.saturating_add(1);
            let Some((name, value)) = part.split_once('=') else {
                return Err(format!("attribute {n} is not of the form name=value"));
            };
            let value = value.trim();
            match name.trim() {
                known @ ("sub" | "id") if value.is_empty() => {
                    return Err(format!("attribute `{known}` is empty"));
                }
                known @ ("sub" | "id") if value.contains(char::is_whitespace) => {
                    return Err(format!(
                        "attribute `{known}` contains whitespace (attributes are separated by `;`)"
                    ));
                }
                "sub" => self.subject = Some(value.to_owned()),
                "id" => self.id = Some(value.to_owned()),
                "scopes" => self.scopes = Some(Scopes::from_space_separated(value)),
                "roles" => self.roles = value.split_ascii_whitespace().map(String::from).collect(),
                "exp" => self.expires_at = Some(parse_timestamp(value)?),
                _ => {
                    return Err(format!(
                        "attribute {n} is not one of sub, scopes, roles, exp, id"
                    ));
                }
            }
        }
        Ok(())
    }

    /// Parses a comma-separated list (the value of `setting`). Every problem is reported,
    /// each naming `setting` and the entry's position, never its value.
    ///
    /// # Errors
    ///
    /// When the list is empty or any entry is empty or invalid.
    pub fn parse_list(setting: &str, value: &str) -> Result<Vec<Self>, ConfigError> {
        if value.trim().is_empty() {
            return Err(ConfigError::new(setting, "is set but empty"));
        }
        let mut problems = Vec::new();
        let mut out = Vec::new();
        for (n, entry) in entries(value) {
            match entry.map(Self::parse) {
                None => problems.push(ConfigProblem::new(setting, format!("entry {n} is empty"))),
                Some(Ok(c)) => out.push(c),
                Some(Err(msg)) => {
                    problems.push(ConfigProblem::new(setting, format!("entry {n}: {msg}")));
                }
            }
        }
        ConfigError::from_problems(problems).map_or(Ok(out), Err)
    }

    /// Parses the text of a credentials file, one credential per line (see the
    /// [module docs](self)). Every problem is reported, each naming `setting` and the line
    /// number, never its contents.
    ///
    /// # Errors
    ///
    /// When no line holds a credential, or any line is invalid.
    pub fn parse_lines(setting: &str, text: &str) -> Result<Vec<Self>, ConfigError> {
        let mut problems = Vec::new();
        let mut out = Vec::new();
        for (n, line) in numbered_lines(text) {
            match Self::parse_line(line) {
                Ok(Some(c)) => out.push(c),
                Ok(None) => {}
                Err(msg) => problems.push(ConfigProblem::new(setting, format!("line {n}: {msg}"))),
            }
        }
        if out.is_empty() && problems.is_empty() {
            return Err(ConfigError::new(setting, "holds no credential"));
        }
        ConfigError::from_problems(problems).map_or(Ok(out), Err)
    }
}

/// The attribute prefixes a file secret may not contain after a `;`.
const ATTRIBUTES: [&str; 5] = ["sub=", "scopes=", "roles=", "exp=", "id="];

/// The entries of a comma-separated list, numbered from 1; `None` for an empty one.
fn entries(list: &str) -> impl Iterator<Item = (usize, Option<&str>)> {
    list.split(',').enumerate().map(|(i, e)| {
        let e = e.trim();
        (i.saturating_add(1), (!e.is_empty()).then_some(e))
    })
}

/// The lines of a file, numbered from 1 (`\r\n` or `\n`).
fn numbered_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i.saturating_add(1), l))
}

/// Parses Unix seconds or `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn parse_timestamp(value: &str) -> Result<SystemTime, String> {
    const BAD: &str = "`exp` is not Unix seconds or YYYY-MM-DDTHH:MM:SSZ";
    let bad = || BAD.to_owned();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs: u64 = value.parse().map_err(|_| bad())?;
        return UNIX_EPOCH
            .checked_add(Duration::from_secs(secs))
            .ok_or_else(bad);
    }
    let b = value.as_bytes();
    let at = |i: usize| b.get(i).copied();
    let shape_ok = b.len() == 20
        && [4, 7].iter().all(|&i| at(i) == Some(b'-'))
        && at(10) == Some(b'T')
        && [13, 16].iter().all(|&i| at(i) == Some(b':'))
        && at(19) == Some(b'Z');
    if !shape_ok {
        return Err(bad());
    }
    // Each field is 2 or 4 ASCII digits, so every value below fits an i64 many times over.
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let digits = value.get(r).ok_or_else(bad)?;
        if !digits.bytes().all(|d| d.is_ascii_digit()) {
            return Err(bad());
        }
        digits.parse::<i64>().map_err(|_| bad())
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let secs = days_from_civil(y, mo, d)
        .checked_mul(86_400)
        .and_then(|t| t.checked_add(h * 3600 + mi * 60 + s))
        .ok_or_else(bad)?;
    let secs = u64::try_from(secs).map_err(|_| bad())?;
    UNIX_EPOCH
        .checked_add(Duration::from_secs(secs))
        .ok_or_else(bad)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). The
/// callers pass 4-digit years, 1..=12 and 1..=31, so nothing here comes near overflow.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A hasher for keys that are already uniformly distributed (digest prefixes).
#[derive(Default)]
pub(crate) struct PrefixHasher(u64);

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

pub(crate) type PrefixMap<V> = HashMap<u64, V, BuildHasherDefault<PrefixHasher>>;

pub(crate) fn prefix(d: &[u8; 32]) -> u64 {
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

/// Digests of static credentials, indexed for constant-time lookup.
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
        let secret = cred.secret.expose().as_bytes();
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
        let d = digest(secret);
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

    /// Adds every entry of a comma-separated list in the environment syntax, reporting every
    /// bad entry by position (parse errors and check failures alike).
    pub(crate) fn insert_list(
        &mut self,
        setting: &str,
        list: &str,
        valid_char: fn(u8) -> bool,
    ) -> Result<(), ConfigError> {
        if list.trim().is_empty() {
            return Err(ConfigError::new(setting, "is set but empty"));
        }
        let mut problems = Vec::new();
        for (n, entry) in entries(list) {
            let Some(entry) = entry else {
                problems.push(ConfigProblem::new(setting, format!("entry {n} is empty")));
                continue;
            };
            if let Err(msg) = Credential::parse(entry).and_then(|c| self.insert(c, valid_char)) {
                problems.push(ConfigProblem::new(setting, format!("entry {n}: {msg}")));
            }
        }
        ConfigError::from_problems(problems).map_or(Ok(()), Err)
    }

    /// Adds every credential of a credentials file's text (one per line), reporting every bad
    /// line by number.
    pub(crate) fn insert_lines(
        &mut self,
        setting: &str,
        text: &str,
        valid_char: fn(u8) -> bool,
    ) -> Result<(), ConfigError> {
        let mut problems = Vec::new();
        let mut added = 0usize;
        for (n, line) in numbered_lines(text) {
            match Credential::parse_line(line) {
                Ok(None) => {}
                Ok(Some(c)) => match self.insert(c, valid_char) {
                    Ok(()) => added = added.saturating_add(1),
                    Err(msg) => {
                        problems.push(ConfigProblem::new(setting, format!("line {n}: {msg}")))
                    }
                },
                Err(msg) => problems.push(ConfigProblem::new(setting, format!("line {n}: {msg}"))),
            }
        }
        if added == 0 && problems.is_empty() {
            return Err(ConfigError::new(setting, "holds no credential"));
        }
        ConfigError::from_problems(problems).map_or(Ok(()), Err)
    }

    /// [`CredentialTable::insert_list`] or [`CredentialTable::insert_lines`], by origin.
    pub(crate) fn insert_setting(
        &mut self,
        setting: &str,
        value: &str,
        origin: SecretOrigin,
        valid_char: fn(u8) -> bool,
    ) -> Result<(), ConfigError> {
        match origin {
            SecretOrigin::Variable => self.insert_list(setting, value, valid_char),
            SecretOrigin::File => self.insert_lines(setting, value, valid_char),
        }
    }

    /// Looks up a presented secret: hash, bucket, constant-time compare of every entry in the
    /// bucket.
    #[cfg(feature = "api-key")]
    pub(crate) fn lookup(&self, presented: &[u8], now: SystemTime) -> Lookup<'_> {
        self.lookup_digest(&digest(presented), now)
    }

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
        f.debug_struct("CredentialTable")
            .field("method", &self.method)
            .field("credentials", &self.len)
            .finish_non_exhaustive()
    }
}

/// Visible ASCII except space: what an API key header value may hold.
#[cfg(feature = "api-key")]
pub(crate) fn is_visible_ascii(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

#[cfg(all(test, feature = "api-key"))]
mod tests {
    use super::*;

    fn table(keys: &[&str]) -> CredentialTable {
        let mut t = CredentialTable::new(AuthMethod::ApiKey, "api-key");
        for k in keys {
            t.insert(Credential::new(*k), is_visible_ascii).unwrap();
        }
        t
    }

    #[test]
    fn lookup_finds_exact_secret_only() {
        let t = table(&["aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"]);
        let now = SystemTime::now();
        assert!(
            matches!(t.lookup(b"bbbbbbbbbbbbbbbb", now), Lookup::Valid(c) if c.subject() == "api-key-2")
        );
        for near in [
            "bbbbbbbbbbbbbbb",
            "bbbbbbbbbbbbbbbbb",
            "Bbbbbbbbbbbbbbbb",
            "",
        ] {
            assert!(
                matches!(t.lookup(near.as_bytes(), now), Lookup::Unknown),
                "{near}"
            );
        }
    }

    #[test]
    fn expired_credentials_are_reported_as_expired() {
        let mut t = CredentialTable::new(AuthMethod::ApiKey, "api-key");
        let past = SystemTime::now() - Duration::from_secs(1);
        t.insert(
            Credential::new("cccccccccccccccc").expires_at(past),
            is_visible_ascii,
        )
        .unwrap();
        assert!(matches!(
            t.lookup(b"cccccccccccccccc", SystemTime::now()),
            Lookup::Expired
        ));
    }

    #[test]
    fn short_duplicate_and_non_ascii_secrets_are_refused() {
        let mut t = table(&["aaaaaaaaaaaaaaaa"]);
        for bad in [
            "tiny-x",
            "aaaaaaaaaaaaaaaa",
            "aaaaaaaaaaaaaaa é",
            "aaaaaaaa aaaaaaaa",
        ] {
            let err = t
                .insert_one(Credential::new(bad), "MCP_API_KEYS", is_visible_ascii)
                .unwrap_err();
            assert_eq!(err.problems()[0].setting(), "MCP_API_KEYS");
            assert!(!err.to_string().contains(bad), "{err}");
        }
    }

    #[test]
    fn env_syntax_trims_whitespace_and_newlines() {
        let list =
            Credential::parse_list("V", " aaaaaaaaaaaaaaaa ;sub = bob ; scopes=a b\n").unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].secret.expose(), "aaaaaaaaaaaaaaaa");
        assert_eq!(list[0].subject_name(), Some("bob"));
        assert_eq!(list[0].scope_set().unwrap().to_space_separated(), "a b");
    }

    #[test]
    fn env_syntax_reports_every_bad_entry_by_position() {
        let err = Credential::parse_list("V", "aaaaaaaaaaaaaaaa;bogus=1, ,x;exp=soon").unwrap_err();
        let msgs: Vec<_> = err.problems().iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 3, "{msgs:?}");
        assert!(msgs[0].starts_with("V: entry 1"));
        assert!(msgs[1].starts_with("V: entry 2 is empty"));
        assert!(msgs[2].starts_with("V: entry 3"));
    }

    #[test]
    fn list_reports_parse_and_check_failures_together() {
        let mut t = CredentialTable::new(AuthMethod::ApiKey, "api-key");
        let err = t
            .insert_list(
                "V",
                "tiny, ,aaaaaaaaaaaaaaaa;exp=never,bbbbbbbbbbbbbbbb,bbbbbbbbbbbbbbbb",
                is_visible_ascii,
            )
            .unwrap_err();
        let msgs: Vec<_> = err.problems().iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "V: entry 1: the secret is shorter than 16 characters",
                "V: entry 2 is empty",
                "V: entry 3: `exp` is not Unix seconds or YYYY-MM-DDTHH:MM:SSZ",
                "V: entry 5: the secret duplicates an earlier one",
            ]
        );
    }

    #[test]
    fn env_key_with_comma_is_refused_without_its_fragment() {
        // Review L9: a `,` cuts the key in two; the short half fails, naming only the entry.
        let mut t = CredentialTable::new(AuthMethod::ApiKey, "api-key");
        let err = t
            .insert_list(
                "MCP_API_KEYS",
                "QJW-half,QJWQJWQJW-other-half",
                is_visible_ascii,
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: MCP_API_KEYS: entry 1: the secret is shorter than 16 characters"
        );
    }

    #[test]
    fn env_key_with_semicolon_never_echoes_the_fragment() {
        // Review L9: this used to print "unknown attribute `QJWQJW-secret-part`".
        for list in [
            "aaaaaaaaaaaaaaaa;QJWQJW-secret-part=1",
            "aaaaaaaaaaaaaaaa;QJWQJW-secret-part",
            "aaaaaaaaaaaaaaaa;sub=ok;QJWQJW=QJW",
        ] {
            let err = Credential::parse_list("MCP_API_KEYS", list).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("MCP_API_KEYS: entry 1: attribute "), "{text}");
            assert!(
                !text.contains("QJW") && !text.contains("secret-part"),
                "{text}"
            );
        }
    }

    #[test]
    fn no_config_error_ever_contains_secret_bytes() {
        // Secret material is drawn from letters no message uses (Q, J, W), mixed with every
        // separator in every position; no error may contain one of those letters.
        let pieces = [
            "QJWQJWQJWQJWQJWQJW",
            "QJW",
            ";",
            ",",
            "=",
            " ",
            "\t",
            "\n",
            "#",
            ";QJW=",
            ";sub=",
            ";exp=QJW",
            ";scopes=QJW",
            "sub=QJW QJW",
            ";id=",
            "é",
        ];
        let mut checked = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let value = format!("{a}{b}{c}");
                    let mut t = CredentialTable::new(AuthMethod::ApiKey, "api-key");
                    let mut errors = Vec::new();
                    errors.extend(t.insert_list("V", &value, is_visible_ascii).err());
                    let mut t = CredentialTable::new(AuthMethod::ApiKey, "api-key");
                    errors.extend(t.insert_lines("V", &value, is_visible_ascii).err());
                    errors.extend(Credential::parse_list("V", &value).err());
                    errors.extend(Credential::parse_lines("V", &value).err());
                    for e in errors {
                        let text = format!("{e} {e:?}");
                        assert!(!text.contains(['Q', 'J', 'W', 'é']), "{value:?}: {text}");
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 1000, "{checked}");
    }

    #[test]
    fn file_lines_carry_any_visible_character_in_the_secret() {
        let text = "# comment line\n#\n\n  k,ey;with=odd#chars-01234 sub=alice;scopes=a b\r\n\
                    #not-a-comment-0123456789\tid=k2\n\
                    bbbbbbbbbbbbbbbb ;sub=bob;exp=2030-01-01T00:00:00Z\n";
        let list = Credential::parse_lines("F", text).unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(list[0].secret.expose(), "k,ey;with=odd#chars-01234");
        assert_eq!(list[0].subject_name(), Some("alice"));
        assert_eq!(list[0].scope_set().unwrap().to_space_separated(), "a b");
        assert_eq!(list[1].secret.expose(), "#not-a-comment-0123456789");
        assert_eq!(list[1].id.as_deref(), Some("k2"));
        assert_eq!(list[2].subject_name(), Some("bob"));
        assert!(list[2].expiry().is_some());
        let mut t = CredentialTable::new(AuthMethod::ApiKey, "api-key");
        t.insert_lines("F", text, is_visible_ascii).unwrap();
        assert!(matches!(
            t.lookup(b"k,ey;with=odd#chars-01234", SystemTime::now()),
            Lookup::Valid(c) if c.subject() == "alice"
        ));
    }

    #[test]
    fn file_lines_refuse_the_variable_syntax_pasted_whole() {
        // Taken whole, `KEY;scopes=data:read` would be a key with default (wider) scopes.
        for line in [
            "aaaaaaaaaaaaaaaa;scopes=data:read",
            "aaaaaaaaaaaaaaaa;sub=alice",
            "aaaaaaaaaaaaaaaa;x;roles=admin",
        ] {
            let err = Credential::parse_lines("F", line).unwrap_err();
            assert!(
                err.to_string()
                    .contains("F: line 1: the secret contains `;name=`"),
                "{err}"
            );
        }
        // A `;` alone, or before something that is no attribute, is part of the secret.
        assert!(Credential::parse_lines("F", "aaaaaaaa;subject=aaaaaaa").is_ok());
    }

    #[test]
    fn file_with_no_credential_or_bad_lines_is_refused_by_line_number() {
        assert_eq!(
            Credential::parse_lines("F", "# only a comment\n\n")
                .unwrap_err()
                .to_string(),
            "invalid configuration: F: holds no credential"
        );
        let mut t = CredentialTable::new(AuthMethod::ApiKey, "api-key");
        let err = t
            .insert_lines(
                "F",
                "aaaaaaaaaaaaaaaa\n\ntiny\naaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbb sub=a b",
                is_visible_ascii,
            )
            .unwrap_err();
        let msgs: Vec<_> = err.problems().iter().map(ToString::to_string).collect();
        assert_eq!(
            msgs,
            [
                "F: line 3: the secret is shorter than 16 characters",
                "F: line 4: the secret duplicates an earlier one",
                "F: line 5: attribute `sub` contains whitespace (attributes are separated by `;`)",
            ]
        );
    }

    #[test]
    fn subject_with_whitespace_is_refused() {
        // `KEY;sub=alice scopes=data:read` would otherwise name the subject
        // "alice scopes=data:read" and keep the default (wider) scopes.
        let err =
            Credential::parse_list("V", "aaaaaaaaaaaaaaaa;sub=alice scopes=data:read").unwrap_err();
        assert!(
            err.to_string()
                .contains("attribute `sub` contains whitespace"),
            "{err}"
        );
    }

    #[test]
    fn empty_variable_is_refused() {
        assert!(Credential::parse_list("V", "  ").is_err());
    }

    #[test]
    fn timestamps_parse_in_both_forms() {
        let a = parse_timestamp("1767225600").unwrap();
        let b = parse_timestamp("2026-01-01T00:00:00Z").unwrap();
        assert_eq!(a, b);
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z").unwrap(), UNIX_EPOCH);
        assert_eq!(
            parse_timestamp("2000-03-01T00:00:00Z").unwrap(),
            UNIX_EPOCH + Duration::from_secs(951_868_800)
        );
        for bad in [
            "",
            "2026-13-01T00:00:00Z",
            "2026-01-01 00:00:00",
            "tomorrow",
            "-1",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_index_handles_many_keys() {
        let keys: Vec<String> = (0..5000).map(|i| format!("key-{i:012}-abcdef")).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let t = table(&refs);
        assert_eq!(t.len(), 5000);
        let now = SystemTime::now();
        assert!(
            matches!(t.lookup(keys[4321].as_bytes(), now), Lookup::Valid(c) if c.subject() == "api-key-4322")
        );
    }
}
