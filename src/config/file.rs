//! The TOML configuration file (`MCP_AUTH_CONFIG`): its keys are the environment variables'
//! names without `MCP_`, in lower case (`MCP_JWT_AUDIENCE` is `jwt_audience`), read into
//! `(variable, value)` pairs that lie under the environment.
//!
//! Values are TOML strings, booleans, integers, or arrays of strings (a comma-separated list in
//! the environment); `tool_scopes` is a string or a table of `tool = "requirement"`, and
//! `issuers` an array of tables (`[[issuers]]`, one per trusted issuer), whose environment form
//! is the same as a JSON array of objects: a list of issuers, each with several settings of
//! its own, has no comma-separated form, and one variable keeps the file and the environment
//! one layer over the other as for every other setting. A key the
//! configuration does not know, or a value of the wrong type, is a problem named by its key,
//! never by its value. Secret settings (those with a `_FILE` form) are refused in the file:
//! it names the file that holds the secret instead (`jwt_secret_file`), so no secret sits in a
//! configuration file that is often shared, versioned or world-readable.

use std::io::Read;

use zeroize::Zeroizing;

use crate::env::FILE_SUFFIX;
use crate::error::{ConfigError, ConfigProblem};

/// Largest configuration file read (1 MiB).
pub const MAX_CONFIG_FILE: u64 = 1 << 20;

/// What a file held: its settings as `(variable, value)` pairs, and the problems of the keys
/// that could not be read (the others still count, so every problem is found at once).
pub(super) type FileSettings = (Vec<(String, String)>, Vec<ConfigProblem>);

/// Reads the file at `path`; `known` is every variable the configuration (and the
/// application) reads.
pub(super) fn read(path: &str, known: &[&str]) -> Result<FileSettings, ConfigError> {
    let problem = |msg: String| ConfigError::new(super::CONFIG_FILE_VAR, msg);
    let file =
        std::fs::File::open(path).map_err(|e| problem(format!("cannot open {path:?}: {e}")))?;
    // Wiped when dropped: an operator may have written a secret in it after all.
    let mut text = Zeroizing::new(String::new());
    file.take(MAX_CONFIG_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| problem(format!("cannot read {path:?}: {e}")))?;
    if text.len() as u64 > MAX_CONFIG_FILE {
        return Err(problem(format!(
            "{path:?} is larger than {MAX_CONFIG_FILE} bytes"
        )));
    }
    parse(&text, path, known)
}

/// Parses a configuration file's text (`origin` names it in problems).
pub(super) fn parse(text: &str, origin: &str, known: &[&str]) -> Result<FileSettings, ConfigError> {
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        // toml's message quotes the offending line, which may hold a secret: keep only where.
        let at = e
            .span()
            .map(|s| format!(" at byte {}", s.start))
            .unwrap_or_default();
        ConfigError::new(
            super::CONFIG_FILE_VAR,
            format!("{origin} is not valid TOML{at}"),
        )
    })?;
    let mut pairs = Vec::with_capacity(table.len());
    let mut problems = Vec::new();
    for (key, value) in &table {
        let variable = format!("MCP_{}", key.to_ascii_uppercase());
        let known_key = key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && known.contains(&variable.as_str());
        if !known_key {
            problems.push(ConfigProblem::new(
                format!("{} (in {origin})", shown_key(key)),
                "is not a setting this server knows",
            ));
            continue;
        }
        let file_form = format!("{variable}{FILE_SUFFIX}");
        if known.contains(&file_form.as_str()) {
            problems.push(ConfigProblem::new(
                format!("{key} (in {origin})"),
                format!(
                    "is a secret: put it in a file and name that file with {key}_file (or set \
                     {variable} in the environment)"
                ),
            ));
            continue;
        }
        match value_text(key, value) {
            Some(text) => pairs.push((variable, text)),
            None => problems.push(ConfigProblem::new(
                format!("{key} (in {origin})"),
                expected(key),
            )),
        }
    }
    Ok((pairs, problems))
}

/// An unknown key as a problem shows it: quoted, escaped, at most 40 characters (a quoted
/// TOML key may hold anything, a pasted secret or terminal escapes among them).
fn shown_key(key: &str) -> String {
    let shown: String = key.chars().take(40).collect();
    let more = if shown.len() < key.len() { "…" } else { "" };
    format!("{shown:?}{more}")
}

/// What a key's value must be, for its problem.
fn expected(key: &str) -> &'static str {
    match key {
        "tool_scopes" => "must be a string or a table of tool = \"requirement\"",
        ISSUERS_KEY => "must be an array of tables ([[issuers]]), one per issuer",
        _ => "must be a string, a boolean, an integer or an array of strings",
    }
}

/// The key of the trusted issuers' array of tables.
const ISSUERS_KEY: &str = "issuers";

