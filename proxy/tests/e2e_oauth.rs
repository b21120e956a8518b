//! OAuth through the proxy, end to end: oidc-provider as the authorization server
//! (`tests/e2e/idp`), the proxy as the protected resource, an official SDK server as the
//! upstream, and each of the three clients (the TypeScript SDK's, the Python SDK's and rmcp's)
//! completing the authorization code flow from a cold start and stepping up on a 403.
//!
//! Needs `npm ci --prefix tests/e2e/idp`, `npm ci --prefix tests/e2e/ts-sdk` and the
//! virtualenv `tests/e2e/py-sdk/.venv`; ignored in a plain `cargo test`.

mod support;

use rmcp::ServiceExt;
use rmcp::model::{CallToolRequestParams, ClientConfig};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::auth::{AuthClient, AuthorizationCallback, AuthorizationRequest, OAuthState};
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use serde_json::Value;
use support::idp::start_idp;
use support::sdk::observed;
use support::{Child, Proxy, pairs, start_proxy};

/// The proxy as an OAuth protected resource of `issuer`, in front of `upstream`.
async fn oauth_proxy(issuer: &str, upstream: &Child) -> Proxy {
    let issuer = issuer.to_owned();
    let up = upstream.url.clone();
    start_proxy(move |_| pairs(&[("MCP_OIDC_ISSUER", &issuer), ("MCP_UPSTREAM_URL", &up)])).await
}

/// The first request a client observed: a 401 pointing to the proxy's metadata.
fn assert_cold_start(v: &Value, proxy: &Proxy) {
    let first = &observed(v)[0];
    assert_eq!(first["status"], 401, "{v:#}");
    let challenge = first["challenge"].as_str().unwrap_or_default();
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{}\"",
            proxy.at("/.well-known/oauth-protected-resource/mcp")
        )),
        "{challenge}"
    );
}

/// The identity the upstream's whoami reported.
fn identity(who: &Value) -> (&str, &str, &str) {
    let id = &who["identity"];
    (
        id["x-mcp-subject"].as_str().unwrap_or_default(),
        id["x-mcp-auth-method"].as_str().unwrap_or_default(),
        id["x-mcp-scopes"].as_str().unwrap_or_default(),
    )
}

/// The upstream never saw a client's access token.
async fn assert_no_token_reached(upstream: &Child) {
    assert!(!upstream.requests().await.is_empty());
    assert!(upstream.header_values("authorization").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm and PyPI packages: run scripts/test.sh"]
async fn typescript_sdk_client_authorizes_and_steps_up_through_the_proxy() {
    let idp = start_idp();
    let upstream = support::py_upstream();
    let proxy = oauth_proxy(&idp.issuer, &upstream).await;
    let v = support::sdk::typescript(vec!["step-up".into(), proxy.url()]).await;
    assert_cold_start(&v, &proxy);
    assert_eq!(
        identity(&v["whoami"]),
        ("alice", "jwt", "data:read"),
        "{v:#}"
    );
    assert_eq!(v["firstWrite"]["ok"], false, "{v:#}");
    assert_eq!(v["retry"]["text"], "ok", "{v:#}");
    // The TypeScript SDK re-authorizes for the challenged scope alone.
    let (subject, _, scopes) = identity(&v["whoamiAfter"]);
    assert_eq!(subject, "alice", "{v:#}");
    assert!(scopes.split(' ').any(|s| s == "data:write"), "{v:#}");
    assert!(
        observed(&v)
            .iter()
            .any(|o| o["status"] == 403 && o["method"] == "POST"),
        "the step-up came from the proxy's 403: {v:#}"
    );
    assert_no_token_reached(&upstream).await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm and PyPI packages: run scripts/test.sh"]
async fn python_sdk_client_authorizes_and_steps_up_through_the_proxy() {
    let idp = start_idp();
    let upstream = support::ts_upstream();
    let proxy = oauth_proxy(&idp.issuer, &upstream).await;
    let v = support::sdk::python(vec!["step-up".into(), proxy.url()]).await;
    assert_cold_start(&v, &proxy);
    assert_eq!(
        identity(&v["whoami"]),
        ("alice", "jwt", "data:read"),
        "{v:#}"
    );
    assert_eq!(v["write"]["text"], "ok", "{v:#}");
    assert_eq!(v["write"]["isError"], false, "{v:#}");
    assert_eq!(
        identity(&v["whoamiAfter"]),
        ("alice", "jwt", "data:read data:write"),
        "{v:#}"
    );
    assert_eq!(v["authorizations"], 2, "{v:#}");
    assert_no_token_reached(&upstream).await;
}

/// A headless browser: follows the authorization server's redirects (keeping its cookies)
/// until it is sent to `redirect_uri`; returns that URL.
async fn browse(authorization_url: &str, redirect_uri: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let mut url = reqwest::Url::parse(authorization_url).unwrap();
    for _ in 0..10 {
        let res = http.get(url.clone()).send().await.unwrap();
        assert!(res.status().is_redirection(), "{url}: {}", res.status());
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let next = url.join(&location).unwrap();
        if next.as_str().starts_with(redirect_uri) {
            return next.to_string();
        }
        url = next;
    }
    panic!("too many redirects from {authorization_url}");
}

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

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs npm and PyPI packages: run scripts/test.sh"]
async fn rmcp_client_authorizes_and_steps_up_through_the_proxy() {
    let idp = start_idp();
    let upstream = support::py_upstream();
    let proxy = oauth_proxy(&idp.issuer, &upstream).await;
    let url = proxy.url();
    let redirect_uri = "http://127.0.0.1:1/callback";

    let cold = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(cold.status(), 401);
    let challenge = cold.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut state = OAuthState::new(url.as_str(), None).await.unwrap();
    state
        .start_authorization(
            AuthorizationRequest::new(redirect_uri)
                .with_client_name("rmcp through mcp-auth-proxy")
                .with_challenge(challenge)
                .with_initial_scope_selection(),
        )
        .await
        .expect("metadata discovery and dynamic registration");
    let authorization_url = state.get_authorization_url().await.unwrap();
    let resource = reqwest::Url::parse(&authorization_url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "resource")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        resource.as_deref(),
        Some(url.as_str()),
        "the proxy is the resource"
    );
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
    assert_eq!(identity(&whoami().await), ("alice", "jwt", "data:read"));

    let mut args = serde_json::Map::new();
    args.insert("key".into(), "k".into());
    args.insert("value".into(), "v".into());
    let err = client
        .call_tool(CallToolRequestParams::new("write_data").with_arguments(args.clone()))
        .await
        .unwrap_err();
    assert_eq!(required_scope(&err).as_deref(), Some("data:write"), "{err}");
    let upgrade_url = auth
        .auth_manager
        .lock()
        .await
        .request_scope_upgrade("data:write")
        .await
        .expect("scope upgrade");
    let redirected = browse(&upgrade_url, redirect_uri).await;
    let callback = AuthorizationCallback::from_redirect_url(&redirected).unwrap();
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
    assert_eq!(wrote.content[0].as_text().unwrap().text, "ok");
    assert_eq!(
        identity(&whoami().await),
        ("alice", "jwt", "data:read data:write")
    );
    let _ = client.cancel().await;
    assert_no_token_reached(&upstream).await;
}
