//! The lifecycle of a real process: signals, exit codes, the watchdog,
//! log flushing and the command line, observed from outside.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A running `lifecycle-child` whose stdout is collected line by line.
struct App {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    dir: PathBuf,
}

fn scratch_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("orderly-process-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn command(dir: &PathBuf, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lifecycle-child"));
    // A clean environment and working directory: no stray APP__* or config/.
    cmd.env_clear().current_dir(dir).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

impl App {
    fn spawn(env: &[(&str, &str)], args: &[&str]) -> App {
        let dir = scratch_dir();
        let mut child = command(&dir, env, args).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let lines = stdout.clone();
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        let text = stderr.clone();
        let err_reader = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = BufReader::new(err).read_to_string(&mut s);
            text.lock().unwrap().push_str(&s);
        });
        App { child, stdout, stderr, readers: vec![out_reader, err_reader], dir }
    }

    /// Waits until a stdout line contains every one of `parts`.
    fn wait_for(&self, parts: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.stdout.lock().unwrap().iter().any(|l| parts.iter().all(|p| l.contains(p))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("no line with {parts:?} in:\n{}", self.stdout.lock().unwrap().join("\n"));
    }

    fn wait_until_ready(&self) {
        self.wait_for(&["\"event\":\"ready\"", "\"component\":\"api\""]);
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
    }

    /// Waits for the exit (bounded) and returns its code, stdout lines and stderr.
    fn exit(mut self, within: Duration) -> (i32, Vec<String>, String) {
        let deadline = Instant::now() + within;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the process did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        // The pipes close with the process; the readers then have everything.
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let lines = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (status.code().unwrap_or(-1), lines, err)
    }
}

fn marks(lines: &[String]) -> Vec<&str> {
    lines.iter().filter_map(|l| l.strip_prefix("MARK ")).collect()
}

fn events(lines: &[String]) -> Vec<serde_json::Value> {
    lines.iter().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()).collect()
}

