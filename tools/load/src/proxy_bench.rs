//! `load proxy`: the cost of `mcp-auth-proxy` in front of a Rust rmcp upstream, against
//! calling the upstream directly and against nginx as a plain reverse proxy (no auth) in front
//! of the same upstream, all in one run on 127.0.0.1.
//!
//! ```text
//! cargo build --release -p mcp-auth-proxy -p mcp-auth-load
//! target/release/load proxy [--proxy-bin PATH]... [--hop-cpus LIST] [--secs N] [--concurrency C] [--rounds R]
//! ```
//!
//! `--proxy-bin` may be given several times: each build is then a target of its own, measured
//! in the same rounds (to compare two builds of the proxy on a shared, noisy machine).
//! `--hop-cpus 1` runs nginx and the proxies on CPU 1 only, and the load generator and the
//! upstream on the other CPUs (`taskset`), to see a hop that does not take CPU time from the
//! upstream; without it every process shares every CPU.
//!
//! The upstream is `load serve` with `LOAD_BASELINE` (the example's tools with a fixed caller,
//! no mcp-auth layer). nginx (Debian's `nginx`, `worker_processes auto`, upstream keep-alive,
//! no buffering) and the proxy (a static bearer token, no tool table) each forward to it. Each
//! round measures the targets in turn (order rotated per round) with `C` MCP sessions
//! opened through the target, calling `tools/call whoami` back to back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Args, Cred, Server, Window, bearer, drive, median, percentile};

/// The bearer token the proxy is configured with.
const PROXY_TOKEN: &str = "load-proxy-token-0123456789abcdef";

/// Every `--proxy-bin PATH` (default: `mcp-auth-proxy` beside this binary) and `--hop-cpus`
/// out of `rest`.
/// Several binaries (builds to compare) are measured in the same rounds, each as a target.
pub(super) fn binary_arg(rest: &[String]) -> (Hop, Vec<String>) {
    let mut hop = Hop::default();
    let mut others = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        if a == "--proxy-bin" {
            hop.bins.extend(it.next().map(PathBuf::from));
        } else if a == "--hop-cpus" {
            let list = it.next().cloned().unwrap_or_default();
            let cpus: Option<Vec<usize>> = list.split(',').map(|c| c.trim().parse().ok()).collect();
            match cpus {
                Some(c) if !c.is_empty() => hop.cpus = Some(c),
                _ => super::usage("--hop-cpus needs a list of CPU numbers such as 1 or 2,3"),
            }
        } else {
            others.push(a.clone());
        }
    }
    if hop.bins.is_empty() {
        hop.bins.push(
            std::env::current_exe()
                .expect("own path")
                .with_file_name("mcp-auth-proxy"),
        );
    }
    (hop, others)
}

/// The hops to compare, and where they run.
#[derive(Default)]
pub(super) struct Hop {
    /// The proxy builds (`--proxy-bin`).
    bins: Vec<PathBuf>,
    /// `--hop-cpus`: the CPUs nginx and the proxies are confined to; the load generator and
    /// the upstream then run on the others. Without it everything shares every CPU.
    cpus: Option<Vec<usize>>,
}

impl Hop {
    /// `program`, confined to the hop's CPUs when they are set (`taskset` executes it, so the
    /// process id is the program's).
    fn command(&self, program: &Path) -> Command {
        match &self.cpus {
            Some(cpus) => {
                let mut cmd = Command::new("taskset");
                cmd.arg("-c").arg(list(cpus)).arg(program);
                cmd
            }
            None => Command::new(program),
        }
    }

    /// Confines this process (every thread) and so the children it starts from now on to
    /// the CPUs the hop does not use.
    fn confine_the_rest(&self) {
        let Some(cpus) = &self.cpus else { return };
        let all = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let rest: Vec<usize> = (0..all).filter(|c| !cpus.contains(c)).collect();
        assert!(
            !rest.is_empty() && cpus.iter().all(|c| *c < all),
            "--hop-cpus must name some, not all, of CPUs 0 to {}",
            all - 1
        );
        let ok = Command::new("taskset")
            .args([
                "-a",
                "-p",
                "-c",
                &list(&rest),
                &std::process::id().to_string(),
            ])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "taskset failed (Debian package util-linux)");
        println!(
            "CPUs: nginx and the proxies on {}; load generator and upstream on {}",
            list(cpus),
            list(&rest)
        );
    }
}

