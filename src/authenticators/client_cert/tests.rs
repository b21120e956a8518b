use rcgen::{CertificateParams, DnType, KeyPair, SanType};

use super::*;

/// A self-signed certificate with these SANs and CN (the chain is not this module's
/// business: the TLS acceptor verified it).
fn cert(sans: Vec<SanType>, cn: Option<&str>) -> ClientCertificate {
    cert_with(sans, cn, |_| {})
}

fn cert_with(
    sans: Vec<SanType>,
    cn: Option<&str>,
    edit: impl FnOnce(&mut CertificateParams),
) -> ClientCertificate {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.subject_alt_names = sans;
    params.distinguished_name = rcgen::DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    edit(&mut params);
    let key = KeyPair::generate().unwrap();
    ClientCertificate::from_der(params.self_signed(&key).unwrap().der().to_vec())
}

fn uri(s: &str) -> SanType {
    SanType::URI(s.try_into().unwrap())
}

fn dns(s: &str) -> SanType {
    SanType::DnsName(s.try_into().unwrap())
}

fn email(s: &str) -> SanType {
    SanType::Rfc822Name(s.try_into().unwrap())
}

const SPIFFE: &str = "spiffe://example.org/ns/prod/sa/agent";

fn table() -> ClientCertAuthenticator {
    ClientCertAuthenticator::new()
        .with_setting(
            "S",
            &format!(
                "{SPIFFE};scopes=data:read;roles=agent, ops.example.org;scopes=data:admin, \
                 ops@example.org;scopes=mail, laptop-7;scopes=data:write"
            ),
            &[],
        )
        .unwrap()
}

fn detail(r: Result<AuthContext, AuthError>) -> &'static str {
    r.unwrap_err().detail().unwrap()
}

#[test]
fn san_uri_comes_first_and_carries_its_grant() {
    let c = cert(vec![uri(SPIFFE), dns("ops.example.org")], Some("laptop-7"));
    let ctx = table().identify(&c).unwrap();
    assert_eq!(ctx.subject(), SPIFFE);
    assert_eq!(ctx.method(), &AuthMethod::ClientCertificate);
    assert_eq!(ctx.scopes().to_space_separated(), "data:read");
    assert!(ctx.has_role("agent"));
    assert_eq!(ctx.credential_id(), Some(c.x5t_s256()));
    assert!(ctx.expires_at().is_some());
}

#[test]
fn each_source_is_read_and_the_order_is_configurable() {
    let a = table();
    assert_eq!(
        a.identify(&cert(vec![dns("ops.example.org")], Some("laptop-7")))
            .unwrap()
            .subject(),
        "ops.example.org"
    );
    assert_eq!(
        a.identify(&cert(vec![email("ops@example.org")], Some("laptop-7")))
            .unwrap()
            .subject(),
        "ops@example.org"
    );
    assert_eq!(
        a.identify(&cert(vec![], Some("laptop-7")))
            .unwrap()
            .subject(),
        "laptop-7"
    );
    // CN first: the SAN URI is not looked at.
    let cn_first = table().subject_from([SubjectSource::CommonName, SubjectSource::SanUri]);
    let ctx = cn_first
        .identify(&cert(vec![uri(SPIFFE)], Some("laptop-7")))
        .unwrap();
    assert_eq!(ctx.subject(), "laptop-7");
    assert_eq!(ctx.scopes().to_space_separated(), "data:write");
    // Only the SAN URI: a CN-only certificate names nobody.
    let uri_only = table().subject_from([SubjectSource::SanUri]);
    assert_eq!(
        detail(uri_only.identify(&cert(vec![], Some("laptop-7")))),
        "no_certificate_subject"
    );
}

#[test]
fn the_first_source_present_decides_even_when_its_subject_is_unknown() {
    // The SAN URI is unknown; the CN is listed, but is not consulted.
    let c = cert(vec![uri("spiffe://example.org/other")], Some("laptop-7"));
    assert_eq!(detail(table().identify(&c)), "unknown_certificate_subject");
}

#[test]
fn of_several_values_the_listed_one_is_the_subject_and_two_listed_are_ambiguous() {
    let c = cert(
        vec![uri("spiffe://example.org/unlisted"), uri(SPIFFE)],
        None,
    );
    assert_eq!(table().identify(&c).unwrap().subject(), SPIFFE);
    let two = table()
        .subject("spiffe://example.org/second", Grant::new().scopes(["x"]))
        .unwrap();
    let c = cert(vec![uri(SPIFFE), uri("spiffe://example.org/second")], None);
    assert_eq!(detail(two.identify(&c)), "ambiguous_certificate_subject");
}

#[test]
fn an_unknown_subject_is_refused_unless_a_default_is_configured() {
    let c = cert(vec![], Some("stranger"));
    assert_eq!(detail(table().identify(&c)), "unknown_certificate_subject");
    let with_default = ClientCertAuthenticator::new()
        .with_setting("S", "*;scopes=data:read", &[])
        .unwrap();
    let ctx = with_default.identify(&c).unwrap();
    assert_eq!(ctx.subject(), "stranger");
    assert_eq!(ctx.scopes().to_space_separated(), "data:read");
    // With no subject in any source, even the default does not apply.
    assert_eq!(
        detail(with_default.identify(&cert(vec![], None))),
        "no_certificate_subject"
    );
}

