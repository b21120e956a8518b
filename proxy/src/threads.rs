//! [`serve_threads`]: the proxy on a single-threaded runtime per worker thread.
//!
//! A proxied request touches two connections, the client's and the upstream's, each driven
//! by its own task. On a work-stealing runtime those tasks land on different threads, and
//! every hand-over between them (the request out, the answer back) wakes a sleeping thread:
//! a system call and a context switch per hop, which is what a reverse proxy spends most of
//! its time on besides the socket I/O itself. Here each worker thread runs its own
//! single-threaded runtime; an accepted connection is handed to one worker (in turn) and
//! stays there, and so does the upstream connection paired with it (`upstream::ConnSlot`),
//! which that worker opened and drives. A request then never leaves its thread: the
//! model of nginx's worker processes, within one process. Measured in BENCHMARKS.md.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::time::Duration;

use axum::serve::Listener;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

/// Connections accepted but not yet taken up by a busy worker, per worker.
const HANDOVER_QUEUE: usize = 256;

/// Serves `app` on `listener` with `workers` threads, each running a single-threaded Tokio
/// runtime: this task accepts connections and hands each to the next worker in turn, which
/// serves it (HTTP/1, `TCP_NODELAY`, the peer address as connection info, as [`serve`]
/// does) until it closes. When `shutdown` completes, accepting stops, and every worker gives
/// its open connections `grace` to finish.
///
/// Call it on a runtime of its own (the binary uses a single-threaded one on the main thread,
/// which also runs the background tasks: signals, key refreshes, the metrics listener).
///
/// # Errors
///
/// When a worker thread or its runtime cannot be started.
///
/// [`serve`]: crate::serve
pub async fn serve_threads(
    mut listener: TcpListener,
    app: impl Into<crate::App>,
    workers: NonZeroUsize,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> io::Result<()> {
    let address = listener.local_addr()?;
    let app: crate::App = app.into();
    let (stop, stopped) = watch::channel(false);
    let mut queues = Vec::with_capacity(workers.get());
    let mut finished = Vec::with_capacity(workers.get());
    for i in 0..workers.get() {
        let (queue, handed) = mpsc::channel(HANDOVER_QUEUE);
        let (done, finish) = oneshot::channel::<io::Result<()>>();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let app = app.clone();
        let mut stopped = stopped.clone();
        std::thread::Builder::new()
            .name(format!("mcp-proxy-{i}"))
            .spawn(move || {
                let listener = Handed { handed, address };
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                let _ = done.send(runtime.block_on(async move {
                    tokio::spawn(keep_the_timer_wheel_ticking());
                    crate::serve_on(listener, app, shutdown, grace).await
                }));
            })?;
        queues.push((i, queue));
        finished.push(finish);
    }
    let accept = async move {
        let mut next = 0;
        loop {
            // axum's accept loop: connection errors are skipped, resource errors (such as
            // too many open files) logged and retried after a pause.
            let (stream, peer) = Listener::accept(&mut listener).await;
            let stream = match stream.into_std() {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(target: "mcp_auth_proxy", error = %e, "an accepted connection could not be handed to a worker");
                    continue;
                }
            };
            // In turn; a worker whose queue is full gets it once it has room (the others wait).
            let mut handed = (stream, peer);
            loop {
                next %= queues.len().max(1);
                let Some((worker, queue)) = queues.get(next) else {
                    tracing::error!(target: "mcp_auth_proxy", "every worker thread has stopped; no longer accepting");
                    return;
                };
                match queue.send(handed).await {
                    Ok(()) => {
                        next += 1;
                        break;
                    }
                    Err(mpsc::error::SendError(back)) => {
                        // That worker's runtime has ended: the others take its share.
                        tracing::error!(target: "mcp_auth_proxy", worker, "a worker thread has stopped");
                        queues.remove(next);
                        handed = back;
                    }
                }
            }
        }
    };
    // Accepting ends with the shutdown signal (the listener and the hand-over queues are
    // dropped with it), or when no worker is left.
    tokio::select! {
        () = shutdown => {}
        () = accept => {}
    }
    let _ = stop.send(true);
    let mut result = Ok(());
    for finish in finished {
        match finish.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => result = Err(e),
            Err(_) => result = Err(io::Error::other("a worker thread stopped unexpectedly")),
        }
    }
    result
}

/// How often an idle worker's timer wheel fires (see [`keep_the_timer_wheel_ticking`]).
const TICK: Duration = Duration::from_secs(1);

/// Keeps a timer due within [`TICK`] on this worker's runtime.
///
/// Every forwarded request arms a timer (the upstream timeout). When Tokio's timer wheel
/// holds none at all, or only later ones, as after a quiet moment, arming one interrupts the
/// runtime's sleep (a write to its wake-up descriptor, then an extra event to handle):
/// a system call and a pass through the event loop per request at light load. With this
/// ticker the wheel's next firing is never more than a second away, earlier than any upstream
/// timeout of a second or more, and arming one is a plain insertion. The cost is one timer
/// firing per second per worker.
async fn keep_the_timer_wheel_ticking() {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
    }
}

/// A worker's listener: the connections the accepting task hands it.
struct Handed {
    handed: mpsc::Receiver<(std::net::TcpStream, SocketAddr)>,
    address: SocketAddr,
}

impl Listener for Handed {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Some((stream, peer)) = self.handed.recv().await else {
                // Accepting has stopped: the shutdown signal ends the serving loop.
                return std::future::pending().await;
            };
            // Registered with this worker's runtime: it is driven here from now on.
            match TcpStream::from_std(stream) {
                Ok(s) => return (s, peer),
                Err(e) => {
                    tracing::warn!(target: "mcp_auth_proxy", error = %e, "a handed connection could not be registered");
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.address)
    }
}