fn list(cpus: &[usize]) -> String {
    cpus.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// A child process stopped on drop: SIGTERM first (nginx's master then stops its workers;
/// SIGKILL would leave them running), SIGKILL if it has not exited within 5 s.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Waits until `port` accepts connections (at most 30 s).
async fn wait_for(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on 127.0.0.1:{port} within 30 s");
}

/// nginx as a plain reverse proxy to `upstream_port`, its files in `dir`.
fn start_nginx(hop: &Hop, dir: &Path, port: u16, upstream_port: u16) -> Killed {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("nginx is not installed (Debian package nginx)");
    std::fs::create_dir_all(dir.join("logs")).expect("nginx dir");
    let conf = format!(
        "worker_processes auto;\n\
         daemon off;\n\
         master_process on;\n\
         pid {dir}/nginx.pid;\n\
         error_log stderr warn;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n\
           access_log off;\n\
           client_body_temp_path {dir}/body;\n\
           proxy_temp_path {dir}/proxy;\n\
           fastcgi_temp_path {dir}/fastcgi;\n\
           uwsgi_temp_path {dir}/uwsgi;\n\
           scgi_temp_path {dir}/scgi;\n\
           upstream mcp {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}\n\
           server {{\n\
             listen 127.0.0.1:{port};\n\
             location / {{\n\
               proxy_pass http://mcp;\n\
               proxy_http_version 1.1;\n\
               proxy_set_header Connection \"\";\n\
               proxy_set_header Host 127.0.0.1:{upstream_port};\n\
               proxy_buffering off;\n\
               proxy_request_buffering off;\n\
               tcp_nodelay on;\n\
             }}\n\
           }}\n\
         }}\n",
        dir = dir.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(conf.as_bytes()))
        .expect("write nginx.conf");
    let child = hop
        .command(Path::new(nginx))
        .arg("-c")
        .arg(&path)
        .arg("-p")
        .arg(dir)
        .arg("-e")
        .arg("stderr")
        .stdout(Stdio::null())
        .spawn()
        .expect("start nginx");
    Killed(child)
}

/// The proxy on `port` in front of `upstream`, accepting [`PROXY_TOKEN`].
fn start_proxy(hop: &Hop, bin: &Path, port: u16, upstream: &str) -> Killed {
    assert!(
        bin.exists(),
        "{} not found: cargo build --release -p mcp-auth-proxy (or pass --proxy-bin)",
        bin.display()
    );
    let mut cmd = hop.command(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("MCP_") {
            cmd.env_remove(&k);
        }
    }
    let child = cmd
        .env("MCP_BIND", format!("127.0.0.1:{port}"))
        .env("MCP_UPSTREAM_URL", upstream)
        .env("MCP_AUTH_TOKENS", format!("{PROXY_TOKEN};sub=load-proxy"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start the proxy");
    Killed(child)
}

/// Child processes of `pid` (nginx's workers), from `/proc`.
fn children(pid: u32) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let stat = std::fs::read_to_string(format!("/proc/{name}/stat")).ok()?;
            // The fields after the command (in parentheses): state, then the parent's pid.
            let after = stat.rsplit_once(')')?.1;
            let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == pid).then_some(name)
        })
        .collect()
}

struct Target {
    name: String,
    url: String,
    cred: Cred,
    /// The processes between client and upstream, whose CPU time is counted.
    hop_pids: Vec<String>,
}