#[test]
fn entries_without_scopes_carry_the_default_scopes() {
    let a = ClientCertAuthenticator::new()
        .with_setting("S", "laptop-7;roles=ops", &["data:read".to_owned()])
        .unwrap();
    let ctx = a.identify(&cert(vec![], Some("laptop-7"))).unwrap();
    assert_eq!(ctx.scopes().to_space_separated(), "data:read");
    assert!(ctx.has_role("ops"));
    // An explicit empty scope list grants none.
    let a = ClientCertAuthenticator::new()
        .with_setting("S", "laptop-7;scopes=", &["data:read".to_owned()])
        .unwrap();
    let ctx = a.identify(&cert(vec![], Some("laptop-7"))).unwrap();
    assert!(ctx.scopes().is_empty());
}

#[test]
fn garbage_oversized_and_trailing_bytes_are_refusals_not_panics() {
    let a = table();
    assert_eq!(
        detail(a.identify(&ClientCertificate::from_der(b"not DER".to_vec()))),
        "bad_certificate"
    );
    assert_eq!(
        detail(a.identify(&ClientCertificate::from_der(vec![0x30; 16 * 1024 + 1]))),
        "certificate_too_large"
    );
    let good = cert(vec![], Some("laptop-7"));
    let mut trailing = good.der().to_vec();
    trailing.push(0);
    assert_eq!(
        detail(a.identify(&ClientCertificate::from_der(trailing))),
        "bad_certificate"
    );
    // Every truncation of a real certificate is refused without a panic.
    for n in 0..good.der().len() {
        let r = a.identify(&ClientCertificate::from_der(good.der()[..n].to_vec()));
        assert_eq!(detail(r), "bad_certificate", "{n}");
    }
    let small = table().max_certificate_len(100);
    assert_eq!(detail(small.identify(&good)), "certificate_too_large");
}

#[test]
fn expired_and_future_certificates_are_refused() {
    let expired = cert_with(vec![], Some("laptop-7"), |p| {
        p.not_before = rcgen::date_time_ymd(2000, 1, 1);
        p.not_after = rcgen::date_time_ymd(2001, 1, 1);
    });
    let err = table().identify(&expired).unwrap_err();
    assert_eq!(err.kind(), crate::AuthErrorKind::Expired);
    assert_eq!(err.detail(), Some("certificate_expired"));
    let future = cert_with(vec![], Some("laptop-7"), |p| {
        p.not_before = rcgen::date_time_ymd(2090, 1, 1);
        p.not_after = rcgen::date_time_ymd(2091, 1, 1);
    });
    assert_eq!(
        detail(table().identify(&future)),
        "certificate_not_yet_valid"
    );
}

#[test]
fn subjects_with_control_characters_are_refused() {
    let c = cert(vec![], Some("laptop-7\n"));
    let a = ClientCertAuthenticator::new().default_grant(Grant::new());
    assert_eq!(detail(a.identify(&c)), "bad_certificate_subject");
}

#[test]
fn no_certificate_is_missing_credentials_so_a_chain_moves_on() {
    let (parts, ()) = http::Request::new(()).into_parts();
    let r = table().authenticate_now(&parts).unwrap();
    assert_eq!(
        r.unwrap_err().kind(),
        crate::AuthErrorKind::MissingCredentials
    );
    assert!(table().schemes().is_empty());
}

#[test]
fn the_setting_reports_every_problem_by_position_never_by_value() {
    let err = ClientCertAuthenticator::new()
        .with_setting(
            "MCP_CLIENT_CERT_SUBJECTS",
            "secret-looking-subject;exp=1, ,a;scopes=x,a,*,*",
            &[],
        )
        .unwrap_err();
    let text = err.to_string();
    assert!(!text.contains("secret-looking"), "{text}");
    let messages: Vec<&str> = err.problems().iter().map(|p| p.message()).collect();
    assert_eq!(
        messages,
        [
            "entry 1: attribute 1 is not scopes=… or roles=…",
            "entry 2 is empty",
            "entry 4: the subject is listed twice",
            "entry 6: `*` (the default grant) is listed twice",
        ]
    );
    assert!(
        ClientCertAuthenticator::new()
            .with_setting("S", " ", &[])
            .is_err()
    );
    assert!(
        ClientCertAuthenticator::new()
            .subject(" padded", Grant::new())
            .is_err()
    );
    assert!(
        ClientCertAuthenticator::new()
            .subject("a", Grant::new())
            .unwrap()
            .subject("a", Grant::new())
            .is_err()
    );
}

#[test]
fn debug_shows_counts_not_subjects() {
    let text = format!("{:?}", table());
    assert!(text.contains("subjects: 4"), "{text}");
    assert!(!text.contains("spiffe"), "{text}");
}
