//! `#[orderly::component]` used from another crate: it applies async_trait
//! and declares exactly the stop phases the impl defines.

use orderly::testing::TestApp;
use orderly::{events::EventKind, BoxError, Component, Phase, PhaseSet, StartContext, StopContext, StopPhase};

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