/// The environment form of a value: strings as they are, arrays joined with `,`, the tool
/// table joined as `tool=requirement;…`, the issuers' tables as a JSON array of objects.
fn value_text(key: &str, value: &toml::Value) -> Option<String> {
    use toml::Value;
    match value {
        Value::Array(items) if key == ISSUERS_KEY => {
            if !items.iter().all(Value::is_table) {
                return None;
            }
            serde_json::to_string(value).ok()
        }
        _ if key == ISSUERS_KEY => None,
        Value::String(s) => Some(s.clone()),
        Value::Boolean(b) => Some(b.to_string()),
        Value::Integer(i) => Some(i.to_string()),
        Value::Array(items) if key != "tool_scopes" => {
            let items: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            let items = items?;
            // A list item holding the separator would split into two in the environment form.
            if items.iter().any(|i| i.contains(',')) {
                return None;
            }
            Some(items.join(","))
        }
        Value::Table(t) if key == "tool_scopes" => {
            let mut entries = Vec::with_capacity(t.len());
            for (tool, req) in t {
                let req = req.as_str()?;
                if tool.contains(['=', ';']) || req.contains(';') {
                    return None;
                }
                entries.push(format!("{tool}={req}"));
            }
            Some(entries.join(";"))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KNOWN: &[&str] = &[
        "MCP_BIND",
        "MCP_JWT_AUDIENCE",
        "MCP_TOOL_SCOPES",
        "MCP_REQUIRE_HTTPS",
        "MCP_JWT_SECRET",
        "MCP_JWT_SECRET_FILE",
    ];

    #[test]
    fn keys_become_variables_and_values_their_environment_form() {
        let pairs = parse(
            r#"
            bind = "0.0.0.0:8080"
            jwt_audience = ["https://a.example/mcp", "https://b.example/mcp"]
            require_https = true
            [tool_scopes]
            whoami = ""
            read_data = "data:read"
            "#,
            "t.toml",
            KNOWN,
        )
        .unwrap()
        .0;
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("MCP_BIND"), Some("0.0.0.0:8080"));
        assert_eq!(
            get("MCP_JWT_AUDIENCE"),
            Some("https://a.example/mcp,https://b.example/mcp")
        );
        assert_eq!(get("MCP_REQUIRE_HTTPS"), Some("true"));
        assert_eq!(get("MCP_TOOL_SCOPES"), Some("read_data=data:read;whoami="));
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_all_reported_by_key_never_by_value() {
        let (pairs, problems) = parse(
            "bnd = \"s3cret-value\"\nrequire_https = { a = 1 }\njwt_audience = [\"x,y\"]\nbind = \"b\"\n",
            "t.toml",
            KNOWN,
        )
        .unwrap();
        assert_eq!(pairs, [("MCP_BIND".to_owned(), "b".to_owned())]);
        let err = ConfigError::from_problems(problems).unwrap();
        let text = err.to_string();
        assert_eq!(err.problems().len(), 3, "{text}");
        assert!(text.contains("\"bnd\" (in t.toml)"), "{text}");
        assert!(text.contains("require_https (in t.toml)"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn a_syntax_error_does_not_quote_the_line() {
        let err = parse("jwt_audience = \"s3cret-value\nbind = 1", "t.toml", KNOWN).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("not valid TOML"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
    }

    #[test]
    fn secrets_are_refused_in_the_file_and_their_file_forms_accepted() {
        let (pairs, problems) = parse(
            "jwt_secret = \"s3cret-value-0123456789abcdef0123\"\njwt_secret_file = \"/run/s\"\n",
            "t.toml",
            KNOWN,
        )
        .unwrap();
        assert_eq!(
            pairs,
            [("MCP_JWT_SECRET_FILE".to_owned(), "/run/s".to_owned())],
            "{problems:?}"
        );
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].setting(), "jwt_secret (in t.toml)");
        assert!(!problems[0].message().contains("s3cret"));
    }

    #[test]
    fn a_tool_table_given_as_an_array_is_refused_not_misread() {
        let (pairs, problems) = parse(
            "tool_scopes = [\"whoami=\", \"read_data=data:read\"]",
            "t.toml",
            KNOWN,
        )
        .unwrap();
        assert!(pairs.is_empty());
        assert_eq!(problems[0].setting(), "tool_scopes (in t.toml)");
    }

    #[test]
    fn unknown_keys_are_shown_escaped_and_bounded() {
        let key = format!("\"evil\\u001b[31m{}\"", "k".repeat(100));
        let (_, problems) = parse(&format!("{key} = 1"), "t.toml", KNOWN).unwrap();
        let setting = problems[0].setting();
        assert!(!setting.contains('\u{1b}'), "{setting:?}");
        assert!(setting.len() < 80, "{setting:?}");
    }

    #[test]
    fn issuer_tables_become_a_json_array_and_anything_else_is_refused() {
        let known = &["MCP_ISSUERS"];
        let (pairs, problems) = parse(
            r#"
            [[issuers]]
            issuer = "https://a.example.com"
            audience = ["x", "y"]
            leeway = 30

            [[issuers]]
            issuer = "https://login.example.com/{tenant}/v2.0"
            tenants = ["t1"]
            any_tenant = false
            "#,
            "t.toml",
            known,
        )
        .unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let json: serde_json::Value = serde_json::from_str(&pairs[0].1).unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"issuer": "https://a.example.com", "audience": ["x", "y"], "leeway": 30},
                {"issuer": "https://login.example.com/{tenant}/v2.0", "tenants": ["t1"], "any_tenant": false},
            ])
        );
        for bad in [
            "issuers = \"https://a\"",
            "issuers = [\"https://a\"]",
            "[issuers]\nissuer = \"x\"",
        ] {
            let (pairs, problems) = parse(bad, "t.toml", known).unwrap();
            assert!(pairs.is_empty(), "{bad}");
            assert_eq!(problems[0].setting(), "issuers (in t.toml)", "{bad}");
        }
    }

    #[test]
    fn upper_case_or_prefixed_keys_are_refused() {
        let (pairs, problems) = parse("BIND = \"x\"\nmcp_bind = \"y\"", "t.toml", KNOWN).unwrap();
        assert!(pairs.is_empty());
        assert_eq!(problems.len(), 2);
    }
}
