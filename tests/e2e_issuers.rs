//! End to end with two authorization servers at once: two oidc-provider instances on
//! loopback, each with its own signing key under the same `kid`, and the example server
//! configured with both (`MCP_OIDC_ISSUER=A,B`). Each one's client-credentials tokens are
//! accepted as that issuer's, a token signed with A's key but claiming B is refused, the
//! metadata lists both, and with A stopped A's tokens get 503 while B's still pass.
//!
//! Needs `npm ci --prefix tests/e2e/idp` (scripts/test.sh does it and runs these tests with
//! `--ignored`).

mod support;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::Value;
use support::idp::{Idp, client_credentials_token, start_idp_with_own_key};

async fn token(idp: &Idp, resource: &str) -> String {
    client_credentials_token(
        &idp.issuer,
        ("cc-client", "cc-secret"),
        "data:read data:write",
        Some(resource),
    )
    .await
}

async fn whoami(url: String, token: &str) -> Result<Value, String> {
    let auth = format!("Bearer {token}");
    support::whoami(url, &[("authorization", &auth)]).await
}

/// `token`'s header, its payload with `iss` replaced (when given), signed with `pem`.
fn resign(token: &str, iss: Option<&str>, pem: &str) -> String {
    let mut parts = token.split('.');
    let (header, payload) = (parts.next().unwrap(), parts.next().unwrap());
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    if let Some(iss) = iss {
        claims["iss"] = iss.into();
    }
    let signed = format!(
        "{header}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    let sig = jsonwebtoken::crypto::sign(signed.as_bytes(), &key, Algorithm::RS256).unwrap();
    format!("{signed}.{sig}")
}

#[tokio::test]
#[ignore = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)"]
async fn two_identity_providers_at_once_each_for_its_own_tokens() {
    let mut a = start_idp_with_own_key("shared-kid");
    let b = start_idp_with_own_key("shared-kid");
    let issuers = format!("{},{}", a.issuer, b.issuer);
    let env = |issuers: String| move |_: &str| vec![("MCP_OIDC_ISSUER".to_owned(), issuers)];
    let srv = support::start_with(env(issuers.clone())).await;
    let url = srv.url();
    // A second server with the same configuration, sent no token until A is down.
    let fresh = support::start_with(env(issuers)).await;
    let fresh_url = fresh.url();
    let ta_fresh = token(&a, &fresh_url).await;

    let ta = token(&a, &url).await;
    let tb = token(&b, &url).await;
    for (t, idp) in [(&ta, &a), (&tb, &b)] {
        let who = whoami(url.clone(), t).await.unwrap();
        assert_eq!(who["subject"], "cc-client");
        assert_eq!(who["method"], "jwt");
        assert_eq!(who["issuer"], idp.issuer.as_str());
        assert_eq!(
            who["principal"],
            format!("{}|cc-client|cc-client", idp.issuer)
        );
    }

    // A's key, A's `kid` (B publishes a key under the same `kid`), claiming B: refused. The
    // same token re-signed unchanged passes, so the refusal is the issuer's, not the forgery's.
    let a_key = a.signing_key.clone().expect("A's key");
    assert_eq!(
        whoami(url.clone(), &resign(&ta, None, &a_key))
            .await
            .unwrap()["issuer"],
        a.issuer.as_str()
    );
    let forged = resign(&ta, Some(&b.issuer), &a_key);
    let (status, challenge, _) = support::raw::probe(&url, Some(&forged)).await;
    assert_eq!(status, 401);
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    // An issuer the server does not trust: refused.
    let stranger = resign(&ta, Some("http://127.0.0.1:9/elsewhere"), &a_key);
    assert_eq!(support::raw::probe(&url, Some(&stranger)).await.0, 401);

    // The metadata names both authorization servers.
    let meta: Value = reqwest::get(format!(
        "http://{}/.well-known/oauth-protected-resource/mcp",
        srv.addr
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        meta["authorization_servers"],
        serde_json::json!([a.issuer, b.issuer])
    );

    // A stops. The first server keeps A's fetched keys (served stale while A is down).
    a.stop();
    for (t, idp) in [(&ta, &a), (&tb, &b)] {
        let who = whoami(url.clone(), t).await.unwrap();
        assert_eq!(who["issuer"], idp.issuer.as_str());
    }
    // The second server never fetched A's keys: A's tokens get 503 with Retry-After, B's pass.
    let (status, _, retry) = support::raw::probe(&fresh_url, Some(&ta_fresh)).await;
    assert_eq!(status, 503);
    assert!(retry.is_some());
    let tb_fresh = token(&b, &fresh_url).await;
    let who = whoami(fresh_url.clone(), &tb_fresh).await.unwrap();
    assert_eq!(who["issuer"], b.issuer.as_str());
    // A's outage does not spill over: B's tokens keep passing while A's keep failing.
    assert_eq!(
        support::raw::probe(&fresh_url, Some(&ta_fresh)).await.0,
        503
    );
    assert!(whoami(fresh_url, &tb_fresh).await.is_ok());
}
