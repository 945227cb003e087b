//! Real throwaway services for tests, each on a free loopback port and
//! killed when dropped (a test that panics still removes its server):
//! a Prometheus [`Pushgateway`] and [`Redis`]. They are the Debian
//! packages' binaries (`prometheus-pushgateway`, `redis-server`), which
//! `scripts/test-all.sh` installs; tests across the workspace share this
//! one launcher instead of each keeping a copy.
//!
//! Postgres is not here: the `postgres` component's own development
//! database (`orderly_components::postgres::DevDatabase`) is what tests use.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a service may take to accept connections before the test fails.
const COME_UP: Duration = Duration::from_secs(20);

/// A free loopback port (the probing listener is closed before it returns,
/// so the service can bind it).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a probe socket on 127.0.0.1");
    listener.local_addr().expect("the probe socket's address").port()
}

/// Spawns `program` with `args`, its output discarded, and waits until it
/// accepts connections on `port`.
fn spawn_listening(program: &str, package: &str, args: &[String], port: u16) -> Child {
    let mut child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {program} (apt-get install {package}): {e}"));
    let deadline = Instant::now() + COME_UP;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{program} did not accept connections on port {port} within {COME_UP:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child
}

fn end(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A real Prometheus Pushgateway on a free loopback port, without persistence.
pub struct Pushgateway {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Pushgateway {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Pushgateway {
        let port = free_port();
        let args = [format!("--web.listen-address=127.0.0.1:{port}"), "--persistence.file=".into()];
        let child = spawn_listening("prometheus-pushgateway", "prometheus-pushgateway", &args, port);
        Pushgateway { child, url: format!("http://127.0.0.1:{port}") }
    }

    /// Where its own `/metrics` (every pushed series) is served.
    pub fn metrics_url(&self) -> String {
        format!("{}/metrics", self.url)
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        end(&mut self.child);
    }
}

/// The value of the first series named `name` (exactly) whose labels include
/// every one of `labels` (each written as `key="value"`), in Prometheus's
/// text format.
///
/// ```
/// let text = "jobs_total{kind=\"a\",job=\"x\"} 3\njobs_total_bytes 9\n";
/// assert_eq!(orderly_test_services::series_value(text, "jobs_total", &["kind=\"a\""]), Some(3.0));
/// assert_eq!(orderly_test_services::series_value(text, "jobs_total", &["kind=\"b\""]), None);
/// ```
pub fn series_value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .find(|line| labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// A real Redis on a loopback port, without persistence.
pub struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    /// Starts one on a free port.
    pub fn start() -> Redis {
        Self::start_on(free_port())
    }

    /// Starts one on `port` (to bring a stopped one back where clients expect it).
    pub fn start_on(port: u16) -> Redis {
        let args: Vec<String> =
            ["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        Redis { child: spawn_listening("redis-server", "redis-server", &args, port), port }
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Ends it now (a dependency going away); returns its port.
    pub fn stop(mut self) -> u16 {
        end(&mut self.child);
        self.port
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        end(&mut self.child);
    }
}
