//! The environment syntax of [`Credential`]: one entry of a variable, one line of a file, and
//! the loop that reads a whole setting of either kind (see the [module docs](super)).

use crate::context::Scopes;
use crate::env::SecretOrigin;
use crate::error::{ConfigError, ConfigProblem};

use super::Credential;
use super::timestamp::parse_timestamp;

/// The attribute prefixes a file secret may not contain after a `;`.
const ATTRIBUTES: [&str; 5] = ["sub=", "scopes=", "roles=", "exp=", "id="];

impl Credential {
    /// Parses one entry of the environment syntax (see the [module docs](super)).
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

    /// Parses one line of a credentials file (see the [module docs](super)); `None` for a blank
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
        Self::parse_setting(setting, value, SecretOrigin::Variable)
    }

    /// Parses the text of a credentials file, one credential per line (see the
    /// [module docs](super)). Every problem is reported, each naming `setting` and the line
    /// number, never its contents.
    ///
    /// # Errors
    ///
    /// When no line holds a credential, or any line is invalid.
    pub fn parse_lines(setting: &str, text: &str) -> Result<Vec<Self>, ConfigError> {
        Self::parse_setting(setting, text, SecretOrigin::File)
    }

    /// Every credential of `value`, read as [`read_setting`] does.
    fn parse_setting(
        setting: &str,
        value: &str,
        origin: SecretOrigin,
    ) -> Result<Vec<Self>, ConfigError> {
        let mut out = Vec::new();
        read_setting(setting, value, origin, |cred| {
            out.push(cred);
            Ok(())
        })?;
        Ok(out)
    }
}

/// Why a piece of a setting yields no credential.
enum Unusable {
    /// An empty entry of a list (`a,,b`).
    Empty,
    /// A message naming what is wrong, never any part of the value.
    Invalid(String),
}

/// Reads every credential of a setting's value, handing each to `accept`: the entries of a
/// comma-separated list when it was read from the variable, the lines of a credentials file
/// when it was read from `<NAME>_FILE`. Every problem (a bad entry or line, or a credential
/// `accept` refuses) is reported, naming `setting` and the position (`entry 2`, `line 7`),
/// never the value.
///
/// # Errors
///
/// A list that is empty, a file that holds no credential, or any problem.
pub(super) fn read_setting(
    setting: &str,
    value: &str,
    origin: SecretOrigin,
    mut accept: impl FnMut(Credential) -> Result<(), String>,
) -> Result<(), ConfigError> {
    if origin == SecretOrigin::Variable && value.trim().is_empty() {
        return Err(ConfigError::new(setting, "is set but empty"));
    }
    let place = match origin {
        SecretOrigin::Variable => "entry",
        SecretOrigin::File => "line",
    };
    let mut problems = Vec::new();
    let mut added = 0usize;
    for (n, parsed) in credentials(value, origin) {
        let message = match parsed.and_then(|cred| accept(cred).map_err(Unusable::Invalid)) {
            Ok(()) => {
                added = added.saturating_add(1);
                continue;
            }
            Err(Unusable::Empty) => format!("{place} {n} is empty"),
            Err(Unusable::Invalid(msg)) => format!("{place} {n}: {msg}"),
        };
        problems.push(ConfigProblem::new(setting, message));
    }
    if added == 0 && problems.is_empty() {
        return Err(ConfigError::new(setting, "holds no credential"));
    }
    ConfigError::from_problems(problems).map_or(Ok(()), Err)
}

/// The credentials of `value`, numbered from 1: every entry of a comma-separated list, or
/// every line of a file but blank and comment ones (lines end at `\n` or `\r\n`; the `\r`
/// is trimmed with the other whitespace).
fn credentials(
    value: &str,
    origin: SecretOrigin,
) -> impl Iterator<Item = (usize, Result<Credential, Unusable>)> + '_ {
    let (separator, parse): (char, ParsePiece) = match origin {
        SecretOrigin::Variable => (',', parse_entry),
        SecretOrigin::File => ('\n', parse_file_line),
    };
    value
        .split(separator)
        .enumerate()
        .filter_map(move |(i, piece)| Some((i.saturating_add(1), parse(piece).transpose()?)))
}

/// Parses one piece of a setting: `None` for a piece that holds nothing (a comment line).
type ParsePiece = fn(&str) -> Result<Option<Credential>, Unusable>;

/// One line of a file: [`Credential::parse_line`].
fn parse_file_line(line: &str) -> Result<Option<Credential>, Unusable> {
    Credential::parse_line(line).map_err(Unusable::Invalid)
}

/// One entry of a list: empty (after trimming) is a problem of its own.
fn parse_entry(entry: &str) -> Result<Option<Credential>, Unusable> {
    let entry = entry.trim();
    if entry.is_empty() {
        return Err(Unusable::Empty);
    }
    Credential::parse(entry)
        .map(Some)
        .map_err(Unusable::Invalid)
}
