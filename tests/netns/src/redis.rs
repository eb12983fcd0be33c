//! A throwaway Redis for tests of server replicas: Debian's `redis-server` on a
//! free loopback port, with persistence off, stopped when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long `redis-server` may take to accept connections after its start.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// A `redis-server` process that the test started.
pub struct Redis {
    port: u16,
    child: Option<Child>,
}

impl Redis {
    /// Starts `redis-server` on a free port of 127.0.0.1 and waits until it
    /// accepts connections.
    ///
    /// # Panics
    ///
    /// Panics when `redis-server` is missing or does not listen in time.
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis { port, child: None };
        redis.restart();
        redis
    }

    /// Starts the server again on the same port, after [`Redis::stop`].
    ///
    /// # Panics
    ///
    /// Panics when `redis-server` is missing or does not listen in time.
    pub fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server runs; install Debian's redis-server package");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        while std::time::Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not listen on port {}", self.port);
    }

    /// Stops the server, as an outage would.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Returns the server's URL, e.g. `redis://127.0.0.1:6379`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}
