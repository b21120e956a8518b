//! The official MCP SDK clients of the repository's end-to-end tests (TypeScript in
//! `tests/e2e/ts-sdk/client.mjs`, Python in `tests/e2e/py-sdk/client.py`), run against the
//! proxy: each prints one JSON line with what it saw.

use std::ffi::OsString;
use std::path::PathBuf;

use serde_json::Value;

/// Runs `timeout 90 <program> <script> <args>` in `dir` and parses the JSON of its last line
/// of output.
async fn run_client(
    client: &'static str,
    program: OsString,
    script: &'static str,
    args: Vec<String>,
    dir: PathBuf,
) -> Value {
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .arg("90")
            .arg(program)
            .arg(script)
            .args(&args)
            .current_dir(dir)
            .output()
            .expect("coreutils' timeout is installed")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or_default();
    let v: Value = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!(
            "no JSON from the {client} client (status {}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{v:#}");
    v
}

/// `node client.mjs <args>` (the TypeScript SDK client).
pub async fn typescript(args: Vec<String>) -> Value {
    let dir = super::repo().join("tests/e2e/ts-sdk");
    assert!(
        dir.join("node_modules/@modelcontextprotocol/sdk").exists(),
        "the TypeScript SDK is not installed: run `npm ci --prefix tests/e2e/ts-sdk` (scripts/test.sh does)"
    );
    run_client("TypeScript", "node".into(), "client.mjs", args, dir).await
}

/// `python client.py <args>` in the virtualenv (the Python SDK client).
pub async fn python(args: Vec<String>) -> Value {
    let dir = super::repo().join("tests/e2e/py-sdk");
    let python = dir.join(".venv/bin/python");
    assert!(
        python.exists(),
        "the Python SDK is not installed: run scripts/test.sh (it creates tests/e2e/py-sdk/.venv)"
    );
    run_client("Python", python.into(), "client.py", args, dir).await
}

/// The requests the client observed (method, path, status, challenge).
pub fn observed(v: &Value) -> Vec<Value> {
    v["observed"].as_array().cloned().unwrap_or_default()
}
