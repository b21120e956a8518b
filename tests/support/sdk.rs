//! The official MCP SDK clients (TypeScript in `tests/e2e/ts-sdk`, Python in
//! `tests/e2e/py-sdk`): each runs a script that prints one JSON line, with the requests it
//! observed.

use std::ffi::OsString;

use serde_json::Value;

/// Runs `timeout 90 <program> <script> <args>` in `dir` and parses the JSON of its last line
/// of output; `client` names it in failures, `expect` says what must be installed.
pub async fn run_client(
    client: &'static str,
    program: impl Into<OsString>,
    script: &'static str,
    args: Vec<String>,
    dir: &'static str,
    expect: &'static str,
) -> Value {
    let program = program.into();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("timeout")
            .arg("90")
            .arg(program)
            .arg(script)
            .args(&args)
            .current_dir(dir)
            .output()
            .expect(expect)
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

/// The requests the client observed (method, path, status).
pub fn observed(v: &Value) -> Vec<Value> {
    v["observed"].as_array().cloned().unwrap_or_default()
}

/// Whether the client observed `method path` answered with `status`.
pub fn saw(v: &Value, method: &str, path: &str, status: u64) -> bool {
    observed(v)
        .iter()
        .any(|o| o["method"] == method && o["path"] == path && o["status"] == status)
}
