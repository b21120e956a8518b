//! The example server as an OAuth 2.1 protected resource, end to end with a real
//! authorization server (oidc-provider on loopback): protected resource metadata, challenges,
//! token introspection (valid, revoked, unknown, other-audience tokens; the authorization
//! server down), and rmcp's own OAuth client completing the whole flow from a cold start,
//! then stepping up on a 403.
//!
//! Needs `npm ci --prefix tests/e2e/idp` (scripts/test.sh does it and runs these tests with
//! `--ignored`).

mod support;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationCallback, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use serde_json::{Value, json};
use support::idp::{browse, start_idp};
use support::raw::probe;
use support::start_with;

const IGNORE: &str = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)";

fn metadata_url(mcp_url: &str) -> String {
    mcp_url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp")
}

async fn token(issuer: &str, client: (&str, &str), resource: &str, scope: &str) -> String {
    support::idp::client_credentials_token(issuer, client, scope, Some(resource)).await
}

async fn whoami(url: &str, token: &str) -> Result<Value, String> {
    let auth = format!("Bearer {token}");
    support::whoami(url.to_owned(), &[("authorization", &auth)]).await
}

#[tokio::test]
#[ignore = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)"]
async fn metadata_is_served_at_both_paths_and_every_challenge_points_to_it() {
    let _ = IGNORE;
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let srv = start_with(|_| vec![("MCP_OIDC_ISSUER".into(), issuer)]).await;
    let url = srv.url();
    let http = reqwest::Client::new();
    let expected = json!({
        "resource": url,
        "authorization_servers": [idp.issuer],
        "scopes_supported": ["data:admin", "data:read", "data:write"],
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-auth example data server",
        // DPoP-bound tokens are accepted (with proofs), plain bearer tokens too.
        "dpop_signing_alg_values_supported": ["ES256", "ES384", "EdDSA", "PS256", "RS256"],
        "dpop_bound_access_tokens_required": false,
    });
    for path in [
        "/.well-known/oauth-protected-resource/mcp",
        "/.well-known/oauth-protected-resource",
    ] {
        let res = http
            .get(format!("http://{}{path}", srv.addr))
            .header("origin", "http://inspector.localhost:6274")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "application/json");
        assert_eq!(
            res.headers()
                .get_all("access-control-allow-origin")
                .iter()
                .count(),
            1,
            "one CORS header, not two"
        );
        assert_eq!(res.headers()["access-control-allow-origin"], "*");
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc, expected, "{path}");
        // The resource is byte-exact: the URL clients call.
        assert_eq!(doc["resource"].as_str(), Some(url.as_str()));
    }
    // A browser's preflight (no credentials) is answered.
    let pre = http
        .request(
            reqwest::Method::OPTIONS,
            format!(
                "http://{}/.well-known/oauth-protected-resource/mcp",
                srv.addr
            ),
        )
        .header("origin", "http://inspector.localhost:6274")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "mcp-protocol-version")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), 204);
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");

    let rm = metadata_url(&url);
    // No token: bare challenge with the basic scope and the metadata URL.
    let (status, challenge, _) = probe(&url, None).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge,
        format!("Bearer scope=\"data:read\", resource_metadata=\"{rm}\"")
    );
    // A token for another resource: 401 invalid_token, still pointing to the metadata.
    let other = token(
        &idp.issuer,
        ("cc-client", "cc-secret"),
        "http://127.0.0.1:9/mcp",
        "data:read",
    )
    .await;
    let (status, challenge, _) = probe(&url, Some(&other)).await;
    assert_eq!(status, 401);
    assert!(
        challenge.starts_with("Bearer error=\"invalid_token\"")
            && challenge.ends_with(&format!("scope=\"data:read\", resource_metadata=\"{rm}\"")),
        "{challenge}"
    );
    // A valid token lacking scope: 403 naming the needed scope and the metadata.
    let reader = token(&idp.issuer, ("cc-client", "cc-secret"), &url, "data:read").await;
    let res = http
        .post(&url)
        .bearer_auth(&reader)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(
            json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_data","arguments":{"key":"k"}}})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers()["www-authenticate"],
        format!(
            "Bearer error=\"insufficient_scope\", error_description=\"this operation needs more scope\", scope=\"data:admin\", resource_metadata=\"{rm}\""
        )
        .as_str()
    );
    assert_eq!(whoami(&url, &reader).await.unwrap()["subject"], "cc-client");
}

