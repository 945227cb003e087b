//! Process-level benches of example-app, the orders service, against an
//! already-running Postgres (started here, migrated once before measuring):
//!
//! - exec → `/readyz` 200, and the idle RSS once ready;
//! - SIGTERM → exit, idle and while `wrk` reads orders;
//! - throughput of `GET /api/v1/orders/{id}` on a cache hit (1 HTTP
//!   worker, access log on, as shipped) beside bare actix-web serving the
//!   same JSON from memory, interleaved in the same run.
//!
//! `cargo build --release -p example-app -p orderly-benches --bins && target/release/app-harness`
//! Options: `--runs N` (default 15), `--duration SECS` (wrk, default 5),
//! `--rounds N` (default 3). Needs `wrk` and the postgresql binaries.
//! `--only restart` measures how long the graph from `database` takes to
//! stop and start again (database, workers, orders: every member ready),
//! set off by a SIGHUP that changes `[database] connect_timeout`, which
//! the pool cannot take in place.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use orderly_benches::process::{free_port, median, rss_kib};
use orderly_components::postgres::DevDatabase;

/// The release binary runs the `prod` profile: the harness gives it its key.
const KEY: &str = "bench-key-0123456789abcdef";

fn sibling(name: &str) -> PathBuf {
    std::env::current_exe().expect("own path").with_file_name(name)
}

struct App {
    child: Child,
    http: SocketAddr,
    admin: SocketAddr,
}

fn spawn_app(database_url: &str, workers: usize) -> App {
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = Command::new(sibling("example-app"))
        .env_clear()
        .env("APP__HTTP__BIND", http.to_string())
        .env("APP__ADMIN__BIND", admin.to_string())
        .env("APP__HTTP__WORKERS", workers.to_string())
        .env("APP__DATABASE__URL", database_url)
        .env("APP__API__KEY", KEY)
        .env("APP__LOG__FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn example-app (build it with --release first)");
    App { child, http, admin }
}

fn request(addr: SocketAddr, raw: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.write_all(raw.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    Some((status, response.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default()))
}

fn get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    request(
        addr,
        &format!("GET {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\nconnection: close\r\n\r\n"),
    )
}

/// SIGTERM, then the time to exit, which must be clean.
fn sigterm_and_wait(child: &mut Child) -> Duration {
    let (took, clean) = orderly_benches::process::sigterm_and_wait(child);
    assert!(clean, "example-app did not exit 0");
    took
}

fn wait_ready(admin: SocketAddr) -> Duration {
    let started = Instant::now();
    while get(admin, "/readyz").map(|r| r.0) != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(30), "never became ready");
        std::thread::yield_now();
    }
    started.elapsed()
}

