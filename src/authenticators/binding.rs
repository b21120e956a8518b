//! Sender-constrained access tokens: reading `cnf` (RFC 7800) and the checks every token
//! authenticator makes with it.
//!
//! - A token bound to a client certificate (`cnf.x5t#S256`, RFC 8705 §3) is accepted only on
//!   a request whose [`ClientCertificate`] has that thumbprint, whatever the scheme.
//! - A token bound to a DPoP key (`cnf.jkt`, RFC 9449 §6) is never accepted as a plain bearer
//!   token (§7.2: the "downgrade"); only the DPoP authenticator, which checks the proof, may
//!   accept it.
//! - A `cnf` naming a proof-of-possession method this crate cannot check (`jwk`, `jwe`, `jku`,
//!   `kid`) refuses the token: a binding that cannot be enforced must not be ignored.

use http::Extensions;
use serde_json::Value;

use super::claims::ClaimError;
use crate::context::{AuthContext, Confirmation};
use crate::error::AuthError;
use crate::request_info::ClientCertificate;

/// Longest thumbprint accepted in `cnf` (a SHA-256 thumbprint is 43 characters).
const MAX_THUMBPRINT_LEN: usize = 128;

/// `cnf` members that bind a token to a key this crate has no way to check.
const UNCHECKABLE: [&str; 4] = ["jwk", "jwe", "jku", "kid"];

/// The confirmation of a token from its `cnf` claim (absent: unbound).
///
/// # Errors
///
/// [`ClaimError::Malformed`] (`bad_cnf`) when `cnf` is not an object, a thumbprint is not a
/// short base64url string, or it names a method this crate cannot check.
pub(crate) fn confirmation(cnf: Option<&Value>) -> Result<Confirmation, ClaimError> {
    let Some(cnf) = cnf else {
        return Ok(Confirmation::default());
    };
    let Value::Object(members) = cnf else {
        return Err(ClaimError::Malformed("bad_cnf"));
    };
    if UNCHECKABLE.iter().any(|m| members.contains_key(*m)) {
        return Err(ClaimError::Malformed("cnf_method_unsupported"));
    }
    let mut out = Confirmation::default();
    if let Some(v) = members.get("jkt") {
        out = out.with_jkt(thumbprint(v)?);
    }
    if let Some(v) = members.get("x5t#S256") {
        out = out.with_x5t_s256(thumbprint(v)?);
    }
    Ok(out)
}

fn thumbprint(v: &Value) -> Result<&str, ClaimError> {
    match v {
        Value::String(s)
            if !s.is_empty()
                && s.len() <= MAX_THUMBPRINT_LEN
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(s)
        }
        _ => Err(ClaimError::Malformed("bad_cnf")),
    }
}

/// A certificate-bound token must come with its certificate.
///
/// # Errors
///
/// 401 `invalid_token` when the token names a certificate and the request has none, or
/// another one.
pub(crate) fn check_certificate(ctx: &AuthContext, ext: &Extensions) -> Result<(), AuthError> {
    let Some(want) = ctx.confirmation().x5t_s256() else {
        return Ok(());
    };
    match ext.get::<ClientCertificate>() {
        Some(cert) if cert.x5t_s256() == want => Ok(()),
        Some(_) => Err(AuthError::invalid_token(
            "the access token is bound to another client certificate",
        )
        .with_detail("certificate_mismatch")),
        None => Err(AuthError::invalid_token(
            "the access token is bound to a client certificate the request did not present",
        )
        .with_detail("certificate_missing")),
    }
}

/// The checks for a token presented with the `Bearer` scheme: not DPoP-bound, and its
/// certificate present if it is certificate-bound.
///
/// # Errors
///
/// 401 `invalid_token` for a DPoP-bound token, or a certificate mismatch.
pub(crate) fn check_bearer_use(ctx: &AuthContext, ext: &Extensions) -> Result<(), AuthError> {
    refuse_dpop_bound(ctx)?;
    check_certificate(ctx, ext)
}

/// A DPoP-bound token cannot be a bearer token (RFC 9449 §7.2).
///
/// # Errors
///
/// 401 `invalid_token` when the token has `cnf.jkt`.
pub(crate) fn refuse_dpop_bound(ctx: &AuthContext) -> Result<(), AuthError> {
    if ctx.confirmation().jkt().is_some() {
        return Err(AuthError::invalid_token(
            "the access token is DPoP-bound: send it with the DPoP scheme and a proof",
        )
        .with_detail("dpop_bound_token_as_bearer"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::context::AuthMethod;

    const JKT: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    #[test]
    fn cnf_reads_jkt_and_x5t() {
        let c = confirmation(Some(&json!({"jkt": JKT, "x5t#S256": "abc_-1"}))).unwrap();
        assert_eq!(c.jkt(), Some(JKT));
        assert_eq!(c.x5t_s256(), Some("abc_-1"));
        assert_eq!(confirmation(None).unwrap(), Confirmation::default());
        // Unknown members are ignored; an empty object binds nothing.
        assert!(!confirmation(Some(&json!({"foo": 1}))).unwrap().is_bound());
    }

    #[test]
    fn cnf_of_a_wrong_shape_or_an_uncheckable_method_refuses() {
        for bad in [
            json!("x"),
            json!([JKT]),
            json!({"jkt": 1}),
            json!({"jkt": ""}),
            json!({"jkt": "a b"}),
            json!({"jkt": "x".repeat(129)}),
            json!({"x5t#S256": "a+b/"}),
            json!({"jwk": {"kty": "EC"}}),
            json!({"kid": "k1"}),
            json!({"jku": "https://x"}),
            json!({"jwe": "a.b.c.d.e"}),
        ] {
            assert!(confirmation(Some(&bad)).is_err(), "{bad}");
        }
    }

    fn ctx(cnf: Confirmation) -> AuthContext {
        AuthContext::builder("alice", AuthMethod::Jwt)
            .confirmation(cnf)
            .build()
    }

    #[test]
    fn a_dpop_bound_token_is_refused_as_bearer() {
        let ext = Extensions::new();
        assert!(check_bearer_use(&ctx(Confirmation::default()), &ext).is_ok());
        let err = check_bearer_use(&ctx(Confirmation::default().with_jkt(JKT)), &ext).unwrap_err();
        assert_eq!(err.detail(), Some("dpop_bound_token_as_bearer"));
        assert_eq!(err.kind(), crate::AuthErrorKind::InvalidToken);
    }

    #[test]
    fn a_certificate_bound_token_needs_that_certificate() {
        let cert = ClientCertificate::from_der(b"cert-a".to_vec());
        let other = ClientCertificate::from_der(b"cert-b".to_vec());
        let bound = ctx(Confirmation::default().with_x5t_s256(cert.x5t_s256()));
        let mut ext = Extensions::new();
        assert_eq!(
            check_certificate(&bound, &ext).unwrap_err().detail(),
            Some("certificate_missing")
        );
        ext.insert(other);
        assert_eq!(
            check_certificate(&bound, &ext).unwrap_err().detail(),
            Some("certificate_mismatch")
        );
        ext.insert(cert);
        assert!(check_certificate(&bound, &ext).is_ok());
        assert!(check_bearer_use(&bound, &ext).is_ok());
        // An unbound token needs no certificate.
        assert!(check_certificate(&ctx(Confirmation::default()), &Extensions::new()).is_ok());
    }
}
