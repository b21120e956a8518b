//! Bounded loopback load and soak runs against the example server.
//!
//! ```text
//! cargo run --release --example load -- throughput [seconds-per-mode]   # default 10
//! cargo run --release --example load -- soak [seconds]                  # default 600
//! ```
//!
//! `throughput` serves the example in this process, once without any auth layer (rmcp's
//! service alone) and once per auth mode (API key, static bearer token, HS256 JWT), and drives
//! each with 16 concurrent MCP sessions calling `tools/call whoami` for the given time (and at
//! most 2,000,000 requests); it prints requests per second and the ratio to the no-auth run.
//!
//! `soak` starts `redis-server` and the example server as a child process (`mcp_server`,
//! built beside this binary) with Redis-backed tokens and failure limits behind a trusted
//! proxy, then sends a mix for the given time: valid API keys, static tokens, issued tokens and
//! JWTs; unknown keys, garbage and forged tokens from ever-new client addresses; and issued
//! tokens revoked mid-run (through Redis, as another instance would). It samples the server's
//! resident memory every 10 s and fails if a revoked token is ever accepted.

#[allow(dead_code, unreachable_pub)]
#[path = "mcp_server.rs"]
mod example;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mcp_auth::bearer::{TokenManager, TokenSpec};
use mcp_auth::env::EnvReader;
use mcp_auth::jwt::{Algorithm, JwtMinter};
use mcp_auth::redis::{Redis, RedisConfig};

const KEY: &str = "load-key-0123456789abcdef";
const TOKEN: &str = "load-token-0123456789abcdef";
const SECRET: &str = "load-test-hmac-secret-0123456789abcdef";
const WORKERS: usize = 16;
const MAX_REQUESTS: u64 = 2_000_000;

fn init_body() -> &'static str {
    r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"load","version":"1"}}}"#
}

const CALL: &str =
    r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{}}}"#;

/// Opens an MCP session with `headers`; returns its id, or `None` if refused.
async fn session(
    http: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
) -> Option<String> {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(init_body());
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = req.send().await.ok()?;
    if !res.status().is_success() {
        return None;
    }
    let id = res
        .headers()
        .get("mcp-session-id")?
        .to_str()
        .ok()?
        .to_owned();
    let _ = res.bytes().await;
    let mut note = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-session-id", &id)
        .body(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    for (k, v) in headers {
        note = note.header(k, v);
    }
    note.send().await.ok()?;
    Some(id)
}

/// One `tools/call whoami` in `sid`; returns the HTTP status.
async fn call(
    http: &reqwest::Client,
    url: &str,
    sid: Option<&str>,
    headers: &[(String, String)],
) -> u16 {
    let mut req = http
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(CALL);
    if let Some(s) = sid {
        req = req.header("mcp-session-id", s);
    }
    for (k, v) in headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            let _ = res.bytes().await;
            status
        }
        Err(_) => 0,
    }
}

/// An auth mode: name, server environment, request headers.
type Mode<'a> = (&'a str, Vec<(String, String)>, Vec<(&'a str, String)>);

struct Run {
    ok: u64,
    errors: u64,
    secs: f64,
    p50_us: u64,
    p99_us: u64,
}

async fn drive(url: String, headers: Vec<(String, String)>, secs: u64) -> Run {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(WORKERS)
        .build()
        .unwrap();
    let stop = Instant::now() + Duration::from_secs(secs);
    let total = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..WORKERS {
        let (http, url, headers, total) =
            (http.clone(), url.clone(), headers.clone(), total.clone());
        tasks.push(tokio::spawn(async move {
            let sid = session(&http, &url, &headers).await.expect("session");
            let (mut ok, mut errors, mut lat) = (0u64, 0u64, Vec::new());
            while Instant::now() < stop && total.fetch_add(1, Ordering::Relaxed) < MAX_REQUESTS {
                let t = Instant::now();
                if call(&http, &url, Some(&sid), &headers).await == 200 {
                    ok += 1;
                } else {
                    errors += 1;
                }
                lat.push(t.elapsed().as_micros() as u64);
            }
            (ok, errors, lat)
        }));
    }
    let (mut ok, mut errors, mut lat) = (0, 0, Vec::new());
    for t in tasks {
        let (o, e, l) = t.await.unwrap();
        ok += o;
        errors += e;
        lat.extend(l);
    }
    lat.sort_unstable();
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Run {
        ok,
        errors,
        secs: started.elapsed().as_secs_f64(),
        p50_us: pct(0.5),
        p99_us: pct(0.99),
    }
}

/// Small SSE responses must not wait for delayed ACKs (Nagle): set `TCP_NODELAY`.
fn set_nodelay(tcp: &mut tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(true);
}

fn nodelay(
    listener: tokio::net::TcpListener,
) -> axum::serve::TapIo<tokio::net::TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    listener.tap_io(set_nodelay as fn(&mut tokio::net::TcpStream))
}

async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = nodelay(listener);
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap()
    });
    format!("http://{addr}/mcp")
}

