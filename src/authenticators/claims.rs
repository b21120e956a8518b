//! Claim checks shared by the JWT and introspection authenticators: time claims read through
//! the one NumericDate reader ([`numeric_date`]), one audience rule, the reasons a token's
//! claims are refused, and the bounded cache of verified answers ([`TtlCache`]).

mod cache;

use serde_json::Value;

pub(crate) use self::cache::TtlCache;
use crate::oauth::canonical_resource;
use crate::strict_json::numeric_date;

/// Why claims were refused; decides the description and the log detail.
// Introspection alone never refuses for these JWT-only reasons (`iat`, key-bound issuers,
// tenants, required claims, the claims hook).
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClaimError {
    Expired,
    NotYetValid,
    IssuedInFuture,
    BadIssuer,
    /// The token's tenant claim (Entra `tid`) does not name the tenant of its issuer.
    TenantMismatch,
    BadAudience,
    Malformed(&'static str),
    MissingClaim,
    Rejected,
}

impl ClaimError {
    /// The log detail (never sent to the client).
    pub(crate) fn detail(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::IssuedInFuture => "iat_in_future",
            Self::BadIssuer => "issuer_mismatch",
            Self::TenantMismatch => "tenant_mismatch",
            Self::BadAudience => "audience_mismatch",
            Self::Malformed(d) => d,
            Self::MissingClaim => "required_claim_missing",
            Self::Rejected => "claims_check_failed",
        }
    }
}

/// Checks `exp`: a NumericDate, and the current time (`now`, seconds since the epoch) before
/// it plus `leeway` seconds (RFC 7519 §4.1.4). Returns it.
pub(crate) fn check_exp(v: &Value, now: u64, leeway: u64) -> Result<u64, ClaimError> {
    let exp = numeric_date(v).ok_or(ClaimError::Malformed("bad_exp"))?;
    if now >= exp.saturating_add(leeway) {
        return Err(ClaimError::Expired);
    }
    Ok(exp)
}

/// Checks `nbf`: a NumericDate not after `now` plus `leeway`.
pub(crate) fn check_nbf(v: &Value, now: u64, leeway: u64) -> Result<(), ClaimError> {
    not_after(
        v,
        now.saturating_add(leeway),
        "bad_nbf",
        ClaimError::NotYetValid,
    )
}

/// Checks `iat`: a NumericDate not after `now` plus `leeway` (JWT only: introspection
/// answers' `iat` is informational).
#[cfg_attr(not(feature = "jwt"), allow(dead_code))]
pub(crate) fn check_iat(v: &Value, now: u64, leeway: u64) -> Result<(), ClaimError> {
    not_after(
        v,
        now.saturating_add(leeway),
        "bad_iat",
        ClaimError::IssuedInFuture,
    )
}

fn not_after(v: &Value, limit: u64, bad: &'static str, late: ClaimError) -> Result<(), ClaimError> {
    let t = numeric_date(v).ok_or(ClaimError::Malformed(bad))?;
    if t > limit { Err(late) } else { Ok(()) }
}

