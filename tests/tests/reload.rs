//! Reload on SIGHUP, against the real child process: a changed log level
//! takes effect; a changed section restarts its component (no reload hook)
//! or is refused when a dependent cannot start twice; an invalid reload is
//! rejected with every problem and changes nothing. And `Runtime::reload`
//! itself: applied in place by a hook, restarted with a replacement and the
//! dependents, the old value back when the replacement fails to start.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orderly::{
    async_trait, events::EventKind, runtime::ReloadChange, BoxError, Component, ReloadContext, Reloaded, Runtime,
    ShutdownReason, StopPhase,
};
use orderly_testing::{Behavior, Edge, Journal, Probe, Step};

/// A running `lifecycle-child` in its own directory (whose
/// `config/default.toml` the test rewrites), with its output collected.
struct Child_ {
    dir: PathBuf,
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

impl Child_ {
    fn start(name: &str, config: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("orderly-reload-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(dir.join("config")).unwrap();
        std::fs::write(dir.join("config/default.toml"), config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lifecycle-child"))
            .env_clear()
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let started = Child_ { dir, child, stdout, stderr };
        started.wait_for_stdout(|l| l.contains("\"event\":\"ready\"") && l.contains("\"component\":\"api\""));
        started
    }

    /// Rewrites the config file and sends SIGHUP; returns how many stdout
    /// lines there were before, so a test reads what the reload logged.
    fn reload_with(&self, config: &str) -> usize {
        std::fs::write(self.dir.join("config/default.toml"), config).unwrap();
        let before = self.lines().len();
        self.signal(libc::SIGHUP);
        before
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    fn lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    fn wait_for_stdout(&self, wanted: impl Fn(&str) -> bool) -> usize {
        self.wait_for_stdout_from(0, wanted)
    }

    /// Waits for a line at or after line `from` (what a later reload logged).
    fn wait_for_stdout_from(&self, from: usize, wanted: impl Fn(&str) -> bool) -> usize {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(at) = self.lines().iter().skip(from).position(|l| wanted(l)) {
                return from + at;
            }
            assert!(Instant::now() < deadline, "not found in:\n{}", self.lines().join("\n"));
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn wait_for_stderr(&self, wanted: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = self.stderr.lock().unwrap().join("\n");
            if text.contains(wanted) {
                return text;
            }
            assert!(Instant::now() < deadline, "no `{wanted}` in stderr:\n{text}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGTERM, then the exit code.
    fn stop(mut self) -> (i32, Vec<String>) {
        self.signal(libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        let code = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the child did not exit");
            std::thread::sleep(Duration::from_millis(5));
        };
        std::thread::sleep(Duration::from_millis(50)); // the reader threads finish
        (code, self.lines())
    }
}

impl Drop for Child_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn is_reloaded(line: &str) -> bool {
    line.contains("\"msg\":\"reloaded\"")
}

#[test]
fn a_sighup_applies_a_changed_log_level_at_once() {
    let child = Child_::start("level", "[log]\nlevel = \"info\"\nformat = \"json\"\n");
    assert!(child.lines().iter().all(|l| !l.contains("\"level\":\"DEBG\"")), "no debug records before");
    let before = child.reload_with("[log]\nlevel = \"debug\"\nformat = \"json\"\n");
    // The level changes last, once the reload took: wait for it, then for a debug record.
    child.wait_for_stdout_from(before, |l| l.contains("\"msg\":\"log level changed\""));
    child.wait_for_stdout_from(before, |l| l.contains("\"level\":\"DEBG\""));
    let (code, lines) = child.stop();
    assert_eq!(code, 0, "{lines:#?}");
}

/// The reload's JSON records from stdout line `from` on.
fn events_since(child: &Child_, from: usize) -> (Vec<String>, Vec<serde_json::Value>) {
    let lines: Vec<String> = child.lines()[from..].to_vec();
    let events = lines.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
    (lines, events)
}

/// Reloads with `config` and waits for the reload's `reloaded` record:
/// what it logged (lines, JSON records), and that record.
fn reload_and_read(child: &Child_, config: &str) -> (Vec<String>, Vec<serde_json::Value>, serde_json::Value) {
    let before = child.reload_with(config);
    child.wait_for_stdout_from(before, is_reloaded);
    let (lines, events) = events_since(child, before);
    let record = events.iter().find(|v| v["msg"] == "reloaded").cloned().expect("the reload's record");
    (lines, events, record)
}

#[test]
fn a_changed_section_restarts_its_component_and_a_dependent_that_cannot_start_twice_refuses_the_reload() {
    let child = Child_::start("sections", "[log]\nformat = \"json\"\n[api]\ndrain_ms = 100\n");
    // `api` has no reload hook and nothing depends on it: restarted with the new value.
    let (lines, events, _) = reload_and_read(&child, "[log]\nformat = \"json\"\n[api]\ndrain_ms = 120\n");
    let find = |event: &str, component: &str| {
        events
            .iter()
            .position(|v| v["event"] == event && v["component"] == component)
            .unwrap_or_else(|| panic!("no {event} of {component}: {lines:#?}"))
    };
    let (stopped, started, reloaded) = (find("stopped", "api"), find("started", "api"), find("reloaded", "api"));
    assert!(stopped < started && started < reloaded, "{lines:#?}");

    // `store` (a changed secret) has `api` depending on it, which cannot
    // start twice: refused, and `api`'s change in the same reload is not
    // kept (untouched, or applied and rolled back, by the order they come in).
    let (lines, events, _) = reload_and_read(
        &child,
        "[log]\nformat = \"json\"\n[api]\ndrain_ms = 140\n[store]\nurl = \"postgres://u:hunter2@db/x\"\n",
    );
    let of = |event: &str, component: &str| -> Vec<String> {
        events
            .iter()
            .filter(|v| v["event"] == event && v["component"] == component)
            .map(|v| v["error"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let refused = of("reload_failed", "store");
    assert!(refused.len() == 1 && refused[0].contains("its dependents api cannot start twice"), "{lines:#?}");
    assert!(of("reloaded", "api").is_empty(), "{lines:#?}");
    let api_started = of("started", "api").len();
    assert!(api_started == 0 || of("reload_failed", "api").iter().any(|e| e.contains("rolled back")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("hunter2")), "the secret is never logged: {lines:#?}");
    assert!(of("stopped", "store").is_empty(), "store untouched: {lines:#?}");
    let (code, lines) = child.stop();
    assert_eq!(code, 0, "{lines:#?}");
}

#[test]
fn a_reload_that_fails_part_way_leaves_the_log_level_as_it_was() {
    let child = Child_::start("partial", "[log]\nlevel = \"info\"\nformat = \"json\"\n");
    // The level would change, but `store`'s change cannot be applied (its dependent `api` cannot start twice).
    let before = child
        .reload_with("[log]\nlevel = \"debug\"\nformat = \"json\"\n[store]\nurl = \"postgres://u:hunter2@db/x\"\n");
    child.wait_for_stdout(is_reloaded);
    // Something at debug level is logged on every reload when debug is on.
    let again = child
        .reload_with("[log]\nlevel = \"debug\"\nformat = \"json\"\n[store]\nurl = \"postgres://u:hunter3@db/x\"\n");
    child.wait_for_stdout_from(again, is_reloaded);
    std::thread::sleep(Duration::from_millis(100));
    let lines: Vec<String> = child.lines()[before..].to_vec();
    assert!(!lines.iter().any(|l| l.contains("\"msg\":\"log level changed\"")), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.contains("\"level\":\"DEBG\"")), "still at info: {lines:#?}");
    assert!(lines.iter().any(|l| l.contains("\"event\":\"reload_failed\"")), "{lines:#?}");
    let (code, lines) = child.stop();
    assert_eq!(code, 0, "{lines:#?}");
}

#[test]
fn an_invalid_reload_is_rejected_with_every_problem_and_changes_nothing() {
    let child = Child_::start("invalid", "[log]\nformat = \"json\"\n[api]\ndrain_ms = 100\n");
    let before =
        child.reload_with("[log]\nformat = \"json\"\nlevel = \"loud\"\n[api]\ndrain_ms = 999999\n[nonsense]\nx = 1\n");
    let stderr = child.wait_for_stderr("reload rejected");
    for key in ["log.level", "api.drain_ms", "nonsense"] {
        assert!(stderr.contains(key), "`{key}` is named: {stderr}");
    }
    // Nothing was stopped or restarted; the app still runs and stops cleanly.
    std::thread::sleep(Duration::from_millis(100));
    let after: Vec<String> = child.lines()[before..].to_vec();
    assert!(
        after.iter().all(|l| !l.contains("\"event\":\"stopping\"") && !l.contains("\"event\":\"starting\"")),
        "{after:#?}"
    );
    let (code, lines) = child.stop();
    assert_eq!(code, 0);
    assert!(lines.iter().any(|l| l.contains("\"event\":\"shutdown_finished\"") && l.contains("clean")));
}

/// Holds a limit that it can change in place.
struct Limiter {
    limit: Arc<std::sync::atomic::AtomicU32>,
}

#[async_trait]
impl Component for Limiter {
    async fn reload(&self, ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        let new = ctx.replacement::<Limiter>().ok_or("not a limiter")?;
        self.limit.store(new.limit.load(std::sync::atomic::Ordering::SeqCst), std::sync::atomic::Ordering::SeqCst);
        Ok(Reloaded::Applied)
    }
}

#[tokio::test]
async fn a_reload_hook_applies_in_place_and_nothing_restarts() {
    let limit = Arc::new(std::sync::atomic::AtomicU32::new(10));
    let runtime = Runtime::builder().component(Limiter { limit: limit.clone() }).build().unwrap();
    runtime.start().await.unwrap();
    let replacement = Limiter { limit: Arc::new(std::sync::atomic::AtomicU32::new(20)) };
    let current = Limiter { limit: Arc::new(std::sync::atomic::AtomicU32::new(10)) };
    let report = runtime.reload(vec![ReloadChange::new("limiter", Arc::new(replacement), Arc::new(current))]).await;
    assert_eq!(report.applied, ["limiter"]);
    assert!(report.is_complete());
    assert_eq!(limit.load(std::sync::atomic::Ordering::SeqCst), 20);
    assert!(runtime.timeline().of_kind(EventKind::Stopping).is_empty());
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
}

fn starts(journal: &Journal, name: &str) -> usize {
    journal.entries().iter().filter(|e| e.component == name && e.step == Step::Start && e.edge == Edge::Begin).count()
}

#[tokio::test]
async fn without_a_hook_the_replacement_restarts_with_the_dependents_and_a_failed_one_is_undone() {
    let (old_journal, new_journal) = (Journal::new(), Journal::new());
    let runtime = Runtime::builder()
        .component(Probe::new("queue").joins(StopPhase::Close).journal(&old_journal))
        .component(Probe::new("consumer").depends_on(&["queue"]).restartable().journal(&old_journal))
        .build()
        .unwrap();
    runtime.start().await.unwrap();

    // The replacement runs from now on: its start is in its own journal.
    let replacement = Probe::new("queue").joins(StopPhase::Close).journal(&new_journal);
    let unused = Probe::new("queue").joins(StopPhase::Close).journal(&old_journal);
    let report = runtime.reload(vec![ReloadChange::new("queue", Arc::new(replacement), Arc::new(unused))]).await;
    assert_eq!(report.restarted, ["queue"], "{report:?}");
    assert_eq!((starts(&old_journal, "queue"), starts(&new_journal, "queue")), (1, 1));
    assert_eq!(starts(&old_journal, "consumer"), 2, "the dependent restarted with it");
    assert!(old_journal.did("queue", Step::Stop(StopPhase::Close)), "the old value was stopped");

    // A replacement that cannot start: a fresh copy of the config in force
    // takes its place. The running value, which cannot start twice, does not start again.
    let (broken, fresh) = (Probe::new("queue").on_start(Behavior::Fail("bad address".into())), Journal::new());
    let copy = Probe::new("queue").joins(StopPhase::Close).journal(&fresh);
    let report = runtime.reload(vec![ReloadChange::new("queue", Arc::new(broken), Arc::new(copy))]).await;
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].contains("the new config failed to start") && report.failed[0].contains("bad address"));
    assert_eq!(starts(&new_journal, "queue"), 1, "the value that ran is not started twice");
    assert_eq!(starts(&fresh, "queue"), 1, "the copy of the config in force runs");
    assert!(runtime.health().readiness(Duration::from_secs(1)).await.ready);
    assert!(runtime.shutdown_handle().reason().is_none());
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
}

/// A reload hook that misbehaves in the way its name says.
enum Unruly {
    PanicsAtOnce,
    PanicsLater,
    Hangs,
}

#[async_trait]
impl Component for Unruly {
    async fn reload(&self, _ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        match self {
            Unruly::PanicsAtOnce => panic!("reload exploded"),
            Unruly::PanicsLater => {
                tokio::task::yield_now().await;
                panic!("reload exploded later")
            }
            Unruly::Hangs => std::future::pending().await,
        }
    }
}

#[tokio::test]
async fn a_panicking_reload_hook_is_reported_before_or_after_its_first_poll_and_the_app_goes_on() {
    for (unruly, message) in [(Unruly::PanicsAtOnce, "reload exploded"), (Unruly::PanicsLater, "reload exploded later")]
    {
        let runtime = Runtime::builder().component(unruly).build().unwrap();
        runtime.start().await.unwrap();
        let change = ReloadChange::new("unruly", Arc::new(Unruly::Hangs), Arc::new(Unruly::Hangs));
        let report = runtime.reload(vec![change]).await;
        assert_eq!(report.failed.len(), 1, "{report:?}");
        assert!(report.failed[0].contains(&format!("its reload hook panicked: {message}")), "{report:?}");
        assert!(runtime.health().readiness(Duration::from_secs(1)).await.ready);
        assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
    }
}

/// A reload hook that says it has begun, then never ends.
struct HangsInReload {
    entered: Arc<tokio::sync::Notify>,
}

#[async_trait]
impl Component for HangsInReload {
    async fn reload(&self, _ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        self.entered.notify_one();
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_shutdown_cuts_a_hung_reload_hook_short() {
    let entered = Arc::new(tokio::sync::Notify::new());
    let component = HangsInReload { entered: entered.clone() };
    let runtime = Arc::new(Runtime::builder().component(component).build().unwrap());
    runtime.start().await.unwrap();
    let reloading = tokio::spawn({
        let runtime = runtime.clone();
        let replacement = HangsInReload { entered: Arc::new(tokio::sync::Notify::new()) };
        let current = Arc::new(HangsInReload { entered: Arc::new(tokio::sync::Notify::new()) });
        async move { runtime.reload(vec![ReloadChange::new("hangs_in_reload", Arc::new(replacement), current)]).await }
    });
    entered.notified().await;
    runtime.shutdown_handle().trigger(ShutdownReason::Signal("SIGTERM"));
    let report = reloading.await.unwrap();
    assert!(report.failed[0].contains("a shutdown began during its reload hook"), "{report:?}");
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
}

/// Records whether its reload hook ran.
struct Untouched {
    reloaded: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl Component for Untouched {
    async fn reload(&self, _ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        self.reloaded.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(Reloaded::Applied)
    }
}

#[tokio::test]
async fn a_reload_is_all_or_nothing_and_never_starts_a_component_twice_that_cannot() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
    let (limit, reloaded) = (Arc::new(AtomicU32::new(10)), Arc::new(AtomicBool::new(false)));
    let (running, fresh) = (Journal::new(), Journal::new());
    let runtime = Runtime::builder()
        .component(Limiter { limit: limit.clone() })
        // Cannot start twice (not restartable), and has no reload hook.
        .component(Probe::new("gateway").joins(StopPhase::StopAccepting).journal(&running))
        .component(Untouched { reloaded: reloaded.clone() })
        .build()
        .unwrap();
    runtime.start().await.unwrap();
    let limiter = |n| Limiter { limit: Arc::new(AtomicU32::new(n)) };
    let untouched = || Untouched { reloaded: Arc::new(AtomicBool::new(false)) };

    // The first change applies in place, the second cannot start, the third is never reached.
    let report = runtime
        .reload(vec![
            ReloadChange::new("limiter", Arc::new(limiter(20)), Arc::new(limiter(10))),
            ReloadChange::new(
                "gateway",
                Arc::new(Probe::new("gateway").on_start(Behavior::Fail("port in use".into()))),
                Arc::new(Probe::new("gateway").joins(StopPhase::StopAccepting).journal(&fresh)),
            ),
            ReloadChange::new("untouched", Arc::new(untouched()), Arc::new(untouched())),
        ])
        .await;

    assert_eq!(limit.load(SeqCst), 10, "the limiter's change was rolled back: {report:?}");
    assert!(!reloaded.load(SeqCst), "the third change was never applied");
    assert!(report.applied.is_empty() && report.restarted.is_empty(), "{report:?}");
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(report.failed[0].contains("gateway") && report.failed[0].contains("port in use"), "{report:?}");
    assert!(runtime.timeline().of_kind(EventKind::Reloaded).is_empty(), "nothing reports reloaded");
    assert_eq!(starts(&running, "gateway"), 1, "the running gateway, which cannot start twice, started once");
    assert_eq!(starts(&fresh, "gateway"), 1, "a fresh copy of the config in force took its place");
    assert_eq!(report.rolled_back, ["limiter"], "{report:?}");
    let undone = runtime.timeline().of_kind(EventKind::ReloadFailed);
    assert!(
        undone.iter().any(|e| e.component.as_deref() == Some("limiter")
            && e.error.as_deref().unwrap_or_default().contains("rolled back")),
        "{undone:?}"
    );
    assert!(runtime.health().readiness(Duration::from_secs(1)).await.ready);
    assert!(runtime.shutdown_handle().reason().is_none());
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
}

#[test]
fn a_sighup_puts_new_lifecycle_settings_in_force_and_refuses_those_that_cannot_hold() {
    let child = Child_::start("lifecycle", "[log]\nformat = \"json\"\n[components.api]\nstop_cap = \"5s\"\n");
    let (lines, events, reloaded) =
        reload_and_read(&child, "[log]\nformat = \"json\"\n[components.api]\nstop_cap = \"2s\"\n");
    assert_eq!(reloaded["applied"], "[components.api]", "{lines:#?}");
    assert!(events.iter().any(|v| v["event"] == "reloaded" && v["detail"] == "lifecycle settings"), "{lines:#?}");
    assert!(!events.iter().any(|v| v["event"] == "stopping"), "nothing stopped: {lines:#?}");

    // `store` set to restart, with `api` (which cannot start twice) depending on it: refused whole.
    let before = child.reload_with(
        "[log]\nformat = \"json\"\n[components.api]\nstop_cap = \"1s\"\n[components.store]\non_failure = \"restart\"\n",
    );
    child.wait_for_stdout_from(before, |l| l.contains("reload rejected: the lifecycle settings cannot apply"));
    let (lines, events) = events_since(&child, before);
    assert!(
        events.iter().any(|v| v["problem"].as_str().is_some_and(|p| p.contains("`api` depends on `store`"))),
        "{lines:#?}"
    );
    assert!(!events.iter().any(|v| v["event"] == "reloaded"), "not even api's stop cap: {lines:#?}");
    let (code, lines) = child.stop();
    assert_eq!(code, 0, "{lines:#?}");
}

#[test]
fn a_sighup_enables_and_disables_components_along_the_graph_and_undoes_one_that_cannot_start() {
    const JSON: &str = "[log]\nformat = \"json\"\n";
    let child = Child_::start("toggle", JSON);

    // `broken` (disabled by the app's defaults) enabled: its start fails,
    // so it is disabled again and nothing else moved.
    let (lines, events, record) = reload_and_read(&child, &format!("{JSON}[components.broken]\nenabled = true\n"));
    assert!(record["failed"].as_str().unwrap().contains("cannot reach the payment gateway"), "{lines:#?}");
    assert_eq!(record["enabled"], "", "{lines:#?}");
    assert!(
        events.iter().any(|v| v["event"] == "failed" && v["phase"] == "start" && v["component"] == "broken"),
        "{lines:#?}"
    );
    assert!(!events.iter().any(|v| v["event"] == "stopped" && v["component"] == "store"), "{lines:#?}");

    // `api` disabled: it stops through its phases; `store`, which it needed, runs on.
    let (lines, events, record) = reload_and_read(&child, &format!("{JSON}[components.api]\nenabled = false\n"));
    assert_eq!(record["disabled"], "api", "{lines:#?}");
    assert!(record["failed"].as_str().unwrap().is_empty(), "{lines:#?}");
    assert!(lines.iter().any(|l| l == "MARK api stop_accepting") && lines.iter().any(|l| l == "MARK api drain"));
    assert!(events.iter().any(|v| v["event"] == "reloaded" && v["component"] == "api"), "{lines:#?}");
    assert!(!lines.iter().any(|l| l.starts_with("MARK store")), "{lines:#?}");

    // `api` again: its type started once and cannot start twice.
    let (lines, _, record) = reload_and_read(&child, &format!("{JSON}[components.api]\nenabled = true\n"));
    assert!(record["failed"].as_str().unwrap().contains("`api` ran before in this process"), "{lines:#?}");

    // The shutdown stops what runs, and `api` is not stopped twice.
    let (code, lines) = child.stop();
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| *l == "MARK api stop_accepting").count(), 1, "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| *l == "MARK store close").count(), 1, "{lines:#?}");
}
