//! Ordering properties on random graphs, checked against what the
//! components actually did (the journal), not what the runtime says it did.

use std::sync::Arc;
use std::time::Duration;

use orderly::StopPhase;
use orderly_testing::{Behavior, Edge, Journal, Probe, Step, TestApp};
use proptest::prelude::*;
use tokio::sync::Barrier;

fn name(i: usize) -> String {
    format!("c{i:02}")
}

/// `edges` as (dependent, dependency) pairs with dependent > dependency, so the graph is acyclic.
fn dag(n: usize, raw: &[(usize, usize)]) -> Vec<Vec<usize>> {
    let mut deps = vec![Vec::new(); n];
    for &(a, b) in raw {
        let (a, b) = (a % n, b % n);
        if a > b && !deps[a].contains(&b) {
            deps[a].push(b);
        }
    }
    deps
}

/// Whether node `i` joins `phase`, from its random mask (some join none).
fn joins(masks: &[u8], i: usize, phase: StopPhase) -> bool {
    masks[i % masks.len()] & (1 << (phase.number() - 1)) != 0
}

/// `closure[a]`: every node `a` depends on, directly or not.
fn transitive(deps: &[Vec<usize>]) -> Vec<Vec<bool>> {
    let mut closure = vec![vec![false; deps.len()]; deps.len()];
    for a in 0..deps.len() {
        // Dependencies have lower indices, so they are complete already.
        for &d in &deps[a] {
            closure[a][d] = true;
            let below = closure[d].clone();
            for (x, reach) in below.into_iter().enumerate() {
                closure[a][x] |= reach;
            }
        }
    }
    closure
}

async fn run_graph(deps: Vec<Vec<usize>>, yields: Vec<u32>, masks: Vec<u8>) -> Journal {
    let journal = Journal::new();
    let roots = deps.iter().filter(|d| d.is_empty()).count();
    // Every root waits for every other root: if roots started one at a
    // time, this barrier would never open and the test would time out.
    let barrier = Arc::new(Barrier::new(roots));
    let mut app = TestApp::builder();
    for (i, ds) in deps.iter().enumerate() {
        let dep_names: Vec<String> = ds.iter().map(|&d| name(d)).collect();
        let dep_refs: Vec<&str> = dep_names.iter().map(String::as_str).collect();
        let start =
            if ds.is_empty() { Behavior::Barrier(barrier.clone()) } else { Behavior::Yield(yields[i % yields.len()]) };
        let mut probe = Probe::new(&name(i)).depends_on(&dep_refs).on_start(start).journal(&journal);
        for phase in StopPhase::ALL.into_iter().filter(|&p| joins(&masks, i, p)) {
            probe = probe.on(phase, Behavior::Yield(yields[(i + phase.number() as usize) % yields.len()]));
        }
        app = app.component(probe);
    }
    let app = tokio::time::timeout(Duration::from_secs(20), app.start())
        .await
        .expect("start deadlocked: independent components did not start concurrently")
        .unwrap_or_else(|e| panic!("start failed: {e:?}"));
    let report = app.shutdown().await;
    assert!(report.is_clean(), "{:?}", report.problems);
    journal
}

