//! The official MCP Python SDK client (`mcp` from PyPI, tests/e2e/py-sdk) against the example
//! server over loopback, with oidc-provider as the authorization server: the full OAuth flow
//! from a cold start, a step-up re-authorization on 403 (done by the SDK itself), and
//! client_credentials.
//!
//! Needs the virtualenv `tests/e2e/py-sdk/.venv` with `requirements.txt` and
//! `npm ci --prefix tests/e2e/idp` (scripts/test.sh does both and runs these tests with
//! `--ignored`).

mod support;

use serde_json::{Value, json};
use support::idp::start_idp;
use support::sdk::{observed, saw};
use support::start_with;

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/py-sdk");

/// Runs `python client.py <args>` in the virtualenv (killed after 90 s) and parses its JSON
/// line.
async fn python(args: Vec<String>) -> Value {
    let venv_python = std::path::Path::new(DIR).join(".venv/bin/python");
    assert!(
        venv_python.exists(),
        "the Python SDK is not installed: run scripts/test.sh (it creates tests/e2e/py-sdk/.venv)"
    );
    support::sdk::run_client(
        "Python",
        venv_python,
        "client.py",
        args,
        DIR,
        "coreutils' timeout is installed",
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm and PyPI packages: run scripts/test.sh"]
async fn python_sdk_completes_the_oauth_flow_from_a_cold_start() {
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let srv = start_with(|_| vec![("MCP_OIDC_ISSUER".into(), issuer)]).await;
    let url = srv.url();
    let v = python(vec!["auth-code".into(), url.clone()]).await;
    assert_eq!(v["whoami"]["subject"], "alice", "{v:#}");
    assert_eq!(v["whoami"]["method"], "jwt");
    assert_eq!(v["whoami"]["scopes"], json!(["data:read"]));
    let first = &observed(&v)[0];
    assert_eq!(
        (first["method"].as_str(), first["status"].as_u64()),
        (Some("POST"), Some(401))
    );
    // Bearer first, then DPoP (offered beside it): the SDK sees both, joined, and follows
    // the first.
    let metadata = url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp");
    assert_eq!(
        first["challenge"],
        format!(
            "Bearer scope=\"data:read\", resource_metadata=\"{metadata}\", \
             DPoP algs=\"ES256 ES384 EdDSA PS256 RS256\", scope=\"data:read\", resource_metadata=\"{metadata}\""
        )
    );
    assert!(
        saw(&v, "GET", "/.well-known/oauth-protected-resource/mcp", 200),
        "{v:#}"
    );
    assert!(
        observed(&v).iter().any(|o| o["status"] == 200
            && (o["path"] == "/.well-known/oauth-authorization-server"
                || o["path"] == "/.well-known/openid-configuration")),
        "{v:#}"
    );
    assert!(saw(&v, "POST", "/reg", 201), "{v:#}");
    let authorize = observed(&v)
        .into_iter()
        .find(|o| o["path"] == "/auth")
        .expect("an authorization request");
    assert_eq!(
        authorize["resource"],
        url.as_str(),
        "RFC 8707 resource, exact"
    );
    assert_eq!(authorize["codeChallengeMethod"], "S256");
    assert_eq!(authorize["scope"], "data:read", "the 401's scope");
    assert!(saw(&v, "POST", "/token", 200), "{v:#}");
    assert_eq!(v["authorizations"], 1);
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm and PyPI packages: run scripts/test.sh"]
async fn python_sdk_steps_up_on_403_by_itself() {
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let srv = start_with(|_| vec![("MCP_OIDC_ISSUER".into(), issuer)]).await;
    let v = python(vec!["step-up".into(), srv.url()]).await;
    assert_eq!(v["whoami"]["scopes"], json!(["data:read"]), "{v:#}");
    let refused: Vec<Value> = observed(&v)
        .into_iter()
        .filter(|o| o["status"] == 403)
        .collect();
    assert_eq!(refused.len(), 1, "{v:#}");
    let challenge = refused[0]["challenge"].as_str().unwrap();
    assert!(
        challenge.starts_with("Bearer error=\"insufficient_scope\"")
            && challenge.contains("scope=\"data:write\"")
            && challenge.contains("resource_metadata=\""),
        "{challenge}"
    );
    let scopes: Vec<String> = observed(&v)
        .into_iter()
        .filter(|o| o["path"] == "/auth")
        .map(|o| o["scope"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(scopes.len(), 2, "{v:#}");
    assert!(
        scopes[1].split(' ').any(|s| s == "data:write"),
        "{scopes:?}"
    );
    assert_eq!(v["authorizations"], 2);
    assert_eq!(
        v["write"],
        json!({"isError": false, "text": "stored \"k\""})
    );
    assert_eq!(
        v["whoamiAfter"]["scopes"],
        json!(["data:read", "data:write"])
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm and PyPI packages: run scripts/test.sh"]
async fn python_sdk_client_credentials() {
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let srv = start_with(|_| vec![("MCP_OIDC_ISSUER".into(), issuer.clone())]).await;
    let v = python(vec![
        "client-credentials".into(),
        srv.url(),
        "cc-client".into(),
        "cc-secret".into(),
        issuer,
    ])
    .await;
    assert_eq!(v["whoami"]["subject"], "cc-client", "{v:#}");
    assert_eq!(v["whoami"]["method"], "jwt");
    assert!(saw(&v, "POST", "/mcp", 401), "{v:#}");
    assert!(saw(&v, "POST", "/token", 200), "{v:#}");
}