fn run(env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let dir = scratch_dir();
    let out = command(&dir, env, args).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn sigterm_runs_the_five_phases_in_order_and_every_log_line_reaches_stdout() {
    let app = App::spawn(&[], &[]);
    app.wait_until_ready();
    app.signal(libc::SIGTERM);
    let (code, lines, stderr) = app.exit(Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(marks(&lines), vec!["api stop_accepting", "api drain", "store flush", "store close"]);
    // Log records and other writes to stdout never split each other's lines.
    for line in &lines {
        assert!(
            line.starts_with("MARK ") || serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "torn line: {line}"
        );
    }

    let events = events(&lines);
    let phases: Vec<&str> =
        events.iter().filter(|e| e["event"] == "phase_started").filter_map(|e| e["phase"].as_str()).collect();
    assert_eq!(phases, vec!["stop_accepting", "drain", "stop_workers", "flush", "close"]);
    assert_eq!(events.iter().find(|e| e["event"] == "shutdown_requested").unwrap()["detail"], "received SIGTERM");
    // A record logged inside phase 4 and the very last lifecycle event were flushed before exit.
    assert!(events.iter().any(|e| e["msg"] == "store flushed" && e["component"] == "store" && e["phase"] == "flush"));
    assert_eq!(events.last().unwrap()["event"], "shutdown_finished", "the log drain was flushed");
}

#[test]
fn sigint_shuts_down_gracefully_too() {
    let app = App::spawn(&[], &[]);
    app.wait_until_ready();
    app.signal(libc::SIGINT);
    let (code, lines, _) = app.exit(Duration::from_secs(20));
    assert_eq!(code, 0);
    assert_eq!(marks(&lines).last(), Some(&"store close"));
}

#[test]
fn a_second_signal_forces_an_immediate_exit() {
    let app = App::spawn(&[("APP__COMPONENTS__HANGER__ENABLED", "true")], &[]);
    app.wait_until_ready();
    app.signal(libc::SIGTERM);
    app.wait_for(&["MARK hanger drain-begin"]);
    app.signal(libc::SIGTERM);
    // The drain budget is 15 s; the forced exit must not wait for it.
    let (code, _, stderr) = app.exit(Duration::from_secs(5));
    assert_eq!(code, 130, "{stderr}");
    assert!(stderr.contains("exiting immediately"), "{stderr}");
}

#[test]
fn a_stray_blocking_thread_does_not_hold_the_process() {
    let app = App::spawn(&[("APP__COMPONENTS__STRAY__ENABLED", "true")], &[]);
    app.wait_until_ready();
    app.signal(libc::SIGTERM);
    let (code, _, stderr) = app.exit(Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_hung_hook_is_abandoned_and_named_and_the_exit_code_says_unclean() {
    let app =
        App::spawn(&[("APP__COMPONENTS__HANGER__ENABLED", "true")], &["--set", "components.hanger.stop_cap=200ms"]);
    app.wait_until_ready();
    app.signal(libc::SIGTERM);
    let (code, lines, stderr) = app.exit(Duration::from_secs(20));
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("component `hanger` timed_out in phase 2 (drain): abandoned: ran past its cap of 200ms"),
        "{stderr}"
    );
    assert_eq!(marks(&lines).last(), Some(&"store close"), "later phases still ran");
}

#[test]
fn the_watchdog_ends_a_shutdown_stuck_in_a_blocked_thread() {
    // Phase budgets of 300 ms under a 2 s deadline: the blocked flush can
    // only be ended by the watchdog, 1 s past the deadline.
    let mut args = vec!["--set", "shutdown.deadline=2s"];
    for budget in [
        "shutdown.phases.stop_accepting=300ms",
        "shutdown.phases.drain=300ms",
        "shutdown.phases.stop_workers=300ms",
        "shutdown.phases.flush=300ms",
        "shutdown.phases.close=300ms",
    ] {
        args.extend(["--set", budget]);
    }
    let app = App::spawn(&[("APP__COMPONENTS__BLOCKER__ENABLED", "true")], &args);
    app.wait_until_ready();
    app.signal(libc::SIGTERM);
    app.wait_for(&["MARK blocker flush-begin"]);
    let (code, _, stderr) = app.exit(Duration::from_secs(15));
    assert_eq!(code, 124, "{stderr}");
    assert!(stderr.contains("overran its deadline"), "{stderr}");
}

#[test]
fn a_failed_start_exits_1_with_the_root_cause_after_rolling_back() {
    let app = App::spawn(&[("APP__COMPONENTS__BROKEN__ENABLED", "true")], &[]);
    let (code, lines, stderr) = app.exit(Duration::from_secs(20));
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("start failed: component `broken` failed in phase start: cannot reach the payment gateway"),
        "{stderr}"
    );
    assert!(marks(&lines).contains(&"store close"), "the started dependency was rolled back");
    let events = events(&lines);
    assert!(events.iter().any(|e| e["event"] == "rolled_back" && e["component"] == "store"));
}

#[test]
fn a_signal_during_start_rolls_back_what_started_and_exits_0() {
    // `api` takes 3 s to start: the signal arrives while it starts, after `store` is ready.
    let app = App::spawn(&[("APP__API__START_MS", "3000")], &[]);
    app.wait_for(&["\"event\":\"starting\"", "\"component\":\"api\""]);
    app.signal(libc::SIGTERM);
    let (code, lines, stderr) = app.exit(Duration::from_secs(20));
    // The stop was asked for and went cleanly: the same code as any requested stop.
    assert_eq!(code, 0, "{stderr}");
    assert!(marks(&lines).contains(&"store close"), "the started dependency was stopped");
    let events = events(&lines);
    assert!(events.iter().any(|e| e["event"] == "cancelled" && e["component"] == "api"), "{events:#?}");
}

#[test]
fn a_component_failing_while_running_shuts_down_and_exits_4() {
    let app = App::spawn(&[("APP__COMPONENTS__CRASHER__ENABLED", "true")], &[]);
    let (code, lines, stderr) = app.exit(Duration::from_secs(20));
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("component `crasher` failed: lost the lease on the work queue"), "{stderr}");
    assert_eq!(marks(&lines).last(), Some(&"store close"), "the shutdown ran in full");
}

#[test]
fn invalid_config_exits_78_listing_every_problem() {
    let (code, _, stderr) = run(
        &[("APP__API__DRAIN_MS", "soon"), ("APP__SHUTDOWN__DEADLINE", "1s")],
        &["--set", "api.colour=blue", "--set", "shutdwn.deadline=3s", "--check"],
    );
    assert_eq!(code, 78, "{stderr}");
    for expected in ["api.colour", "api.drain_ms", "shutdwn: unknown section", "must fit in deadline (1s)"] {
        assert!(stderr.contains(expected), "missing {expected:?} in:\n{stderr}");
    }
    assert!(stderr.contains("(4 problems)"), "{stderr}");
}

#[test]
fn a_dependency_on_a_disabled_component_exits_65_before_anything_starts() {
    let (code, stdout, stderr) = run(&[("APP__COMPONENTS__STORE__ENABLED", "false")], &[]);
    assert_eq!(code, 65, "{stderr}");
    assert!(stderr.contains("component `api` depends on `store`, which is disabled in config"), "{stderr}");
    assert!(!stdout.contains("\"event\":\"starting\""), "nothing may start");
}

#[test]
fn check_validates_and_starts_nothing() {
    let (code, stdout, _) = run(&[], &["--check"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("config and dependency graph are valid (2 components)"));
    assert!(!stdout.contains("starting"));
}

#[test]
fn print_graph_emits_dot_and_mermaid() {
    let (code, dot, _) = run(&[], &["--print-graph", "dot"]);
    assert_eq!(code, 0);
    assert!(dot.contains("\"api\" -> \"store\";"), "{dot}");
    let (_, mermaid, _) = run(&[], &["--print-graph"]);
    assert!(mermaid.contains("api --> store"), "{mermaid}");
}

#[test]
fn version_and_help_follow_the_conventions() {
    let (code, version, _) = run(&[], &["--version"]);
    assert_eq!(code, 0);
    assert!(version.starts_with("orderly-tests 0.1.0 (commit "), "{version}");
    let (code, help, _) = run(&[], &["--help"]);
    assert_eq!(code, 0);
    for flag in ["--config", "--check", "--print-graph", "--set", "--profile"] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let (code, _, _) = run(&[], &["--no-such-flag"]);
    assert_eq!(code, 2);
}

#[test]
fn config_precedence_holds_end_to_end() {
    let drain_ms = |env: &[(&str, &str)], args: &[&str], files: &[(&str, &str)]| -> String {
        let dir = scratch_dir();
        for (name, text) in files {
            let path = dir.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let mut all_args = vec!["--print-config"];
        all_args.extend_from_slice(args);
        let out = command(&dir, env, &all_args).output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let line = text.lines().find(|l| l.contains("drain_ms")).unwrap_or_else(|| panic!("{text}")).trim().to_string();
        line.trim_start_matches("drain_ms = ").to_string()
    };
    let files = [
        ("config/default.toml", "[api]\ndrain_ms = 1\n"),
        ("config/prod.toml", "[api]\ndrain_ms = 2\n"),
        ("explicit.toml", "[api]\ndrain_ms = 3\n"),
    ];
    assert_eq!(drain_ms(&[], &[], &[]), "100", "embedded defaults");
    assert_eq!(drain_ms(&[], &[], &files[..1]), "1", "config/default.toml");
    assert_eq!(drain_ms(&[("APP_PROFILE", "prod")], &[], &files[..2]), "2", "profile from the environment");
    assert_eq!(drain_ms(&[], &["--profile", "prod", "--config", "explicit.toml"], &files), "3", "--config");
    assert_eq!(
        drain_ms(&[("APP__API__DRAIN_MS", "4")], &["--profile", "prod", "--config", "explicit.toml"], &files),
        "4",
        "env"
    );
    assert_eq!(
        drain_ms(
            &[("APP__API__DRAIN_MS", "4")],
            &["--profile", "prod", "--config", "explicit.toml", "--set", "api.drain_ms=5"],
            &files
        ),
        "5",
        "command line"
    );
}

#[test]
fn secrets_never_reach_the_config_dump() {
    let (code, stdout, _) = run(&[("APP__STORE__URL", "postgres://app:hunter2@db/app")], &["--print-config"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("# url = \"[redacted]\"  (a secret: set, not shown)"), "{stdout}");
    assert!(!stdout.contains("hunter2"));
}

#[test]
fn the_printed_config_is_toml_with_every_section_and_reads_back_to_itself() {
    let dir = scratch_dir();
    let env = [("APP__STORE__URL", "postgres://app:hunter2@db/app"), ("APP__SHUTDOWN__DEADLINE", "40s")];
    let printed = command(&dir, &env, &["--print-config", "--set", "api.drain_ms=250"]).output().unwrap();
    assert!(printed.status.success(), "{}", String::from_utf8_lossy(&printed.stderr));
    let text = String::from_utf8_lossy(&printed.stdout).to_string();
    let table: toml::Table = text.parse().unwrap_or_else(|e| panic!("not TOML ({e}):\n{text}"));
    for section in ["api", "store", "log", "start", "shutdown", "supervision", "lifecycle", "systemd", "components"] {
        assert!(table.contains_key(section), "no [{section}] in:\n{text}");
    }
    assert_eq!(table["api"]["drain_ms"].as_integer(), Some(250), "{text}");
    assert_eq!(table["shutdown"]["deadline"].as_str(), Some("40s"), "{text}");

    // Read back as a config file, it validates and prints the same.
    std::fs::write(dir.join("printed.toml"), &text).unwrap();
    let check = command(&dir, &env, &["--config", "printed.toml", "--check"]).output().unwrap();
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stderr));
    let again = command(&dir, &env, &["--config", "printed.toml", "--print-config"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout), text, "a fixed point");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_parse_error_does_not_hide_a_range_error_in_the_same_section() {
    // `deadline` cannot parse and `propagation_delay` is out of range: both in one round.
    let (code, _, stderr) = run(
        &[],
        &[
            "--set",
            "shutdown.deadline=soon",
            "--set",
            "shutdown.propagation_delay=40s",
            "--set",
            "api.drain_ms=99999",
            "--check",
        ],
    );
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("shutdown.deadline"), "{stderr}");
    assert!(stderr.contains("must fit in deadline (30s)"), "{stderr}");
    assert!(stderr.contains("api.drain_ms: must be at most 60000"), "{stderr}");
}

#[test]
fn a_component_without_settings_rejects_keys_in_its_section() {
    let (code, _, stderr) = run(&[], &["--set", "stray.verbose=true", "--check"]);
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("stray.verbose: unknown field `verbose`"), "{stderr}");
}

/// A text log line: `Dec 07 13:21:07.090 CRIT …`.
fn is_log_line(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 25
        && b[3] == b' '
        && b[6] == b' '
        && b[9] == b':'
        && b[15] == b'.'
        && b[19] == b' '
        && line[20..24].chars().all(|c| c.is_ascii_uppercase())
}

#[test]
fn on_one_terminal_stderr_and_the_log_never_share_a_line() {
    // Both streams into one file, as a terminal shows them; several runs, as it is a race.
    for run in 0..5 {
        let dir = scratch_dir();
        let out = std::fs::File::create(dir.join("terminal")).unwrap();
        let status = command(
            &dir,
            &[],
            &["--log-format", "text", "--set", "api.colour=blue", "--set", "shutdwn.deadline=3s", "--check"],
        )
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .unwrap();
        assert_eq!(status.code(), Some(78));
        let text = std::fs::read_to_string(dir.join("terminal")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        for line in text.lines() {
            let whole = is_log_line(line) || line.starts_with("orderly-tests: ") || line.starts_with("  - ");
            assert!(whole && !line[1..].contains("orderly-tests: "), "run {run}: a mixed line {line:?} in:\n{text}");
        }
        assert!(text.lines().any(|l| l.contains("CRIT invalid configuration")), "{text}");
    }
}
