//! Authentication step-up (RFC 9470): a rule may ask for an authentication context class
//! (`acr`) and/or a recent authentication (`auth_time` within `max_age`), read from the
//! caller's token claims (JWT claims, or the introspection answer). Checked after the scopes:
//! a caller missing a scope gets the 403 first; one with the scopes but a weak or old login
//! gets 401 `insufficient_user_authentication` naming what to authenticate with.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::requirement::Requirement;
use crate::context::AuthContext;
use crate::error::AuthError;
use crate::strict_json::numeric_date;

/// How far in the future an `auth_time` may be (clock differences), in seconds.
const AUTH_TIME_SKEW: u64 = 60;

/// Whether `ctx` authenticated as `rule` asks: `acr` one of the rule's values, `auth_time` at
/// most `max_age` seconds before `now` (and not in the future beyond a minute).
fn authenticated_enough(ctx: &AuthContext, rule: &Requirement, now: u64) -> bool {
    let claims = ctx.claims();
    let claim = |name: &str| claims.and_then(|c| c.get(name));
    let acr_ok = rule.acr.is_empty()
        || claim("acr")
            .and_then(Value::as_str)
            .is_some_and(|acr| rule.acr.iter().any(|want| want == acr));
    let age_ok = rule.max_age.is_none_or(|max| {
        claim("auth_time").and_then(numeric_date).is_some_and(|at| {
            at <= now.saturating_add(AUTH_TIME_SKEW) && now.saturating_sub(at) <= max
        })
    });
    acr_ok && age_ok
}

/// Checks the step-up parts of `rules` for `ctx`.
///
/// # Errors
///
/// [`AuthError::insufficient_user_authentication`] naming the `acr` values of the first rule
/// not met that asks for some, and the smallest `max_age` of the rules not met.
pub(super) fn check(ctx: &AuthContext, rules: &[&Requirement]) -> Result<(), AuthError> {
    // The common case: no rule asks for step-up, nothing to read (not even the clock).
    if !rules.iter().any(|r| r.asks_step_up()) {
        return Ok(());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let unmet: Vec<&Requirement> = rules
        .iter()
        .copied()
        .filter(|r| r.asks_step_up() && !authenticated_enough(ctx, r, now))
        .collect();
    if unmet.is_empty() {
        return Ok(());
    }
    let acr = unmet
        .iter()
        .find(|r| !r.acr.is_empty())
        .map(|r| r.acr.clone())
        .unwrap_or_default();
    let max_age = unmet.iter().filter_map(|r| r.max_age).min();
    Err(AuthError::insufficient_user_authentication(acr, max_age).with_detail("step_up"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::context::AuthMethod;
    use crate::error::AuthErrorKind;

    fn caller(claims: Value) -> AuthContext {
        let Value::Object(map) = claims else {
            unreachable!()
        };
        AuthContext::builder("alice", AuthMethod::Jwt)
            .claims(map)
            .build()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn acr_must_be_one_of_the_rules_values() {
        let rule = Requirement::default().and_acr(["urn:mfa", "urn:hwk"]);
        assert!(check(&caller(json!({"acr": "urn:mfa"})), &[&rule]).is_ok());
        assert!(check(&caller(json!({"acr": "urn:hwk"})), &[&rule]).is_ok());
        for weak in [json!({"acr": "urn:pwd"}), json!({}), json!({"acr": 2})] {
            let err = check(&caller(weak.clone()), &[&rule]).unwrap_err();
            assert_eq!(
                err.kind(),
                AuthErrorKind::InsufficientUserAuthentication,
                "{weak}"
            );
            assert_eq!(err.acr_values(), ["urn:mfa", "urn:hwk"]);
            assert_eq!(err.max_age(), None);
        }
        // A credential without claims (an API key) never satisfies it.
        let key = AuthContext::builder("ci", AuthMethod::ApiKey).build();
        assert!(check(&key, &[&rule]).is_err());
    }

    #[test]
    fn auth_time_must_be_recent_enough() {
        let rule = Requirement::default().and_max_age(Duration::from_secs(300));
        assert!(check(&caller(json!({"auth_time": now() - 100})), &[&rule]).is_ok());
        for old in [
            json!({"auth_time": now() - 301}),
            json!({}),
            json!({"auth_time": "x"}),
            json!({"auth_time": now() + 3600}),
        ] {
            let err = check(&caller(old.clone()), &[&rule]).unwrap_err();
            assert_eq!(err.max_age(), Some(300), "{old}");
            assert!(err.acr_values().is_empty());
        }
    }

    #[test]
    fn several_rules_ask_for_the_strictest_age_and_rules_without_step_up_pass() {
        let a = Requirement::default().and_max_age(Duration::from_secs(600));
        let b = Requirement::default()
            .and_acr(["urn:mfa"])
            .and_max_age(Duration::from_secs(60));
        let plain = Requirement::all(["data:read"]);
        let err = check(
            &caller(json!({"auth_time": now() - 1000})),
            &[&plain, &a, &b],
        )
        .unwrap_err();
        assert_eq!(err.max_age(), Some(60));
        assert_eq!(err.acr_values(), ["urn:mfa"]);
        assert!(check(&caller(json!({})), &[&plain]).is_ok());
    }
}
