//! What the process-level harnesses (`http-harness`, `app-harness`) share:
//! ports, signals, memory readings and medians of child processes.

use std::net::TcpListener;
use std::process::Child;
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Sends SIGTERM to `child`.
pub fn sigterm(child: &Child) {
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
}

/// Sends SIGTERM and waits for the exit; the time it took and whether the exit was 0.
pub fn sigterm_and_wait(child: &mut Child) -> (Duration, bool) {
    let signalled = Instant::now();
    sigterm(child);
    let status = child.wait().expect("wait for the child");
    (signalled.elapsed(), status.success())
}

/// The resident set of `child`, in KiB (`VmRSS`).
pub fn rss_kib(child: &Child) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The median (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

/// The number after `--name` on the command line, or `default`.
pub fn option(args: &[String], name: &str, default: u64) -> u64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}
