//! 05: testing a component with `orderly_testing`: start it beside probes,
//! run a real shutdown, and assert on what happened. In a real crate this
//! body is a `#[tokio::test]`.
//!
//! cargo run -p orderly --example 05_testing_a_component

use orderly::{events::EventKind, phase::Phase, BoxError, Component, Dependency, StopContext, StopPhase};
use orderly_testing::{Journal, Probe, Step, TestApp};

/// The component under test: it must drain before the store it writes to closes.
struct Writer;

#[orderly::component]
impl Component for Writer {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::named("store")]
    }
    async fn drain(&self, _: &StopContext) -> Result<(), BoxError> {
        Ok(())
    }
}

#[tokio::main]
async fn main() {
    let journal = Journal::new();
    let app = TestApp::builder()
        .component(Writer)
        .component(Probe::new("store").joins(StopPhase::Close).journal(&journal))
        .start()
        .await
        .expect("starts");
    let report = app.shutdown().await;

    assert!(report.is_clean());
    let timeline = app.timeline();
    let drained =
        timeline.position("writer", EventKind::Stopped, Some(Phase::Stop(StopPhase::Drain))).expect("drained");
    let closing = timeline.position("store", EventKind::Stopping, Some(Phase::Stop(StopPhase::Close))).expect("closed");
    assert!(drained < closing, "the writer drains before the store closes");
    assert!(journal.did("store", Step::Stop(StopPhase::Close)));
    println!("ok: writer drained at event #{drained}, store closed at event #{closing}");
}
