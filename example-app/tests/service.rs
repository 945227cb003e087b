//! example-app as a real process: it serves its routes and the management
//! endpoints, drains a request that was in flight at SIGTERM, refuses new
//! connections once phase 1 ran, and writes every visit to disk before it
//! exits.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Service {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: std::cell::RefCell<Vec<String>>,
    dir: PathBuf,
}

fn scratch() -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("example-app-test-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl Service {
    fn start(bind: &str) -> Service {
        Self::start_with(bind, &[])
    }

    fn start_with(bind: &str, env: &[(&str, &str)]) -> Service {
        let dir = scratch();
        let mut child = Command::new(env!("CARGO_BIN_EXE_example-app"))
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(&dir)
            .env("APP__HTTP__BIND", bind)
            .env("APP__ADMIN__BIND", "127.0.0.1:0")
            .env("APP__DATABASE__MIGRATIONS", concat!(env!("CARGO_MANIFEST_DIR"), "/migrations"))
            .env("APP__VISIT_LOG__PATH", dir.join("visits.jsonl"))
            .args(["--log-format", "json", "--log-level", "debug"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Service { child, lines, seen: Default::default(), dir }
    }

    /// The first log line whose `msg` is `msg`, as JSON (in the order
    /// written, whatever was asked for before).
    fn wait_for(&self, msg: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = self.seen.borrow_mut();
        let matching = |line: &String| serde_json::from_str::<serde_json::Value>(line).ok().filter(|v| v["msg"] == msg);
        if let Some(found) = seen.iter().find_map(matching) {
            return found;
        }
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let found = matching(&line);
            seen.push(line);
            if let Some(found) = found {
                return found;
            }
        }
        panic!("no `{msg}` log line");
    }

    /// The public and management addresses, once the app serves.
    fn addrs(&self) -> (SocketAddr, SocketAddr) {
        let admin = self.wait_for("management server listening")["addr"].as_str().unwrap().parse().unwrap();
        let http = self.wait_for("serving")["addr"].as_str().unwrap().parse().unwrap();
        (http, admin)
    }

    fn sigterm(&self) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) }, 0);
    }

    fn exit_code(&mut self) -> (i32, String) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                self.child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
                return (status.code().unwrap_or(-1), stderr);
            }
            assert!(Instant::now() < deadline, "example-app did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn visits(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.join("visits.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn get(addr: SocketAddr, raw: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.write_all(raw.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn post_json(addr: SocketAddr, path: &str, body: &str) -> String {
    get(
        addr,
        &format!(
            "POST {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn get_path(addr: SocketAddr, path: &str) -> String {
    get(addr, &format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"))
}

#[test]
fn serves_drains_and_persists_every_visit() {
    let mut service = Service::start("127.0.0.1:0");
    let dev_database = service.wait_for("started a local dev database");
    let (addr, admin) = service.addrs();
    assert!(get_path(addr, "/").starts_with("HTTP/1.1 200 OK"));
    let missing = get_path(addr, "/nope");
    assert!(missing.starts_with("HTTP/1.1 404") && missing.contains("\"code\":\"not_found\""), "{missing}");
    assert!(get(addr, "garbage\r\n\r\n").starts_with("HTTP/1.1 400"), "malformed requests get 400, not a crash");

    assert!(get_path(admin, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(get_path(admin, "/readyz").starts_with("HTTP/1.1 200"));
    let metrics = get_path(admin, "/metrics");
    assert!(metrics.contains(r#"http_requests_total{method="GET",route="/",status="200"} 1"#), "{metrics}");
    assert!(get_path(admin, "/debug/lifecycle").contains("\"timeline\""));

    // A request accepted before the signal, still running when it comes.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /work?ms=700 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").unwrap();
    service.wait_for("work started");

    service.sigterm();
    assert_eq!(service.wait_for("stopped accepting")["in_flight"], 1);
    assert!(TcpStream::connect(addr).is_err(), "new connections are refused after phase 1");
    assert!(get_path(admin, "/readyz").starts_with("HTTP/1.1 503"), "not ready from the first moment of shutdown");

    let mut response = String::new();
    slow.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200 OK"), "the in-flight request completes normally: {response}");

    let (code, stderr) = service.exit_code();
    assert_eq!(code, 0, "{stderr}");
    // Every record written during phases 1 to 4 reached stdout before the exit.
    assert_eq!(service.wait_for("drained")["phase"], "drain");
    assert_eq!(service.wait_for("workers stopped")["phase"], "stop_workers");
    assert_eq!(service.wait_for("visit log flushed")["phase"], "flush");
    let access = service.wait_for("request");
    assert!(access["route"].is_string() && access["request_id"].is_string(), "access lines are JSON too: {access}");
    let port = dev_database["port"].as_u64().unwrap() as u16;
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "the dev database stopped with the app");
    assert!(!std::path::Path::new(dev_database["dir"].as_str().unwrap()).exists(), "and its directory is gone");
    let paths: Vec<String> = service.visits().iter().map(|v| v["path"].as_str().unwrap().to_string()).collect();
    assert_eq!(paths, vec!["/", "/work"], "every visit, including the drained one, reached the disk");
}

#[test]
fn a_port_in_use_fails_start_and_rolls_back() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut service = Service::start(&taken.local_addr().unwrap().to_string());
    let (code, stderr) = service.exit_code();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("component `http` failed in phase start: cannot listen on"), "{stderr}");
    assert!(stderr.contains("in use"), "{stderr}");
}

#[test]
fn a_bad_bind_address_is_a_config_error() {
    let mut service = Service::start("not-an-address");
    let (code, stderr) = service.exit_code();
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("http.bind: `not-an-address` is not host:port"), "{stderr}");
}

#[test]
fn an_endpoint_enqueues_a_job_that_a_worker_runs() {
    let mut service = Service::start("127.0.0.1:0");
    let (addr, _) = service.addrs();
    let accepted = post_json(addr, "/greetings", r#"{"name":"Ada"}"#);
    assert!(accepted.starts_with("HTTP/1.1 202"), "{accepted}");
    let invalid = post_json(addr, "/greetings", r#"{"name":""}"#);
    assert!(invalid.starts_with("HTTP/1.1 400") && invalid.contains("bad_request"), "{invalid}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = get_path(addr, "/greetings");
        if list.contains("hello, Ada!") {
            break;
        }
        assert!(Instant::now() < deadline, "the job never ran: {list}");
        std::thread::sleep(Duration::from_millis(50));
    }
    service.sigterm();
    let (code, stderr) = service.exit_code();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_killed_app_leaves_no_dev_database_behind() {
    let service = Service::start("127.0.0.1:0");
    let dev_database = service.wait_for("started a local dev database");
    service.addrs();
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(service.child.id() as i32, libc::SIGKILL) }, 0);
    let port = dev_database["port"].as_u64().unwrap() as u16;
    let dir = std::path::PathBuf::from(dev_database["dir"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() || dir.exists() {
        assert!(Instant::now() < deadline, "the dev database outlived a SIGKILLed app");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Finds `name{…labels…} value` in a Prometheus text page.
fn series_value(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn the_final_counts_reach_the_pushgateway() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut gateway = Command::new("prometheus-pushgateway")
        .args([format!("--web.listen-address=127.0.0.1:{port}"), "--persistence.file=".into()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus-pushgateway (apt-get install prometheus-pushgateway)");
    let gateway_addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(gateway_addr).is_err() {
        assert!(Instant::now() < deadline, "the pushgateway did not come up");
        std::thread::sleep(Duration::from_millis(20));
    }
    let url = format!("http://{gateway_addr}");
    let mut service = Service::start_with(
        "127.0.0.1:0",
        &[
            ("APP__METRICS__PUSH__URL", &url),
            ("APP__METRICS__PUSH__INSTANCE", "e2e"),
            ("APP__METRICS__PUSH__INTERVAL", "1h"),
        ],
    );
    let (addr, _) = service.addrs();
    for _ in 0..3 {
        assert!(get_path(addr, "/").starts_with("HTTP/1.1 200"));
    }
    for name in ["Ada", "Grace"] {
        assert!(post_json(addr, "/greetings", &format!(r#"{{"name":"{name}"}}"#)).starts_with("HTTP/1.1 202"));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while !get_path(addr, "/greetings").contains("hello, Grace!")
        || !get_path(addr, "/greetings").contains("hello, Ada!")
    {
        assert!(Instant::now() < deadline, "the jobs never ran");
        std::thread::sleep(Duration::from_millis(50));
    }
    service.sigterm();
    let (code, stderr) = service.exit_code();
    assert_eq!(code, 0, "{stderr}");

    // HTTP/1.0: no chunked encoding to split lines of the page.
    let text = get(gateway_addr, "GET /metrics HTTP/1.0\r\n\r\n");
    let _ = gateway.kill();
    let _ = gateway.wait();
    let scope = [r#"job="example-app""#, r#"instance="e2e""#];
    let http = [scope[0], scope[1], r#"route="/""#, r#"method="GET""#, r#"status="200""#];
    assert_eq!(series_value(&text, "http_requests_total", &http), Some(3.0), "{text}");
    let jobs = [scope[0], scope[1], r#"queue="default""#, r#"status="done""#];
    assert_eq!(series_value(&text, "jobs_total", &jobs), Some(2.0), "{text}");
}
