//! A component failing while running: by default the app shuts down (exit
//! 4); with `on_failure = ignore` (in code or config) the failure is logged
//! as an event, counted, and the component reported degraded while the
//! rest goes on serving. Errors and panics alike.

use std::time::Duration;

use orderly::{
    async_trait, events::EventKind, settings::ComponentOverrides, settings::RuntimeSettings, BoxError, Component,
    OnFailure, Readiness, Runtime, ShutdownReason, StartContext,
};

/// Fails (or panics) in its background task shortly after starting.
struct Flaky {
    policy: OnFailure,
    panics: bool,
}

#[async_trait]
impl Component for Flaky {
    fn on_failure(&self) -> OnFailure {
        self.policy
    }
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let panics = self.panics;
        ctx.spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            if panics {
                panic!("recommendation model corrupted");
            }
            Err("lost the connection to the recommendation service".into())
        });
        Ok(())
    }
}

/// Stays healthy, to show the rest goes on.
struct Steady;

#[async_trait]
impl Component for Steady {}

fn build(flaky: Flaky, overrides: Option<ComponentOverrides>) -> Runtime {
    let mut settings = RuntimeSettings::default();
    if let Some(o) = overrides {
        settings.components.insert("flaky".into(), o);
    }
    Runtime::builder().component(flaky).component(Steady).settings(settings).build().unwrap()
}

