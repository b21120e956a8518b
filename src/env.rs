//! [`EnvReader`]: reads settings from environment variables and reports every missing or
//! invalid one in a single [`ConfigError`].
//!
//! Secret settings (keys, tokens, signing and client secrets) are read with
//! [`EnvReader::secret`], [`EnvReader::optional_secret`] or [`EnvReader::required_secret`]:
//! each also accepts `<NAME>_FILE`, the path of a file holding the value (Docker and
//! Kubernetes secrets), refuses both being set, and keeps what it read in zeroizing memory
//! ([`Secret`]). Problems name the variable (and, for a file, its path), never the value.
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
//!
//! A secret from a file:
//!
//! ```
//! use mcp_auth::env::EnvReader;
//!
//! let path = std::env::temp_dir().join(format!("mcp-auth-doc-{}", std::process::id()));
//! std::fs::write(&path, "s3cret-signing-key-0123456789abcdef\n").unwrap();
//! let mut env = EnvReader::from_pairs([("MCP_JWT_SECRET_FILE", path.to_str().unwrap())]);
//! let secret = env.secret("MCP_JWT_SECRET").unwrap(); // surrounding whitespace removed
//! assert_eq!(secret.expose(), "s3cret-signing-key-0123456789abcdef");
//! assert!(env.finish().is_ok());
//! # std::fs::remove_file(&path).unwrap();
//! ```

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use zeroize::Zeroizing;

use crate::error::{ConfigError, ConfigProblem};
use crate::secret::Secret;

/// Suffix of the variable that names a file holding a secret setting (`MCP_API_KEYS_FILE`).
pub const FILE_SUFFIX: &str = "_FILE";

/// Largest secret file read (1 MiB); a larger one is a configuration problem.
pub const MAX_SECRET_FILE: usize = 1 << 20;

/// Where a secret setting was read from (its syntax may differ, see
/// [`crate::authenticators::credential`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOrigin {
    /// The variable itself, e.g. `MCP_API_KEYS`.
    Variable,
    /// The file named by `<NAME>_FILE`, e.g. `MCP_API_KEYS_FILE`.
    File,
}

/// Collects settings from the environment (or from given pairs, for tests), optionally with
/// lower layers under it ([`EnvReader::with_fallback`]: a configuration file, built-in
/// defaults).
pub struct EnvReader {
    source: Source,
    /// Settings the environment does not set, each with where it came from (for messages).
    fallback: HashMap<String, (Zeroizing<String>, String)>,
    problems: Vec<ConfigProblem>,
}

enum Source {
    Process,
    /// Values are wiped when the reader is dropped (they may be secrets).
    Pairs(HashMap<String, Zeroizing<String>>),
}

