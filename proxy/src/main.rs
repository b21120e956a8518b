//! `mcp-auth-proxy`: an authenticating reverse proxy for MCP servers. Configured through the
//! environment (see the crate's README.md); with no credential configured, it generates a
//! bearer token and prints it on a line starting with `token: `.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use mcp_auth_proxy::Env;

/// mimalloc rather than the system allocator: a proxied request allocates and frees dozens of
/// small buffers (headers, futures, body frames), and mimalloc's per-thread heaps do that with
/// less work (BENCHMARKS.md, "mcp-auth-proxy"). The binary's choice only: the library leaves
/// the allocator to its user.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,mcp_auth=debug".into()),
        )
        .init();
    // The main thread's runtime accepts connections and runs the background work (signals,
    // key refreshes, the metrics listener); the worker threads serve the connections, each
    // on a runtime of its own (mcp_auth_proxy::serve_threads).
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mcp-auth-proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(start())
}

async fn start() -> ExitCode {
    // Every problem in the environment is reported at once, by name, never with its value.
    let proxy = match mcp_auth_proxy::load(&Env::Process) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Some(token) = proxy.generated_token() {
        // Printed once, to stdout, because the operator configured no credential: it is the
        // only way in. It is never logged.
        println!("No MCP_API_KEYS or MCP_AUTH_TOKENS set; generated a bearer token for this run.");
        println!("token: {}", token.expose());
    }
    proxy.prefetch();
    match run(proxy).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mcp-auth-proxy: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(proxy: mcp_auth_proxy::Proxy) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(proxy.bind()).await?;
    let address = listener.local_addr()?;
    if let Some(bind) = proxy.config().metrics_bind() {
        let metrics = tokio::net::TcpListener::bind(bind).await?;
        let app = mcp_auth_proxy::metrics_router(proxy.metrics());
        tracing::info!(address = %metrics.local_addr()?, "metrics on /metrics");
        tokio::spawn(async move {
            if let Err(e) = axum::serve(metrics, app).await {
                tracing::error!(error = %e, "the metrics listener failed");
            }
        });
    }
    let schemes = proxy.scheme_names();
    let upstream = proxy.config().upstream_url().to_owned();
    let grace = proxy.config().shutdown_grace();
    let workers = proxy.config().workers();
    tracing::info!(%address, %upstream, ?schemes, workers, "MCP proxy listening");
    println!("listening {address}");
    let app = proxy.into_app();
    mcp_auth_proxy::serve_threads(listener, app, workers, shutdown_signal(), grace).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
    tracing::info!("shutting down");
}