#[tokio::test]
#[ignore = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)"]
async fn introspected_opaque_tokens_work_and_revoked_unknown_or_foreign_ones_do_not() {
    let mut idp = start_idp();
    let issuer = idp.issuer.clone();
    // Introspection only; the endpoint is found in the authorization server's metadata.
    let srv = start_with(|_| {
        vec![
            ("MCP_AUTHORIZATION_SERVERS".into(), issuer),
            ("MCP_INTROSPECTION_CLIENT_ID".into(), "rs-client".into()),
            ("MCP_INTROSPECTION_CLIENT_SECRET".into(), "rs-secret".into()),
        ]
    })
    .await;
    let url = srv.url();
    let opaque = ("cc-opaque-client", "cc-opaque-secret");
    let good = token(&idp.issuer, opaque, &url, "data:read data:write").await;
    assert_eq!(good.split('.').count(), 1, "an opaque token");
    let who = whoami(&url, &good).await.unwrap();
    assert_eq!(who["subject"], "cc-opaque-client");
    assert_eq!(who["method"], "introspection");
    assert_eq!(who["scopes"], json!(["data:read", "data:write"]));

    // Revoked at the authorization server: refused at once (no cache by default).
    let revoked = token(&idp.issuer, opaque, &url, "data:read").await;
    assert_eq!(
        whoami(&url, &revoked).await.unwrap()["subject"],
        "cc-opaque-client"
    );
    let res = reqwest::Client::new()
        .post(format!("{}/token/revocation", idp.issuer))
        .basic_auth(opaque.0, Some(opaque.1))
        .form(&[("token", revoked.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let foreign = token(&idp.issuer, opaque, "http://127.0.0.1:9/mcp", "data:read").await;
    for bad in [
        revoked.as_str(),
        "unknown-opaque-token-0123456789",
        foreign.as_str(),
    ] {
        let (status, challenge, _) = probe(&url, Some(bad)).await;
        assert_eq!(status, 401, "{bad}");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }

    // The authorization server stops: 503 with Retry-After, never 401.
    idp.stop();
    let (status, challenge, retry) = probe(&url, Some(&good)).await;
    assert_eq!(status, 503, "{challenge}");
    assert!(retry.is_some());
}

#[tokio::test]
#[ignore = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)"]
async fn jwts_and_introspected_opaque_tokens_are_accepted_side_by_side() {
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let srv = start_with(|_| {
        vec![
            ("MCP_OIDC_ISSUER".into(), issuer),
            ("MCP_INTROSPECTION_CLIENT_ID".into(), "rs-client".into()),
            ("MCP_INTROSPECTION_CLIENT_SECRET".into(), "rs-secret".into()),
        ]
    })
    .await;
    let url = srv.url();
    let jwt = token(&idp.issuer, ("cc-client", "cc-secret"), &url, "data:read").await;
    assert_eq!(jwt.split('.').count(), 3);
    assert_eq!(whoami(&url, &jwt).await.unwrap()["method"], "jwt");
    let opaque = token(
        &idp.issuer,
        ("cc-opaque-client", "cc-opaque-secret"),
        &url,
        "data:read",
    )
    .await;
    assert_eq!(
        whoami(&url, &opaque).await.unwrap()["method"],
        "introspection"
    );
}

// --- rmcp's OAuth client ----------------------------------------------------------------------

/// The scope a 403 challenge asks for, from rmcp's transport error.
fn required_scope(err: &rmcp::ServiceError) -> Option<String> {
    let rmcp::ServiceError::TransportSend(t) = err else {
        return None;
    };
    match t
        .error
        .downcast_ref::<StreamableHttpError<reqwest::Error>>()?
    {
        StreamableHttpError::InsufficientScope(e) => e.required_scope.clone(),
        _ => None,
    }
}

#[tokio::test]
#[ignore = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)"]
async fn rmcp_oauth_client_completes_the_flow_from_a_cold_start_and_steps_up() {
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let srv = start_with(|_| vec![("MCP_OIDC_ISSUER".into(), issuer)]).await;
    let url = srv.url();
    let redirect_uri = "http://127.0.0.1:1/callback";

    // Cold start: the 401 challenge drives discovery.
    let (status, challenge, _) = probe(&url, None).await;
    assert_eq!(status, 401);
    let mut state = OAuthState::new(url.as_str(), None).await.unwrap();
    state
        .start_authorization(
            AuthorizationRequest::new(redirect_uri)
                .with_client_name("rmcp e2e")
                .with_challenge(challenge)
                .with_initial_scope_selection(),
        )
        .await
        .expect("metadata discovery and dynamic registration");
    let authorization_url = state.get_authorization_url().await.unwrap();
    let query: Vec<(String, String)> = reqwest::Url::parse(&authorization_url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        param("resource").as_deref(),
        Some(url.as_str()),
        "RFC 8707 resource, exact"
    );
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    // The 401's scope (rmcp adds offline_access because the authorization server lists it).
    let scope = param("scope").unwrap();
    let mut requested: Vec<&str> = scope.split(' ').collect();
    requested.retain(|s| *s != "offline_access");
    assert_eq!(requested, ["data:read"], "{scope}");
    let callback = browse(&authorization_url, redirect_uri).await;
    state
        .handle_callback_url(&callback)
        .await
        .expect("token exchange");
    let manager = state.into_authorization_manager().expect("authorized");
    let auth = AuthClient::new(reqwest::Client::default(), manager);
    let transport = StreamableHttpClientTransport::with_client(
        auth.clone(),
        StreamableHttpClientTransportConfig::with_uri(url.clone()),
    );
    let client = ClientConfig::default().serve(transport).await.unwrap();
    let whoami = || async {
        let who = client
            .call_tool(CallToolRequestParams::new("whoami"))
            .await
            .unwrap();
        serde_json::from_str::<Value>(&who.content[0].as_text().unwrap().text).unwrap()
    };
    let who = whoami().await;
    assert_eq!(who["subject"], "alice");
    assert_eq!(who["method"], "jwt");
    assert_eq!(who["scopes"], json!(["data:read"]));

    // Step-up: write_data needs data:write; the 403 names it.
    let mut args = serde_json::Map::new();
    args.insert("key".into(), "k".into());
    args.insert("value".into(), "v".into());
    let err = client
        .call_tool(CallToolRequestParams::new("write_data").with_arguments(args.clone()))
        .await
        .unwrap_err();
    assert_eq!(required_scope(&err).as_deref(), Some("data:write"), "{err}");

    // Re-authorize with the challenged scope (rmcp's scope-upgrade API) in the same session,
    // then retry.
    let upgrade_url = auth
        .auth_manager
        .lock()
        .await
        .request_scope_upgrade("data:write")
        .await
        .expect("scope upgrade");
    let upgraded: Vec<(String, String)> = reqwest::Url::parse(&upgrade_url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let scope = upgraded
        .iter()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(
        scope.split(' ').any(|s| s == "data:write") && scope.split(' ').any(|s| s == "data:read"),
        "{scope}"
    );
    let redirected = browse(&upgrade_url, redirect_uri).await;
    let callback = AuthorizationCallback::from_redirect_url(&redirected)
        .unwrap_or_else(|e| panic!("{e}: {redirected} (asked {upgrade_url})"));
    auth.auth_manager
        .lock()
        .await
        .exchange_code_for_token_with_issuer(
            &callback.code,
            &callback.csrf_token,
            callback.issuer.as_deref(),
        )
        .await
        .expect("token exchange");
    let wrote = client
        .call_tool(CallToolRequestParams::new("write_data").with_arguments(args))
        .await
        .expect("the retried call succeeds");
    assert_eq!(wrote.content[0].as_text().unwrap().text, "stored \"k\"");
    let who = whoami().await;
    assert_eq!(who["scopes"], json!(["data:read", "data:write"]));
    let _ = client.cancel().await;
}

/// Issue 10: oidc-provider answers the introspection of a JWT-shaped token it cannot read
/// with 400. That is about the token (401 `invalid_token`), not an outage (503).
#[tokio::test]
#[ignore = "needs the oidc-provider test IdP: run scripts/test.sh (it installs it)"]
async fn a_jwt_shaped_garbage_token_is_401_not_503_at_an_introspection_only_server() {
    let idp = start_idp();
    let issuer = idp.issuer.clone();
    let srv = start_with(|_| {
        vec![
            ("MCP_AUTHORIZATION_SERVERS".into(), issuer),
            ("MCP_INTROSPECTION_CLIENT_ID".into(), "rs-client".into()),
            ("MCP_INTROSPECTION_CLIENT_SECRET".into(), "rs-secret".into()),
        ]
    })
    .await;
    let url = srv.url();
    // The AS's own answer, to show what the server has to interpret.
    let direct = reqwest::Client::new()
        .post(format!("{}/token/introspection", idp.issuer))
        .basic_auth("rs-client", Some("rs-secret"))
        .form(&[("token", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl")])
        .send()
        .await
        .unwrap();
    eprintln!("oidc-provider answers {}", direct.status());
    for garbage in [
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl",
        "a.b.c",
        "eyJhbGciOiJub25lIn0.e30.",
    ] {
        let (status, challenge, retry) = probe(&url, Some(garbage)).await;
        assert_eq!(status, 401, "{garbage}: {challenge}");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
        assert!(retry.is_none());
    }
    // Real tokens still work.
    let opaque = ("cc-opaque-client", "cc-opaque-secret");
    let good = token(&idp.issuer, opaque, &url, "data:read").await;
    assert_eq!(
        whoami(&url, &good).await.unwrap()["method"],
        "introspection"
    );
}