fn check(deps: &[Vec<usize>], masks: &[u8], journal: &Journal) {
    let seq = |i: usize, step, edge| {
        journal.seq(&name(i), step, edge).unwrap_or_else(|| panic!("{} never did {step:?} {edge:?}", name(i)))
    };
    for (a, ds) in deps.iter().enumerate() {
        for &d in ds {
            assert!(
                seq(a, Step::Start, Edge::Begin) > seq(d, Step::Ready, Edge::End),
                "{} started before its dependency {} was ready",
                name(a),
                name(d)
            );
        }
    }
    // Stop order holds through components that do not join a phase.
    let closure = transitive(deps);
    for phase in StopPhase::ALL {
        for (a, reaches) in closure.iter().enumerate() {
            assert_eq!(journal.did(&name(a), Step::Stop(phase)), joins(masks, a, phase), "{} in {phase}", name(a));
            for d in (0..deps.len()).filter(|&d| reaches[d]) {
                if joins(masks, a, phase) && joins(masks, d, phase) {
                    assert!(
                        seq(a, Step::Stop(phase), Edge::End) < seq(d, Step::Stop(phase), Edge::Begin),
                        "in {phase}, {} had not stopped when {} (which it depends on) began",
                        name(a),
                        name(d)
                    );
                }
            }
        }
    }
    let in_phase = |phase| (0..deps.len()).filter(move |&i| joins(masks, i, phase));
    for (i, earlier) in StopPhase::ALL.iter().enumerate() {
        for later in &StopPhase::ALL[i + 1..] {
            let last_end = in_phase(*earlier).map(|i| seq(i, Step::Stop(*earlier), Edge::End)).max();
            let first_begin = in_phase(*later).map(|i| seq(i, Step::Stop(*later), Edge::Begin)).min();
            if let (Some(end), Some(begin)) = (last_end, first_begin) {
                assert!(end < begin, "phase {earlier} overlapped phase {later}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn start_and_stop_follow_the_graph(
        n in 1usize..30,
        edges in proptest::collection::vec((0usize..30, 0usize..30), 0..80),
        yields in proptest::collection::vec(0u32..3, 1..5),
        masks in proptest::collection::vec(0u8..32, 1..8),
    ) {
        let deps = dag(n, &edges);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let journal = rt.block_on(run_graph(deps.clone(), yields, masks.clone()));
        check(&deps, &masks, &journal);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_components_stop_concurrently_within_a_phase() {
    // Three independent components meet at a barrier in their drain; a
    // serial drain would never open it.
    let barrier = Arc::new(Barrier::new(3));
    let mut app = TestApp::builder();
    for n in ["a", "b", "c"] {
        app = app.component(Probe::new(n).on(StopPhase::Drain, Behavior::Barrier(barrier.clone())));
    }
    let app = app.start().await.unwrap();
    let report = tokio::time::timeout(Duration::from_secs(10), app.shutdown()).await.expect("drain ran serially");
    assert!(report.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_join_only_the_phases_they_override() {
    let journal = Journal::new();
    let app = TestApp::builder()
        .component(Probe::new("only_close").joins(StopPhase::Close).journal(&journal))
        .start()
        .await
        .unwrap();
    app.shutdown().await;
    let stopping: Vec<_> =
        app.timeline().of_kind(orderly::events::EventKind::Stopping).into_iter().map(|e| e.phase).collect();
    assert_eq!(stopping, vec![Some(orderly::phase::Phase::Stop(StopPhase::Close))]);
    assert!(journal.did("only_close", Step::Stop(StopPhase::Close)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_waits_for_its_dependency_to_become_ready() {
    let journal = Journal::new();
    let app = TestApp::builder()
        .component(Probe::new("cache").not_ready_for(3).journal(&journal))
        .component(Probe::new("api").depends_on(&["cache"]).journal(&journal))
        .start()
        .await
        .unwrap();
    assert!(journal.seq("api", Step::Start, Edge::Begin) > journal.seq("cache", Step::Ready, Edge::End));
    // Why it waited is on the timeline once, not once per poll.
    let waits = app.timeline().of_kind(orderly::events::EventKind::NotReady);
    assert_eq!(waits.len(), 1, "{waits:?}");
    assert_eq!((waits[0].component.as_deref(), waits[0].detail.as_deref()), (Some("cache"), Some("warming up")));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_order_is_the_same_on_every_run_and_follows_names_among_equals() {
    // db <- cache <- {api, worker}; audit is independent. Hooks finish at once.
    let order = || async {
        let journal = Journal::new();
        let app = TestApp::builder()
            .component(Probe::new("worker").depends_on(&["cache"]).joins(StopPhase::Drain).journal(&journal))
            .component(Probe::new("db").joins(StopPhase::Drain).journal(&journal))
            .component(Probe::new("audit").joins(StopPhase::Drain).journal(&journal))
            .component(Probe::new("api").depends_on(&["cache"]).joins(StopPhase::Drain).journal(&journal))
            .component(Probe::new("cache").depends_on(&["db"]).joins(StopPhase::Drain).journal(&journal))
            .start()
            .await
            .unwrap();
        app.shutdown().await;
        journal.who_did(Step::Stop(StopPhase::Drain))
    };
    let first = order().await;
    // Everything with no dependents first, in name order; then what they released.
    assert_eq!(first, vec!["api", "audit", "worker", "cache", "db"]);
    for _ in 0..10 {
        assert_eq!(order().await, first);
    }
}
