//! Bounded loopback load and soak runs against the example server.
//!
//! ```text
//! cargo run --release -p mcp-auth-load -- throughput [--secs N] [--concurrency C] [--max-requests M] [--rounds R] [--only NAME]
//! cargo run --release -p mcp-auth-load -- soak [--secs N] [--concurrency C] [--max-requests M]
//! cargo run --release -p mcp-auth-load -- proxy [--proxy-bin PATH] [--secs N] [--concurrency C] [--rounds R]
//! ```
//!
//! `proxy` (in `proxy_bench.rs`) compares `mcp-auth-proxy` with nginx and with no proxy in
//! front of one rmcp upstream.
//!
//! Everything runs on 127.0.0.1. The server is the example's application (`load_config` and
//! `app` from the `mcp-auth-example-server` crate in `examples/server/`) in its own process:
//! this binary re-executes itself as `load serve`, configured through the same `MCP_*`
//! variables as the example, so its
//! resident memory (`VmRSS` in `/proc/<pid>/status`) is the server's alone. The server exits
//! when its standard input closes (this process ended) or after a time limit.
//!
//! `throughput`: one fresh server per mode and round: no auth layer (rmcp's service for the
//! same tools with a fixed `AuthContext`, no mcp-auth layer at all), API key, static bearer
//! token, issued bearer token, and HS256 JWTs (one token, so every request after the first is
//! a verified-token cache hit; and a new token per request, so every request verifies a
//! signature). Four more API-key modes attribute the cost of the example's stack (CORS,
//! Origin check, HTTPS check, failure limit, auth, scopes): the auth layer alone; auth and
//! scope layers; the failure limit, auth and scopes; everything but CORS.
//! `--only NAME` runs the modes whose name contains NAME (and the baseline). Each window: `C` MCP sessions (default 32), one per worker, calling
//! `tools/call whoami` back to back; 1 s of warm-up, then `N` seconds (default 10) or `M`
//! requests (default 2,000,000), whichever ends first. A request counts as served if it gets
//! 200 and the caller's subject back. `R` rounds (default 3) run every mode, the order
//! rotated each round so drift on a shared machine does not favour one mode; the summary
//! gives each mode's median requests per second and its ratio to the no-auth median, and
//! the server's CPU time per request (from `/proc/<pid>/stat`), which depends less on what
//! else the machine is doing.
//!
//! `soak`: one server with every credential kind enabled, the failure limit at its default
//! (10 failures per client per 300 s, in memory, clients named by `X-Forwarded-For`), issued
//! tokens in the default in-memory store (at most 100,000), and JWTs behind the example's
//! 10,000-entry verified-token cache. Inside the server process a task issues 50 tokens every
//! 100 ms (TTL 60 s) and announces each on its standard output; half are retired after 1 s
//! and revoked after 2 s, the rest retired after 30 s and left to expire. `C` workers
//! (default 8), each calling in the MCP session of the principal it calls as (sessions are
//! bound to their principal; one is opened per principal on first use), send `tools/call
//! whoami` for `N` seconds
//! (default 600) with a mix of: valid API keys, static tokens, live issued tokens and fresh
//! JWTs (one per request); unknown API keys, garbage tokens, JWTs signed with another key and
//! revoked tokens, each from a new client address (so the failure-limit table fills); and
//! unknown API keys from one fixed address (which the limit should hold to 10 per window).
//! Every 10 s it samples the server's RSS and table sizes. A revoked token that is accepted,
//! or a valid credential refused, is counted as a failure (and the run exits non-zero).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_auth::authenticators::bearer::TokenSpec;
use mcp_auth::authenticators::jwt::{Algorithm, JwtMinter};
use mcp_auth::env::EnvReader;
use mcp_auth_example_server as example;

mod proxy_bench;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};

const API_KEY: &str = "load-api-key-0123456789abcdef";
const STATIC_TOKEN: &str = "load-static-token-0123456789abcdef";
const JWT_SECRET: &str = "load-test-hmac-secret-0123456789abcdef";
const FORGED_SECRET: &str = "another-hmac-secret-0123456789abcdef-x";
const JWT_ISSUER: &str = "https://as.load.test";
const JWT_AUDIENCE: &str = "https://mcp.load.test/mcp";

/// Issued-token churn in the soak: tokens issued per 100 ms tick, and their lifetime.
const CHURN_PER_TICK: usize = 50;
const CHURN_TTL: Duration = Duration::from_secs(60);
/// Revoked half: announced as retired after this, revoked one second later.
const RETIRE_REVOKED_AFTER: Duration = Duration::from_secs(1);
/// Kept half: no longer used by the generator after this (well inside the TTL).
const RETIRE_KEPT_AFTER: Duration = Duration::from_secs(30);

const INIT: &str = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"load","version":"1"}}}"#;
const INITIALIZED: &str = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;

fn whoami_body(id: u64) -> String {
    format!(
        r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/call","params":{{"name":"whoami","arguments":{{}}}}}}"#
    )
}

