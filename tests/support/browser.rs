//! The MCP Inspector's web client in headless Chromium (`tests/e2e/browser`, from npm, and
//! Debian's `chromium`): `inspector.mjs` takes a spec (server URL, mode, credentials) and
//! prints what the browser did and saw as one JSON line.
//!
//! Set `MCP_AUTH_BROWSER_SCREENSHOTS=<dir>` to keep a PNG of the page after each step.
//!
//! Shared by the integration tests of the repository's root crate and of the crates inside it
//! (`mcp-auth-proxy` includes this file with `#[path]`): the script is found from the
//! repository's root, whichever crate's tests run.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

/// The script's directory inside the repository, beside its npm packages.
const SCRIPT_DIR: &str = "tests/e2e/browser";

/// Where the script and its npm packages are: `tests/e2e/browser` in the repository's root,
/// the nearest directory at or above the crate being tested that holds the script.
pub fn dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|d| d.join(SCRIPT_DIR))
        .find(|d| d.join("inspector.mjs").is_file())
        .unwrap_or_else(|| manifest.join(SCRIPT_DIR))
}

/// The browser the script drives.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// A run is killed (with everything it started) after this many seconds; the script bounds
/// itself below it (`timeoutMs`, 60 s by default).
const RUN_LIMIT_SECS: u32 = 120;

/// Panics with what to install when the Inspector, playwright-core or Chromium is missing.
pub fn require_installed() {
    let modules = dir().join("node_modules");
    assert!(
        modules
            .join("@modelcontextprotocol/inspector-client")
            .exists()
            && modules.join("playwright-core").exists(),
        "the MCP Inspector and playwright-core are not installed: run `npm ci --prefix tests/e2e/browser` (scripts/test.sh does)"
    );
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: `apt-get install chromium` (scripts/test.sh does)"
    );
}

/// Kills the run's whole process group (node, the Inspector's web server; Chromium exits
/// when its pipe to node closes) unless the run has ended.
struct KillOnDrop {
    pgid: u32,
    ended: Arc<AtomicBool>,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !self.ended.load(Ordering::SeqCst) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.pgid)])
                .status();
        }
    }
}

/// Runs `inspector.mjs` with `spec` (see the script's header) under `timeout`, in a process
/// group of its own that is killed if this future is dropped; the JSON it printed last.
/// Panics (with that JSON and the script's stderr) when it prints none.
pub async fn run_inspector(mut spec: Value) -> Value {
    require_installed();
    if let Ok(dir) = std::env::var("MCP_AUTH_BROWSER_SCREENSHOTS") {
        spec["screenshots"] = Value::String(dir);
    }
    // `timeout` puts itself in a new process group and, on expiry, signals that group.
    let mut child = Command::new("timeout")
        .args([
            "--kill-after=5",
            &RUN_LIMIT_SECS.to_string(),
            "node",
            "inspector.mjs",
        ])
        .arg(spec.to_string())
        .current_dir(dir())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node and coreutils' timeout are installed");
    let ended = Arc::new(AtomicBool::new(false));
    let guard = KillOnDrop {
        pgid: child.id(),
        ended: ended.clone(),
    };
    let (status, stdout, stderr) = tokio::task::spawn_blocking(move || {
        // Both pipes are read at once, so neither can fill up and stall the script.
        let mut err = child.stderr.take().unwrap();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let mut out = String::new();
        let _ = child.stdout.take().unwrap().read_to_string(&mut out);
        let status = child.wait().expect("wait for the browser run");
        ended.store(true, Ordering::SeqCst);
        (status, out, err_reader.join().unwrap_or_default())
    })
    .await
    .unwrap();
    drop(guard);
    let line = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "no JSON from the browser run (status {status}):\n{stdout}\n{}",
            tail(&stderr)
        )
    });
    if !status.success() || v["ok"] != true {
        panic!(
            "the browser run failed ({status}):\n{v:#}\n{}",
            tail(&stderr)
        );
    }
    v
}

/// The last lines of the script's stderr (the page's console), for failure messages.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

/// The requests the browser sent (not preflights, not navigations) to `path` on the origin
/// of `url`.
pub fn requests_to<'a>(v: &'a Value, url: &str, path: &str) -> Vec<&'a Value> {
    let origin = origin_of(url);
    v["observed"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["origin"] == origin.as_str() && r["path"] == path)
                .collect()
        })
        .unwrap_or_default()
}

/// The CORS preflights the browser sent to `path` on the origin of `url`.
pub fn preflights_to<'a>(v: &'a Value, url: &str, path: &str) -> Vec<&'a Value> {
    let origin = origin_of(url);
    v["preflights"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["origin"] == origin.as_str() && r["path"] == path)
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the browser sent header `name` (lowercase) with request record `r`.
pub fn sent_header(r: &Value, name: &str) -> bool {
    r["headers"]
        .as_array()
        .is_some_and(|h| h.iter().any(|x| x == name))
}

/// `scheme://host:port` of `url`.
pub fn origin_of(url: &str) -> String {
    let u = reqwest::Url::parse(url).expect("a URL");
    u.origin().ascii_serialization()
}

/// The probe named `name` in a `probe` run.
pub fn probe<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["probes"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no probe {name}: {v:#}"))
}
