//! Tests of the environment syntax and the digest table together: every message is checked
//! for what it must never show.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::table::Lookup;
use super::timestamp::parse_timestamp;
use super::*;
use crate::authenticators::header::is_visible_ascii;
use crate::context::AuthMethod;
use crate::env::SecretOrigin;
use crate::error::ConfigError;

/// Reads `value` (a list from the variable, or a file's text) into an empty API key table.
fn read(setting: &str, value: &str, origin: SecretOrigin) -> Result<(), ConfigError> {
    let mut t = CredentialTable::new(AuthMethod::ApiKey, "api-key");
    t.insert_setting(setting, value, origin, is_visible_ascii)
}

/// The message of parsing `value` as a list or a file's text, which must fail.
fn parse_error(setting: &str, value: &str, origin: SecretOrigin) -> String {
    let parsed = match origin {
        SecretOrigin::Variable => Credential::parse_list(setting, value),
        SecretOrigin::File => Credential::parse_lines(setting, value),
    };
    parsed.unwrap_err().to_string()
}

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
    let list = Credential::parse_list("V", " aaaaaaaaaaaaaaaa ;sub = bob ; scopes=a b\n").unwrap();
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
    let err = read(
        "V",
        "tiny, ,aaaaaaaaaaaaaaaa;exp=never,bbbbbbbbbbbbbbbb,bbbbbbbbbbbbbbbb",
        SecretOrigin::Variable,
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
    let err = read(
        "MCP_API_KEYS",
        "QJW-half,QJWQJWQJW-other-half",
        SecretOrigin::Variable,
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
        let text = parse_error("MCP_API_KEYS", list, SecretOrigin::Variable);
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
                let mut errors = Vec::new();
                errors.extend(read("V", &value, SecretOrigin::Variable).err());
                errors.extend(read("V", &value, SecretOrigin::File).err());
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
    t.insert_setting("F", text, SecretOrigin::File, is_visible_ascii)
        .unwrap();
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
        let text = parse_error("F", line, SecretOrigin::File);
        assert!(
            text.contains("F: line 1: the secret contains `;name=`"),
            "{text}"
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
    let err = read(
        "F",
        "aaaaaaaaaaaaaaaa\n\ntiny\naaaaaaaaaaaaaaaa\nbbbbbbbbbbbbbbbb sub=a b",
        SecretOrigin::File,
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