/// Runs the comparison and prints its tables.
pub(super) async fn run(args: Args, hop: Hop) {
    hop.confine_the_rest();
    let limit = args.secs * 3 * args.rounds as u64 + 300;
    let upstream = Server::start(&[("LOAD_BASELINE", "1".to_owned())], limit).await;
    let upstream_port: u16 = upstream
        .url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/mcp")
        .parse()
        .expect("upstream port");
    let dir = std::env::temp_dir().join(format!("mcp-auth-bench-nginx-{}", std::process::id()));
    let nginx_port = free_port();
    let nginx = start_nginx(&hop, &dir, nginx_port, upstream_port);
    let mut proxies = Vec::new();
    for bin in &hop.bins {
        let port = free_port();
        proxies.push((start_proxy(&hop, bin, port, &upstream.url), port, bin));
    }
    wait_for(nginx_port, "nginx").await;
    for (_, port, _) in &proxies {
        wait_for(*port, "mcp-auth-proxy").await;
    }
    let mut targets = vec![
        Target {
            name: "direct".to_owned(),
            url: upstream.url.clone(),
            cred: Cred::Headers(Vec::new()),
            hop_pids: Vec::new(),
        },
        Target {
            name: "nginx (no auth)".to_owned(),
            url: format!("http://127.0.0.1:{nginx_port}/mcp"),
            cred: Cred::Headers(Vec::new()),
            hop_pids: children(nginx.0.id()),
        },
    ];
    for (child, port, bin) in &proxies {
        let name = if proxies.len() == 1 {
            "mcp-auth-proxy (bearer token)".to_owned()
        } else {
            format!("mcp-auth-proxy ({})", bin.display())
        };
        targets.push(Target {
            name,
            url: format!("http://127.0.0.1:{port}/mcp"),
            cred: Cred::Headers(vec![bearer(PROXY_TOKEN)]),
            hop_pids: vec![child.0.id().to_string()],
        });
    }
    println!(
        "proxy: {} rounds; in each, every target in turn (order rotated per round) with {} \
         sessions (one per worker) opened through it, calling tools/call whoami for {} s after \
         1 s of warm-up; one upstream process (rmcp, no auth) behind all three",
        args.rounds, args.concurrency, args.secs
    );
    println!();
    println!("| round | target | requests/s | p50 | p99 | errors | hop CPU per request |");
    println!("|---|---|---|---|---|---|---|");
    let mut results: Vec<Vec<Window>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        for j in 0..targets.len() {
            let t = (j + round) % targets.len();
            let target = &targets[t];
            let w = drive(
                &target.url,
                &target.cred,
                "load-none",
                &args,
                &target.hop_pids,
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e}; {}", target.name, upstream.log_summary()));
            println!(
                "| {} | {} | {:.0} | {} µs | {} µs | {} | {:.0} µs |",
                round + 1,
                target.name,
                w.rps(),
                percentile(&w.lat, 0.50),
                percentile(&w.lat, 0.99),
                w.error_text(),
                w.server_cpu_us as f64 / w.requests().max(1) as f64,
            );
            results[t].push(w);
        }
    }
    let summary: Vec<(f64, u32, u32)> = results
        .iter()
        .map(|runs| {
            let rps = median(&runs.iter().map(Window::rps).collect::<Vec<_>>());
            let mut lat: Vec<u32> = runs.iter().flat_map(|w| w.lat.iter().copied()).collect();
            lat.sort_unstable();
            (rps, percentile(&lat, 0.50), percentile(&lat, 0.99))
        })
        .collect();
    let (direct_rps, direct_p50, _) = summary[0];
    println!();
    println!(
        "| target | requests/s (median of {}) | ratio to direct | p50 | added p50 | p99 |",
        args.rounds
    );
    println!("|---|---|---|---|---|---|");
    for (target, (rps, p50, p99)) in targets.iter().zip(&summary) {
        println!(
            "| {} | {rps:.0} | {:.2} | {p50} µs | {} µs | {p99} µs |",
            target.name,
            rps / direct_rps,
            i64::from(*p50) - i64::from(direct_p50),
        );
    }
    let added = |i: usize| (i64::from(summary[i].1) - i64::from(direct_p50)).max(1) as f64;
    println!();
    for (i, target) in targets.iter().enumerate().skip(2) {
        println!(
            "{}: throughput / direct = {:.2} (target ≥ 0.9); added p50 / nginx added p50 = \
             {:.2} (target ≤ 1.5)",
            target.name,
            summary[i].0 / direct_rps,
            added(i) / added(1)
        );
    }
    drop(proxies);
    drop(nginx);
    let _ = std::fs::remove_dir_all(&dir);
}
