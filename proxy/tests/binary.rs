//! The `mcp-auth-proxy` binary as an operator runs it: a configuration error exits 2 naming
//! the variables; with no credential it prints a generated token and requires it; SIGTERM
//! stops it gracefully, within the grace period even with a stream open.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, upstream};

const BIN: &str = env!("CARGO_BIN_EXE_mcp-auth-proxy");

#[test]
fn a_configuration_error_exits_2_naming_each_variable_and_no_value() {
    let out = Command::new(BIN)
        .env_clear()
        .env("MCP_UPSTREAM_URL", "https://secret-host.example/mcp")
        .env("MCP_UPSTREAM_JWT_SECRET", "too-short-secret-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MCP_UPSTREAM_URL"), "{err}");
    assert!(!err.contains("too-short-secret-value"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_generated_token_is_printed_and_required_and_sigterm_stops_the_proxy() {
    let up = upstream::start().await;
    let port = free_port();
    let mut child = Command::new(BIN)
        .env_clear()
        .env("MCP_BIND", format!("127.0.0.1:{port}"))
        .env("MCP_UPSTREAM_URL", up.url())
        .env("MCP_PROXY_SHUTDOWN_GRACE", "1s")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut token = None;
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the proxy starts");
        if let Some(t) = line.strip_prefix("token: ") {
            token = Some(t.to_owned());
        }
        if line.starts_with("listening ") {
            break;
        }
    }
    let token = token.expect("a token: line before listening");
    let url = format!("http://127.0.0.1:{port}/mcp");
    let http = reqwest::Client::new();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let post = |auth: Option<&str>| {
        let mut req = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = auth {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 401);
    assert_eq!(post(Some(&token)).await.unwrap().status(), 200);

    // An open SSE stream does not hold the shutdown past the grace period.
    let init = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;
    let res = http
        .post(&url)
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(init)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["mcp-session-id"], "sess-1");
    let mut stream = http
        .get(&url)
        .bearer_auth(&token)
        .header("mcp-session-id", "sess-1")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    let _ = stream.chunk().await.unwrap();

    let sent = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(10),
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "stopped after {took:?}, the grace period is 1 s"
    );
    // New connections are refused once it has stopped.
    assert!(post(Some(&token)).await.is_err());
}
