//! A failed start rolls back exactly the components that started, in
//! reverse order, and reports the root cause.

use std::sync::Arc;
use std::time::Duration;

use orderly::{events::EventKind, phase::Phase, runtime::StartError, settings::ComponentSettings, StopPhase};
use orderly_testing::{Behavior, Journal, Probe, Step, TestApp, TestStartError};

/// base <- leaf <- mid (fails) <- top, plus an independent `side` that
/// started and an independent `stuck` whose start is still running.
async fn fail_in_the_middle(
    mid_start: Behavior,
    mid_settings: ComponentSettings,
) -> (Box<StartError>, Journal, orderly::events::Timeline) {
    let journal = Journal::new();
    let mid = Probe::new("mid").depends_on(&["base", "leaf"]).on_start(mid_start).joins_all().journal(&journal);
    let result = TestApp::builder()
        .component(Probe::new("base").joins_all().journal(&journal))
        .component(Probe::new("leaf").depends_on(&["base"]).joins_all().journal(&journal))
        .component(Probe::new("top").depends_on(&["mid"]).joins_all().journal(&journal))
        .component(Probe::new("side").joins_all().journal(&journal))
        .component(Probe::new("stuck").on_start(Behavior::Hang).joins_all().journal(&journal))
        .configure(|b| b.component_named("mid", Arc::new(mid), Some(mid_settings)))
        .start()
        .await;
    match result {
        Err(TestStartError::Start(outcome, timeline)) => (outcome, journal, timeline),
        Err(other) => panic!("unexpected error: {other:?}"),
        Ok(_) => panic!("start should have failed"),
    }
}

fn assert_exact_rollback(journal: &Journal, timeline: &orderly::events::Timeline) {
    for phase in StopPhase::ALL {
        let mut stopped = journal.who_did(Step::Stop(phase));
        stopped.sort();
        assert_eq!(stopped, vec!["base", "leaf", "side"], "phase {phase} stopped the wrong set");
        assert!(journal.ended_before("leaf", phase, "base", phase), "leaf must stop before base in {phase}");
    }
    let mut rolled_back: Vec<String> = timeline
        .of_kind(EventKind::RolledBack)
        .iter()
        .filter_map(|e| e.component.as_deref().map(String::from))
        .collect();
    rolled_back.sort();
    assert_eq!(rolled_back, vec!["base", "leaf", "side"]);
    assert!(!journal.did("top", Step::Start), "top must never start");
    assert!(
        timeline.position("stuck", EventKind::Cancelled, Some(Phase::Start)).is_some(),
        "stuck's start must be cancelled"
    );
}

fn settings(start_timeout: Duration) -> ComponentSettings {
    ComponentSettings { start_timeout, ..ComponentSettings::default() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_failure_rolls_back_exactly_the_started_set_in_reverse() {
    let (outcome, journal, timeline) =
        fail_in_the_middle(Behavior::Fail("disk full".into()), settings(Duration::from_secs(30))).await;
    let StartError::Failed { failure, rollback } = *outcome else { panic!("{outcome:?}") };
    assert_eq!((failure.component.as_str(), failure.phase, failure.event), ("mid", Phase::Start, EventKind::Failed));
    assert_eq!(failure.error, "disk full", "the root cause, not a cancellation");
    assert!(rollback.is_clean());
    assert_exact_rollback(&journal, &timeline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_timeout_rolls_back_exactly_the_started_set() {
    let (outcome, journal, timeline) = fail_in_the_middle(Behavior::Hang, settings(Duration::from_millis(100))).await;
    let StartError::Failed { failure, .. } = *outcome else { panic!("{outcome:?}") };
    assert_eq!((failure.component.as_str(), failure.event), ("mid", EventKind::TimedOut));
    assert!(failure.error.contains("within 100ms"), "{}", failure.error);
    assert_exact_rollback(&journal, &timeline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_panic_rolls_back_exactly_the_started_set() {
    let (outcome, journal, timeline) =
        fail_in_the_middle(Behavior::Panic("index out of range".into()), settings(Duration::from_secs(30))).await;
    let StartError::Failed { failure, .. } = *outcome else { panic!("{outcome:?}") };
    assert_eq!((failure.component.as_str(), failure.event), ("mid", EventKind::Panicked));
    assert!(failure.error.contains("index out of range"));
    assert_exact_rollback(&journal, &timeline);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_start_failing_after_a_yield_is_handled_like_an_immediate_one() {
    // The failure arrives from a spawned task rather than the first poll.
    let journal = Journal::new();
    let result = TestApp::builder()
        .component(Probe::new("base").joins(StopPhase::Close).journal(&journal))
        .component(
            Probe::new("late")
                .depends_on(&["base"])
                .on_start(Behavior::Sleep(Duration::from_millis(20)))
                .journal(&journal),
        )
        .component(
            Probe::new("bad")
                .depends_on(&["base"])
                .on_start(Behavior::Sleep(Duration::from_millis(5)))
                .journal(&journal),
        )
        .configure(|b| {
            b.component_named(
                "worse",
                Arc::new(Probe::new("worse").on_start(Behavior::Fail("boom".into())).depends_on(&["bad"])),
                None,
            )
        })
        .start()
        .await;
    let Err(TestStartError::Start(outcome, _)) = result else { panic!("start should fail") };
    let StartError::Failed { failure, .. } = *outcome else { panic!() };
    assert_eq!(failure.component, "worse");
    assert!(journal.did("base", Step::Stop(StopPhase::Close)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_still_becoming_ready_when_another_fails_is_rolled_back() {
    // `a_warming` starts (its start returns) and then waits to become ready;
    // `b_broken` fails meanwhile. a_warming holds what its start acquired, so
    // it must be stopped although it never became ready.
    let journal = Journal::new();
    let result = TestApp::builder()
        .component(Probe::new("a_warming").not_ready_for(u32::MAX).joins(StopPhase::Close).journal(&journal))
        .component(Probe::new("b_broken").on_start(Behavior::Fail("no disk".into())).journal(&journal))
        .start()
        .await;
    let Err(TestStartError::Start(outcome, timeline)) = result else { panic!("start should fail") };
    let StartError::Failed { failure, .. } = *outcome else { panic!() };
    assert_eq!(failure.component, "b_broken");
    assert!(journal.did("a_warming", Step::Stop(StopPhase::Close)), "a started component must be rolled back");
    assert!(timeline.position("a_warming", EventKind::RolledBack, None).is_some());
    assert!(timeline.position("a_warming", EventKind::Cancelled, None).is_none());
}
