//! The connections to the upstream: one per client connection ([`ConnSlot`]).
//!
//! A client's HTTP/1 connection carries one exchange at a time, and so does an upstream
//! connection. The proxy therefore pairs them: the first request on a client connection
//! opens an upstream connection, and every later request on that client connection reuses
//! it, until either side closes. There is no pool to look things up in, no connection handed
//! between requests of different clients, and no task spawned per request to put a
//! connection back: measured against hyper-util's pooled client on this path, that saved
//! about a quarter of a minimal forwarder's added latency (BENCHMARKS.md).
//!
//! The upstream connection is driven by a task on the thread that opened it, which is the
//! thread serving the client connection ([`crate::serve_threads`]), so a request never
//! leaves its thread.
//!
//! A reused connection may have been closed by the upstream while idle (keep-alive
//! timeouts). A request that was never sent on it is sent once more on a new connection;
//! one that was sent is not repeated (it may have had effects), and ends as a 502.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// The upstream connection of one client connection, shared by its requests (a request
/// extension set by [`crate::serve`] and [`crate::serve_threads`]).
#[derive(Clone, Default)]
pub(crate) struct ConnSlot(Arc<Mutex<Option<SendRequest<Body>>>>);

impl std::fmt::Debug for ConnSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnSlot").finish_non_exhaustive()
    }
}

impl ConnSlot {
    fn take(&self) -> Option<SendRequest<Body>> {
        self.0.lock().ok()?.take()
    }

    fn put(&self, sender: SendRequest<Body>) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(sender);
        }
    }
}

/// Why a request did not get an answer from the upstream.
#[derive(Debug)]
pub(crate) enum SendError {
    /// No connection could be opened (refused, unresolvable, connect timeout).
    Connect(std::io::Error),
    /// The connection failed during the exchange.
    Exchange(hyper::Error),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Connect(e) => write!(f, "connecting to the upstream: {e}"),
            Self::Exchange(e) => write!(f, "exchange with the upstream: {e}"),
        }
    }
}

impl std::error::Error for SendError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Connect(e) => Some(e),
            Self::Exchange(e) => Some(e),
        }
    }
}

/// Where the upstream is and how to reach it.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    /// `host:port` of the upstream.
    authority: String,
    /// The path the requests are sent to (origin-form).
    path: Uri,
    connect_timeout: Duration,
}

impl Connector {
    /// The connector for the upstream endpoint `uri` (an `http://` URL, checked by the
    /// configuration).
    pub(crate) fn new(uri: &Uri, connect_timeout: Duration) -> Self {
        let host = uri.host().unwrap_or("127.0.0.1");
        let port = uri.port_u16().unwrap_or(80);
        // An IPv6 literal keeps its brackets in `host()`.
        let authority = format!("{host}:{port}");
        let path = uri
            .path_and_query()
            .map_or_else(|| Uri::from_static("/"), |p| Uri::from(p.clone()));
        Self {
            authority,
            path,
            connect_timeout,
        }
    }

    /// Sends `req` (its URI is replaced by the upstream's path) over `slot`'s connection,
    /// opening one if there is none or it has closed, and leaves the connection in the slot
    /// for the client connection's next request. Without a slot (the router served by
    /// something else than this crate's `serve` functions) the connection serves this one
    /// request.
    pub(crate) async fn send(
        &self,
        slot: Option<&ConnSlot>,
        mut req: Request<Body>,
    ) -> Result<Response<Incoming>, SendError> {
        *req.uri_mut() = self.path.clone();
        let mut reused = slot.and_then(ConnSlot::take).filter(|s| !s.is_closed());
        loop {
            let was_reused = reused.is_some();
            let mut sender = match reused.take() {
                Some(s) => s,
                None => self.connect().await?,
            };
            if sender.ready().await.is_err() {
                if was_reused {
                    continue;
                }
                // A new connection that is not ready has failed: the error is its task's.
                return Err(SendError::Connect(std::io::Error::other(
                    "the upstream closed a new connection",
                )));
            }
            match sender.try_send_request(req).await {
                Ok(res) => {
                    if let Some(slot) = slot {
                        slot.put(sender);
                    }
                    return Ok(res);
                }
                Err(mut e) => match e.take_message() {
                    // Never sent on a connection that had closed meanwhile: once more, on a
                    // new connection.
                    Some(back) if was_reused => req = back,
                    _ => return Err(SendError::Exchange(e.into_error())),
                },
            }
        }
    }

    async fn connect(&self) -> Result<SendRequest<Body>, SendError> {
        let stream = tokio::time::timeout(
            self.connect_timeout,
            TcpStream::connect(self.authority.as_str()),
        )
        .await
        .map_err(|_| {
            SendError::Connect(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connect timeout",
            ))
        })?
        .map_err(SendError::Connect)?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Exchange)?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(target: "mcp_auth_proxy", error = %e, "upstream connection ended");
            }
        });
        Ok(sender)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connector_dials_host_and_port_and_sends_the_path() {
        for (url, authority, path) in [
            ("http://127.0.0.1:9000/mcp", "127.0.0.1:9000", "/mcp"),
            ("http://[::1]:9000/api/mcp", "[::1]:9000", "/api/mcp"),
            (
                "http://upstream.internal/mcp",
                "upstream.internal:80",
                "/mcp",
            ),
            ("http://127.0.0.1:9000", "127.0.0.1:9000", "/"),
        ] {
            let c = Connector::new(&url.parse().unwrap(), Duration::from_secs(1));
            assert_eq!(
                (c.authority.as_str(), c.path.to_string().as_str()),
                (authority, path),
                "{url}"
            );
        }
    }
}