/// The base name of a setting: `MCP_JWT_SECRET` for both `MCP_JWT_SECRET` and
/// `MCP_JWT_SECRET_FILE`.
fn family(name: &str) -> &str {
    name.strip_suffix(FILE_SUFFIX).unwrap_or(name)
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
            fallback: HashMap::new(),
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
                    .map(|(k, v)| (k.into(), Zeroizing::new(v.into())))
                    .collect(),
            ),
            fallback: HashMap::new(),
            problems: Vec::new(),
        }
    }

    /// Adds a lower layer: settings this reader does not have are read from `pairs` instead
    /// (a configuration file's values, or an application's built-in defaults). A setting and
    /// its `_FILE` form count as one: either set in a higher layer hides both in this one, so
    /// `MCP_JWT_SECRET_FILE` in the environment overrides `MCP_JWT_SECRET` from a file; both
    /// in this layer are a problem. A name given twice in `pairs` keeps its last value. Layers
    /// added later lie under those added earlier. `origin` names the layer in problems (such
    /// as `mcp-auth.toml`): a problem with a value from it reads `MCP_BIND (from
    /// mcp-auth.toml)`.
    ///
    /// ```
    /// use mcp_auth::env::EnvReader;
    ///
    /// let mut env = EnvReader::from_pairs([("MCP_BIND", "0.0.0.0:9000")])
    ///     .with_fallback([("MCP_BIND", "127.0.0.1:1"), ("MCP_PUBLIC_URL", "https://mcp.example.com/mcp")], "file.toml");
    /// assert_eq!(env.raw("MCP_BIND").as_deref(), Some("0.0.0.0:9000")); // the environment wins
    /// assert_eq!(env.raw("MCP_PUBLIC_URL").as_deref(), Some("https://mcp.example.com/mcp"));
    /// ```
    #[must_use]
    pub fn with_fallback<I, K, V>(mut self, pairs: I, origin: &str) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        // Within one layer a name given twice keeps its last value.
        let layer: HashMap<String, Zeroizing<String>> = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), Zeroizing::new(v.into())))
            .collect();
        let mut added = Vec::with_capacity(layer.len());
        for (name, value) in layer.iter() {
            let base = family(name);
            let file_form = format!("{base}{FILE_SUFFIX}");
            // Both forms in one layer: neither silently wins (as in the environment itself).
            if name == base && layer.contains_key(&file_form) {
                self.problems.push(ConfigProblem::new(
                    format!("{base} (from {origin})"),
                    format!("set {base} or {file_form}, not both"),
                ));
                continue;
            }
            if name != base && layer.contains_key(base) {
                continue;
            }
            let hidden = [base, file_form.as_str()]
                .iter()
                .any(|n| self.upper_is_set(n) || self.fallback.contains_key(*n));
            if !hidden {
                added.push((name.clone(), (value.clone(), origin.to_owned())));
            }
        }
        self.fallback.extend(added);
        self
    }

    /// The layer `name`'s value comes from, when a fallback layer ([`EnvReader::with_fallback`])
    /// supplies it (`None` for the environment itself, or when it is not set).
    #[must_use]
    pub fn origin(&self, name: &str) -> Option<&str> {
        self.fallback.get(name).map(|(_, origin)| origin.as_str())
    }

    /// Whether the environment itself (not a fallback layer) sets `name`.
    fn upper_is_set(&self, name: &str) -> bool {
        match &self.source {
            Source::Pairs(map) => map.contains_key(name),
            Source::Process => std::env::var_os(name).is_some(),
        }
    }

    /// The raw value of `name`; a variable that is not valid UTF-8 is recorded as a problem.
    ///
    /// For settings that are not secret: the returned `String` is not wiped when dropped. Read
    /// secrets with [`EnvReader::secret`] or [`EnvReader::optional_secret`].
    pub fn raw(&mut self, name: &str) -> Option<String> {
        self.read(name).map(|v| String::clone(&v))
    }

    /// The value of `name` in memory that is wiped when dropped.
    fn read(&mut self, name: &str) -> Option<Zeroizing<String>> {
        if let Some((value, _)) = self.fallback.get(name) {
            return Some(value.clone());
        }
        match &self.source {
            Source::Pairs(map) => map.get(name).cloned(),
            Source::Process => match std::env::var(name) {
                Ok(v) => Some(Zeroizing::new(v)),
                Err(std::env::VarError::NotPresent) => None,
                Err(std::env::VarError::NotUnicode(_)) => {
                    self.problems
                        .push(ConfigProblem::new(name, "is not valid UTF-8"));
                    None
                }
            },
        }
    }

    fn is_set(&self, name: &str) -> bool {
        self.fallback.contains_key(name) || self.upper_is_set(name)
    }

    /// Parses `name` if it is set; `parse` gets the name and the value. The value read is
    /// wiped from memory once `parse` returns.
    pub fn optional<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, ConfigError>,
    ) -> Option<T> {
        let value = self.read(name)?;
        self.apply(parse(name, &value))
    }

    /// Parses `name`, recording a problem when it is not set.
    pub fn required<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str, &str) -> Result<T, ConfigError>,
    ) -> Option<T> {
        if !self.is_set(name) {
            self.problems.push(ConfigProblem::new(name, "is not set"));
            return None;
        }
        self.optional(name, parse)
    }

    fn apply<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.extend(e.problems().iter().cloned());
                None
            }
        }
    }

    /// The secret setting `name`, as written: the value of variable `name`, or the contents of
    /// the file whose path is in `<name>_FILE`, with where it came from and the name of the
    /// variable actually read (for messages). Both set, an unreadable file, a file over
    /// [`MAX_SECRET_FILE`] or not UTF-8 are recorded as problems (`None`).
    fn secret_value(&mut self, name: &str) -> Option<(String, SecretOrigin, Secret)> {
        let file_var = format!("{name}{FILE_SUFFIX}");
        let path = self.read(&file_var);
        let direct = self.is_set(name);
        match path {
            Some(_) if direct => {
                self.problems.push(ConfigProblem::new(
                    name,
                    format!("set {name} or {file_var}, not both"),
                ));
                None
            }
            Some(path) => match read_secret_file(path.trim()) {
                Ok(secret) => Some((file_var, SecretOrigin::File, secret)),
                Err(msg) => {
                    self.problems.push(ConfigProblem::new(file_var, msg));
                    None
                }
            },
            None => {
                let value = self.read(name)?;
                Some((
                    name.to_owned(),
                    SecretOrigin::Variable,
                    Secret::from_zeroizing(value),
                ))
            }
        }
    }

    /// The secret setting `name` (variable `name` or the file named by `<name>_FILE`), without
    /// surrounding whitespace (so a file's final newline is harmless). Both set, or a file that
    /// cannot be read, is a recorded problem. What was read is wiped from memory when the
    /// returned [`Secret`] and this reader are dropped.
    pub fn secret(&mut self, name: &str) -> Option<Secret> {
        let (_, _, value) = self.secret_value(name)?;
        let trimmed = value.expose().trim();
        if trimmed.len() == value.len() {
            Some(value)
        } else {
            Some(Secret::new(trimmed))
        }
    }

    /// Parses the secret setting `name` (variable `name` or the file named by `<name>_FILE`)
    /// if either is set. `parse` gets the name of the variable read (`MCP_API_KEYS` or
    /// `MCP_API_KEYS_FILE`, for messages), the value as written (a file's whole contents)
    /// and its [`SecretOrigin`]; the value is wiped from memory once `parse` returns.
    pub fn optional_secret<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str, &str, SecretOrigin) -> Result<T, ConfigError>,
    ) -> Option<T> {
        let (read, origin, value) = self.secret_value(name)?;
        self.apply(parse(&read, value.expose(), origin))
    }

    /// [`EnvReader::optional_secret`], recording a problem when neither `name` nor
    /// `<name>_FILE` is set.
    pub fn required_secret<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str, &str, SecretOrigin) -> Result<T, ConfigError>,
    ) -> Option<T> {
        let file_var = format!("{name}{FILE_SUFFIX}");
        if !self.is_set(name) && !self.is_set(&file_var) {
            self.problems.push(ConfigProblem::new(
                name,
                format!("is not set (nor {file_var})"),
            ));
            return None;
        }
        self.optional_secret(name, parse)
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
        let fallback = &self.fallback;
        let problems = self
            .problems
            .into_iter()
            .map(|p| match fallback.get(p.setting()) {
                Some((_, origin)) => {
                    ConfigProblem::new(format!("{} (from {origin})", p.setting()), p.message())
                }
                None => p,
            })
            .collect();
        match ConfigError::from_problems(problems) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Reads a secret file into memory that is wiped when dropped, including every buffer
/// outgrown on the way (no reallocation leaves a copy behind). Messages name the path and the
/// cause, never the contents.
fn read_secret_file(path: &str) -> Result<Secret, String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open {path:?}: {e}"))?;
    let hint = file
        .metadata()
        .ok()
        .and_then(|m| usize::try_from(m.len()).ok())
        .unwrap_or(0)
        .min(MAX_SECRET_FILE);
    read_zeroizing(&mut file, hint, path)
}

