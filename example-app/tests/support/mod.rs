//! Drives the built `example-app` binary as a child process, the way an
//! orchestrator does: environment in, JSON log and exit code out, signals
//! by pid. Each test brings its own throwaway Postgres (and Pushgateway),
//! on random loopback ports, so tests run in parallel without sharing state.
#![allow(dead_code)] // each test file uses a different part

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

#[allow(unused_imports)] // a test binary that starts no database (profiles.rs) does not use it
pub use orderly_components::postgres::DevDatabase;

pub mod proxy;

/// The development key of the embedded config (the README uses it too).
pub const API_KEY: &str = "dev-key-not-for-production";

/// A running (or exited) example-app process.
pub struct App {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Mutex<Vec<Value>>,
    stderr: Arc<Mutex<String>>,
    pub http: Option<SocketAddr>,
    pub admin: Option<SocketAddr>,
}

/// The environment every test app gets: random ports, JSON logs at debug,
/// the given database (the migrations are in the binary).
pub fn base_env(database_url: &str) -> Vec<(String, String)> {
    [
        ("APP__HTTP__BIND", "127.0.0.1:0"),
        ("APP__ADMIN__BIND", "127.0.0.1:0"),
        ("APP__HTTP__WORKERS", "2"),
        ("APP__DATABASE__URL", database_url),
        ("APP__DATABASE__POOL_SIZE", "8"),
        ("APP__WORKERS__POLL_INTERVAL", "50ms"),
        ("APP__HTTP__ACCESS_LOG", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

impl App {
    /// Spawns the binary with exactly `env` (nothing inherited) and `args`.
    pub fn spawn(env: &[(String, String)], args: &[&str]) -> App {
        let mut child = Command::new(env!("CARGO_BIN_EXE_example-app"))
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            // Not the crate's directory: the binary needs no file of its own.
            .current_dir(std::env::temp_dir())
            .args(["--log-format", "json", "--log-level", "debug"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn example-app");
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("stderr");
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = err.read_to_string(&mut text);
            sink.lock().push_str(&text);
        });
        App { child, lines, seen: Mutex::new(Vec::new()), stderr, http: None, admin: None }
    }

    /// Spawns it against `database_url` with `extra` env on top, and waits
    /// until its public server serves.
    pub fn start(database_url: &str, extra: &[(&str, &str)]) -> App {
        App::start_with_args(database_url, extra, &[])
    }

    /// [`App::start`] with command-line arguments (`--config FILE`).
    pub fn start_with_args(database_url: &str, extra: &[(&str, &str)], args: &[&str]) -> App {
        let mut env = base_env(database_url);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let mut app = App::spawn(&env, args);
        app.admin = Some(app.wait_for_msg("management server listening")["addr"].as_str().unwrap().parse().unwrap());
        app.http = Some(app.wait_for_msg("serving")["addr"].as_str().unwrap().parse().unwrap());
        app
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.http.expect("http address"))
    }

    pub fn admin_base(&self) -> String {
        format!("http://{}", self.admin.expect("admin address"))
    }

    fn pump(&self, wait: Duration) -> bool {
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                // Non-JSON lines would be a bug of the log writer: keep them visible.
                let value = serde_json::from_str(&line).unwrap_or_else(|_| json!({ "msg": "NOT JSON", "line": line }));
                self.seen.lock().push(value);
                true
            }
            Err(_) => false,
        }
    }

    /// The first log record (in the order written) that `matches`, waiting up to 30 s.
    pub fn wait_for(&self, what: &str, matches: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut checked = 0;
        loop {
            {
                let seen = self.seen.lock();
                if let Some(found) = seen[checked..].iter().find(|v| matches(v)) {
                    return found.clone();
                }
                checked = seen.len();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || (!self.pump(left) && Instant::now() >= deadline) {
                panic!("no log record {what} within 30 s; stderr: {}", self.stderr.lock());
            }
        }
    }

    pub fn wait_for_msg(&self, msg: &str) -> Value {
        self.wait_for(msg, |v| v["msg"] == msg)
    }

    /// Every log record so far (reads what the process has written).
    pub fn logs(&self) -> Vec<Value> {
        while self.pump(Duration::from_millis(20)) {}
        self.seen.lock().clone()
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.pid(), signal) }, 0, "kill({signal})");
    }

    pub fn sigterm(&self) {
        self.signal(libc::SIGTERM);
    }

    /// Waits for the exit; returns the code and stderr. Reads the rest of stdout first.
    pub fn wait_exit(&mut self, limit: Duration) -> (i32, String) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                // stdout closes with the process: read to the end.
                while self.pump(Duration::from_millis(200)) {}
                std::thread::sleep(Duration::from_millis(50));
                return (status.code().unwrap_or(-1), self.stderr.lock().clone());
            }
            assert!(Instant::now() < deadline, "example-app did not exit within {limit:?}");
            self.pump(Duration::from_millis(10));
        }
    }

    /// Lifecycle records (`lifecycle <event>`), in order.
    pub fn lifecycle(&self) -> Vec<Value> {
        self.logs().into_iter().filter(|v| v["msg"].as_str().is_some_and(|m| m.starts_with("lifecycle "))).collect()
    }

    /// The phases whose `phase_started` records appear, in order.
    pub fn phases_started(&self) -> Vec<String> {
        self.lifecycle()
            .iter()
            .filter(|v| v["event"] == "phase_started")
            .map(|v| v["phase"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The five stop phases, in order, as logged.
pub const FIVE_PHASES: [&str; 5] = ["stop_accepting", "drain", "stop_workers", "flush", "close"];

/// An HTTP client that opens a new connection per request, so a request
/// is refused or accepted, never sent on a connection the server is closing.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client")
}

pub fn bearer() -> String {
    format!("Bearer {API_KEY}")
}

pub fn new_order(customer: &str) -> Value {
    json!({ "customer": customer, "items": [{ "sku": "A-1", "quantity": 2, "unit_price_cents": 150 }, { "sku": "B-7", "quantity": 1, "unit_price_cents": 999 }] })
}

/// Creates an order; the response's status and body.
pub async fn create(
    client: &reqwest::Client,
    base: &str,
    body: &Value,
    key: Option<&str>,
) -> reqwest::Result<(u16, Value)> {
    let mut request = client.post(format!("{base}/api/v1/orders")).header("Authorization", bearer()).json(body);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

pub async fn get_json(client: &reqwest::Client, url: &str) -> reqwest::Result<(u16, Value)> {
    let response = client.get(url).header("Authorization", bearer()).send().await?;
    let status = response.status().as_u16();
    Ok((status, response.json().await.unwrap_or(Value::Null)))
}

/// Polls `url` until it answers `status`, for up to 30 s.
pub async fn until_status(client: &reqwest::Client, url: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = client.get(url).send().await {
            if r.status().as_u16() == status {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{url} did not answer {status} within 30 s");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A SQL connection to the test database.
pub async fn sql(url: &str) -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect to the test database");
    tokio::spawn(connection);
    client
}

/// For every order: (id, status, confirmation_runs, its jobs' statuses, notifications).
pub async fn order_states(db: &tokio_postgres::Client) -> Vec<(i64, String, i32, Vec<String>, i64)> {
    db.query(
        "SELECT o.id, o.status, o.confirmation_runs,
                COALESCE((SELECT array_agg(j.status ORDER BY j.id) FROM orderly_jobs j
                          WHERE j.kind = 'send_confirmation' AND (j.payload->>'order_id')::BIGINT = o.id), '{}'),
                (SELECT count(*) FROM notifications n WHERE n.order_id = o.id)
         FROM orders o ORDER BY o.id",
        &[],
    )
    .await
    .expect("order states")
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
    .collect()
}

pub use orderly_test_services::Pushgateway;

/// The value of the series `name` whose labels include every one of
/// `labels`, as the gateway holds it now.
pub async fn pushed_value(gateway: &Pushgateway, name: &str, labels: &[&str]) -> Option<f64> {
    let text = client().get(gateway.metrics_url()).send().await.ok()?.text().await.ok()?;
    orderly_test_services::series_value(&text, name, labels)
}

/// A fresh directory under the system's temporary one, for a test's
/// files; removed when dropped, a failing test's included.
pub struct ScratchDir(std::path::PathBuf);

impl std::ops::Deref for ScratchDir {
    type Target = std::path::Path;

    fn deref(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn scratch_dir(name: &str) -> ScratchDir {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    let dir = std::env::temp_dir().join(format!("example-app-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating a scratch directory");
    ScratchDir(dir)
}
