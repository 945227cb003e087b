//! `#[orderly::component]` used from another crate: it applies async_trait
//! and declares exactly the stop phases the impl defines, and whether it
//! checks its readiness.

use orderly_testing::TestApp;
use std::sync::atomic::{AtomicUsize, Ordering};

use orderly::{
    events::EventKind,
    phase::{Phase, PhaseSet},
    BoxError, Component, Readiness, StartContext, StopContext, StopPhase,
};

struct Pool;

#[orderly::component]
impl Component for Pool {
    async fn start(&self, _: &StartContext) -> Result<(), BoxError> {
        Ok(())
    }
    async fn drain(&self, _: &StopContext) -> Result<(), BoxError> {
        Ok(())
    }
    async fn close(&self, _: &StopContext) -> Result<(), BoxError> {
        Ok(())
    }
}

struct Quiet;

#[orderly::component]
impl Component for Quiet {}

/// Ready on the third time it is asked.
#[derive(Default)]
struct Warming(AtomicUsize);

#[orderly::component]
impl Component for Warming {
    async fn ready(&self) -> Readiness {
        match self.0.fetch_add(1, Ordering::SeqCst) {
            0 | 1 => Readiness::NotReady("warming".into()),
            _ => Readiness::Ready,
        }
    }
}

/// Counts the calls of `ready`, and says by hand whether it checks
/// readiness (what the macro generates), to test the runtime's side.
struct Counted {
    calls: std::sync::Arc<AtomicUsize>,
    checks: bool,
}

#[orderly::async_trait]
impl Component for Counted {
    async fn ready(&self) -> Readiness {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Readiness::Ready
    }
    fn checks_readiness(&self) -> bool {
        self.checks
    }
}

#[tokio::test]
async fn a_start_polls_ready_only_of_a_component_that_checks_readiness() {
    for checks in [true, false] {
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let app = TestApp::builder().component(Counted { calls: calls.clone(), checks }).start().await.unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), usize::from(checks), "checks_readiness() = {checks}");
        assert_eq!(app.timeline().of_kind(EventKind::Ready).len(), 1, "recorded ready either way");
        assert!(app.shutdown().await.is_clean());
    }
}

#[test]
fn checks_readiness_exactly_when_the_impl_defines_ready() {
    assert!(Warming::default().checks_readiness());
    assert!(!Pool.checks_readiness());
    assert!(!Quiet.checks_readiness());
}

#[tokio::test]
async fn a_start_waits_for_a_defined_ready_and_records_the_others_ready_at_once() {
    let app = TestApp::builder().component(Warming::default()).component(Quiet).start().await.unwrap();
    let components_with = |kind| -> Vec<String> {
        let events = app.timeline().of_kind(kind);
        events.iter().map(|e| e.component.as_deref().unwrap_or_default().to_string()).collect()
    };
    assert_eq!(components_with(EventKind::NotReady), vec!["warming"], "only the component with a `ready` was polled");
    let ready = components_with(EventKind::Ready);
    assert_eq!(ready.len(), 2, "both are recorded ready: {ready:?}");
    assert!(app.shutdown().await.is_clean());
}

#[test]
fn joined_phases_are_exactly_the_defined_hooks() {
    assert_eq!(Pool.joined_phases(), PhaseSet::of(&[StopPhase::Drain, StopPhase::Close]));
    assert_eq!(Quiet.joined_phases(), PhaseSet::NONE);
}

#[tokio::test]
async fn the_runtime_runs_the_joined_hooks_and_only_those() {
    let app = TestApp::builder().component(Pool).component(Quiet).start().await.unwrap();
    assert!(app.shutdown().await.is_clean());
    let stopping: Vec<(String, Option<Phase>)> = app
        .timeline()
        .of_kind(EventKind::Stopping)
        .into_iter()
        .map(|e| (e.component.as_deref().unwrap_or_default().to_string(), e.phase))
        .collect();
    assert_eq!(
        stopping,
        vec![
            ("pool".to_string(), Some(Phase::Stop(StopPhase::Drain))),
            ("pool".to_string(), Some(Phase::Stop(StopPhase::Close)))
        ]
    );
}