async fn throughput(secs: u64) {
    println!(
        "throughput: {WORKERS} sessions, {secs} s per mode, at most {MAX_REQUESTS} requests; tools/call whoami"
    );
    // Baseline: rmcp's service with no auth layer at all (whoami needs a context, so the
    // baseline calls it on a server whose tool reads none: the MCP service is the same).
    let policy = std::sync::Arc::new(example::scope_policy(example::DEFAULT_TOOL_SCOPES).unwrap());
    let bare = axum::Router::new().nest_service(
        "/mcp",
        tower::ServiceBuilder::new()
            .map_request(|mut req: http::Request<axum::body::Body>| {
                // The tools read an AuthContext; give them a fixed one, as no auth layer would.
                req.extensions_mut().insert(
                    mcp_auth::AuthContext::builder(
                        "anonymous",
                        mcp_auth::AuthMethod::Custom("none".into()),
                    )
                    .build(),
                );
                req
            })
            .service(example::mcp_service(None, policy)),
    );
    let base_url = serve(bare).await;
    let base = drive(base_url, vec![], secs).await;
    let base_rps = base.ok as f64 / base.secs;
    println!("| mode | requests/s | ratio to no auth | p50 | p99 | errors |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| no auth layer | {base_rps:.0} | 1.00 | {} µs | {} µs | {} |",
        base.p50_us, base.p99_us, base.errors
    );
    let jwt = JwtMinter::hmac(SECRET, Algorithm::HS256)
        .unwrap()
        .issuer("https://as.example.com");
    let modes: Vec<Mode<'_>> = vec![
        (
            "API key",
            vec![("MCP_API_KEYS".into(), format!("{KEY};sub=load"))],
            vec![("x-api-key", KEY.into())],
        ),
        (
            "static bearer",
            vec![("MCP_AUTH_TOKENS".into(), format!("{TOKEN};sub=load"))],
            vec![("authorization", format!("Bearer {TOKEN}"))],
        ),
        (
            "JWT HS256",
            vec![
                ("MCP_JWT_SECRET".into(), SECRET.into()),
                ("MCP_JWT_ISSUER".into(), "https://as.example.com".into()),
            ],
            vec![],
        ),
    ];
    for (name, env, headers) in modes {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let listener = nodelay(listener);
        let url = format!("http://{addr}/mcp");
        let mut env = env;
        env.push(("MCP_PUBLIC_URL".into(), url.clone()));
        env.push(("MCP_FAILURE_LIMIT".into(), "off".into()));
        let config = example::load_config(EnvReader::from_pairs(env)).expect("config");
        let app = example::app(config);
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
            .unwrap()
        });
        let mut headers: Vec<(String, String)> = headers
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        if name == "JWT HS256" {
            let token = jwt
                .clone()
                .audience(url.clone())
                .mint("load", ["data:read"])
                .unwrap();
            headers.push(("authorization".into(), format!("Bearer {token}")));
        }
        let r = drive(url, headers, secs).await;
        let rps = r.ok as f64 / r.secs;
        println!(
            "| {name} | {rps:.0} | {:.2} | {} µs | {} µs | {} |",
            rps / base_rps,
            r.p50_us,
            r.p99_us,
            r.errors
        );
    }
}

