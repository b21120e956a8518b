use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::*;
use crate::context::AuthContext;
use crate::oauth::canonical_resource as canonical_audience;

fn rules() -> ClaimRules {
    ClaimRules {
        audiences: vec![canonical_audience("https://mcp.example.com/mcp")],
        leeway: Duration::from_secs(60),
        required: vec![],
    }
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn base() -> Map<String, Value> {
    serde_json::from_value(serde_json::json!({
        "sub": "alice", "iss": "https://as.example.com", "aud": "https://mcp.example.com/mcp",
        "exp": 1_800_000_600u64, "iat": 1_800_000_000u64
    }))
    .unwrap()
}

fn run(c: Map<String, Value>, mapping: &ClaimMapping) -> Result<(AuthContext, u64), ClaimError> {
    let text = serde_json::to_string(&c).unwrap();
    let reg = parse_claims(text.as_bytes(), mapping, &[]).expect("parses");
    let issuers = Issuers::OneOf(vec!["https://as.example.com".into()]);
    check_and_map(
        reg,
        text,
        &rules(),
        Expected::Keys(&issuers),
        mapping,
        now(),
    )
}

fn check(edit: impl FnOnce(&mut Map<String, Value>)) -> Result<AuthContext, ClaimError> {
    let mut c = base();
    edit(&mut c);
    run(c, &ClaimMapping::default()).map(|(ctx, _)| ctx)
}

#[test]
fn duplicate_members_are_refused() {
    let m = ClaimMapping::default();
    assert!(parse_claims(br#"{"scope":"a","scope":"a b"}"#, &m, &[]).is_none());
    assert!(parse_claims(br#"{"tenant":1,"tenant":2}"#, &m, &[]).is_none());
    assert!(parse_claims(br#"{"t\u0065nant":1,"tenant":2}"#, &m, &[]).is_none());
    assert!(parse_claims(br#"{"scope":"a"}"#, &m, &[]).is_some());
    assert!(parse_claims(b"[1]", &m, &[]).is_none());
    assert!(parse_claims(br#"{"a":1} {"b":2}"#, &m, &[]).is_none());
    assert!(serde_json::from_str::<Header<'_>>(r#"{"alg":"HS256","alg":"none"}"#).is_err());
}

#[test]
fn audience_canonicalisation_lowercases_scheme_and_host_only() {
    assert_eq!(
        canonical_audience("HTTPS://MCP.Example.COM/Mcp/"),
        "https://mcp.example.com/Mcp"
    );
    assert_eq!(
        canonical_audience("https://mcp.example.com"),
        "https://mcp.example.com"
    );
    assert_eq!(canonical_audience("api://Default"), "api://default");
    assert_eq!(canonical_audience("My-API"), "My-API");
}

#[test]
fn audience_near_misses_are_refused() {
    for aud in [
        "https://mcp.example.com.evil.com/mcp",
        "https://mcp.example.com/other",
        "https://mcp.example.com@evil/mcp",
        "https://mcp.example.com",
    ] {
        assert_eq!(
            check(|c| {
                c.insert("aud".into(), aud.into());
            })
            .unwrap_err(),
            ClaimError::BadAudience,
            "{aud}"
        );
    }
    for aud in [
        "https://MCP.example.com/mcp/",
        "HTTPS://mcp.example.com/mcp",
    ] {
        assert!(
            check(|c| {
                c.insert("aud".into(), aud.into());
            })
            .is_ok(),
            "{aud}"
        );
    }
    let arr = serde_json::json!(["https://other", "https://mcp.example.com/mcp"]);
    assert!(
        check(|c| {
            c.insert("aud".into(), arr);
        })
        .is_ok()
    );
}

#[test]
fn audience_of_wrong_type_or_missing_is_refused() {
    for aud in [
        serde_json::json!(123),
        serde_json::json!({"a": 1}),
        serde_json::json!(null),
        serde_json::json!([1, 2]),
    ] {
        assert!(
            check(|c| {
                c.insert("aud".into(), aud);
            })
            .is_err()
        );
    }
    assert_eq!(
        check(|c| {
            c.remove("aud");
        })
        .unwrap_err(),
        ClaimError::BadAudience
    );
    assert_eq!(
        check(|c| {
            c.insert("aud".into(), serde_json::json!([]));
        })
        .unwrap_err(),
        ClaimError::BadAudience
    );
}

#[test]
fn time_claims_are_checked_with_leeway() {
    let t = 1_800_000_000u64;
    assert!(
        check(|c| {
            c.insert("exp".into(), (t - 30).into());
        })
        .is_ok()
    );
    assert_eq!(
        check(|c| {
            c.insert("exp".into(), (t - 90).into());
        })
        .unwrap_err(),
        ClaimError::Expired
    );
    assert_eq!(
        check(|c| {
            c.insert("nbf".into(), (t + 3600).into());
        })
        .unwrap_err(),
        ClaimError::NotYetValid
    );
    assert_eq!(
        check(|c| {
            c.insert("iat".into(), (t + 86_400).into());
        })
        .unwrap_err(),
        ClaimError::IssuedInFuture
    );
    for bad in [
        serde_json::json!("1999999999"),
        serde_json::json!(-1),
        serde_json::json!(1e300),
        serde_json::json!(null),
    ] {
        assert!(
            check(|c| {
                c.insert("exp".into(), bad);
            })
            .is_err()
        );
    }
    assert!(
        check(|c| {
            c.remove("exp");
        })
        .is_err()
    );
    assert!(
        check(|c| {
            c.insert("nbf".into(), "99999999999".into());
        })
        .is_err()
    );
}

#[test]
fn issuer_must_be_an_exact_string() {
    assert_eq!(
        check(|c| {
            c.insert("iss".into(), "https://as.example.com/".into());
        })
        .unwrap_err(),
        ClaimError::BadIssuer
    );
    assert_eq!(
        check(|c| {
            c.remove("iss");
        })
        .unwrap_err(),
        ClaimError::BadIssuer
    );
    assert!(
        check(|c| {
            c.insert("iss".into(), 123.into());
        })
        .is_err()
    );
    let arr = serde_json::json!(["https://evil", "https://as.example.com"]);
    assert!(
        check(|c| {
            c.insert("iss".into(), arr);
        })
        .is_err()
    );
}

#[test]
fn subject_is_required() {
    assert!(
        check(|c| {
            c.remove("sub");
        })
        .is_err()
    );
    assert!(
        check(|c| {
            c.insert("sub".into(), 5.into());
        })
        .is_err()
    );
}

#[test]
fn scopes_come_from_scope_and_scp_and_roles_from_paths() {
    let mut c = base();
    c.insert("scope".into(), "read  write".into());
    c.insert("scp".into(), serde_json::json!(["admin"]));
    c.insert("permissions".into(), serde_json::json!(["perm:x"]));
    c.insert(
        "realm_access".into(),
        serde_json::json!({"roles": ["editor"]}),
    );
    c.insert("azp".into(), "client-1".into());
    let mapping = ClaimMapping {
        role_paths: vec!["realm_access.roles".into()],
        permissions_as_scopes: true,
        tenant_claim: None,
    };
    let (ctx, _) = run(c, &mapping).unwrap();
    assert_eq!(ctx.scopes().to_space_separated(), "admin perm:x read write");
    assert!(ctx.has_role("editor"));
    assert_eq!(ctx.client_id(), Some("client-1"));
    assert_eq!(ctx.principal(), "https://as.example.com|alice|client-1");
    assert!(ctx.claims().unwrap().contains_key("realm_access"));
}

#[test]
fn non_string_scope_is_refused() {
    assert!(
        check(|c| {
            c.insert("scope".into(), serde_json::json!(["read"]));
        })
        .is_err()
    );
}

#[test]
fn the_unverified_issuer_is_read_with_the_parsers_rules() {
    assert_eq!(
        unverified_issuer(br#"{"sub":"a","iss":"https://as.example.com"}"#),
        Ok(Some("https://as.example.com".to_owned()))
    );
    assert_eq!(unverified_issuer(br#"{"sub":"a"}"#), Ok(None));
    assert_eq!(unverified_issuer(br#"{"iss":1}"#), Err("bad_iss"));
    assert_eq!(unverified_issuer(br#"{"iss":["a","b"]}"#), Err("bad_iss"));
    // A second `iss`, also one spelled with an escape, refuses the token.
    assert_eq!(
        unverified_issuer(br#"{"iss":"a","iss":"b"}"#),
        Err("bad_claims")
    );
    assert_eq!(
        unverified_issuer(br#"{"i\u0073s":"a","iss":"b"}"#),
        Err("bad_claims")
    );
    for bad in [
        &b"[1]"[..],
        b"{\"iss\":\"a\"} {}",
        b"{\"iss\":\"a\"",
        b"\"iss\"",
        b"",
    ] {
        assert_eq!(unverified_issuer(bad), Err("bad_claims"), "{bad:?}");
    }
    // Other members are skipped unread: their duplicates refuse the token once its claims are
    // parsed, after the signature check.
    assert_eq!(
        unverified_issuer(br#"{"sub":"a","sub":"b","iss":"x"}"#),
        Ok(Some("x".to_owned()))
    );
    assert!(
        parse_claims(
            br#"{"sub":"a","sub":"b","iss":"x"}"#,
            &ClaimMapping::default(),
            &[]
        )
        .is_none()
    );
}

fn routed(
    c: Map<String, Value>,
    iss: &str,
    tenant: Option<&str>,
    claim: Option<&str>,
) -> Result<AuthContext, ClaimError> {
    let mapping = ClaimMapping {
        tenant_claim: claim.map(str::to_owned),
        ..ClaimMapping::default()
    };
    let text = serde_json::to_string(&c).unwrap();
    let reg = parse_claims(text.as_bytes(), &mapping, &[]).expect("parses");
    check_and_map(
        reg,
        text,
        &rules(),
        Expected::Routed { iss, tenant },
        &mapping,
        now(),
    )
    .map(|(ctx, _)| ctx)
}

#[test]
fn a_routed_token_must_carry_exactly_the_issuer_it_was_routed_by() {
    let ctx = routed(base(), "https://as.example.com", None, None).unwrap();
    assert_eq!(ctx.issuer(), Some("https://as.example.com"));
    assert_eq!(ctx.tenant(), None);
    for other in ["https://as.example.com/", "https://other.example.com", ""] {
        assert_eq!(
            routed(base(), other, None, None).unwrap_err(),
            ClaimError::BadIssuer
        );
    }
    let mut no_iss = base();
    no_iss.remove("iss");
    assert_eq!(
        routed(no_iss, "https://as.example.com", None, None).unwrap_err(),
        ClaimError::BadIssuer
    );
}

#[test]
fn the_tenant_claim_must_name_the_tenant_of_the_issuer() {
    const ISS: &str = "https://login.example.com/t-1/v2.0";
    let with = |tid: Option<Value>| {
        let mut c = base();
        c.insert("iss".into(), ISS.into());
        if let Some(t) = tid {
            c.insert("tid".into(), t);
        }
        c
    };
    let ctx = routed(with(Some("t-1".into())), ISS, Some("t-1"), Some("tid")).unwrap();
    assert_eq!(ctx.tenant(), Some("t-1"));
    assert_eq!(ctx.issuer(), Some(ISS));
    for tid in [
        Some("t-2".into()),
        Some(Value::from(1)),
        Some(Value::Null),
        None,
    ] {
        assert_eq!(
            routed(with(tid.clone()), ISS, Some("t-1"), Some("tid")).unwrap_err(),
            ClaimError::TenantMismatch,
            "{tid:?}"
        );
    }
    // Without a tenant claim configured, the tenant comes from the issuer alone.
    let ctx = routed(with(Some("t-2".into())), ISS, Some("t-1"), None).unwrap();
    assert_eq!(ctx.tenant(), Some("t-1"));
    // A duplicate tenant claim is a duplicate member like any other.
    let dup = br#"{"tid":"t-1","tid":"t-2"}"#;
    let mapping = ClaimMapping {
        tenant_claim: Some("tid".into()),
        ..ClaimMapping::default()
    };
    assert!(parse_claims(dup, &mapping, &[]).is_none());
}