async fn wait_for_failed_event(runtime: &Runtime) -> orderly::events::LifecycleEvent {
    for _ in 0..500 {
        if let Some(e) = runtime.timeline().of_kind(EventKind::Failed).into_iter().next() {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("no failed event: {:?}", runtime.timeline().events());
}

async fn readiness_of(runtime: &Runtime, name: &str) -> (bool, Readiness) {
    let report = runtime.health().readiness(Duration::from_secs(1)).await;
    let own = report.components.iter().find(|(n, _)| n == name).map(|(_, r)| r.clone()).unwrap();
    (report.ready, own)
}

#[tokio::test]
async fn an_ignored_failure_degrades_the_component_and_the_app_goes_on() {
    for panics in [false, true] {
        let runtime = build(Flaky { policy: OnFailure::Ignore, panics }, None);
        runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
        let event = wait_for_failed_event(&runtime).await;
        assert_eq!(event.component.as_deref(), Some("flaky"));
        assert_eq!(event.phase, None, "a failure while running belongs to no phase");
        let expected = if panics { "recommendation model corrupted" } else { "lost the connection" };
        assert!(event.error.as_deref().unwrap_or_default().contains(expected), "{event:?}");

        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(runtime.shutdown_handle().reason(), None, "no shutdown was requested");
        let (ready, flaky) = readiness_of(&runtime, "flaky").await;
        assert!(ready, "degraded still counts as ready");
        assert!(matches!(&flaky, Readiness::Degraded(reason) if reason.contains(expected)), "{flaky:?}");
        assert_eq!(readiness_of(&runtime, "steady").await.1, Readiness::Ready);

        let metrics = prometheus::TextEncoder::new().encode_to_string(&runtime.metrics_registry().gather()).unwrap();
        assert!(metrics.contains("orderly_component_failures_total{component=\"flaky\"} 1"), "{metrics}");

        let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
        assert!(report.is_clean() && !report.reason.is_failure(), "{report:?}");
    }
}

#[tokio::test]
async fn by_default_a_failure_shuts_the_app_down() {
    let runtime = build(Flaky { policy: OnFailure::Shutdown, panics: false }, None);
    let outcome = tokio::time::timeout(Duration::from_secs(10), runtime.run()).await.unwrap();
    let orderly::runtime::RunOutcome::ShutDown(report) = outcome else { panic!("expected a shutdown") };
    assert!(report.reason.is_failure(), "{:?}", report.reason);
    assert!(report.reason.to_string().contains("flaky"), "{}", report.reason);
    assert!(runtime.timeline().of_kind(EventKind::Failed).is_empty(), "reported as the shutdown's reason instead");
}

#[tokio::test]
async fn config_overrides_the_components_own_policy() {
    // The component says shut down; the operator says ignore.
    let ignore = ComponentOverrides { on_failure: Some(OnFailure::Ignore), ..Default::default() };
    let runtime = build(Flaky { policy: OnFailure::Shutdown, panics: false }, Some(ignore));
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    wait_for_failed_event(&runtime).await;
    assert_eq!(runtime.shutdown_handle().reason(), None);
    runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;

    // The component says ignore; the operator says shut down.
    let shutdown = ComponentOverrides { on_failure: Some(OnFailure::Shutdown), ..Default::default() };
    let runtime = build(Flaky { policy: OnFailure::Ignore, panics: true }, Some(shutdown));
    let outcome = tokio::time::timeout(Duration::from_secs(10), runtime.run()).await.unwrap();
    let orderly::runtime::RunOutcome::ShutDown(report) = outcome else { panic!("expected a shutdown") };
    assert!(report.reason.is_failure(), "{:?}", report.reason);
}

/// The `lifecycle-child` app with `env`; its exit code, stdout and stderr
/// after SIGTERM (sent once its crasher has failed, or never when `signal` is false).
fn child(env: &[(&str, &str)], signal: bool) -> (i32, String, String) {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_lifecycle-child"))
        .env_clear()
        .current_dir(std::env::temp_dir())
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    if signal {
        // The crasher fails 50 ms after its start; give it time, then ask to stop.
        std::thread::sleep(Duration::from_millis(600));
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    }
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    (status.code().unwrap_or(-1), reader.join().unwrap(), stderr)
}

/// The JSON log records of `event`.
fn events_of<'a>(stdout: &'a str, event: &'a str) -> impl Iterator<Item = serde_json::Value> + 'a {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(move |v| v["event"] == event)
}

#[test]
fn a_component_failing_past_its_restart_limit_ends_the_process_with_exit_code_5() {
    let (code, stdout, stderr) = child(
        &[
            ("APP__COMPONENTS__FLAPPER__ENABLED", "true"),
            ("APP__COMPONENTS__FLAPPER__MAX_RESTARTS", "2"),
            ("APP__COMPONENTS__FLAPPER__RESTART_BACKOFF", "1ms"),
        ],
        false,
    );
    assert_eq!(code, 5, "{stderr}");
    assert!(stderr.contains("component `flapper` kept failing: more than 2 restart(s) within 10s"), "{stderr}");
    assert_eq!(events_of(&stdout, "restarting").count(), 2, "{stdout}");
    assert_eq!(events_of(&stdout, "restarted").count(), 2, "{stdout}");
    let exceeded = events_of(&stdout, "restart_limit_exceeded").next().unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(exceeded["level"], "ERRO");
    assert_eq!(exceeded["error"].as_str().map(|e| e.matches("broker connection dropped").count()), Some(3));
    // Then the normal shutdown: all five phases.
    assert_eq!(events_of(&stdout, "phase_finished").count(), 5, "{stdout}");
}

#[test]
fn restart_set_in_config_for_a_component_that_cannot_start_twice_is_a_config_error() {
    let (code, _, stderr) = child(
        &[("APP__COMPONENTS__CRASHER__ENABLED", "true"), ("APP__COMPONENTS__CRASHER__RESTART", "transient")],
        false,
    );
    assert_eq!(code, 78, "{stderr}");
    assert!(stderr.contains("component `crasher` is set to restart, but its type cannot start twice"), "{stderr}");
}

#[test]
fn a_process_survives_an_ignored_failure_and_exits_clean() {
    let (code, stdout, stderr) = child(
        &[("APP__COMPONENTS__CRASHER__ENABLED", "true"), ("APP__COMPONENTS__CRASHER__ON_FAILURE", "ignore")],
        true,
    );
    assert_eq!(code, 0, "{stderr}");
    let failed = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["event"] == "failed" && v["component"] == "crasher")
        .unwrap_or_else(|| panic!("no failed event in:\n{stdout}"));
    assert!(failed["error"].as_str().unwrap().contains("lost the lease"), "{failed}");
    assert_eq!(failed["level"], "ERRO", "a failure is never silent: {failed}");
}

#[test]
fn an_unknown_policy_is_a_config_error() {
    let (code, _, stderr) = child(&[("APP__COMPONENTS__CRASHER__ON_FAILURE", "restart-forever")], false);
    assert_eq!(code, 78, "{stderr}");
    assert!(
        stderr.contains("components.crasher") && stderr.contains("shutdown") && stderr.contains("ignore"),
        "{stderr}"
    );
}