/// Creates one order and reads it twice (the second read is a cache hit); its id and JSON.
fn seed_order(http: SocketAddr) -> (i64, String) {
    let body = r#"{"customer":"bench@example.com","items":[{"sku":"A-1","quantity":2,"unit_price_cents":150}]}"#;
    let raw = format!(
        "POST /api/v1/orders HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {KEY}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, created) = request(http, &raw).expect("create");
    assert_eq!(status, 201, "{created}");
    let id =
        created.split("\"id\":").nth(1).and_then(|s| s.split(',').next()).and_then(|s| s.parse().ok()).expect("id");
    // Wait for the confirmation, so the cached copy is the final one.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, json) = get(http, &format!("/api/v1/orders/{id}")).expect("read");
        if json.contains("\"confirmed\"") {
            return (id, json);
        }
        assert!(Instant::now() < deadline, "never confirmed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wrk(url: &str, seconds: u64, auth: bool) -> f64 {
    let mut args = vec![(seconds + 20).to_string(), "wrk".into(), "-t1".into(), "-c32".into(), format!("-d{seconds}s")];
    if auth {
        args.extend(["-H".into(), format!("Authorization: Bearer {KEY}")]);
    }
    args.push(url.into());
    let output = Command::new("timeout").args(&args).output().expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("Non-2xx"), "errors under load:\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}

fn start_and_stop(url: &str, runs: usize) {
    println!("## exec -> /readyz 200 (Postgres already running, migrated), idle RSS, SIGTERM -> exit: median of {runs} runs, 2 HTTP workers");
    let (mut ready, mut rss, mut exit) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let mut app = spawn_app(url, 2);
        ready.push(wait_ready(app.admin).as_secs_f64() * 1e3);
        std::thread::sleep(Duration::from_millis(300));
        rss.push(rss_kib(&app.child) as f64 / 1024.0);
        exit.push(sigterm_and_wait(&mut app.child).as_secs_f64() * 1e3);
    }
    let rounded = |v: &[f64]| v.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>();
    println!(
        "example-app exec->ready {:7.2} ms   idle RSS {:5.2} MiB   SIGTERM->exit (idle) {:7.2} ms",
        median(ready.clone()),
        median(rss.clone()),
        median(exit.clone())
    );
    println!(
        "  samples exec->ready {:?}\n  samples RSS {:?}\n  samples exit {:?}\n",
        rounded(&ready),
        rounded(&rss),
        rounded(&exit)
    );
}

fn stop_under_load(url: &str, runs: usize) {
    println!("## SIGTERM -> exit while wrk -c32 reads an order (cache hits): median of {runs} runs, 2 HTTP workers");
    let mut exit = Vec::new();
    for _ in 0..runs {
        let mut app = spawn_app(url, 2);
        wait_ready(app.admin);
        let (id, _) = seed_order(app.http);
        let target = format!("http://{}/api/v1/orders/{id}", app.http);
        let load = std::thread::spawn(move || {
            // Errors after the listener closes are expected; only the exit time is measured.
            Command::new("timeout")
                .args(["10", "wrk", "-t1", "-c32", "-d3s", "-H", &format!("Authorization: Bearer {KEY}"), &target])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
        });
        std::thread::sleep(Duration::from_millis(700));
        exit.push(sigterm_and_wait(&mut app.child).as_secs_f64() * 1e3);
        let _ = load.join();
    }
    println!(
        "example-app SIGTERM->exit (under load) {:7.2} ms   samples: {:?}\n",
        median(exit.clone()),
        exit.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
}

fn throughput(url: &str, seconds: u64, rounds: usize) {
    println!("## Throughput: GET one order, wrk -t1 -c32 -d{seconds}s, 1 HTTP worker, {rounds} interleaved rounds");
    let (mut bare, mut app_rps) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let mut app = spawn_app(url, 1);
        wait_ready(app.admin);
        let (id, json) = seed_order(app.http);
        app_rps.push(wrk(&format!("http://{}/api/v1/orders/{id}", app.http), seconds, true));
        sigterm_and_wait(&mut app.child);

        let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut floor = Command::new(sibling("http-server"))
            .arg("bare")
            .env("BENCH_WORKERS", "1")
            .env("BENCH_HTTP_BIND", http.to_string())
            .env("BENCH_ORDER_JSON", &json)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn http-server");
        while get(http, "/readyz").map(|r| r.0) != Some(200) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(get(http, "/order").map(|r| r.1), Some(json), "the floor serves the same JSON");
        bare.push(wrk(&format!("http://{http}/order"), seconds, false));
        sigterm_and_wait(&mut floor);
    }
    let ratios: Vec<f64> = app_rps.iter().zip(&bare).map(|(a, b)| 100.0 * a / b).collect();
    println!(
        "bare actix, JSON from memory {:>9.0} req/s   samples {:?}",
        median(bare.clone()),
        bare.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!(
        "example-app, cache hit       {:>9.0} req/s   samples {:?}",
        median(app_rps.clone()),
        app_rps.iter().map(|v| v.round()).collect::<Vec<_>>()
    );
    println!(
        "example-app / bare: median of per-round ratios {:.1}%   rounds: {:?}\n",
        median(ratios.clone()),
        ratios.iter().map(|r| format!("{r:.1}%")).collect::<Vec<_>>()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let option = |name: &str, default: u64| orderly_benches::process::option(&args, name, default);
    let (runs, duration, rounds) =
        (option("--runs", 15) as usize, option("--duration", 5), option("--rounds", 3) as usize);
    let tokio = tokio::runtime::Runtime::new().expect("tokio");
    let db = tokio.block_on(DevDatabase::start()).expect("a throwaway postgres");
    let url = db.url();
    // Migrate once, so that every measured start finds the schema in place.
    let mut warm = spawn_app(&url, 2);
    wait_ready(warm.admin);
    sigterm_and_wait(&mut warm.child);
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    println!("# example-app at {commit}, against a throwaway Postgres on 127.0.0.1:{}\n", db.port());
    if args.iter().any(|a| a == "restart") {
        graph_restart(&url, runs);
        tokio.block_on(db.stop()).expect("stop postgres");
        return;
    }
    start_and_stop(&url, runs);
    stop_under_load(&url, runs.min(5));
    throughput(&url, duration, rounds);
    tokio.block_on(db.stop()).expect("stop postgres");
}

/// Time from the first stop to the reload's end (every member ready again),
/// read from the app's own timeline, for `runs` reloads that restart the
/// graph from `database`.
fn graph_restart(url: &str, runs: usize) {
    println!("## Restart of the graph from `database` (database, workers, orders), {runs} SIGHUPs");
    let file = std::env::temp_dir().join(format!("app-harness-restart-{}.toml", std::process::id()));
    let config = |timeout: u64| format!("[database]\nurl = \"{url}\"\nconnect_timeout = \"{timeout}s\"\n");
    std::fs::write(&file, config(5)).expect("writing the config");
    let (http, admin) = (free_port(), free_port());
    let mut child = Command::new(sibling("example-app"))
        .env_clear()
        .env("APP__HTTP__BIND", format!("127.0.0.1:{http}"))
        .env("APP__ADMIN__BIND", format!("127.0.0.1:{admin}"))
        .env("APP__ADMIN__DEBUG", "true")
        .env("APP__API__KEY", KEY)
        .args(["--config", &file.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn example-app");
    let admin: SocketAddr = format!("127.0.0.1:{admin}").parse().unwrap();
    wait_ready(admin);
    let (mut cycle, mut wall) = (Vec::new(), Vec::new());
    for run in 1..=runs {
        std::fs::write(&file, config(5 + run as u64)).expect("writing the config");
        let signalled = Instant::now();
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
        let events = loop {
            let timeline = get(admin, "/debug/lifecycle")
                .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok());
            let events = timeline.and_then(|t| t["timeline"].as_array().cloned()).unwrap_or_default();
            if events.iter().filter(|e| e["event"] == "reloaded").count() == run {
                break events;
            }
            assert!(signalled.elapsed() < Duration::from_secs(30), "the reload did not finish");
            std::thread::sleep(Duration::from_millis(2));
        };
        wall.push(signalled.elapsed().as_secs_f64() * 1e3);
        let reloaded = events.iter().rposition(|e| e["event"] == "reloaded").expect("reloaded");
        let previous = events[..reloaded].iter().rposition(|e| e["event"] == "reloaded").map_or(0, |p| p + 1);
        let first_stop = events[previous..reloaded]
            .iter()
            .filter(|e| e["event"] == "stopping")
            .map(|e| e["at"].as_f64().unwrap_or_default())
            .fold(f64::INFINITY, f64::min);
        let done = events[reloaded]["at"].as_f64().unwrap_or_default();
        cycle.push((done - first_stop) * 1e3);
    }
    orderly_benches::process::sigterm_and_wait(&mut child);
    let _ = std::fs::remove_file(&file);
    let shown: Vec<String> = cycle.iter().map(|c| format!("{c:.1}")).collect();
    println!(
        "first stop -> every member ready: median {:.1} ms   (SIGHUP -> reload done: median {:.1} ms)   runs: {}",
        median(cycle.clone()),
        median(wall),
        shown.join(" ")
    );
}
