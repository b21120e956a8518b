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

/// Starts the test authorization server with extra environment variables.
fn start_idp_with(env: &[(&str, &str)]) -> Idp {
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
    let port = super::free_port();
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