/// The tool's answer is JSON text inside the JSON-RPC result, so its quotes are escaped.
fn names_subject(body: &[u8], subject: &str) -> bool {
    let needle = format!(r#"\"subject\":\"{subject}\""#);
    body.windows(needle.len()).any(|w| w == needle.as_bytes())
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------

struct Args {
    secs: u64,
    rounds: usize,
    /// Throughput modes whose name contains this (the no-auth baseline always runs).
    only: Option<String>,
    concurrency: usize,
    max_requests: u64,
}

fn parse_args(rest: &[String], secs: u64, concurrency: usize, max_requests: u64) -> Args {
    let mut args = Args {
        secs,
        rounds: 3,
        only: None,
        concurrency,
        max_requests,
    };
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> u64 {
            it.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{name} needs a number")))
        };
        match a.as_str() {
            "--secs" => args.secs = value("--secs"),
            "--concurrency" => args.concurrency = value("--concurrency") as usize,
            "--max-requests" => args.max_requests = value("--max-requests"),
            "--rounds" => args.rounds = value("--rounds") as usize,
            "--only" => {
                args.only = Some(
                    it.next()
                        .cloned()
                        .unwrap_or_else(|| usage("--only needs a mode name")),
                );
            }
            // A bare number is the seconds, as in earlier versions of this harness.
            n if n.parse::<u64>().is_ok() => args.secs = n.parse().unwrap_or(secs),
            other => usage(&format!("unknown argument {other:?}")),
        }
    }
    if args.secs == 0 || args.concurrency == 0 || args.max_requests == 0 || args.rounds == 0 {
        usage("--secs, --concurrency, --max-requests and --rounds must be positive");
    }
    args.rounds = args.rounds.min(100);
    args.secs = args.secs.min(24 * 3600);
    args.concurrency = args.concurrency.min(1024);
    args
}

fn usage(problem: &str) -> ! {
    eprintln!("{problem}");
    eprintln!(
        "usage: load throughput [--secs N] [--concurrency C] [--max-requests M] [--rounds R] [--only NAME]\n       \
         load soak [--secs N] [--concurrency C] [--max-requests M]\n       \
         load proxy [--proxy-bin PATH] [--hop-cpus LIST] [--secs N] [--concurrency C] [--rounds R]"
    );
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("throughput") => throughput(parse_args(rest, 10, 32, 2_000_000)).await,
        Some("soak") => {
            if !soak(parse_args(rest, 600, 8, 50_000_000)).await {
                std::process::exit(1);
            }
        }
        Some("proxy") => {
            let (hop, rest) = proxy_bench::binary_arg(rest);
            proxy_bench::run(parse_args(&rest, 10, 32, 2_000_000), hop).await;
        }
        Some("serve") => serve().await,
        _ => usage("no mode given"),
    }
}

// ---------------------------------------------------------------------------------------------
// The server process (`load serve`)
// ---------------------------------------------------------------------------------------------

/// Sets `TCP_NODELAY` on accepted connections, as the example's `serve` does.
fn set_nodelay(tcp: &mut tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(true);
}

/// The example's application, or with `LOAD_BASELINE` set the same MCP service with no
/// mcp-auth layer (a fixed `AuthContext`, which the tools read, stands in for one). With
/// `LOAD_ISSUE` it issues one bearer token at startup; with `LOAD_CHURN` it issues and
/// revokes tokens for as long as it runs. Its standard output is a line protocol the
/// generator reads: `issued`, `live`, `retire`, `revoked`, `stats`, then `listening`.
async fn serve() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    // Bounded in time whatever happens to the generator.
    std::thread::spawn(|| {
        let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
        std::process::exit(0);
    });
    let max_secs = std::env::var("LOAD_MAX_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3600);
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(max_secs));
        eprintln!("load serve: LOAD_MAX_SECS ({max_secs} s) reached, exiting");
        std::process::exit(3);
    });

    let config = example::load_config(EnvReader::new()).unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2);
    });
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    let tokens = config.tokens.clone();
    let counters = config.guards.counters.clone();
    let app = if std::env::var_os("LOAD_BASELINE").is_some() {
        let mcp = tower::ServiceBuilder::new()
            .map_request(|mut req: http::Request<axum::body::Body>| {
                req.extensions_mut().insert(
                    mcp_auth::AuthContext::builder(
                        "load-none",
                        mcp_auth::AuthMethod::Custom("none".into()),
                    )
                    .build(),
                );
                req
            })
            .service(example::mcp_service(
                config.allowed_hosts.clone(),
                config.policy.clone(),
                None,
            ));
        axum::Router::new().nest_service("/mcp", mcp)
    } else if let Ok(stack) = std::env::var("LOAD_STACK") {
        // Part of the example's stack, to attribute its cost: the auth layer alone; auth and
        // scope layers; the failure limit too; the Origin and HTTPS guards too (everything
        // but CORS). Configured as `example::router` configures them.
        use mcp_auth::hardening::FailureLimitLayer;
        use mcp_auth::hardening::{HttpsOnlyLayer, OriginLayer};
        use mcp_auth::scope::ScopeLayer;
        use tower::ServiceBuilder;
        let mcp = example::mcp_service(config.allowed_hosts.clone(), config.policy.clone(), None);
        let auth = mcp_auth::AuthLayer::new(config.auth);
        let scope = ScopeLayer::new((*config.policy).clone());
        let (failures, window) = config
            .guards
            .failure_limit
            .expect("the failure limit is on");
        let limit = FailureLimitLayer::new(config.guards.counters.clone())
            .max_failures(failures)
            .window(window);
        // Gives a successful request's reserved attempt back once it has authenticated.
        let release = limit.release();
        let router = axum::Router::new();
        match stack.as_str() {
            "auth" => router.nest_service("/mcp", ServiceBuilder::new().layer(auth).service(mcp)),
            "auth+scope" => router.nest_service(
                "/mcp",
                ServiceBuilder::new().layer(auth).layer(scope).service(mcp),
            ),
            "limit+auth+scope" => router.nest_service(
                "/mcp",
                ServiceBuilder::new()
                    .layer(limit)
                    .layer(auth)
                    .layer(release)
                    .layer(scope)
                    .service(mcp),
            ),
            "guards+auth+scope" => router.nest_service(
                "/mcp",
                ServiceBuilder::new()
                    .layer(OriginLayer::new(&config.guards.allowed_origins))
                    .layer(HttpsOnlyLayer::new().allow_plain_http())
                    .layer(limit)
                    .layer(auth)
                    .layer(release)
                    .layer(scope)
                    .service(mcp),
            ),
            other => {
                eprintln!("unknown LOAD_STACK {other:?}");
                std::process::exit(2);
            }
        }
    } else {
        example::app(config)
    };
    if std::env::var_os("LOAD_ISSUE").is_some() {
        let issued = tokens
            .issue(TokenSpec::new("load-issued", Duration::from_secs(3600)).scopes(["data:read"]))
            .await
            .expect("issue a token");
        println!("issued {}", issued.token.expose());
    }
    if std::env::var_os("LOAD_CHURN").is_some() {
        tokio::spawn(churn(tokens.clone()));
    }
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            let stored = match tokens.store() {
                example::Tokens::Memory(s) => s.len(),
                example::Tokens::Redis(_) => 0,
            };
            let clients = match &counters {
                example::Counters::Memory(c) => c.len(),
                example::Counters::Redis(_) => 0,
            };
            println!("stats tokens={stored} clients={clients}");
        }
    });
    println!("listening {addr}");
    let listener = {
        use axum::serve::ListenerExt;
        listener.tap_io(set_nodelay as fn(&mut tokio::net::TcpStream))
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
    .expect("serve");
}

