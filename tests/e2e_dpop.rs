//! DPoP end to end: oidc-provider (npm) issues DPoP-bound JWT access tokens (its `dPoP`
//! feature) to a client that makes its proofs here (`mcp_auth::testing::DpopKey`); the
//! example server, configured by `MCP_DPOP`, checks proofs and bindings on every MCP request.
//!
//! Needs `npm ci --prefix tests/e2e/idp` (scripts/test.sh does it and runs these tests with
//! `--ignored`).

mod support;

use mcp_auth::testing::DpopKey;
use serde_json::{Value, json};
use support::idp::{Idp, start_idp};

/// A DPoP-bound token for the MCP server at `resource`, by client_credentials, the token
/// request carrying a proof by `key`.
async fn dpop_token(idp: &Idp, key: &DpopKey, resource: &str) -> (String, String) {
    let token_url = format!("{}/token", idp.issuer);
    let proof = key.proof("POST", &token_url).sign();
    let res: Value = reqwest::Client::new()
        .post(&token_url)
        .basic_auth("cc-client", Some("cc-secret"))
        .header("dpop", proof)
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "data:read"),
            ("resource", resource),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = res["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {res}"))
        .to_owned();
    (
        token,
        res["token_type"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The claims of a JWT, unverified (to look at `cnf`).
fn claims(jwt: &str) -> Value {
    use base64::Engine as _;
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// One MCP request over raw HTTP: its status, headers and body.
struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> String {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// POSTs `body` to the MCP endpoint with `authorization` and `proofs` as `DPoP` headers.
async fn post(
    url: &str,
    authorization: &str,
    proofs: &[&str],
    session: Option<&str>,
    body: Value,
) -> Answer {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("authorization", authorization)
        .body(body.to_string());
    for p in proofs {
        req = req.header("dpop", *p);
    }
    if let Some(s) = session {
        req = req.header("mcp-session-id", s);
    }
    let res = req.send().await.unwrap();
    Answer {
        status: res.status().as_u16(),
        headers: res.headers().clone(),
        body: res.text().await.unwrap(),
    }
}

fn initialize() -> Value {
    json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
        "protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"dpop-test","version":"1"}}})
}

/// A whole MCP exchange with a fresh proof per request: initialize, initialized, `whoami`.
async fn whoami_with_proofs(url: &str, key: &DpopKey, token: &str, nonce: Option<&str>) -> Value {
    let auth = format!("DPoP {token}");
    let proof = || {
        let b = key.proof("POST", url).access_token(token);
        match nonce {
            Some(n) => b.nonce(n).sign(),
            None => b.sign(),
        }
    };
    let init = post(url, &auth, &[&proof()], None, initialize()).await;
    assert_eq!(init.status, 200, "{}", init.body);
    let session = init.header("mcp-session-id");
    let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
    assert_eq!(
        post(url, &auth, &[&proof()], Some(&session), note)
            .await
            .status,
        202
    );
    let call = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}});
    let res = post(url, &auth, &[&proof()], Some(&session), call).await;
    assert_eq!(res.status, 200, "{}", res.body);
    let data = res
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .find(|l| l.contains("\"result\""))
        .unwrap_or_else(|| panic!("no result in {}", res.body));
    let msg: Value = serde_json::from_str(data).unwrap();
    serde_json::from_str(msg["result"]["content"][0]["text"].as_str().unwrap()).unwrap()
}

async fn server(idp: &Idp, extra: &[(&str, &str)]) -> String {
    let issuer = idp.issuer.clone();
    let extra: Vec<(String, String)> = extra
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let srv = support::start_with(move |public_url| {
        let mut env = vec![
            ("MCP_PUBLIC_URL".to_owned(), public_url.to_owned()),
            ("MCP_OIDC_ISSUER".to_owned(), issuer),
        ];
        env.extend(extra);
        env
    })
    .await;
    let addr = srv.detach();
    format!("http://{addr}/mcp")
}

#[tokio::test]
#[ignore = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)"]
async fn a_dpop_bound_token_from_oidc_provider_works_only_with_fresh_proofs_of_its_key() {
    let idp = start_idp();
    let url = server(&idp, &[]).await;
    let key = DpopKey::es256();
    let (token, token_type) = dpop_token(&idp, &key, &url).await;
    assert_eq!(token_type, "DPoP");
    assert_eq!(claims(&token)["cnf"]["jkt"], key.thumbprint());

    // The whole MCP exchange, a fresh proof per request.
    let who = whoami_with_proofs(&url, &key, &token, None).await;
    assert_eq!(who["subject"], "cc-client");
    assert_eq!(who["method"], "jwt");

    let auth = format!("DPoP {token}");
    // A replayed proof.
    let proof = key.proof("POST", &url).access_token(&token).sign();
    assert_eq!(
        post(&url, &auth, &[&proof], None, initialize())
            .await
            .status,
        200
    );
    let replay = post(&url, &auth, &[&proof], None, initialize()).await;
    assert_eq!(replay.status, 401);
    assert!(
        replay
            .header("www-authenticate")
            .contains("DPoP algs=\"ES256 ES384 EdDSA PS256 RS256\", error=\"invalid_dpop_proof\""),
        "{}",
        replay.header("www-authenticate")
    );
    // The Bearer downgrade.
    let downgrade = post(&url, &format!("Bearer {token}"), &[], None, initialize()).await;
    assert_eq!(downgrade.status, 401);
    assert!(
        downgrade
            .header("www-authenticate")
            .contains("error=\"invalid_token\"")
    );
    // A proof by another key (a thief with the token, not the key).
    let thief = DpopKey::es256();
    let stolen = thief.proof("POST", &url).access_token(&token).sign();
    assert_eq!(
        post(&url, &auth, &[&stolen], None, initialize())
            .await
            .status,
        401
    );
    // No proof, two proofs, a proof for another URL or method, a stale one.
    let fresh = || key.proof("POST", &url).access_token(&token);
    let (p1, p2) = (fresh().sign(), fresh().sign());
    for (what, proofs) in [
        ("none", vec![]),
        ("two", vec![p1.clone(), p2]),
        (
            "other url",
            vec![
                key.proof("POST", "http://127.0.0.1:9/mcp")
                    .access_token(&token)
                    .sign(),
            ],
        ),
        (
            "other method",
            vec![key.proof("GET", &url).access_token(&token).sign()],
        ),
        ("stale", vec![fresh().iat_offset(-400).sign()]),
        ("no ath", vec![key.proof("POST", &url).sign()]),
    ] {
        let refs: Vec<&str> = proofs.iter().map(String::as_str).collect();
        let res = post(&url, &auth, &refs, None, initialize()).await;
        assert_eq!(res.status, 401, "{what}");
        assert!(res.header("www-authenticate").contains("DPoP"), "{what}");
    }
    // An unbound token from the same server still works as Bearer (optional mode).
    let plain = support::idp::client_credentials_token(
        &idp.issuer,
        ("cc-client", "cc-secret"),
        "data:read",
        Some(&url),
    )
    .await;
    assert!(claims(&plain).get("cnf").is_none());
    let bearer = post(&url, &format!("Bearer {plain}"), &[], None, initialize()).await;
    assert_eq!(bearer.status, 200, "{}", bearer.body);

    // The metadata tells clients DPoP is offered.
    let meta: Value =
        reqwest::get(url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(meta["dpop_bound_access_tokens_required"], false);
    assert!(
        meta["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("ES256"))
    );
}

#[tokio::test]
#[ignore = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)"]
async fn required_mode_refuses_bearer_tokens_and_nonces_are_asked_for() {
    let idp = start_idp();
    let url = server(
        &idp,
        &[("MCP_DPOP", "required"), ("MCP_DPOP_NONCE", "true")],
    )
    .await;
    let plain = support::idp::client_credentials_token(
        &idp.issuer,
        ("cc-client", "cc-secret"),
        "data:read",
        Some(&url),
    )
    .await;
    let (status, challenge, _) = support::raw::probe(&url, Some(&plain)).await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with("DPoP algs="), "{challenge}");
    assert!(!challenge.contains("Bearer"), "{challenge}");

    let key = DpopKey::es256();
    let (token, _) = dpop_token(&idp, &key, &url).await;
    // Without a nonce: 401 use_dpop_nonce and a nonce to use.
    let auth = format!("DPoP {token}");
    let first = post(
        &url,
        &auth,
        &[&key.proof("POST", &url).access_token(&token).sign()],
        None,
        initialize(),
    )
    .await;
    assert_eq!(first.status, 401);
    assert!(
        first
            .header("www-authenticate")
            .contains("error=\"use_dpop_nonce\"")
    );
    let nonce = first.header("dpop-nonce");
    assert!(!nonce.is_empty());
    // With it, the whole exchange.
    let who = whoami_with_proofs(&url, &key, &token, Some(&nonce)).await;
    assert_eq!(who["subject"], "cc-client");
    let meta: Value =
        reqwest::get(url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(meta["dpop_bound_access_tokens_required"], true);
}

#[tokio::test]
#[ignore = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)"]
async fn a_dpop_bound_opaque_token_is_checked_through_introspection() {
    let idp = start_idp();
    let url = server(
        &idp,
        &[
            ("MCP_INTROSPECTION_CLIENT_ID", "rs-client"),
            ("MCP_INTROSPECTION_CLIENT_SECRET", "rs-secret"),
        ],
    )
    .await;
    let key = DpopKey::es256();
    let token_url = format!("{}/token", idp.issuer);
    let res: Value = reqwest::Client::new()
        .post(&token_url)
        .basic_auth("cc-opaque-client", Some("cc-opaque-secret"))
        .header("dpop", key.proof("POST", &token_url).sign())
        .form(&[
            ("grant_type", "client_credentials"),
            ("scope", "data:read"),
            ("resource", url.as_str()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = res["access_token"].as_str().unwrap().to_owned();
    assert_eq!(token.split('.').count(), 1, "opaque");
    let who = whoami_with_proofs(&url, &key, &token, None).await;
    assert_eq!(who["method"], "introspection");
    let downgrade = post(&url, &format!("Bearer {token}"), &[], None, initialize()).await;
    assert_eq!(downgrade.status, 401);
    let thief = DpopKey::es256();
    let stolen = thief.proof("POST", &url).access_token(&token).sign();
    assert_eq!(
        post(
            &url,
            &format!("DPoP {token}"),
            &[&stolen],
            None,
            initialize()
        )
        .await
        .status,
        401
    );
}
