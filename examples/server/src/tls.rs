//! HTTPS served by the example server itself (`MCP_TLS_CERT`, `MCP_TLS_KEY`), with client
//! certificates verified against `MCP_TLS_CLIENT_CA` (RFC 8705 mutual TLS).
//!
//! [`TlsListener`] accepts TCP connections and runs each TLS handshake in a task of its own,
//! under `MCP_TLS_HANDSHAKE_TIMEOUT` (default 10 s) and with at most
//! [`MAX_PENDING_HANDSHAKES`] at once, so a slow or failing handshake never holds up the
//! accept loop and never stops the server; it is logged at `debug` and the connection
//! dropped. axum then serves each finished connection, and [`connection_extensions`] gives
//! every request on it what mcp-auth reads: the peer address (`SocketAddr`),
//! [`TlsConnection`] and, when the client presented one, its [`ClientCertificate`] (the
//! end-entity certificate the handshake verified).

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use mcp_auth::config::TlsSettings;
use mcp_auth::request_info::{ClientCertificate, TlsConnection};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The most TLS handshakes in progress at once; connections beyond are closed at once.
pub const MAX_PENDING_HANDSHAKES: usize = 512;

/// Finished handshakes waiting for axum to take them.
const READY_QUEUE: usize = 64;

/// The peer of a TLS connection: its address and the client certificate it presented.
#[derive(Debug, Clone)]
pub struct TlsPeer {
    /// The TCP peer address.
    pub addr: SocketAddr,
    /// The end-entity certificate the client presented (verified by the handshake), if any.
    pub cert: Option<ClientCertificate>,
}

impl Connected<IncomingStream<'_, TlsListener>> for TlsPeer {
    fn connect_info(stream: IncomingStream<'_, TlsListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// Copies a TLS connection's [`TlsPeer`] (axum's `ConnectInfo`) into the extensions mcp-auth
/// reads: the peer address as a `SocketAddr`, [`TlsConnection`], and the
/// [`ClientCertificate`] when there is one.
pub fn connection_extensions<B>(mut req: http::Request<B>) -> http::Request<B> {
    if let Some(ConnectInfo(peer)) = req.extensions().get::<ConnectInfo<TlsPeer>>().cloned() {
        let ext = req.extensions_mut();
        ext.insert(peer.addr);
        ext.insert(TlsConnection);
        if let Some(cert) = peer.cert {
            ext.insert(cert);
        }
    }
    req
}

/// A TLS listener for `axum::serve`: handshakes run in the background (see the
/// [module docs](self)); `accept` hands out finished connections.
#[derive(Debug)]
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, TlsPeer)>,
    local_addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `listener` with `tls` (needs a Tokio runtime). The background
    /// accept loop ends when this listener is dropped.
    ///
    /// # Errors
    ///
    /// When the listener's local address cannot be read.
    pub fn new(listener: TcpListener, tls: &TlsSettings) -> io::Result<Self> {
        let local_addr = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(READY_QUEUE);
        let acceptor = TlsAcceptor::from(tls.server_config());
        tokio::spawn(accept_loop(listener, acceptor, tls.handshake_timeout(), tx));
        Ok(Self { ready, local_addr })
    }
}

impl Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = TlsPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends once this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(TlsPeer {
            addr: self.local_addr,
            cert: None,
        })
    }
}

/// Accepts TCP connections until `tx`'s receiver is gone, each handshake in its own task.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    timeout: Duration,
    tx: mpsc::Sender<(TlsStream<TcpStream>, TlsPeer)>,
) {
    let pending = Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = tx.closed() => return,
        };
        let (tcp, addr) = match accepted {
            Ok(conn) => conn,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                // Out of file descriptors, most likely: wait for some to close.
                tracing::error!(error = %e, "accept error");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            tracing::debug!(peer = %addr, "too many TLS handshakes in progress; connection closed");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let tx = tx.clone();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %addr, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(peer = %addr, "TLS handshake timed out");
                    return;
                }
            };
            drop(permit);
            let cert = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|end_entity| ClientCertificate::from_der(end_entity.as_ref()));
            let _ = tx.send((stream, TlsPeer { addr, cert })).await;
        });
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