/// The first token of `queue` if it is due.
fn due(queue: &mut VecDeque<(Instant, String)>, now: Instant) -> Option<String> {
    if queue.front().is_some_and(|(at, _)| *at <= now) {
        queue.pop_front().map(|(_, token)| token)
    } else {
        None
    }
}

/// Issues [`CHURN_PER_TICK`] tokens every 100 ms; half are revoked two seconds later.
async fn churn(tokens: mcp_auth::authenticators::bearer::TokenManager<example::Tokens>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let mut n: u64 = 0;
    let (mut to_revoke, mut to_retire) = (VecDeque::new(), VecDeque::new());
    let mut retired: VecDeque<(Instant, String)> = VecDeque::new();
    let (mut issued, mut revoked, mut errors) = (0u64, 0u64, 0u64);
    loop {
        tick.tick().await;
        let now = Instant::now();
        for _ in 0..CHURN_PER_TICK {
            n += 1;
            // Sixteen subjects: each worker opens one MCP session per subject it calls as
            // (sessions are bound to their principal), so the server holds a bounded number of
            // rmcp sessions and the RSS figures measure the stores, not session churn.
            let subject = format!("issued-{}", n % 16);
            match tokens
                .issue(TokenSpec::new(subject.clone(), CHURN_TTL).scopes(["data:read"]))
                .await
            {
                Ok(t) => {
                    issued += 1;
                    let token = t.token.expose().to_owned();
                    println!("live {token} {subject}");
                    if n.is_multiple_of(2) {
                        to_revoke.push_back((now + RETIRE_REVOKED_AFTER, token));
                    } else {
                        to_retire.push_back((now + RETIRE_KEPT_AFTER, token));
                    }
                }
                Err(e) => {
                    errors += 1;
                    println!("issue-error {e}");
                }
            }
        }
        while let Some(token) = due(&mut to_revoke, now) {
            println!("retire {token}");
            retired.push_back((now + Duration::from_secs(1), token));
        }
        while let Some(token) = due(&mut to_retire, now) {
            println!("retire {token}");
        }
        while let Some(token) = due(&mut retired, now) {
            match tokens.revoke(&token).await {
                // Announced only once the store has it revoked.
                Ok(true) => {
                    revoked += 1;
                    println!("revoked {token}");
                }
                Ok(false) => println!("revoke-missing {token}"),
                Err(e) => println!("revoke-error {e}"),
            }
        }
        if n.is_multiple_of(5000) {
            println!("churn issued={issued} revoked={revoked} issue_errors={errors}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running a server process from the generator
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct ServerLog {
    lines: u64,
    first: Vec<String>,
}

struct Server {
    child: Child,
    stdin: Option<ChildStdin>,
    url: String,
    lines: UnboundedReceiver<String>,
    log: Arc<Mutex<ServerLog>>,
    /// Lines printed before `listening`.
    early: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    async fn start(env: &[(&str, String)], max_secs: u64) -> Server {
        let exe = std::env::current_exe().expect("own path");
        let mut cmd = Command::new(exe);
        cmd.arg("serve");
        for (k, _) in std::env::vars_os() {
            let name = k.to_string_lossy();
            if name.starts_with("MCP_") || name.starts_with("LOAD_") {
                cmd.env_remove(&k);
            }
        }
        // The generator connects from 127.0.0.1; naming it a trusted proxy keeps the failure
        // limit on (the example turns it off on a loopback bind without trusted proxies).
        cmd.env("MCP_BIND", "127.0.0.1:0")
            .env("MCP_TRUSTED_PROXIES", "127.0.0.1")
            .env("LOAD_MAX_SECS", max_secs.to_string());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the server process");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, mut lines) = unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let log = Arc::new(Mutex::new(ServerLog::default()));
        let l = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // The one startup warning expected on loopback without TLS.
                if line.contains("plain HTTP allowed (development mode)") {
                    continue;
                }
                let mut l = l.lock().expect("log");
                l.lines += 1;
                if l.first.len() < 10 {
                    l.first.push(line);
                }
            }
        });
        let mut early = Vec::new();
        let url = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.recv().await {
                if let Some(addr) = line.strip_prefix("listening ") {
                    return format!("http://{addr}/mcp");
                }
                early.push(line);
            }
            panic!(
                "the server process exited: {:?}",
                log.lock().map(|l| l.first.clone())
            );
        })
        .await
        .expect("the server process did not start within 30 s");
        Server {
            child,
            stdin,
            url,
            lines,
            log,
            early,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_summary(&self) -> String {
        let l = self.log.lock().expect("log");
        if l.lines == 0 {
            "no warnings or errors logged".to_owned()
        } else {
            format!("{} log lines; first: {:?}", l.lines, l.first)
        }
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

/// CPU time (user + system, every thread) of `pid` in µs; `self` for this process. From
/// `/proc/<pid>/stat`, in clock ticks of 10 ms (`getconf CLK_TCK` is 100 on Linux).
fn cpu_us(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            // Fields after the command name, which is in parentheses and may hold spaces.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: u64 = f.get(11)?.parse().ok()?;
            let stime: u64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) * 10_000)
        })
        .unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

