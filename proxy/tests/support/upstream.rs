//! A scriptable upstream on a loopback port, written for these tests: it records every
//! request and answers by JSON-RPC method (and the `x-test-mode` header):
//!
//! - `initialize`: a JSON result with `Mcp-Session-Id: sess-1`;
//! - `tools/list`: five tools, as JSON, or as SSE (`x-test-mode: sse`) after a progress
//!   notification;
//! - `test/stream`: SSE, five events 150 ms apart;
//! - anything else: a JSON result echoing the request's headers.
//!
//! `x-test-mode: 401` answers 401 with a challenge; `x-test-mode: close` answers and closes
//! the connection. GET opens an SSE stream (one event, then
//! kept open until the client leaves); DELETE answers 200. Every response also carries a
//! hop-by-hop field, a cookie and a challenge the proxy must remove.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, Method, Response, StatusCode};
use axum::routing::any;
use bytes::Bytes;
use http_body::Frame;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The connection it came on (the proxy's end of it).
    pub peer: SocketAddr,
    pub method: Method,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// The upstream, serving until the test ends.
#[derive(Clone)]
pub struct Upstream {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Upstream {
    /// Its MCP URL.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Every request received so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// Starts the upstream on a loopback port.
pub async fn start() -> Upstream {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let up = Upstream {
        addr,
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    let app = Router::new()
        .route("/mcp", any(handle))
        .with_state(up.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    up
}

/// A loopback port that accepts connections and never answers.
pub async fn hanging() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    addr
}

/// A body fed through a channel: each message is one frame, sent when it is sent.
struct ChannelBody(mpsc::Receiver<Bytes>);

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|m| m.map(|b| Ok(Frame::data(b))))
    }
}

fn sse_event(v: &Value) -> Bytes {
    Bytes::from(format!("event: message\r\ndata: {v}\r\n\r\n"))
}

fn with_noise(mut res: Response<Body>) -> Response<Body> {
    let h = res.headers_mut();
    h.insert("connection", "x-upstream-hop".parse().unwrap());
    h.insert("x-upstream-hop", "1".parse().unwrap());
    h.insert("set-cookie", "upstream=1".parse().unwrap());
    h.insert(
        "www-authenticate",
        "Bearer realm=\"upstream\"".parse().unwrap(),
    );
    h.insert("x-upstream-end-to-end", "kept".parse().unwrap());
    res
}

fn json_response(v: Value) -> Response<Body> {
    let mut res = Response::new(Body::from(v.to_string()));
    res.headers_mut()
        .insert("content-type", "application/json".parse().unwrap());
    res
}

fn sse_response(rx: mpsc::Receiver<Bytes>) -> Response<Body> {
    let mut res = Response::new(Body::new(ChannelBody(rx)));
    res.headers_mut()
        .insert("content-type", "text/event-stream".parse().unwrap());
    res
}

async fn handle(
    State(up): State<Upstream>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    up.seen.lock().unwrap().push(Seen {
        peer,
        method: method.clone(),
        headers: headers.clone(),
        body: body.clone(),
    });
    let mode = headers
        .get("x-test-mode")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    if mode == "401" {
        let mut res = Response::new(Body::from("no"));
        *res.status_mut() = StatusCode::UNAUTHORIZED;
        res.headers_mut()
            .insert("www-authenticate", "Bearer".parse().unwrap());
        return res;
    }
    if mode == "close" {
        // Answers, then closes the connection.
        let mut res = json_response(json!({"jsonrpc": "2.0", "id": 1, "result": {}}));
        res.headers_mut()
            .insert("connection", "close".parse().unwrap());
        return res;
    }
    let res = match method {
        Method::GET => {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from_static(b": open\n\n")).await;
                // Held open until the client goes away.
                tx.closed().await;
            });
            sse_response(rx)
        }
        Method::DELETE => Response::new(Body::empty()),
        _ => answer(&body, &headers, &mode),
    };
    with_noise(res)
}

fn answer(body: &[u8], headers: &HeaderMap, mode: &str) -> Response<Body> {
    let req: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let id = req["id"].clone();
    match req["method"].as_str().unwrap_or("") {
        "initialize" => {
            let mut res = json_response(json!({"jsonrpc":"2.0","id":id,"result":{}}));
            res.headers_mut()
                .insert("mcp-session-id", "sess-1".parse().unwrap());
            res
        }
        "tools/list" => {
            let result = json!({"jsonrpc":"2.0","id":id,"result":{"tools":[
                {"name":"whoami"},{"name":"read_data"},{"name":"write_data"},
                {"name":"delete_data"},{"name":"not_in_the_table"}]}});
            if mode != "sse" {
                return json_response(result);
            }
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                let note = json!({"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"delete_data listed"}});
                let _ = tx.send(sse_event(&note)).await;
                tokio::time::sleep(Duration::from_millis(50)).await;
                // Split inside the event: the proxy must reassemble it.
                let bytes = sse_event(&result);
                let (a, b) = bytes.split_at(bytes.len() / 2);
                let _ = tx.send(Bytes::copy_from_slice(a)).await;
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = tx.send(Bytes::copy_from_slice(b)).await;
            });
            sse_response(rx)
        }
        "test/stream" => {
            let (tx, rx) = mpsc::channel(4);
            tokio::spawn(async move {
                for i in 0..5 {
                    let note = json!({"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":i}});
                    if tx.send(sse_event(&note)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
                let _ = tx
                    .send(sse_event(&json!({"jsonrpc":"2.0","id":id,"result":{}})))
                    .await;
            });
            sse_response(rx)
        }
        _ => {
            let echoed: serde_json::Map<String, Value> = headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        Value::from(String::from_utf8_lossy(v.as_bytes()).into_owned()),
                    )
                })
                .collect();
            json_response(json!({"jsonrpc":"2.0","id":id,"result":{"headers":echoed}}))
        }
    }
}
