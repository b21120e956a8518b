//! End to end with a real authorization server: oidc-provider (npm) on loopback issues RS256
//! JWT access tokens through client_credentials with an RFC 8707 `resource`; the example
//! server finds its keys by OIDC discovery and serves rmcp's client.
//!
//! Needs `npm ci --prefix tests/e2e/idp` (scripts/test.sh does it and runs these tests with
//! `--ignored`).

mod support;

use std::net::SocketAddr;

use mcp_auth::env::EnvReader;
use serde_json::Value;
use support::example;
use support::idp::start_idp;

/// Starts the example server with `env`, on a loopback port known before configuration (the
/// audience is its own public URL); it runs until the test ends.
async fn start_server(extra_env: impl FnOnce(&str) -> Vec<(String, String)>) -> SocketAddr {
    let srv = support::start_with(|public_url| {
        let mut env = vec![("MCP_PUBLIC_URL".to_owned(), public_url.to_owned())];
        env.extend(extra_env(public_url));
        env
    })
    .await;
    srv.detach()
}

async fn client_credentials_token(issuer: &str, resource: Option<&str>) -> String {
    support::idp::client_credentials_token(
        issuer,
        ("cc-client", "cc-secret"),
        "data:read data:write",
        resource,
    )
    .await
}

async fn whoami(url: String, token: &str) -> Result<Value, String> {
    let auth = format!("Bearer {token}");
    support::whoami(url, &[("authorization", &auth)]).await
}

async fn post_status(url: &str, token: &str) -> (u16, String) {
    let (status, challenge, _) = support::raw::probe(url, Some(token)).await;
    (status, challenge)
}

#[tokio::test]
#[ignore = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)"]
async fn client_credentials_jwt_from_oidc_provider_is_accepted_by_discovery() {
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let addr = start_server(|_| vec![("MCP_OIDC_ISSUER".into(), issuer.clone())]).await;
    let url = format!("http://{addr}/mcp");

    let token = client_credentials_token(&idp.issuer, Some(&url)).await;
    let who = whoami(url.clone(), &token).await.unwrap();
    assert_eq!(who["subject"], "cc-client");
    assert_eq!(who["method"], "jwt");
    assert_eq!(
        who["scopes"],
        serde_json::json!(["data:read", "data:write"])
    );
    assert_eq!(
        who["principal"],
        format!("{}|cc-client|cc-client", idp.issuer)
    );

    // A token issued for another resource is refused.
    let other = client_credentials_token(&idp.issuer, Some("http://127.0.0.1:9/other")).await;
    let (status, challenge) = post_status(&url, &other).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    // An opaque token (no `resource`) is refused.
    let opaque = client_credentials_token(&idp.issuer, None).await;
    assert_eq!(
        opaque.split('.').count(),
        1,
        "oidc-provider issues opaque tokens without a resource"
    );
    assert_eq!(post_status(&url, &opaque).await.0, 401);
}

#[tokio::test]
#[ignore = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)"]
async fn jwks_url_from_oidc_provider_works_without_discovery() {
    let idp = start_idp();
    let (issuer, jwks) = (idp.issuer.clone(), format!("{}/jwks", idp.issuer));
    let addr = start_server(|_| {
        vec![
            ("MCP_JWKS_URL".into(), jwks.clone()),
            ("MCP_JWT_ISSUER".into(), issuer.clone()),
        ]
    })
    .await;
    let url = format!("http://{addr}/mcp");
    let token = client_credentials_token(&idp.issuer, Some(&url)).await;
    assert_eq!(
        whoami(url.clone(), &token).await.unwrap()["subject"],
        "cc-client"
    );
    // Without credentials: a bare Bearer challenge.
    let res = reqwest::Client::new()
        .post(&url)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
}

// --- start-up checks of the example's JWT settings (no authorization server needed) -------

/// Review M2: a JWKS URL without an expected issuer would accept tokens from every tenant
/// sharing that key set; the example refuses to start and names both ways out.
#[test]
fn a_jwks_url_without_an_issuer_is_a_startup_error_naming_both_variables() {
    let err = example::load_config(EnvReader::from_pairs([(
        "MCP_JWKS_URL",
        "http://127.0.0.1:9/jwks",
    )]))
    .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("MCP_JWKS_URL")
            && text.contains("MCP_JWT_ISSUER")
            && text.contains("MCP_OIDC_ISSUER"),
        "{text}"
    );
    // With the issuer it starts.
    assert!(
        example::load_config(EnvReader::from_pairs([
            ("MCP_JWKS_URL", "http://127.0.0.1:9/jwks"),
            ("MCP_JWT_ISSUER", "http://127.0.0.1:9"),
        ]))
        .is_ok()
    );
}

/// Review M2: beside an identity provider, MCP_JWT_SECRET tokens carry this server's own
/// issuer (its public URL), and the secret cannot mint tokens in the provider's name.
#[test]
fn the_jwt_secret_cannot_mint_tokens_in_the_identity_providers_name() {
    use mcp_auth::authenticators::jwt::{Algorithm, JwtMinter};
    const SECRET: &str = "example-hmac-secret-0123456789abcdef";
    const PUBLIC: &str = "https://mcp.example.com/mcp";
    const IDP: &str = "http://127.0.0.1:9/realms/mcp";
    let config = example::load_config(EnvReader::from_pairs([
        ("MCP_JWT_SECRET", SECRET),
        ("MCP_OIDC_ISSUER", IDP),
        ("MCP_PUBLIC_URL", PUBLIC),
    ]))
    .unwrap_or_else(|e| panic!("{e}"));
    let jwt = config.jwt().expect("JWTs on");
    let mint = |iss: Option<&str>| {
        let m = JwtMinter::hmac(SECRET, Algorithm::HS256)
            .unwrap()
            .audience(PUBLIC);
        match iss {
            Some(i) => m.issuer(i),
            None => m,
        }
        .mint("carol", ["data:read"])
        .unwrap()
    };
    assert_eq!(jwt.verify(&mint(Some(PUBLIC))).unwrap().subject(), "carol");
    for iss in [Some(IDP), None, Some("https://elsewhere.example")] {
        let err = jwt.verify(&mint(iss)).unwrap_err();
        assert_eq!(err.detail(), Some("issuer_mismatch"), "{iss:?}");
    }

    // Alone, the secret keeps its old contract: MCP_JWT_ISSUER when set...
    let config = example::load_config(EnvReader::from_pairs([
        ("MCP_JWT_SECRET", SECRET),
        ("MCP_JWT_ISSUER", "https://tools.internal"),
        ("MCP_PUBLIC_URL", PUBLIC),
    ]))
    .unwrap();
    let jwt = config.jwt().unwrap();
    assert!(jwt.verify(&mint(Some("https://tools.internal"))).is_ok());
    assert!(jwt.verify(&mint(Some(IDP))).is_err());
    // ...and any `iss` when not (one shared secret, nothing to confuse it with).
    let config = example::load_config(EnvReader::from_pairs([
        ("MCP_JWT_SECRET", SECRET),
        ("MCP_PUBLIC_URL", PUBLIC),
    ]))
    .unwrap();
    assert!(config.jwt().unwrap().verify(&mint(None)).is_ok());
}