/// Reads `reader` to its end (at most [`MAX_SECRET_FILE`] bytes) into zeroizing memory,
/// starting with room for `hint` bytes; `path` is for messages.
fn read_zeroizing(reader: &mut impl Read, hint: usize, path: &str) -> Result<Secret, String> {
    let mut buf = Zeroizing::new(Vec::with_capacity(hint.saturating_add(1)));
    let mut chunk = Zeroizing::new([0u8; 4096]);
    loop {
        let n = match reader.read(chunk.as_mut()) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("cannot read {path:?}: {e}")),
        };
        let data = chunk.get(..n).unwrap_or_default();
        let len = buf.len().saturating_add(data.len());
        if len > MAX_SECRET_FILE {
            return Err(format!(
                "{path:?} is larger than {} KiB",
                MAX_SECRET_FILE / 1024
            ));
        }
        if len > buf.capacity() {
            let cap = len
                .max(buf.capacity().saturating_mul(2))
                .min(MAX_SECRET_FILE);
            let mut bigger = Zeroizing::new(Vec::with_capacity(cap));
            bigger.extend_from_slice(&buf);
            buf = bigger; // the outgrown buffer is wiped as it drops
        }
        buf.extend_from_slice(data);
    }
    match String::from_utf8(std::mem::take(&mut *buf)) {
        Ok(text) => Ok(Secret::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(format!("{path:?} is not valid UTF-8"))
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

    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn new(tag: &str, contents: &[u8]) -> Self {
            let path = std::env::temp_dir().join(format!(
                "mcp-auth-env-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::write(&path, contents).unwrap();
            Self(path)
        }
        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn secret_comes_from_the_variable_or_the_file_trimmed() {
        let file = TempFile::new("secret", b"  file-secret-0123456789\r\n");
        let mut env =
            EnvReader::from_pairs([("A_FILE", file.path()), ("B", " var-secret-0123456789\n")]);
        assert_eq!(env.secret("A").unwrap().expose(), "file-secret-0123456789");
        assert_eq!(env.secret("B").unwrap().expose(), "var-secret-0123456789");
        assert!(env.secret("C").is_none());
        assert!(env.finish().is_ok());
    }

    #[test]
    fn optional_secret_reports_where_the_value_came_from() {
        let file = TempFile::new("origin", b"x\n");
        let mut env = EnvReader::from_pairs([("A_FILE", file.path()), ("B", "y")]);
        let a = env.optional_secret("A", |name, v, origin| {
            Ok((name.to_owned(), v.to_owned(), origin))
        });
        let b = env.optional_secret("B", |name, v, origin| {
            Ok((name.to_owned(), v.to_owned(), origin))
        });
        assert_eq!(a, Some(("A_FILE".into(), "x\n".into(), SecretOrigin::File)));
        assert_eq!(b, Some(("B".into(), "y".into(), SecretOrigin::Variable)));
        let mut env = EnvReader::from_pairs([("A_FILE", file.path())]);
        assert!(env.required_secret("A", |_, _, _| Ok(())).is_some());
        assert!(env.required_secret("B", |_, _, _| Ok(())).is_none());
        assert_eq!(
            env.finish().unwrap_err().to_string(),
            "invalid configuration: B: is not set (nor B_FILE)"
        );
    }

    #[test]
    fn secret_file_problems_name_the_file_never_the_contents() {
        let not_utf8 = TempFile::new("utf8", b"QJW\xff\xfeQJW");
        let big = TempFile::new("big", &vec![b'Q'; MAX_SECRET_FILE + 1]);
        let mut env = EnvReader::from_pairs([
            ("A", "QJWQJW"),
            ("A_FILE", "/nonexistent/mcp-auth"),
            ("B_FILE", "/nonexistent/mcp-auth"),
            ("C_FILE", not_utf8.path()),
            ("D_FILE", big.path()),
        ]);
        for name in ["A", "B", "C", "D"] {
            assert!(env.secret(name).is_none(), "{name}");
        }
        let err = env.finish().unwrap_err();
        let msgs: Vec<String> = err.problems().iter().map(ToString::to_string).collect();
        assert_eq!(msgs.len(), 4, "{msgs:?}");
        assert_eq!(msgs[0], "A: set A or A_FILE, not both");
        assert!(
            msgs[1].starts_with("B_FILE: cannot open \"/nonexistent/mcp-auth\""),
            "{msgs:?}"
        );
        assert!(msgs[2].starts_with("C_FILE: ") && msgs[2].ends_with("is not valid UTF-8"));
        assert!(msgs[3].starts_with("D_FILE: ") && msgs[3].ends_with("is larger than 1024 KiB"));
        assert!(!err.to_string().contains('Q'), "{err}");
    }

    #[test]
    fn a_secret_file_larger_than_its_first_buffer_is_read_whole() {
        let contents = "k".repeat(100_000);
        let file = TempFile::new("grow", contents.as_bytes());
        assert_eq!(read_secret_file(file.path()).unwrap().expose(), contents);
        // The size hint is only a hint (a pipe reports none): the buffer grows as needed.
        let mut reader = std::io::Cursor::new(contents.as_bytes());
        assert_eq!(
            read_zeroizing(&mut reader, 0, "p").unwrap().expose(),
            contents
        );
    }

    #[test]
    fn fallback_layers_lie_under_the_environment_and_a_setting_and_its_file_form_are_one() {
        let mut env = EnvReader::from_pairs([("MCP_A_FILE", "/env/a")])
            .with_fallback([("MCP_A", "file-a"), ("MCP_B", "file-b")], "f.toml")
            .with_fallback(
                [("MCP_B", "default-b"), ("MCP_C", "x"), ("MCP_C", "y")],
                "defaults",
            );
        // The environment's `_FILE` form hides the file's plain form.
        assert_eq!(env.raw("MCP_A"), None);
        assert_eq!(env.raw("MCP_A_FILE").as_deref(), Some("/env/a"));
        // The file over the defaults; within one layer the last value.
        assert_eq!(env.raw("MCP_B").as_deref(), Some("file-b"));
        assert_eq!(env.raw("MCP_C").as_deref(), Some("y"));
        assert!(env.finish().is_ok());
    }

    #[test]
    fn both_forms_in_one_fallback_layer_are_a_problem_naming_the_layer() {
        let mut env = EnvReader::from_pairs::<[(&str, &str); 0], _, _>([]).with_fallback(
            [("MCP_S", "inline-s3cret"), ("MCP_S_FILE", "/run/s")],
            "f.toml",
        );
        assert_eq!(env.raw("MCP_S"), None);
        assert_eq!(env.raw("MCP_S_FILE"), None);
        let err = env.finish().unwrap_err();
        assert_eq!(err.problems()[0].setting(), "MCP_S (from f.toml)");
        assert!(!err.to_string().contains("inline-s3cret"));
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
