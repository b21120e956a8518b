//! Judging an introspection answer (RFC 7662 §2.2): `active`, the token type, `exp` and
//! `nbf` (the shared NumericDate and time checks), the audience (the shared audience rule),
//! the issuer, the subject, the binding (`cnf`), then the context.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use super::IntrospectionAuthenticator;
use crate::authenticators::binding::confirmation;
use crate::authenticators::claims::{ClaimError, audience_bound, check_exp, check_nbf};
use crate::context::{AuthContext, AuthMethod, Confirmation};
use crate::error::AuthError;

pub(super) fn invalid(detail: &'static str) -> AuthError {
    AuthError::invalid_token("invalid access token").with_detail(detail)
}

/// The refusal for a failed claim check.
fn refusal(e: ClaimError) -> AuthError {
    match e {
        ClaimError::Expired => {
            AuthError::expired("the access token has expired").with_detail("expired")
        }
        other => invalid(other.detail()),
    }
}

/// Whole seconds since the epoch, rounded down (0 before it).
fn floor_secs(t: Option<SystemTime>) -> Option<u64> {
    t.map(|t| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()))
}

impl IntrospectionAuthenticator {
    /// The caller's context from an introspection answer, or why the token is refused.
    pub(super) fn judge(
        &self,
        answer: Map<String, Value>,
        now: SystemTime,
    ) -> Result<AuthContext, AuthError> {
        let inner = &*self.inner;
        check_active(&answer)?;
        let exp = check_times(&answer, now, inner.settings.leeway)?;
        let audiences: Vec<String> = audience_bound(answer.get("aud"), &inner.settings.audiences)
            .map_err(refusal)?
            .into_iter()
            .map(str::to_owned)
            .collect();
        check_issuer(&answer, &inner.settings.issuers)?;
        let subject = subject(&answer, inner.settings.client_id_as_subject)?.to_owned();
        let cnf = confirmation(answer.get("cnf")).map_err(refusal)?;
        Ok(into_context(answer, subject, audiences, exp, cnf))
    }
}

/// `active: true`, and not a refresh token.
fn check_active(answer: &Map<String, Value>) -> Result<(), AuthError> {
    if answer.get("active") != Some(&Value::Bool(true)) {
        return Err(invalid("inactive"));
    }
    if answer
        .get("token_type")
        .and_then(|v| v.as_str())
        .is_some_and(|t| t.eq_ignore_ascii_case("refresh_token"))
    {
        return Err(invalid("refresh_token"));
    }
    Ok(())
}

/// `exp` and `nbf` when present, with leeway; returns `exp`. Exact to the sub-second: the
/// token is expired when `exp + leeway <= now`, not yet valid when `nbf > now + leeway`.
fn check_times(
    answer: &Map<String, Value>,
    now: SystemTime,
    leeway: Duration,
) -> Result<Option<u64>, AuthError> {
    let exp = match answer.get("exp") {
        // `exp <= now - leeway`, for a whole-second `exp`.
        Some(v) => {
            let before = floor_secs(now.checked_sub(leeway)).unwrap_or(0);
            Some(check_exp(v, before, 0).map_err(refusal)?)
        }
        None => None,
    };
    if let Some(v) = answer.get("nbf") {
        // `nbf > now + leeway`, for a whole-second `nbf`.
        let after = floor_secs(now.checked_add(leeway)).unwrap_or(u64::MAX);
        check_nbf(v, after, 0).map_err(refusal)?;
    }
    Ok(exp)
}

/// `iss`, when the answer carries one and issuers are configured, must be one of them.
fn check_issuer(answer: &Map<String, Value>, issuers: &[String]) -> Result<(), AuthError> {
    if let Some(iss) = answer.get("iss").and_then(|v| v.as_str())
        && !issuers.is_empty()
        && !issuers.iter().any(|i| i == iss)
    {
        return Err(invalid("issuer_mismatch"));
    }
    Ok(())
}

/// `sub`; or, for client-credentials tokens without one, the `client_id`, but only when
/// configured (client ids and user subjects may collide).
fn subject(answer: &Map<String, Value>, client_id_as_subject: bool) -> Result<&str, AuthError> {
    answer
        .get("sub")
        .and_then(|v| v.as_str())
        .or_else(|| {
            answer
                .get("client_id")
                .and_then(|v| v.as_str())
                .filter(|_| client_id_as_subject)
        })
        .ok_or_else(|| invalid("no_subject"))
}

/// The context: subject, scopes, audiences, client, issuer, expiry, the binding, and the
/// whole answer as its claims.
fn into_context(
    answer: Map<String, Value>,
    subject: String,
    audiences: Vec<String>,
    exp: Option<u64>,
    cnf: Confirmation,
) -> AuthContext {
    let scopes = answer
        .get("scope")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .split_ascii_whitespace();
    let mut b = AuthContext::builder(subject, AuthMethod::Introspection)
        .confirmation(cnf)
        .scopes(scopes)
        .audience(audiences);
    if let Some(c) = answer.get("client_id").and_then(|v| v.as_str()) {
        b = b.client_id(c);
    }
    if let Some(i) = answer.get("iss").and_then(|v| v.as_str()) {
        b = b.issuer(i);
    }
    // `exp` is at most 2^53 (`numeric_date`), which a `SystemTime` holds; checked anyway.
    if let Some(t) = exp.and_then(|s| UNIX_EPOCH.checked_add(Duration::from_secs(s))) {
        b = b.expires_at(t);
    }
    b.claims(answer).build()
}
