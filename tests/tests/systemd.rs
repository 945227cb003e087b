//! systemd's notify protocol, as systemd sees it: a test listens on a unix
//! datagram socket given to a real child process as `NOTIFY_SOCKET` and
//! checks what arrives, in order: `STATUS` while starting, `READY=1`,
//! watchdog pings, then `STOPPING=1` and a `STATUS` with an
//! `EXTEND_TIMEOUT_USEC` per phase; on SIGHUP `RELOADING=1` with
//! `MONOTONIC_USEC`, then `READY=1`. A process whose runtime is wedged
//! stops pinging.

use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Every notification received, one entry per `KEY=value` line, in order.
#[derive(Clone, Default)]
struct Received(Arc<Mutex<Vec<String>>>);

impl Received {
    fn all(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn count(&self, line: &str) -> usize {
        self.all().iter().filter(|l| *l == line).count()
    }

    fn wait_for(&self, line: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.all().iter().any(|l| l == line) {
            assert!(Instant::now() < deadline, "no `{line}` in {:?}", self.all());
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

struct Systemd {
    dir: PathBuf,
    received: Received,
}

impl Systemd {
    fn listen() -> Systemd {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("orderly-systemd-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = UnixDatagram::bind(dir.join("notify")).unwrap();
        let received = Received::default();
        let sink = received.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buffer) {
                let text = String::from_utf8_lossy(&buffer[..n]).into_owned();
                sink.0.lock().unwrap().extend(text.lines().map(str::to_owned));
            }
        });
        Systemd { dir, received }
    }

    fn spawn(&self, env: &[(&str, &str)]) -> Child {
        Command::new(env!("CARGO_BIN_EXE_lifecycle-child"))
            .env_clear()
            .current_dir(&self.dir)
            .env("NOTIFY_SOCKET", self.dir.join("notify"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `lifecycle-child` in `dir` told to notify `socket`, with `env`.
fn notified_child(dir: &std::path::Path, socket: &std::ffi::OsStr, env: &[(&str, &str)], stdout: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_lifecycle-child"))
        .env_clear()
        .current_dir(dir)
        .env("NOTIFY_SOCKET", socket)
        .envs(env.iter().copied())
        .stdout(stdout)
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, signal: i32) {
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
}

fn wait(child: &mut Child) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        assert!(Instant::now() < deadline, "the child did not exit");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn position(lines: &[String], wanted: impl Fn(&str) -> bool, what: &str) -> usize {
    lines.iter().position(|l| wanted(l)).unwrap_or_else(|| panic!("no {what} in {lines:?}"))
}

#[test]
fn tells_systemd_ready_status_stopping_and_pings_the_watchdog_in_order() {
    let systemd = Systemd::listen();
    let mut child = systemd.spawn(&[("WATCHDOG_USEC", "100000")]);
    systemd.received.wait_for("READY=1");
    let deadline = Instant::now() + Duration::from_secs(20);
    while systemd.received.count("WATCHDOG=1") < 3 {
        assert!(Instant::now() < deadline, "the watchdog is not pinged: {:?}", systemd.received.all());
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, libc::SIGTERM);
    assert_eq!(wait(&mut child), 0);

    let lines = systemd.received.all();
    let starting = position(&lines, |l| l == "STATUS=starting store", "STATUS while starting");
    let ready = position(&lines, |l| l == "READY=1", "READY=1");
    let running = position(&lines, |l| l == "STATUS=running", "STATUS=running");
    let first_ping = position(&lines, |l| l == "WATCHDOG=1", "a watchdog ping");
    let stopping = position(&lines, |l| l == "STOPPING=1", "STOPPING=1");
    assert!(starting < ready && ready < running && running < stopping, "{lines:?}");
    assert!(first_ping < stopping, "pings while running: {lines:?}");
    assert!(lines[stopping + 1].starts_with("STATUS=stopping: "), "{lines:?}");
    let mut after = stopping;
    for (n, phase) in ["stop_accepting", "drain", "stop_workers", "flush", "close"].iter().enumerate() {
        let status = format!("STATUS=phase {} {phase}", n + 1);
        let at = position(&lines, |l| l == status, &status);
        assert!(at > after, "phase {} out of order: {lines:?}", n + 1);
        assert!(lines[at + 1].starts_with("EXTEND_TIMEOUT_USEC="), "{lines:?}");
        after = at;
    }
    // The drain's budget (15 s by default) plus a second of margin.
    let drain = position(&lines, |l| l == "STATUS=phase 2 drain", "drain");
    assert_eq!(lines[drain + 1], "EXTEND_TIMEOUT_USEC=16000000");
}

#[test]
fn a_wedged_runtime_stops_pinging_the_watchdog() {
    let systemd = Systemd::listen();
    let mut child = systemd.spawn(&[("WATCHDOG_USEC", "100000"), ("APP__COMPONENTS__WEDGE__ENABLED", "true")]);
    systemd.received.wait_for("READY=1");
    let deadline = Instant::now() + Duration::from_secs(20);
    while systemd.received.count("WATCHDOG=1") < 2 {
        assert!(Instant::now() < deadline, "the watchdog is not pinged: {:?}", systemd.received.all());
        std::thread::sleep(Duration::from_millis(10));
    }
    // The wedge blocks every runtime thread 300 ms after the start. Give it
    // time to, then watch ten ping intervals pass without a ping.
    std::thread::sleep(Duration::from_millis(600));
    let before = systemd.received.count("WATCHDOG=1");
    std::thread::sleep(Duration::from_millis(500));
    let after = systemd.received.count("WATCHDOG=1");
    signal(&child, libc::SIGKILL);
    let _ = wait(&mut child);
    assert_eq!(before, after, "a wedged runtime kept pinging");
}

/// Watchdog pings in the `window` after the `stuck` component (on) has had
/// time to get stuck, with `[systemd] watchdog` as given.
fn pings_once_stuck(gate: &str) -> usize {
    let systemd = Systemd::listen();
    let mut child = systemd.spawn(&[
        ("WATCHDOG_USEC", "100000"),
        ("APP__COMPONENTS__STUCK__ENABLED", "true"),
        ("APP__SYSTEMD__WATCHDOG", gate),
    ]);
    systemd.received.wait_for("READY=1");
    std::thread::sleep(Duration::from_millis(600));
    let before = systemd.received.count("WATCHDOG=1");
    std::thread::sleep(Duration::from_millis(500));
    let after = systemd.received.count("WATCHDOG=1");
    signal(&child, libc::SIGTERM);
    assert_eq!(wait(&mut child), 0, "{:?}", systemd.received.all());
    if gate == "liveness" {
        assert!(systemd.received.all().iter().any(|l| l == "STATUS=not alive"), "{:?}", systemd.received.all());
    }
    after - before
}

#[test]
fn a_health_gated_watchdog_stops_pinging_once_a_component_is_not_alive() {
    assert_eq!(pings_once_stuck("liveness"), 0, "a dead component, and the watchdog still pinged");
    // Opt-in: by default the pings go on while the runtime runs.
    assert!(pings_once_stuck("always") >= 3, "the default gate pings while the runtime runs");
}

#[test]
fn a_notify_socket_nobody_listens_on_never_affects_the_service() {
    // Every send fails (no such socket): the app still starts, runs the
    // whole shutdown and exits 0. Best effort means exactly that.
    let dir = std::env::temp_dir().join(format!("orderly-systemd-gone-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut child = notified_child(
        &dir,
        dir.join("nobody-listens-here").as_os_str(),
        &[("WATCHDOG_USEC", "50000")],
        Stdio::piped(),
    );
    let stdout = child.stdout.take().unwrap();
    let lines = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(stdout).lines().map_while(Result::ok).collect::<Vec<_>>()
    });
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGTERM);
    assert_eq!(wait(&mut child), 0);
    let lines = lines.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(lines.iter().any(|l| l.contains("\"event\":\"shutdown_finished\"") && l.contains("clean")), "{lines:?}");
}

/// Changes the log level on disk, sends SIGHUP, waits for the second
/// `READY=1` (the reload's), then stops the child; it must exit 0.
fn reload_then_stop(systemd: &Systemd, child: &mut Child) {
    std::fs::create_dir_all(systemd.dir.join("config")).unwrap();
    std::fs::write(systemd.dir.join("config/default.toml"), "[log]\nlevel = \"debug\"\n").unwrap();
    signal(child, libc::SIGHUP);
    let deadline = Instant::now() + Duration::from_secs(20);
    while systemd.received.count("READY=1") < 2 {
        assert!(Instant::now() < deadline, "no READY=1 after the reload: {:?}", systemd.received.all());
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(child, libc::SIGTERM);
    assert_eq!(wait(child), 0);
}

#[test]
fn a_reload_tells_systemd_reloading_with_its_monotonic_time_then_ready() {
    let systemd = Systemd::listen();
    let mut child = systemd.spawn(&[]);
    systemd.received.wait_for("READY=1");
    reload_then_stop(&systemd, &mut child);

    let lines = systemd.received.all();
    let first_ready = position(&lines, |l| l == "READY=1", "READY=1");
    let reloading = position(&lines, |l| l == "RELOADING=1", "RELOADING=1");
    let monotonic = position(&lines, |l| l.starts_with("MONOTONIC_USEC="), "MONOTONIC_USEC");
    let ready_again = reloading + position(&lines[reloading..], |l| l == "READY=1", "READY=1 again");
    assert!(first_ready < reloading && reloading < monotonic && monotonic < ready_again, "{lines:?}");
    let usec: u64 = lines[monotonic]["MONOTONIC_USEC=".len()..].parse().expect("a number");
    assert!(usec > 0);
}

#[test]
fn a_notify_socket_whose_reader_is_stuck_never_blocks_the_service() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("orderly-systemd-stuck-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // Bound, never read: once its queue is full, a blocking send would wait forever.
    let _stuck = UnixDatagram::bind(dir.join("notify")).unwrap();
    // A ping every millisecond fills the queue within a second.
    let mut child = notified_child(&dir, dir.join("notify").as_os_str(), &[("WATCHDOG_USEC", "2000")], Stdio::null());
    std::thread::sleep(Duration::from_millis(1500));
    signal(&child, libc::SIGTERM);
    let code = wait(&mut child);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(code, 0, "a full notify queue must not hold the service (124: its own watchdog ended it)");
}

#[test]
fn an_abstract_notify_socket_receives_ready() {
    use std::os::linux::net::SocketAddrExt;
    let name = format!("orderly-test-{}-{}", std::process::id(), fastrand_name());
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&address).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let abstract_name = format!("@{name}");
    let mut child = notified_child(&std::env::temp_dir(), abstract_name.as_ref(), &[], Stdio::null());
    let mut lines = Vec::new();
    let mut buffer = [0u8; 4096];
    while !lines.iter().any(|l| l == "READY=1") {
        let n = socket.recv(&mut buffer).unwrap_or_else(|e| panic!("no READY=1 ({e}); got {lines:?}"));
        lines.extend(String::from_utf8_lossy(&buffer[..n]).lines().map(str::to_owned));
    }
    signal(&child, libc::SIGTERM);
    assert_eq!(wait(&mut child), 0);
}

fn fastrand_name() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

#[test]
fn status_is_one_line_and_never_carries_error_text() {
    let systemd = Systemd::listen();
    let mut child = systemd.spawn(&[("APP__COMPONENTS__GARBLER__ENABLED", "true")]);
    assert_eq!(wait(&mut child), 4, "the garbler's failure shuts the app down");
    systemd.received.wait_for("STOPPING=1");
    let lines = systemd.received.all();
    for line in &lines {
        assert!(line.contains('='), "a line that is no KEY=value: {line:?} in {lines:?}");
        assert!(!line.starts_with("WATCHDOG=trigger") && line != "STATUS=owned", "injected: {lines:?}");
        assert!(!line.contains("hunter2"), "error text reached STATUS: {lines:?}");
    }
    assert!(lines.iter().any(|l| l.starts_with("STATUS=stopping: component `garbler` failed")), "{lines:?}");
}

#[test]
fn a_sighup_during_startup_is_applied_once_ready_and_ready_is_never_told_early() {
    let systemd = Systemd::listen();
    let mut child = systemd.spawn(&[("APP__API__START_MS", "400")]);
    systemd.received.wait_for("STATUS=starting api");
    reload_then_stop(&systemd, &mut child);

    let lines = systemd.received.all();
    let starting_api = position(&lines, |l| l == "STATUS=starting api", "api starting");
    let first_ready = position(&lines, |l| l == "READY=1", "READY=1");
    let reloading = position(&lines, |l| l == "RELOADING=1", "RELOADING=1");
    let ready_again = reloading + position(&lines[reloading..], |l| l == "READY=1", "READY=1 again");
    assert!(starting_api < first_ready && first_ready < reloading && reloading < ready_again, "{lines:?}");
}