/// The audiences a token names (`aud`: one string, or an array of strings), provided one of
/// them is in `accepted` once canonicalised ([`canonical_resource`]; `accepted` holds
/// canonical forms).
///
/// # Errors
///
/// [`ClaimError::Malformed`] (`bad_aud`) for any other type (a number, an object, `null`,
/// an array holding a non-string); [`ClaimError::BadAudience`] when `aud` is missing, empty,
/// or names no accepted audience.
pub(crate) fn audience_bound<'v>(
    aud: Option<&'v Value>,
    accepted: &[String],
) -> Result<Vec<&'v str>, ClaimError> {
    let named: Vec<&str> = match aud {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().ok_or(ClaimError::Malformed("bad_aud")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ClaimError::Malformed("bad_aud")),
        None => Vec::new(),
    };
    if named
        .iter()
        .any(|a| accepted.contains(&canonical_resource(a)))
    {
        Ok(named)
    } else {
        Err(ClaimError::BadAudience)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use serde_json::json;

    use super::*;
    use crate::context::{AuthContext, AuthMethod};
    use crate::store::TokenFacts;

    const AUD: &str = "https://mcp.example.com/mcp";

    fn accepted() -> Vec<String> {
        vec![canonical_resource(AUD)]
    }

    #[test]
    fn audience_is_a_string_or_an_array_of_strings_naming_an_accepted_one() {
        let v = json!("HTTPS://MCP.example.com/mcp/");
        assert_eq!(
            audience_bound(Some(&v), &accepted()),
            Ok(vec!["HTTPS://MCP.example.com/mcp/"])
        );
        let v = json!(["https://other", AUD]);
        assert_eq!(
            audience_bound(Some(&v), &accepted()),
            Ok(vec!["https://other", AUD])
        );
        for other in [json!("https://other"), json!([]), json!(["https://other"])] {
            assert_eq!(
                audience_bound(Some(&other), &accepted()),
                Err(ClaimError::BadAudience),
                "{other}"
            );
        }
        assert_eq!(
            audience_bound(None, &accepted()),
            Err(ClaimError::BadAudience)
        );
    }

    #[test]
    fn audience_of_a_wrong_type_is_malformed_even_next_to_a_match() {
        for bad in [
            json!(123),
            json!({"a": 1}),
            json!(null),
            json!(true),
            json!([1, 2]),
            json!([AUD, 1]),
            json!([AUD, null]),
        ] {
            assert_eq!(
                audience_bound(Some(&bad), &accepted()),
                Err(ClaimError::Malformed("bad_aud")),
                "{bad}"
            );
        }
    }

    #[test]
    fn time_claims_use_the_leeway() {
        let now = 1_800_000_000;
        assert_eq!(check_exp(&json!(now - 30), now, 60), Ok(now - 30));
        assert_eq!(
            check_exp(&json!(now - 60), now, 60),
            Err(ClaimError::Expired)
        );
        assert_eq!(check_nbf(&json!(now + 60), now, 60), Ok(()));
        assert_eq!(
            check_nbf(&json!(now + 61), now, 60),
            Err(ClaimError::NotYetValid)
        );
        assert_eq!(
            check_iat(&json!(now + 61), now, 60),
            Err(ClaimError::IssuedInFuture)
        );
        assert_eq!(
            check_exp(&json!(u64::MAX), now, u64::MAX),
            Err(ClaimError::Malformed("bad_exp"))
        );
        assert_eq!(check_nbf(&json!(0), u64::MAX, u64::MAX), Ok(()));
    }

    /// The JWT and introspection checks (`check_exp`, `check_nbf`, `check_iat`) and the
    /// revocation facts (`TokenFacts::of`) read the same values the same way.
    #[test]
    fn jwt_introspection_and_revocation_read_numeric_dates_alike() {
        let values = [
            json!(1_700_000_000u64),
            json!(1_700_000_000.75),
            json!(1u64 << 53),
            json!((1u64 << 53) + 1),
            json!(9.2e18),
            json!(u64::MAX),
            json!(-1),
            json!(-0.5),
            json!("1700000000"),
            json!(null),
        ];
        for v in values {
            let read = numeric_date(&v);
            // Far in the past and future, so only the reading decides.
            let (past, future) = (0, u64::MAX >> 1);
            assert_eq!(check_exp(&v, past, 0).ok(), read, "exp {v}");
            assert_eq!(check_nbf(&v, future, 0).is_ok(), read.is_some(), "nbf {v}");
            assert_eq!(check_iat(&v, future, 0).is_ok(), read.is_some(), "iat {v}");
            let mut claims = serde_json::Map::new();
            claims.insert("iat".into(), v.clone());
            let ctx = AuthContext::builder("alice", AuthMethod::Jwt)
                .claims(claims)
                .build();
            assert_eq!(
                TokenFacts::of(&ctx).issued_at,
                read.map(|s| UNIX_EPOCH + Duration::from_secs(s)),
                "revocation iat {v}"
            );
        }
    }
}
