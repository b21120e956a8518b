//! The oidc-provider test authorization server (`tests/e2e/idp`, from npm) on loopback, as the
//! repository's own end-to-end tests start it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The test authorization server, killed on drop.
pub struct Idp {
    child: std::process::Child,
    /// Its issuer URL (`http://127.0.0.1:<port>`).
    pub issuer: String,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the test authorization server on a free loopback port.
pub fn start_idp() -> Idp {
    let dir = super::repo().join("tests/e2e/idp");
    assert!(
        dir.join("node_modules/oidc-provider").exists(),
        "oidc-provider is not installed: run `npm ci --prefix tests/e2e/idp` (scripts/test.sh does)"
    );
    let port = super::free_port();
    let mut child = Command::new("node")
        .arg("server.mjs")
        .current_dir(dir)
        .env("IDP_PORT", port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node is installed");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(issuer) = line.strip_prefix("listening ") {
                let _ = tx.send(issuer.to_owned());
            }
        }
    });
    let issuer = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the IdP did not start within 30 s");
    Idp { child, issuer }
}
