//! Budgets: a hung or panicking hook is abandoned and named, later phases
//! still run, and the whole shutdown ends by its deadline.

use std::sync::Arc;
use std::time::Duration;

use orderly::{
    config::ConfigSources, events::EventKind, phase::Phase, settings::ShutdownSettings, Runtime, ShutdownReason,
    StopPhase,
};
use orderly_testing::{short_budgets, Behavior, Journal, Probe, Step, TestApp};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandons_component_that_overruns_its_cap_and_goes_on() {
    let journal = Journal::new();
    let settings =
        ShutdownSettings { component_cap: Some(Duration::from_millis(100)), ..short_budgets(Duration::from_secs(2)) };
    let app = TestApp::builder()
        .component(Probe::new("db").joins_all().journal(&journal))
        .component(
            Probe::new("api")
                .depends_on(&["db"])
                .on(StopPhase::Drain, Behavior::Hang)
                .joins(StopPhase::Close)
                .journal(&journal),
        )
        .configure(|b| b.shutdown_settings(settings))
        .start()
        .await
        .unwrap();
    let report = app.shutdown().await;

    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let problem = &report.problems[0];
    assert_eq!(
        (problem.component.as_str(), problem.phase, problem.event),
        ("api", StopPhase::Drain, EventKind::TimedOut)
    );
    assert!(problem.error.contains("cap of 100ms"), "{}", problem.error);
    // Its dependency still drained after it was abandoned, and every later phase ran.
    assert!(journal.did("db", Step::Stop(StopPhase::Drain)));
    for phase in [StopPhase::StopWorkers, StopPhase::Flush, StopPhase::Close] {
        assert!(journal.did("db", Step::Stop(phase)), "db skipped {phase}");
    }
    assert!(journal.did("api", Step::Stop(StopPhase::Close)), "an abandoned component still gets its later phases");
    let timed_out = app.timeline().position("api", EventKind::TimedOut, Some(Phase::Stop(StopPhase::Drain)));
    assert!(timed_out.is_some(), "the culprit is named in the events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_budget_abandons_the_runner_and_names_the_skipped() {
    let journal = Journal::new();
    let app = TestApp::builder()
        .component(Probe::new("db").joins_all().journal(&journal))
        .component(Probe::new("api").depends_on(&["db"]).on(StopPhase::Drain, Behavior::Hang).journal(&journal))
        .configure(|b| b.shutdown_settings(short_budgets(Duration::from_millis(150))))
        .start()
        .await
        .unwrap();
    let report = app.shutdown().await;
    let summary: Vec<_> = report.problems.iter().map(|p| (p.component.as_str(), p.phase, p.event)).collect();
    assert_eq!(
        summary,
        vec![("api", StopPhase::Drain, EventKind::TimedOut), ("db", StopPhase::Drain, EventKind::Skipped)]
    );
    // No cap is set, so the phase's budget is what it overran.
    assert!(report.problems[0].error.contains("the phase's budget (150ms) was spent"), "{:?}", report.problems[0]);
    assert!(journal.did("db", Step::Stop(StopPhase::Close)), "the next phase still runs");
    assert!(report.elapsed < Duration::from_millis(150) * 6, "the deadline holds: {:?}", report.elapsed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_hook_is_reported_and_the_shutdown_continues() {
    let journal = Journal::new();
    let app = TestApp::builder()
        .component(Probe::new("db").joins(StopPhase::Close).journal(&journal))
        .component(
            Probe::new("metrics")
                .depends_on(&["db"])
                .on(StopPhase::Flush, Behavior::Panic("buffer poisoned".into()))
                .journal(&journal),
        )
        .start()
        .await
        .unwrap();
    let report = app.shutdown().await;
    assert_eq!(report.problems.len(), 1);
    assert_eq!(report.problems[0].event, EventKind::Panicked);
    assert!(report.problems[0].error.contains("buffer poisoned"));
    assert!(journal.did("db", Step::Stop(StopPhase::Close)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_is_reported_and_the_shutdown_continues() {
    let app = TestApp::builder()
        .component(
            Probe::new("queue")
                .on(StopPhase::StopWorkers, Behavior::Fail("lease release refused".into()))
                .joins(StopPhase::Close),
        )
        .start()
        .await
        .unwrap();
    let report = app.shutdown().await;
    assert_eq!(report.problems.len(), 1);
    assert_eq!(
        report.problems[0].to_string(),
        "component `queue` failed in phase 3 (stop_workers): lease release refused"
    );
    assert!(app.timeline().position("queue", EventKind::Stopped, Some(Phase::Stop(StopPhase::Close))).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_cap_from_config_is_honoured() {
    // The cap set in a config file reaches the component's hook: config is
    // honoured everywhere, not only where it is easy (Spring #22014).
    let config =
        ConfigSources::new("APP").embedded_defaults("[components.api]\nstop_cap = \"120ms\"\n").load().unwrap();
    let settings = config.runtime_settings(&["api"]).unwrap();
    let runtime = Runtime::builder()
        .component(Probe::new("api").on(StopPhase::StopAccepting, Behavior::Hang))
        .settings(settings)
        .build()
        .unwrap();
    assert_eq!(runtime.component_settings("api").map(|s| s.stop_cap), Some(Some(Duration::from_millis(120))));
    runtime.start().await.unwrap();
    let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    assert!(report.problems[0].error.contains("cap of 120ms"), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_propagation_delay_passes_between_the_readiness_flip_and_phase_one() {
    let journal = Journal::new();
    let settings = ShutdownSettings { propagation_delay: Duration::from_millis(200), ..ShutdownSettings::default() };
    let app = TestApp::builder()
        .component(Probe::new("http").joins(StopPhase::StopAccepting).journal(&journal))
        .configure(|b| b.shutdown_settings(settings))
        .start()
        .await
        .unwrap();
    let report = app.shutdown().await;
    let events = app.timeline().events();
    let not_ready = events.iter().find(|e| e.event == EventKind::ReadinessWithdrawn).unwrap().at;
    let phase_one = events.iter().find(|e| e.event == EventKind::PhaseStarted).unwrap().at;
    assert!(phase_one - not_ready >= Duration::from_millis(200), "delay not honoured: {:?}", phase_one - not_ready);
    assert!(journal.did("http", Step::Stop(StopPhase::StopAccepting)));
    assert!(report.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_reports_not_ready_from_the_first_moment_of_shutdown_and_answers_throughout() {
    let gate = Arc::new(tokio::sync::Barrier::new(2));
    let app = TestApp::builder()
        .component(Probe::new("http").on(StopPhase::Drain, Behavior::Barrier(gate.clone())))
        .start()
        .await
        .unwrap();
    let health = app.runtime().health();
    let before = health.readiness(Duration::from_millis(100)).await;
    assert!(before.ready && health.is_started());

    let app = Arc::new(app);
    let stopping = tokio::spawn({
        let app = app.clone();
        async move { app.shutdown().await }
    });
    // The drain is parked at the gate: the probe must still answer, with not-ready.
    loop {
        let during = health.readiness(Duration::from_millis(100)).await;
        if during.state == orderly::health::AppState::ShuttingDown {
            assert!(!during.ready);
            break;
        }
        tokio::task::yield_now().await;
    }
    gate.wait().await;
    assert!(stopping.await.unwrap().is_clean());
    assert_eq!(health.state(), orderly::health::AppState::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_cap_reloaded_while_running_binds_the_next_stop() {
    let runtime =
        Runtime::builder().component(Probe::new("api").on(StopPhase::StopAccepting, Behavior::Hang)).build().unwrap();
    runtime.start().await.unwrap();
    let mut settings = runtime.component_settings("api").unwrap();
    settings.stop_cap = Some(Duration::from_millis(90));
    runtime.reload_settings(vec![("api".into(), settings)]).await.unwrap();
    assert_eq!(runtime.component_settings("api").map(|s| s.stop_cap), Some(Some(Duration::from_millis(90))));
    let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    assert!(report.problems[0].error.contains("cap of 90ms"), "{:?}", report.problems);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lifecycle_settings_that_cannot_hold_are_refused_and_none_applied() {
    let runtime = Runtime::builder()
        .component(Probe::new("db"))
        .component(Probe::new("api").depends_on(&["db"]))
        .build()
        .unwrap();
    runtime.start().await.unwrap();
    let mut api = runtime.component_settings("api").unwrap();
    api.stop_cap = Some(Duration::from_millis(10));
    let mut db = runtime.component_settings("db").unwrap();
    db.on_failure = Some(orderly::OnFailure::Restart);
    let problems = runtime.reload_settings(vec![("api".into(), api), ("db".into(), db)]).await.unwrap_err();
    assert!(problems.iter().any(|p| p.contains("`api` depends on `db`, which restarts")), "{problems:?}");
    assert_eq!(runtime.component_settings("api").unwrap().stop_cap, None, "api's valid change was not applied either");
    runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
}
