//! A `redis-server` on a loopback port (Debian's package; scripts/test.sh installs it).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// A redis-server on a loopback port, killed on drop.
pub struct RedisServer {
    /// The process, until [`RedisServer::stop`].
    pub child: Option<Child>,
    /// Its loopback port.
    pub port: u16,
}

impl RedisServer {
    /// `redis-server` on `port`, bound to 127.0.0.1.
    pub fn start_on(port: u16) -> Self {
        Self::spawn(port, &["--port", &port.to_string(), "--bind", "127.0.0.1"])
    }

    /// `redis-server` with `args`, once `port` accepts connections.
    pub fn spawn(port: u16, args: &[&str]) -> Self {
        let child = Command::new("redis-server")
            .args(args)
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "redis-server is not installed ({e}): install it (apt-get install redis-server) \
                     or run scripts/test.sh, which does"
                )
            });
        let mut srv = Self {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = srv.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("redis-server exited ({status}) instead of listening on {port}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        srv
    }

    /// `redis-server` on a free loopback port.
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server now.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// A plain connection, to look at the keys.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection()
            .unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
