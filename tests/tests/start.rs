//! Start: retries, permanent errors, readiness, interruption and failures
//! while running.

use std::sync::Arc;
use std::time::Duration;

use orderly::{
    async_trait,
    events::EventKind,
    phase::Phase,
    runtime::{RunOutcome, StartError},
    settings::ComponentSettings,
    settings::RetryPolicy,
    BoxError, Component, Permanent, Runtime, ShutdownReason, StartContext, StopPhase,
};
use orderly_testing::{Behavior, Edge, Journal, Probe, Step, TestApp, TestStartError};

fn retrying(attempts: u32) -> ComponentSettings {
    ComponentSettings {
        retry: RetryPolicy::new(attempts, Duration::from_millis(1), Duration::from_millis(5)),
        ..ComponentSettings::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_start_failures_are_retried_with_backoff() {
    let app = TestApp::builder()
        .configure(|b| {
            b.component_named("db", Arc::new(Probe::new("db").on_start(Behavior::FailTimes(2))), Some(retrying(5)))
        })
        .start()
        .await
        .unwrap();
    let retries = app.timeline().of_kind(EventKind::Retrying);
    assert_eq!(retries.len(), 2);
    assert_eq!(retries[0].error.as_deref(), Some("transient failure 1"));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_when_attempts_run_out() {
    let result = TestApp::builder()
        .configure(|b| {
            b.component_named("db", Arc::new(Probe::new("db").on_start(Behavior::FailTimes(10))), Some(retrying(3)))
        })
        .start()
        .await;
    let Err(TestStartError::Start(outcome, timeline)) = result else { panic!("start should fail") };
    let StartError::Failed { failure, .. } = *outcome else { panic!() };
    assert_eq!(failure.error, "transient failure 3");
    assert_eq!(timeline.of_kind(EventKind::Retrying).len(), 2);
}

struct WrongPassword;

#[async_trait]
impl Component for WrongPassword {
    async fn start(&self, _: &StartContext) -> Result<(), BoxError> {
        Err(Permanent::new("password authentication failed for user \"app\"").into())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_errors_are_not_retried() {
    let result = TestApp::builder()
        .configure(|b| b.component_named("db", Arc::new(WrongPassword), Some(retrying(10))))
        .start()
        .await;
    let Err(TestStartError::Start(outcome, timeline)) = result else { panic!("start should fail") };
    let StartError::Failed { failure, .. } = *outcome else { panic!() };
    assert!(failure.error.contains("password authentication failed"));
    assert!(timeline.of_kind(EventKind::Retrying).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_that_never_becomes_ready_fails_start_and_is_rolled_back() {
    let journal = Journal::new();
    let settings = ComponentSettings { ready_timeout: Duration::from_millis(50), ..ComponentSettings::default() };
    let result = TestApp::builder()
        .configure(|b| {
            b.component_named(
                "cache",
                Arc::new(Probe::new("cache").not_ready_for(u32::MAX).joins(StopPhase::Close).journal(&journal)),
                Some(settings),
            )
        })
        .start()
        .await;
    let Err(TestStartError::Start(outcome, _)) = result else { panic!("start should fail") };
    let StartError::Failed { failure, .. } = *outcome else { panic!() };
    assert_eq!((failure.phase, failure.event), (Phase::Ready, EventKind::TimedOut));
    assert!(failure.error.contains("warming up"), "the last reason is reported: {}", failure.error);
    assert!(journal.did("cache", Step::Stop(StopPhase::Close)), "its start returned, so it is stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_request_during_start_cancels_and_rolls_back() {
    let journal = Journal::new();
    let runtime = Arc::new(
        Runtime::builder()
            .component(Probe::new("db").joins(StopPhase::Close).journal(&journal))
            .component(
                Probe::new("migrations")
                    .depends_on(&["db"])
                    .on_start(Behavior::Hang)
                    .joins(StopPhase::Close)
                    .journal(&journal),
            )
            .build()
            .unwrap(),
    );
    let starting = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.start().await }
    });
    while !journal.did("migrations", Step::Start) {
        tokio::task::yield_now().await;
    }
    runtime.shutdown_handle().trigger(ShutdownReason::Signal("SIGTERM"));
    let outcome = starting.await.unwrap().expect_err("start must be interrupted");
    let StartError::Interrupted(report) = *outcome else { panic!("{outcome:?}") };
    assert!(report.is_clean());
    assert_eq!(journal.who_did(Step::Stop(StopPhase::Close)), vec!["db"]);
    assert!(runtime.timeline().position("migrations", EventKind::Cancelled, None).is_some());
}

struct Crashes;

#[async_trait]
impl Component for Crashes {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        // Fails once the app runs: a failure during start fails the start instead.
        let health = ctx.lifecycle().health().clone();
        ctx.spawn(async move {
            health.started().await;
            Err("consumer lost its connection".into())
        });
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_background_task_failure_shuts_the_app_down_naming_the_component() {
    let runtime =
        Runtime::builder().component(Crashes).component(Probe::new("db").joins(StopPhase::Close)).build().unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), runtime.run())
        .await
        .expect("the failure must trigger a shutdown");
    let RunOutcome::ShutDown(report) = outcome else { panic!("{outcome:?}") };
    assert_eq!(
        report.reason,
        ShutdownReason::ComponentFailed { component: "crashes".into(), error: "consumer lost its connection".into() }
    );
    assert!(report.reason.is_failure());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_down_twice_stops_nothing_twice() {
    let journal = Journal::new();
    let app =
        TestApp::builder().component(Probe::new("db").joins(StopPhase::Close).journal(&journal)).start().await.unwrap();
    app.shutdown().await;
    app.shutdown().await;
    assert_eq!(journal.who_did(Step::Stop(StopPhase::Close)).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_starts_once() {
    let journal = Journal::default();
    let runtime = Runtime::builder().component(Probe::new("db").journal(&journal)).build().unwrap();
    runtime.start().await.unwrap();
    let again = runtime.start().await.unwrap_err();
    assert!(matches!(*again, StartError::AlreadyStarted), "{again:?}");
    assert_eq!(again.to_string(), "start was already called on this runtime");
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
    let starts = journal.entries().iter().filter(|e| e.step == Step::Start && e.edge == Edge::Begin).count();
    assert_eq!(starts, 1, "the second call started nothing: {:?}", journal.entries());
    assert!(matches!(*runtime.start().await.unwrap_err(), StartError::AlreadyStarted), "nor after the shutdown");
}
