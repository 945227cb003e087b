//! Process-level HTTP benches: throughput through the full middleware
//! stack against bare actix-web (with `wrk`), the time from SIGTERM to
//! exit (idle and with requests in flight), and the time from exec to a
//! ready answer with the idle RSS.
//!
//! `cargo build --release -p orderly-benches --bins && target/release/http-harness`
//! Options: `--duration SECS` (wrk, default 5), `--rounds N` (default 3),
//! `--runs N` (start/stop samples, default 20), `--only start|stop|throughput`,
//! `--path P` (what wrk requests, default `/hello`; `/hello/{name}` has a parameter).
//! `--only rate-limit` compares the orderly server with and without a
//! per-client rate limit on every path (a limit no request reaches, so
//! each request pays the check and none is refused); `--only profiler`
//! compares `http-server` with `http-server-plain`, a copy built without
//! the `profiling` feature (benches/profiler-idle-cost.sh builds both).
//! `--only reload` measures the request rate in the second before and the
//! second after a SIGHUP that changes `[http]` live (the request timeout
//! and concurrency cap) and one that makes a new server take over the
//! socket (`keep_alive`), with keep-alive clients.
//! Needs `wrk` on PATH.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use orderly_benches::process::{free_port, median, rss_kib, sigterm};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Bare,
    Orderly,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Bare => "bare",
            Mode::Orderly => "orderly",
        }
    }
}

struct Server {
    child: Child,
    http: SocketAddr,
    ready: SocketAddr,
}

fn server_binary() -> PathBuf {
    let me = std::env::current_exe().expect("own path");
    me.with_file_name("http-server")
}

fn spawn(mode: Mode, workers: usize, extra_env: &[(&str, String)]) -> Server {
    spawn_binary(&server_binary(), mode, workers, extra_env)
}

fn spawn_binary(binary: &std::path::Path, mode: Mode, workers: usize, extra_env: &[(&str, String)]) -> Server {
    let http: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let admin: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let mut command = Command::new(binary);
    command
        .arg(mode.name())
        .env("BENCH_WORKERS", workers.to_string())
        .env("BENCH_HTTP_BIND", http.to_string())
        .env("APP__ADMIN__BIND", admin.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let child = command.spawn().expect("spawn http-server");
    let ready = if mode == Mode::Bare { http } else { admin };
    Server { child, http, ready }
}

/// One request on a fresh connection; the status line's code, or None.
fn get(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.get(9..12)?.parse().ok()
}

fn wait_ready(server: &Server) -> Duration {
    let started = Instant::now();
    while get(server.ready, "/readyz") != Some(200) {
        assert!(started.elapsed() < Duration::from_secs(10), "server never became ready");
        std::thread::yield_now();
    }
    started.elapsed()
}

fn wrk(addr: SocketAddr, seconds: u64, path: &str) -> f64 {
    let output = Command::new("timeout")
        .args([
            &(seconds + 20).to_string(),
            "wrk",
            "-t1",
            "-c32",
            &format!("-d{seconds}s"),
            &format!("http://{addr}{path}"),
        ])
        .output()
        .expect("wrk (apt-get install wrk)");
    let text = String::from_utf8_lossy(&output.stdout);
    let non_2xx = text.lines().find(|l| l.contains("Non-2xx")).map(str::to_owned);
    assert!(non_2xx.is_none(), "errors under load: {non_2xx:?}\n{text}");
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Requests/sec in wrk output:\n{text}"))
}

fn stop(mut server: Server) -> Duration {
    orderly_benches::process::sigterm_and_wait(&mut server.child).0
}

fn throughput(seconds: u64, rounds: usize, path: &str) {
    println!("## Throughput: GET {path}, wrk -t1 -c32 -d{seconds}s, 1 server worker, {rounds} interleaved rounds");
    // Interleaved (bare, orderly, bare, …) so drift on a shared machine
    // hits both alike; each round's ratio is reported as well as the medians.
    let mut samples = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (i, mode) in [Mode::Bare, Mode::Orderly].into_iter().enumerate() {
            let server = spawn(mode, 1, &[]);
            wait_ready(&server);
            samples[i].push(wrk(server.http, seconds, path));
            stop(server);
        }
    }
    for (i, mode) in [Mode::Bare, Mode::Orderly].into_iter().enumerate() {
        let rounded: Vec<f64> = samples[i].iter().map(|s| s.round()).collect();
        println!("{:8} {:>10.0} req/s   samples: {rounded:?}", mode.name(), median(samples[i].clone()));
    }
    let ratios: Vec<f64> = samples[0].iter().zip(&samples[1]).map(|(b, o)| 100.0 * o / b).collect();
    let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.1}%")).collect();
    println!(
        "orderly / bare: median of per-round ratios {:.1}%   rounds: {}\n",
        median(ratios.clone()),
        shown.join(" ")
    );
}