/// Resident memory of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn soak(secs: u64) {
    let redis_port = free_port();
    let _redis = Kill(
        Command::new("redis-server")
            .args([
                "--port",
                &redis_port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server"),
    );
    wait_for(redis_port);
    let redis_url = format!("redis://127.0.0.1:{redis_port}/0");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let exe = std::env::current_exe()
        .unwrap()
        .with_file_name("mcp_server");
    let server = Kill(
        Command::new(&exe)
            .env("MCP_BIND", format!("127.0.0.1:{port}"))
            .env("MCP_PUBLIC_URL", &url)
            .env("MCP_API_KEYS", format!("{KEY};sub=load"))
            .env("MCP_AUTH_TOKENS", format!("{TOKEN};sub=load"))
            .env("MCP_JWT_SECRET", SECRET)
            .env("MCP_JWT_ISSUER", "https://as.example.com")
            .env("MCP_REDIS_URL", &redis_url)
            .env("MCP_TRUST_PROXY", "true")
            .env("MCP_FAILURE_LIMIT", "5/60")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (build it: cargo build --release --example mcp_server)",
                    exe.display()
                )
            }),
    );
    wait_for(port);
    let pid = server.0.id();
    let redis = Redis::new(RedisConfig::new(&redis_url)).unwrap();
    let tokens = TokenManager::new(redis.token_store());
    let jwt = JwtMinter::hmac(SECRET, Algorithm::HS256)
        .unwrap()
        .issuer("https://as.example.com")
        .audience(url.clone());
    let forged = JwtMinter::hmac("another-secret-0123456789abcdef-xx", Algorithm::HS256)
        .unwrap()
        .issuer("https://as.example.com")
        .audience(url.clone());
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let stop = Arc::new(AtomicBool::new(false));
    let (sent, accepted_revoked, refused_valid) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let mut tasks = Vec::new();
    for w in 0..8u64 {
        let (http, url, tokens, jwt, forged, stop) = (
            http.clone(),
            url.clone(),
            tokens.clone(),
            jwt.clone(),
            forged.clone(),
            stop.clone(),
        );
        let (sent, accepted_revoked, refused_valid) = (
            sent.clone(),
            accepted_revoked.clone(),
            refused_valid.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                // A fresh client address for every invalid credential: the failure limiter's
                // table fills with ever-new addresses and must stay within its bound.
                let fresh = format!("10.{}.{}.{}", w, (i >> 8) & 255, i & 255);
                let good = "198.51.100.1".to_owned();
                let (headers, expect_ok, revoked): (Vec<(String, String)>, bool, bool) = match i % 8
                {
                    0 => (
                        vec![
                            ("x-api-key".into(), KEY.into()),
                            ("x-forwarded-for".into(), good),
                        ],
                        true,
                        false,
                    ),
                    1 => (
                        vec![
                            ("authorization".into(), format!("Bearer {TOKEN}")),
                            ("x-forwarded-for".into(), good),
                        ],
                        true,
                        false,
                    ),
                    2 => {
                        let t = jwt.mint(&format!("user-{i}"), ["data:read"]).unwrap();
                        (
                            vec![
                                ("authorization".into(), format!("Bearer {t}")),
                                ("x-forwarded-for".into(), good),
                            ],
                            true,
                            false,
                        )
                    }
                    3 => {
                        let issued = tokens
                            .issue(TokenSpec::new(
                                format!("issued-{i}"),
                                Duration::from_secs(30),
                            ))
                            .await
                            .unwrap();
                        (
                            vec![
                                (
                                    "authorization".into(),
                                    format!("Bearer {}", issued.token.expose()),
                                ),
                                ("x-forwarded-for".into(), good),
                            ],
                            true,
                            false,
                        )
                    }
                    4 => {
                        let issued = tokens
                            .issue(TokenSpec::new(
                                format!("revoked-{i}"),
                                Duration::from_secs(30),
                            ))
                            .await
                            .unwrap();
                        tokens.revoke(issued.token.expose()).await.unwrap();
                        (
                            vec![
                                (
                                    "authorization".into(),
                                    format!("Bearer {}", issued.token.expose()),
                                ),
                                ("x-forwarded-for".into(), fresh),
                            ],
                            false,
                            true,
                        )
                    }
                    5 => (
                        vec![
                            ("x-api-key".into(), format!("unknown-key-{i:016}")),
                            ("x-forwarded-for".into(), fresh),
                        ],
                        false,
                        false,
                    ),
                    6 => {
                        let t = forged.mint("mallory", ["data:admin"]).unwrap();
                        (
                            vec![
                                ("authorization".into(), format!("Bearer {t}")),
                                ("x-forwarded-for".into(), fresh),
                            ],
                            false,
                            false,
                        )
                    }
                    _ => (
                        vec![
                            ("authorization".into(), format!("Bearer garbage.{i}.x")),
                            ("x-forwarded-for".into(), fresh),
                        ],
                        false,
                        false,
                    ),
                };
                let status = call(&http, &url, None, &headers).await;
                sent.fetch_add(1, Ordering::Relaxed);
                // Without a session rmcp answers an authorized tools/call with 4xx other than
                // 401/403/429; an accepted credential is anything but 401.
                let accepted = status != 401 && status != 429 && status != 0 && status != 503;
                if revoked && accepted {
                    accepted_revoked.fetch_add(1, Ordering::Relaxed);
                }
                if expect_ok && !accepted {
                    refused_valid.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    println!("soak: {secs} s, 8 workers; server pid {pid}");
    println!("| t (s) | requests | server RSS (MiB) |");
    println!("|---|---|---|");
    let started = Instant::now();
    let mut samples = Vec::new();
    loop {
        let rss = rss_kib(pid) as f64 / 1024.0;
        let t = started.elapsed().as_secs();
        samples.push(rss);
        println!("| {t} | {} | {rss:.1} |", sent.load(Ordering::Relaxed));
        if Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(10).min(deadline - Instant::now())).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let max = samples.iter().copied().fold(0.0, f64::max);
    let after_warmup = samples.get(3).copied().unwrap_or(samples[0]);
    println!(
        "requests {}; revoked tokens accepted: {}; valid credentials refused: {}; RSS start {:.1} MiB, after 30 s {:.1} MiB, max {:.1} MiB, end {:.1} MiB",
        sent.load(Ordering::Relaxed),
        accepted_revoked.load(Ordering::Relaxed),
        refused_valid.load(Ordering::Relaxed),
        samples[0],
        after_warmup,
        max,
        samples.last().copied().unwrap_or(0.0)
    );
    assert_eq!(
        accepted_revoked.load(Ordering::Relaxed),
        0,
        "a revoked token was accepted"
    );
    drop(server);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secs = |default: u64| args.get(1).and_then(|s| s.parse().ok()).unwrap_or(default);
    match args.first().map(String::as_str) {
        Some("throughput") => throughput(secs(10)).await,
        Some("soak") => soak(secs(600)).await,
        _ => eprintln!("usage: load throughput [seconds-per-mode] | load soak [seconds]"),
    }
}
