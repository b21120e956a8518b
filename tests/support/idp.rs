//! The oidc-provider test authorization server (`tests/e2e/idp`, from npm) on loopback, and
//! tokens from it.

use serde_json::Value;

/// The oidc-provider test authorization server (tests/e2e/idp), killed on drop.
pub struct Idp {
    child: std::process::Child,
    /// Its issuer URL (`http://127.0.0.1:<port>`).
    pub issuer: String,
    /// Its signing key (PKCS#8 PEM), when started with its own ([`start_idp_with_own_key`]).
    pub signing_key: Option<String>,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Idp {
    /// Stops the authorization server now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the test authorization server on a free loopback port.
pub fn start_idp() -> Idp {
    start_idp_with(&[])
}

/// Starts the test authorization server with a fresh RSA signing key of its own (`kid`),
/// instead of oidc-provider's development keys that every instance shares.
pub fn start_idp_with_own_key(kid: &str) -> Idp {
    start_idp_with(&[("IDP_OWN_KEY", "1"), ("IDP_KID", kid)])
}

/// [`start_idp`] with more environment for the server (`IDP_MCP_RESOURCE`: the MCP server
/// whose callers' tokens may be exchanged).
pub fn start_idp_with(env: &[(&str, &str)]) -> Idp {
    start_idp_on(super::free_port(), env)
}

/// [`start_idp_with`] on a given loopback port (for servers that must know the issuer
/// before it runs).
pub fn start_idp_on(port: u16, env: &[(&str, &str)]) -> Idp {
    use base64::Engine as _;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/e2e/idp");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/oidc-provider")
            .exists(),
        "oidc-provider is not installed: run `npm ci --prefix tests/e2e/idp` (scripts/test.sh does)"
    );
    let mut child = Command::new("node")
        .arg("server.mjs")
        .current_dir(dir)
        .env("IDP_PORT", port.to_string())
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node is installed");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut key = None;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(k) = line.strip_prefix("signing-key ") {
                key = Some(k.to_owned());
            }
            if let Some(issuer) = line.strip_prefix("listening ") {
                let _ = tx.send((issuer.to_owned(), key.take()));
            }
        }
    });
    let (issuer, key) = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the IdP did not start within 30 s");
    let signing_key = key.map(|k| {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(k)
            .expect("base64 key");
        String::from_utf8(pem).expect("PEM text")
    });
    Idp {
        child,
        issuer,
        signing_key,
    }
}

/// An access token from `issuer` by client_credentials as `client` (id, secret), for `scope`
/// and, when given, the RFC 8707 `resource`.
pub async fn client_credentials_token(
    issuer: &str,
    client: (&str, &str),
    scope: &str,
    resource: Option<&str>,
) -> String {
    let mut form = vec![("grant_type", "client_credentials"), ("scope", scope)];
    if let Some(r) = resource {
        form.push(("resource", r));
    }
    let res: Value = reqwest::Client::new()
        .post(format!("{issuer}/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {res}"))
        .to_owned()
}

/// A headless browser: follows the authorization server's redirects (keeping its cookies)
/// until it is sent to `redirect_uri`; returns that URL (code and state in the query).
pub async fn browse(authorization_url: &str, redirect_uri: &str) -> String {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap();
    let mut url = reqwest::Url::parse(authorization_url).unwrap();
    for _ in 0..10 {
        let res = http.get(url.clone()).send().await.unwrap();
        assert!(
            res.status().is_redirection(),
            "{url}: {} {}",
            res.status(),
            res.text().await.unwrap_or_default()
        );
        let location = res.headers()["location"].to_str().unwrap().to_owned();
        let next = url.join(&location).unwrap();
        if next.as_str().starts_with(redirect_uri) {
            return next.to_string();
        }
        url = next;
    }
    panic!("too many redirects from {authorization_url}");
}

/// An access token for the user `alice` by the authorization-code flow with PKCE: registers a
/// public client (RFC 7591), logs in headlessly (the test IdP's interaction logs `alice` in,
/// at the `acr` asked for in `extra` as `acr_values`, else `urn:mcp:loa:1`), and exchanges
/// the code for a token for `resource` and `scope`. `extra`: more authorization parameters
/// (`acr_values`, `max_age`).
pub async fn authorization_code_token(
    issuer: &str,
    resource: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    let redirect_uri = "http://127.0.0.1:1/callback";
    let http = reqwest::Client::new();
    let reg: Value = http
        .post(format!("{issuer}/reg"))
        .json(&serde_json::json!({
            "redirect_uris": [redirect_uri],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let client_id = reg["client_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{reg}"))
        .to_owned();
    let verifier = "a-pkce-verifier-of-enough-length-0123456789abcdefghijk";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    let mut auth = reqwest::Url::parse(&format!("{issuer}/auth")).unwrap();
    auth.query_pairs_mut()
        .append_pair("client_id", &client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("response_type", "code")
        .append_pair("scope", scope)
        .append_pair("resource", resource)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", "s-1");
    for (k, v) in extra {
        auth.query_pairs_mut().append_pair(k, v);
    }
    let callback = browse(auth.as_str(), redirect_uri).await;
    let code = reqwest::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in {callback}"));
    let res: Value = http
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect_uri),
            ("client_id", &client_id),
            ("code_verifier", verifier),
            ("resource", resource),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    res["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {res}"))
        .to_owned()
}