/// Two variants of the orderly server, interleaved round by round (A, B,
/// A, B, …) so drift on a shared machine hits both alike.
struct Variant {
    name: &'static str,
    binary: PathBuf,
    env: Vec<(&'static str, String)>,
}

fn compare(title: &str, variants: [Variant; 2], seconds: u64, rounds: usize, path: &str) {
    println!("## {title}: GET {path}, wrk -t1 -c32 -d{seconds}s, 1 server worker, {rounds} interleaved rounds");
    let mut samples = [Vec::new(), Vec::new()];
    for _ in 0..rounds {
        for (i, variant) in variants.iter().enumerate() {
            let server = spawn_binary(&variant.binary, Mode::Orderly, 1, &variant.env);
            wait_ready(&server);
            samples[i].push(wrk(server.http, seconds, path));
            stop(server);
        }
    }
    for (i, variant) in variants.iter().enumerate() {
        let rounded: Vec<f64> = samples[i].iter().map(|s| s.round()).collect();
        println!("{:28} {:>10.0} req/s   samples: {rounded:?}", variant.name, median(samples[i].clone()));
    }
    let ratios: Vec<f64> = samples[0].iter().zip(&samples[1]).map(|(a, b)| b / a).collect();
    let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
    println!(
        "{} / {}: median of per-round ratios {:.3}   rounds: {}\n",
        variants[1].name,
        variants[0].name,
        median(ratios.clone()),
        shown.join(" ")
    );
}

/// Every path in one rate-limit group whose limit no request reaches.
fn rate_limit_variants() -> [Variant; 2] {
    let unlimited = Variant { name: "no rate limit", binary: server_binary(), env: Vec::new() };
    let limited = Variant {
        name: "rate limit checked",
        binary: server_binary(),
        env: vec![
            ("APP__HTTP__RATE_LIMIT__GROUPS__ALL__PREFIX", "/".into()),
            ("APP__HTTP__RATE_LIMIT__GROUPS__ALL__REQUESTS", "1000000000".into()),
            ("APP__HTTP__RATE_LIMIT__GROUPS__ALL__BURST", "4000000000".into()),
        ],
    };
    [unlimited, limited]
}

fn profiler_variants() -> [Variant; 2] {
    let plain = server_binary().with_file_name("http-server-plain");
    assert!(plain.exists(), "{} is missing: run benches/profiler-idle-cost.sh", plain.display());
    [
        Variant { name: "without profiling", binary: plain, env: Vec::new() },
        Variant { name: "profiler compiled in, idle", binary: server_binary(), env: Vec::new() },
    ]
}

fn start_and_idle_stop(runs: usize) {
    println!("## Exec to ready, idle RSS, SIGTERM to exit when idle: median of {runs} runs (2 workers)");
    for mode in [Mode::Bare, Mode::Orderly] {
        let (mut ready, mut rss, mut exit) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..runs {
            let server = spawn(mode, 2, &[]);
            ready.push(wait_ready(&server).as_secs_f64() * 1e3);
            std::thread::sleep(Duration::from_millis(200));
            rss.push(rss_kib(&server.child) as f64 / 1024.0);
            exit.push(stop(server).as_secs_f64() * 1e3);
        }
        println!(
            "{:8} exec->ready {:6.2} ms   idle RSS {:5.2} MiB   SIGTERM->exit {:7.2} ms",
            mode.name(),
            median(ready),
            median(rss),
            median(exit)
        );
    }
    println!();
}

fn in_flight_stop(runs: usize) {
    println!("## SIGTERM to exit with 8 requests of 200 ms in flight: median of {runs} runs (2 workers)");
    for mode in [Mode::Bare, Mode::Orderly] {
        let (mut total, mut after_last, mut failed) = (Vec::new(), Vec::new(), 0);
        for _ in 0..runs {
            let server = spawn(mode, 2, &[]);
            wait_ready(&server);
            let addr = server.http;
            let requests: Vec<_> = (0..8)
                .map(|_| {
                    std::thread::spawn(move || {
                        let status = get(addr, "/sleep?ms=200");
                        (status, Instant::now())
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(50));
            let mut server = server;
            let signalled = Instant::now();
            sigterm(&server.child);
            server.child.wait().expect("wait");
            let exited = Instant::now();
            let mut last = signalled;
            for request in requests {
                let (status, at) = request.join().expect("client thread");
                if status != Some(200) {
                    failed += 1;
                }
                last = last.max(at);
            }
            total.push((exited - signalled).as_secs_f64() * 1e3);
            after_last.push(exited.saturating_duration_since(last).as_secs_f64() * 1e3);
        }
        println!(
            "{:8} SIGTERM->exit {:7.2} ms   last response->exit {:7.2} ms   failed requests: {failed}",
            mode.name(),
            median(total),
            median(after_last)
        );
    }
    println!();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let option = |name: &str, default: u64| orderly_benches::process::option(&args, name, default);
    let (duration, rounds, runs) =
        (option("--duration", 5), option("--rounds", 3) as usize, option("--runs", 20) as usize);
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).map(String::as_str);
    if only.is_none_or(|o| o == "start") {
        start_and_idle_stop(runs);
    }
    if only.is_none_or(|o| o == "stop") {
        in_flight_stop(runs.min(10));
    }
    if only.is_none_or(|o| o == "throughput") {
        let path = args.iter().position(|a| a == "--path").and_then(|i| args.get(i + 1));
        throughput(duration, rounds, path.map_or("/hello", String::as_str));
    }
    let path = args.iter().position(|a| a == "--path").and_then(|i| args.get(i + 1));
    let path = path.map_or("/hello", String::as_str);
    if only == Some("rate-limit") {
        compare("Cost of a per-client rate limit", rate_limit_variants(), duration, rounds, path);
    }
    if only == Some("reload") {
        reload_rate(rounds);
    }
    if only == Some("profiler") {
        compare("Cost of the profiler, compiled in and idle", profiler_variants(), duration, rounds, path);
    }
}

/// The rate in the second after a SIGHUP against the second before, for a
/// reload applied live and for one that hands over to a new server.
fn reload_rate(rounds: usize) {
    println!("## Request rate around a SIGHUP: 4 keep-alive clients on GET /hello, 1 server worker, {rounds} rounds");
    let base = "[http]\nrequest_timeout = \"30s\"\nmax_concurrent_requests = 1024\nkeep_alive = \"5s\"\n";
    let cases = [
        ("live (request_timeout, max_concurrent_requests)", base.replace("30s", "20s").replace("1024", "2048")),
        ("hand-over (keep_alive: a new server takes the socket)", base.replace("\"5s\"", "\"6s\"")),
    ];
    for (what, changed) in cases {
        let mut ratios = Vec::new();
        let mut errors = 0;
        for _ in 0..rounds {
            let file = std::env::temp_dir().join(format!("http-harness-reload-{}.toml", std::process::id()));
            std::fs::write(&file, base).expect("writing the bench config");
            let server = spawn(Mode::Orderly, 1, &[("BENCH_CONFIG", file.display().to_string())]);
            wait_ready(&server);
            let (addr, pid, changed) = (server.http, server.child.id() as i32, changed.clone());
            let signal = std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2000));
                std::fs::write(&file, changed).expect("writing the new config");
                let at = Instant::now();
                // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
                unsafe { libc::kill(pid, libc::SIGHUP) };
                (at, file)
            });
            let counts = orderly_benches::keep_alive::run(addr, "/hello", 4, Duration::from_millis(4000));
            let (at, file) = signal.join().expect("the signal thread");
            let at = at.duration_since(counts.began);
            let before = counts.between(at - Duration::from_secs(1), at);
            let after = counts.between(at, at + Duration::from_secs(1));
            ratios.push(after as f64 / before as f64);
            errors += counts.errors.load(std::sync::atomic::Ordering::Relaxed);
            stop(server);
            let _ = std::fs::remove_file(file);
        }
        let shown: Vec<String> = ratios.iter().map(|r| format!("{r:.3}")).collect();
        println!(
            "{what}: after / before, median {:.3}, worst {:.3}   rounds: {}   errors: {errors}",
            median(ratios.clone()),
            ratios.iter().copied().fold(f64::INFINITY, f64::min),
            shown.join(" ")
        );
    }
    println!();
}