// ---------------------------------------------------------------------------------------------
// The client side
// ---------------------------------------------------------------------------------------------

fn client(connections: usize) -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client")
}

fn post(http: &reqwest::Client, url: &str, body: String) -> reqwest::RequestBuilder {
    http.post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body)
}

/// Opens an MCP session (initialize, then notifications/initialized).
async fn open_session(
    http: &reqwest::Client,
    url: &str,
    headers: &[(&'static str, String)],
) -> Result<String, String> {
    let mut req = post(http, url, INIT.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    let status = res.status();
    let sid = res
        .headers()
        .get("mcp-session-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let _ = res.bytes().await;
    let sid = sid.ok_or_else(|| format!("initialize: HTTP {status}, no session"))?;
    let mut req = post(http, url, INITIALIZED.to_owned()).header("mcp-session-id", &sid);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let res = req.send().await.map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("notifications/initialized: HTTP {}", res.status()));
    }
    Ok(sid)
}

/// One `tools/call whoami`: the status (0 for a transport error or timeout) and the body.
async fn whoami(
    http: &reqwest::Client,
    url: &str,
    sid: &str,
    id: u64,
    headers: &[(&'static str, String)],
) -> (u16, bytes::Bytes) {
    let mut req = post(http, url, whoami_body(id)).header("mcp-session-id", sid);
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    match req.send().await {
        Ok(res) => {
            let status = res.status().as_u16();
            match res.bytes().await {
                Ok(b) => (status, b),
                Err(_) => (0, bytes::Bytes::new()),
            }
        }
        Err(_) => (0, bytes::Bytes::new()),
    }
}

fn minter(secret: &str) -> JwtMinter {
    JwtMinter::hmac(secret, Algorithm::HS256)
        .expect("HMAC key")
        .issuer(JWT_ISSUER)
        .audience(JWT_AUDIENCE)
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

// ---------------------------------------------------------------------------------------------
// throughput
// ---------------------------------------------------------------------------------------------

/// How a throughput worker authenticates.
#[derive(Clone)]
enum Cred {
    Headers(Vec<(&'static str, String)>),
    /// A new HS256 JWT for every request.
    FreshJwt(Arc<JwtMinter>),
}

impl Cred {
    fn headers(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Headers(h) => h.clone(),
            Self::FreshJwt(m) => vec![bearer(
                &m.mint("load-jwt", ["data:read"]).expect("mint a JWT"),
            )],
        }
    }
}

#[derive(Default)]
struct Window {
    ok: u64,
    errors: BTreeMap<String, u64>,
    secs: f64,
    /// Latencies in µs, sorted.
    lat: Vec<u32>,
    rss_kib: u64,
    /// CPU time used in the measured window, in µs, by the server and by this process.
    server_cpu_us: u64,
    client_cpu_us: u64,
}

impl Window {
    fn rps(&self) -> f64 {
        self.ok as f64 / self.secs
    }
    /// Requests measured (served or not).
    fn requests(&self) -> u64 {
        self.lat.len() as u64
    }
    fn error_text(&self) -> String {
        if self.errors.is_empty() {
            return "0".to_owned();
        }
        self.errors
            .iter()
            .map(|(k, v)| format!("{v} × {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn classify(status: u16, body: &[u8], subject: &str) -> Option<String> {
    match status {
        200 if names_subject(body, subject) => None,
        200 => Some("200 without the subject".to_owned()),
        0 => Some("transport error".to_owned()),
        s => Some(format!("HTTP {s}")),
    }
}

async fn run_mode(
    env: &[(&str, String)],
    cred_for: impl FnOnce(&[String]) -> Cred,
    subject: &str,
    args: &Args,
) -> Window {
    let server = Server::start(env, args.secs + 120).await;
    let cred = cred_for(&server.early);
    let pid = server.pid().to_string();
    let mut w = drive(&server.url, &cred, subject, args, &[pid])
        .await
        .unwrap_or_else(|e| panic!("{e}; {}", server.log_summary()));
    w.rss_kib = rss_kib(server.pid());
    let log = server.log_summary();
    if !log.starts_with("no ") {
        eprintln!("server log: {log}");
    }
    w
}

/// `args.concurrency` MCP sessions against `url`, one per worker, calling `tools/call whoami`
/// back to back for 1 s of warm-up and then `args.secs` (or `args.max_requests` requests).
/// `cpu_pids` are the processes whose CPU time is counted as the server's.
async fn drive(
    url: &str,
    cred: &Cred,
    subject: &str,
    args: &Args,
    cpu_pids: &[String],
) -> Result<Window, String> {
    let http = client(args.concurrency);
    let mut sessions = Vec::new();
    for _ in 0..args.concurrency {
        let sid = open_session(&http, url, &cred.headers())
            .await
            .map_err(|e| format!("opening a session: {e}"))?;
        sessions.push(sid);
    }
    let warm_end = Instant::now() + Duration::from_secs(1);
    let stop = warm_end + Duration::from_secs(args.secs);
    let total = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for sid in sessions {
        let (http, url, cred, total) = (http.clone(), url.to_owned(), cred.clone(), total.clone());
        let (subject, max) = (subject.to_owned(), args.max_requests);
        tasks.push(tokio::spawn(async move {
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            let (mut ok, mut lat, mut id) = (0u64, Vec::new(), 1u64);
            loop {
                let now = Instant::now();
                if now >= stop {
                    break;
                }
                let measured = now >= warm_end;
                if measured && total.fetch_add(1, Ordering::Relaxed) >= max {
                    break;
                }
                id += 1;
                let t = Instant::now();
                let (status, body) = whoami(&http, &url, &sid, id, &cred.headers()).await;
                let us = u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX);
                if !measured {
                    continue;
                }
                lat.push(us);
                match classify(status, &body, &subject) {
                    None => ok += 1,
                    Some(e) => *errors.entry(e).or_default() += 1,
                }
            }
            (ok, errors, lat)
        }));
    }
    let server_cpu = || cpu_pids.iter().map(|p| cpu_us(p)).sum::<u64>();
    tokio::time::sleep_until(warm_end.into()).await;
    let (server_cpu0, client_cpu0) = (server_cpu(), cpu_us("self"));
    let mut w = Window::default();
    for t in tasks {
        let (ok, errors, l) = t.await.expect("worker");
        w.ok += ok;
        for (k, v) in errors {
            *w.errors.entry(k).or_default() += v;
        }
        w.lat.extend(l);
    }
    w.secs = warm_end.elapsed().as_secs_f64();
    w.server_cpu_us = server_cpu().saturating_sub(server_cpu0);
    w.client_cpu_us = cpu_us("self").saturating_sub(client_cpu0);
    w.lat.sort_unstable();
    Ok(w)
}

/// One throughput mode: the server's environment, the caller's credential, its subject.
struct ModeSpec {
    name: &'static str,
    env: Vec<(&'static str, String)>,
    cred: CredSpec,
    subject: &'static str,
}

enum CredSpec {
    Fixed(Cred),
    /// The token the server issued at startup (`LOAD_ISSUE`).
    Issued,
}

fn modes() -> Vec<ModeSpec> {
    let key_env = || vec![("MCP_API_KEYS", format!("{API_KEY};sub=load-api"))];
    let static_env = || vec![("MCP_AUTH_TOKENS", format!("{STATIC_TOKEN};sub=load-static"))];
    let jwt_env = || {
        vec![
            ("MCP_JWT_SECRET", JWT_SECRET.to_owned()),
            ("MCP_JWT_ISSUER", JWT_ISSUER.to_owned()),
            ("MCP_JWT_AUDIENCE", JWT_AUDIENCE.to_owned()),
        ]
    };
    let jwt = Arc::new(minter(JWT_SECRET));
    let one_jwt = jwt.mint("load-jwt", ["data:read"]).expect("mint");
    let mut issued_env = static_env();
    issued_env.push(("LOAD_ISSUE", "1".to_owned()));
    vec![
        ModeSpec {
            name: "no auth layer",
            env: vec![("LOAD_BASELINE", "1".to_owned())],
            cred: CredSpec::Fixed(Cred::Headers(vec![])),
            subject: "load-none",
        },
        ModeSpec {
            name: "API key (full example stack)",
            env: key_env(),
            cred: CredSpec::Fixed(Cred::Headers(vec![("x-api-key", API_KEY.to_owned())])),
            subject: "load-api",
        },
        ModeSpec {
            name: "API key, AuthLayer only",
            env: {
                let mut e = key_env();
                e.push(("LOAD_STACK", "auth".to_owned()));
                e
            },
            cred: CredSpec::Fixed(Cred::Headers(vec![("x-api-key", API_KEY.to_owned())])),
            subject: "load-api",
        },
        ModeSpec {
            name: "API key, AuthLayer + ScopeLayer",
            env: {
                let mut e = key_env();
                e.push(("LOAD_STACK", "auth+scope".to_owned()));
                e
            },
            cred: CredSpec::Fixed(Cred::Headers(vec![("x-api-key", API_KEY.to_owned())])),
            subject: "load-api",
        },
        ModeSpec {
            name: "API key, failure limit + AuthLayer + ScopeLayer",
            env: {
                let mut e = key_env();
                e.push(("LOAD_STACK", "limit+auth+scope".to_owned()));
                e
            },
            cred: CredSpec::Fixed(Cred::Headers(vec![("x-api-key", API_KEY.to_owned())])),
            subject: "load-api",
        },
        ModeSpec {
            name: "API key, all but CORS",
            env: {
                let mut e = key_env();
                e.push(("LOAD_STACK", "guards+auth+scope".to_owned()));
                e
            },
            cred: CredSpec::Fixed(Cred::Headers(vec![("x-api-key", API_KEY.to_owned())])),
            subject: "load-api",
        },
        ModeSpec {
            name: "static bearer",
            env: static_env(),
            cred: CredSpec::Fixed(Cred::Headers(vec![bearer(STATIC_TOKEN)])),
            subject: "load-static",
        },
        ModeSpec {
            name: "issued bearer (memory store)",
            env: issued_env,
            cred: CredSpec::Issued,
            subject: "load-issued",
        },
        ModeSpec {
            name: "JWT HS256, one token (cache hits)",
            env: jwt_env(),
            cred: CredSpec::Fixed(Cred::Headers(vec![bearer(&one_jwt)])),
            subject: "load-jwt",
        },
        ModeSpec {
            name: "JWT HS256, new token per request",
            env: jwt_env(),
            cred: CredSpec::Fixed(Cred::FreshJwt(jwt)),
            subject: "load-jwt",
        },
    ]
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    sorted
        .get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0)
}

async fn throughput(args: Args) {
    let mut modes = modes();
    if let Some(only) = &args.only {
        let mut first = true;
        modes.retain(|m| std::mem::take(&mut first) || m.name.contains(only.as_str()));
    }
    println!(
        "throughput: {} rounds; in each, every mode in turn (order rotated per round), each on \
         a fresh server process on 127.0.0.1 with {} sessions (one per worker) calling \
         tools/call whoami for {} s after 1 s of warm-up, at most {} requests",
        args.rounds, args.concurrency, args.secs, args.max_requests
    );
    println!();
    println!(
        "| round | mode | requests/s | p50 | p99 | errors | server CPU per request | load \
         generator CPU per request |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut results: Vec<Vec<Window>> = modes.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        for j in 0..modes.len() {
            let m = (j + round) % modes.len();
            let spec = &modes[m];
            let w = run_mode(
                &spec.env,
                |early| match &spec.cred {
                    CredSpec::Fixed(c) => c.clone(),
                    CredSpec::Issued => {
                        let token = early
                            .iter()
                            .find_map(|l| l.strip_prefix("issued "))
                            .expect("the server issued a token");
                        Cred::Headers(vec![bearer(token)])
                    }
                },
                spec.subject,
                &args,
            )
            .await;
            println!(
                "| {} | {} | {:.0} | {} µs | {} µs | {} | {:.0} µs | {:.0} µs |",
                round + 1,
                spec.name,
                w.rps(),
                percentile(&w.lat, 0.50),
                percentile(&w.lat, 0.99),
                w.error_text(),
                w.server_cpu_us as f64 / w.requests().max(1) as f64,
                w.client_cpu_us as f64 / w.requests().max(1) as f64,
            );
            results[m].push(w);
        }
    }
    let base = median(&results[0].iter().map(Window::rps).collect::<Vec<_>>());
    println!();
    println!(
        "| mode | requests/s (median of {}) | range | ratio to no auth | p50 | p99 | errors | \
         server CPU per request | server RSS at end |",
        args.rounds
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (spec, runs) in modes.iter().zip(&results) {
        let rps: Vec<f64> = runs.iter().map(Window::rps).collect();
        let med = median(&rps);
        let lo = rps.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rps.iter().copied().fold(0.0, f64::max);
        let mut lat: Vec<u32> = runs.iter().flat_map(|w| w.lat.iter().copied()).collect();
        lat.sort_unstable();
        let mut errors = Window::default();
        for w in runs {
            for (k, v) in &w.errors {
                *errors.errors.entry(k.clone()).or_default() += v;
            }
        }
        let cpu: u64 = runs.iter().map(|w| w.server_cpu_us).sum();
        let rss = runs.iter().map(|w| w.rss_kib).max().unwrap_or(0);
        println!(
            "| {} | {med:.0} | {lo:.0}–{hi:.0} | {:.2} | {} µs | {} µs | {} | {:.0} µs | {} |",
            spec.name,
            med / base,
            percentile(&lat, 0.50),
            percentile(&lat, 0.99),
            errors.error_text(),
            cpu as f64 / lat.len().max(1) as f64,
            mib(rss)
        );
    }
    println!();
    println!(
        "Ratios are medians over medians; p50/p99 pool every round's latencies; CPU is \
         user + system time of the server process over the measured windows (10 ms ticks) per \
         request; RSS is the largest at the end of a window."
    );
}

// ---------------------------------------------------------------------------------------------
// soak
// ---------------------------------------------------------------------------------------------

/// Issued tokens as the server announced them.
#[derive(Default)]
struct Pool {
    live: Vec<(String, String)>,
    index: HashMap<String, usize>,
    revoked: VecDeque<String>,
    revoked_seen: u64,
    stats: String,
    churn: String,
    problems: Vec<String>,
}

impl Pool {
    fn apply(&mut self, line: &str) {
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("live"), Some(token), Some(subject)) => {
                self.index.insert(token.to_owned(), self.live.len());
                self.live.push((token.to_owned(), subject.to_owned()));
            }
            (Some("retire"), Some(token), None) => {
                if let Some(i) = self.index.remove(token) {
                    self.live.swap_remove(i);
                    if let Some((moved, _)) = self.live.get(i) {
                        self.index.insert(moved.clone(), i);
                    }
                }
            }
            (Some("revoked"), Some(token), None) => {
                self.revoked_seen += 1;
                if self.revoked.len() >= 4096 {
                    self.revoked.pop_front();
                }
                self.revoked.push_back(token.to_owned());
            }
            (Some("stats"), ..) => self.stats = line.to_owned(),
            (Some("churn"), ..) => self.churn = line.to_owned(),
            _ => {
                if self.problems.len() < 20 {
                    self.problems.push(line.to_owned());
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    ApiKey,
    StaticToken,
    IssuedToken,
    Jwt,
    UnknownKey,
    Garbage,
    ForgedJwt,
    Revoked,
    FixedAttacker,
}

const KINDS: [Kind; 9] = [
    Kind::ApiKey,
    Kind::StaticToken,
    Kind::IssuedToken,
    Kind::Jwt,
    Kind::UnknownKey,
    Kind::Garbage,
    Kind::ForgedJwt,
    Kind::Revoked,
    Kind::FixedAttacker,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Self::ApiKey => "valid API key",
            Self::StaticToken => "valid static token",
            Self::IssuedToken => "valid issued token",
            Self::Jwt => "valid JWT (new each time)",
            Self::UnknownKey => "unknown API key (new address)",
            Self::Garbage => "garbage bearer token (new address)",
            Self::ForgedJwt => "JWT signed with another key (new address)",
            Self::Revoked => "revoked issued token (new address)",
            Self::FixedAttacker => "unknown API key (one fixed address)",
        }
    }
    fn valid(self) -> bool {
        matches!(
            self,
            Self::ApiKey | Self::StaticToken | Self::IssuedToken | Self::Jwt
        )
    }
}

/// Outcome columns of the soak table.
const OUTCOMES: [&str; 8] = [
    "200 (caller named)",
    "200 (other)",
    "401",
    "403",
    "429",
    "other 4xx",
    "5xx",
    "transport error",
];

fn outcome(status: u16, body: &[u8], subject: Option<&str>) -> usize {
    match status {
        200 if subject.is_some_and(|s| names_subject(body, s)) => 0,
        200 => 1,
        401 => 2,
        403 => 3,
        429 => 4,
        400..=499 => 5,
        500..=599 => 6,
        _ => 7,
    }
}

/// xorshift64*: enough to pick tokens without a dependency.
fn next_random(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

type Tally = [[u64; OUTCOMES.len()]; KINDS.len()];

async fn soak(args: Args) -> bool {
    let env = vec![
        ("MCP_API_KEYS", format!("{API_KEY};sub=load-api")),
        ("MCP_AUTH_TOKENS", format!("{STATIC_TOKEN};sub=load-static")),
        ("MCP_JWT_SECRET", JWT_SECRET.to_owned()),
        ("MCP_JWT_ISSUER", JWT_ISSUER.to_owned()),
        ("MCP_JWT_AUDIENCE", JWT_AUDIENCE.to_owned()),
        ("MCP_TRUST_PROXY", "true".to_owned()),
        ("LOAD_CHURN", "1".to_owned()),
    ];
    let mut server = Server::start(&env, args.secs + 120).await;
    let pid = server.pid();
    let rss_idle = rss_kib(pid);
    let pool = Arc::new(Mutex::new(Pool::default()));
    for line in &server.early {
        pool.lock().expect("pool").apply(line);
    }
    let mut lines = std::mem::replace(&mut server.lines, unbounded_channel().1);
    let p = pool.clone();
    tokio::spawn(async move {
        while let Some(line) = lines.recv().await {
            p.lock().expect("pool").apply(&line);
        }
    });

    let http = client(args.concurrency);
    let good = ("x-forwarded-for", "198.51.100.7".to_owned());
    let mut sessions = Vec::new();
    for _ in 0..args.concurrency {
        let headers = [("x-api-key", API_KEY.to_owned()), good.clone()];
        let sid = open_session(&http, &server.url, &headers)
            .await
            .unwrap_or_else(|e| panic!("opening a session: {e}; {}", server.log_summary()));
        sessions.push(sid);
    }
    let jwt = Arc::new(minter(JWT_SECRET));
    let forged = Arc::new(minter(FORGED_SECRET));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.secs);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let fresh = Arc::new(AtomicU32::new(1));
    let revoked_accepted = Arc::new(AtomicU64::new(0));
    let attacker_through = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for (w, sid) in sessions.into_iter().enumerate() {
        let (http, url, pool, jwt, forged) = (
            http.clone(),
            server.url.clone(),
            pool.clone(),
            jwt.clone(),
            forged.clone(),
        );
        let (stop, sent, fresh, revoked_accepted, attacker_through, good) = (
            stop.clone(),
            sent.clone(),
            fresh.clone(),
            revoked_accepted.clone(),
            attacker_through.clone(),
            good.clone(),
        );
        let max = args.max_requests;
        tasks.push(tokio::spawn(async move {
            let mut tally: Tally = [[0; OUTCOMES.len()]; KINDS.len()];
            let mut skipped = 0u64;
            let mut rng =
                0x9E37_79B9_7F4A_7C15u64 ^ (w as u64 + 1).wrapping_mul(0xA24B_AED4_963E_E407);
            let mut i = w as u64;
            let mut id = 1u64;
            // The sessions of the principals this worker has called as, by kind and subject
            // (the first one, opened with the API key, is the worker's own).
            let mut owned: std::collections::HashMap<(usize, String), String> =
                std::collections::HashMap::new();
            owned.insert((0, "load-api".to_owned()), sid.clone()); // KINDS[0] is ApiKey
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                i += 1;
                let k = (i % KINDS.len() as u64) as usize;
                let kind = KINDS[k];
                let new_address = || {
                    let n = fresh.fetch_add(1, Ordering::Relaxed);
                    (
                        "x-forwarded-for",
                        format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255),
                    )
                };
                let (headers, subject): (Vec<(&'static str, String)>, Option<String>) = match kind {
                    Kind::ApiKey => (
                        vec![("x-api-key", API_KEY.to_owned()), good.clone()],
                        Some("load-api".into()),
                    ),
                    Kind::StaticToken => (
                        vec![bearer(STATIC_TOKEN), good.clone()],
                        Some("load-static".into()),
                    ),
                    Kind::IssuedToken => {
                        let pick = {
                            let p = pool.lock().expect("pool");
                            if p.live.is_empty() {
                                None
                            } else {
                                let r = next_random(&mut rng) as usize % p.live.len();
                                Some(p.live[r].clone())
                            }
                        };
                        let Some((token, subject)) = pick else {
                            skipped += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        (vec![bearer(&token), good.clone()], Some(subject))
                    }
                    Kind::Jwt => (
                        vec![
                            bearer(&jwt.mint("load-jwt", ["data:read"]).expect("mint")),
                            good.clone(),
                        ],
                        Some("load-jwt".into()),
                    ),
                    Kind::UnknownKey => (
                        vec![
                            ("x-api-key", format!("unknown-key-{i:016x}")),
                            new_address(),
                        ],
                        None,
                    ),
                    Kind::Garbage => (
                        vec![bearer(&format!("garbage-{i:x}.{w}")), new_address()],
                        None,
                    ),
                    Kind::ForgedJwt => (
                        vec![
                            bearer(&forged.mint("mallory", ["data:admin"]).expect("mint")),
                            new_address(),
                        ],
                        None,
                    ),
                    Kind::Revoked => {
                        let pick = {
                            let p = pool.lock().expect("pool");
                            if p.revoked.is_empty() {
                                None
                            } else {
                                let r = next_random(&mut rng) as usize % p.revoked.len();
                                Some(p.revoked[r].clone())
                            }
                        };
                        let Some(token) = pick else {
                            skipped += 1;
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        (vec![bearer(&token), new_address()], None)
                    }
                    Kind::FixedAttacker => (
                        vec![
                            ("x-api-key", format!("attacker-key-{i:016x}")),
                            ("x-forwarded-for", "203.0.113.66".to_owned()),
                        ],
                        None,
                    ),
                };
                // Sessions are bound to the principal that opened them: a valid credential
                // calls in its own principal's session (opened on first use); the refused
                // kinds never get past authentication, so the worker's first session serves.
                let sid = match &subject {
                    None => sid.clone(),
                    Some(s) => match owned.get(&(k, s.clone())) {
                        Some(sid) => sid.clone(),
                        None => match open_session(&http, &url, &headers).await {
                            Ok(opened) => {
                                owned.insert((k, s.clone()), opened.clone());
                                opened
                            }
                            // An issued token revoked since it was picked: try another.
                            Err(_) if kind == Kind::IssuedToken => {
                                skipped += 1;
                                continue;
                            }
                            // Any other valid credential refused at `initialize` is a failure:
                            // the call goes out on the worker's own session, and the server's
                            // refusal is counted against this kind.
                            Err(_) => sid.clone(),
                        },
                    },
                };
                if sent.fetch_add(1, Ordering::Relaxed) >= max {
                    break;
                }
                id += 1;
                let (status, body) = whoami(&http, &url, &sid, id, &headers).await;
                let o = outcome(status, &body, subject.as_deref());
                tally[k][o] += 1;
                if kind == Kind::FixedAttacker && status != 429 {
                    attacker_through.fetch_add(1, Ordering::Relaxed);
                }
                if kind == Kind::Revoked && status == 200 {
                    revoked_accepted.fetch_add(1, Ordering::Relaxed);
                    eprintln!("REVOKED TOKEN ACCEPTED: {}", String::from_utf8_lossy(&body));
                }
            }
            (tally, skipped)
        }));
    }

    println!(
        "soak: {} s, {} workers (one MCP session each), server pid {pid}, RSS before load {}",
        args.secs,
        args.concurrency,
        mib(rss_idle)
    );
    println!();
    println!(
        "| t (s) | requests | server RSS | issued-token store | failure-limit clients | revoked \
         seen | fixed address not limited |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut samples: Vec<(u64, u64)> = Vec::new();
    loop {
        let t = started.elapsed().as_secs();
        let rss = rss_kib(pid);
        samples.push((t, rss));
        let (stats, revoked_seen) = {
            let p = pool.lock().expect("pool");
            (p.stats.clone(), p.revoked_seen)
        };
        let field = |name: &str| {
            stats
                .split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .unwrap_or("?")
                .to_owned()
        };
        println!(
            "| {t} | {} | {} | {} | {} | {revoked_seen} | {} |",
            sent.load(Ordering::Relaxed),
            mib(rss),
            field("tokens="),
            field("clients="),
            attacker_through.load(Ordering::Relaxed),
        );
        let now = Instant::now();
        if now >= deadline || rss == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(10).min(deadline - now)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut tally: Tally = [[0; OUTCOMES.len()]; KINDS.len()];
    let mut skipped = 0;
    for t in tasks {
        let (part, s) = t.await.expect("worker");
        skipped += s;
        for (row, prow) in tally.iter_mut().zip(part.iter()) {
            for (c, p) in row.iter_mut().zip(prow.iter()) {
                *c += p;
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total: u64 = tally.iter().flatten().sum();

    println!();
    println!("| request kind | {} |", OUTCOMES.join(" | "));
    println!("|---|{}", "---|".repeat(OUTCOMES.len()));
    for (kind, row) in KINDS.iter().zip(tally.iter()) {
        let cells: Vec<String> = row.iter().map(u64::to_string).collect();
        println!("| {} | {} |", kind.name(), cells.join(" | "));
    }
    let valid_refused: u64 = KINDS
        .iter()
        .zip(tally.iter())
        .filter(|(k, _)| k.valid())
        .map(|(_, row)| row[1..].iter().sum::<u64>())
        .sum();
    let invalid_accepted: u64 = KINDS
        .iter()
        .zip(tally.iter())
        .filter(|(k, _)| !k.valid())
        .map(|(_, row)| row[0] + row[1])
        .sum();
    let server_errors: u64 = tally.iter().map(|row| row[6]).sum();
    let revoked_accepted = revoked_accepted.load(Ordering::Relaxed);

    let rss: Vec<u64> = samples.iter().map(|s| s.1).collect();
    let at = |secs: u64| samples.iter().find(|s| s.0 >= secs).map_or(0, |s| s.1);
    let max = rss.iter().copied().max().unwrap_or(0);
    let end = rss.last().copied().unwrap_or(0);
    let half = at(args.secs / 2);
    let max_second_half = samples
        .iter()
        .filter(|s| s.0 >= args.secs / 2)
        .map(|s| s.1)
        .max()
        .unwrap_or(0);
    let p = pool.lock().expect("pool");
    println!();
    println!(
        "requests: {total} in {elapsed:.0} s ({:.0}/s); skipped (no live issued token): {skipped}",
        total as f64 / elapsed
    );
    println!(
        "revoked tokens announced: {}; revoked tokens accepted: {revoked_accepted}; invalid \
         credentials accepted: {invalid_accepted}; valid credentials not served: {valid_refused}; \
         5xx: {server_errors}",
        p.revoked_seen
    );
    println!(
        "server RSS: before load {}, at 60 s {}, at {} s {}, max {}, max in the second half {}, \
         end {}",
        mib(rss_idle),
        mib(at(60)),
        args.secs / 2,
        mib(half),
        mib(max),
        mib(max_second_half),
        mib(end)
    );
    println!("last server stats: {}; {}", p.stats, p.churn);
    if !p.problems.is_empty() {
        println!("server reported: {:?}", p.problems);
    }
    println!("server log: {}", server.log_summary());
    revoked_accepted == 0 && invalid_accepted == 0 && valid_refused == 0 && server_errors == 0
}
