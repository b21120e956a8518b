//! `serve_threads`, the binary's way of serving: connections spread over the worker threads
//! in turn, each connection served by one thread for its whole life, and a shutdown that
//! lets requests in flight finish within the grace period and no longer.

use std::collections::BTreeSet;
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

/// Answers with the name of the thread that serves the request; `/slow/{ms}` first sleeps.
fn app() -> Router {
    async fn name() -> String {
        std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_owned()
    }
    Router::new().route("/", get(name)).route(
        "/slow/{ms}",
        get(
            |axum::extract::Path(ms): axum::extract::Path<u64>| async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                name().await
            },
        ),
    )
}

struct Running {
    base: String,
    stop: CancellationToken,
    done: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(workers: usize, grace: Duration) -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let stop = CancellationToken::new();
    let s = stop.clone();
    let done = tokio::spawn(mcp_auth_proxy::serve_threads(
        listener,
        app(),
        NonZeroUsize::new(workers).unwrap(),
        async move { s.cancelled().await },
        grace,
    ));
    Running { base, stop, done }
}

#[tokio::test]
async fn connections_go_to_the_workers_in_turn_and_each_stays_on_its_thread() {
    let server = start(2, Duration::from_secs(1)).await;
    let mut seen = BTreeSet::new();
    for _ in 0..4 {
        // One client, one keep-alive connection, three requests on it.
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .build()
            .unwrap();
        let mut names = BTreeSet::new();
        for _ in 0..3 {
            let res = client
                .get(format!("{}/", server.base))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            names.insert(res.text().await.unwrap());
        }
        assert_eq!(
            names.len(),
            1,
            "a connection moved between threads: {names:?}"
        );
        seen.extend(names);
    }
    let expected: BTreeSet<String> = ["mcp-proxy-0", "mcp-proxy-1"].map(String::from).into();
    assert_eq!(seen, expected, "four connections, two workers, in turn");
    server.stop.cancel();
    server.done.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_request_in_flight_finishes_within_the_grace_period_then_serving_stops() {
    let server = start(2, Duration::from_secs(5)).await;
    let url = format!("{}/slow/300", server.base);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = Instant::now();
    server.stop.cancel();
    let res = in_flight.await.unwrap();
    assert_eq!(res.status(), 200, "the request in flight was answered");
    assert!(res.text().await.unwrap().starts_with("mcp-proxy-"));
    server.done.await.unwrap().unwrap();
    assert!(
        stopped.elapsed() < Duration::from_secs(3),
        "serving ended once the last connection closed, not at the end of the grace period"
    );
    let after = reqwest::get(format!("{}/", server.base)).await;
    assert!(
        after.is_err(),
        "no new connection is accepted after the shutdown"
    );
}

#[tokio::test]
async fn a_request_longer_than_the_grace_period_is_cut_off_when_it_ends() {
    let server = start(1, Duration::from_millis(200)).await;
    let url = format!("{}/slow/20000", server.base);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let stopped = Instant::now();
    server.stop.cancel();
    server.done.await.unwrap().unwrap();
    let took = stopped.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_secs(3),
        "stopped after {took:?}, expected the 200 ms grace period"
    );
    assert!(
        in_flight.await.unwrap().is_err(),
        "the connection was closed without an answer"
    );
}
