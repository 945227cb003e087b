//! Enabling and disabling components while the app runs
//! (`Runtime::reload` with `ReloadChange::enable` / `disable`): a disabled
//! component stays in the graph, not started; enabling starts it along the
//! graph and restarts its running optional dependents to see it; disabling
//! stops it and them, and they start again without it; every problem is
//! found before anything stops; a start that fails undoes the whole shift.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use orderly::{
    async_trait, graph::GraphFormat, runtime::ReloadChange, settings::ComponentSettings, BoxError, Component,
    Dependency, Runtime, ShutdownReason, StartContext, StopPhase,
};
use orderly_testing::{Behavior, Edge, Journal, Probe, Step};
use tokio::sync::Barrier;

fn disabled() -> Option<ComponentSettings> {
    Some(ComponentSettings { enabled: false, ..Default::default() })
}

/// Declares `audit` optional and records, at each start, whether it got it.
#[derive(Default)]
struct Api {
    saw: Arc<Mutex<Vec<bool>>>,
}

#[async_trait]
impl Component for Api {
    fn name(&self) -> &str {
        "api"
    }
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::named("store"), Dependency::named("audit").optional()]
    }
    fn restartable(&self) -> bool {
        true
    }
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        self.saw.lock().unwrap().push(ctx.dependency::<Probe>().is_ok_and(|found| found.name() == "audit"));
        Ok(())
    }
}

fn starts(journal: &Journal, name: &str) -> usize {
    journal.entries().iter().filter(|e| e.component == name && e.step == Step::Start && e.edge == Edge::Begin).count()
}

fn stops(journal: &Journal, name: &str, phase: StopPhase) -> usize {
    let stop = Step::Stop(phase);
    journal.entries().iter().filter(|e| e.component == name && e.step == stop && e.edge == Edge::End).count()
}

async fn ready_components(runtime: &Runtime) -> Vec<String> {
    let report = runtime.health().readiness(Duration::from_secs(1)).await;
    assert!(report.ready, "{report:?}");
    report.components.into_iter().map(|(name, _)| name).collect()
}

/// `store`, `api` (needs `store`, takes `audit` if there is one) and
/// `audit` (needs `store`), disabled unless `audit_enabled`.
fn app(journal: &Journal, saw: &Arc<Mutex<Vec<bool>>>, audit_enabled: bool) -> Runtime {
    let audit = Probe::new("audit").depends_on(&["store"]).joins(StopPhase::Flush).journal(journal);
    Runtime::builder()
        .component(Probe::new("store").joins(StopPhase::Close).journal(journal))
        .component(Api { saw: saw.clone() })
        .component_named("audit", Arc::new(audit), if audit_enabled { None } else { disabled() })
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_disabled_component_waits_in_the_graph_and_a_reload_starts_it_along_the_graph() {
    let (journal, saw) = (Journal::new(), Arc::new(Mutex::new(Vec::new())));
    let runtime = app(&journal, &saw, false);
    assert!(runtime.render_graph(GraphFormat::Mermaid).contains("audit[\"audit (disabled)\"]"));
    assert_eq!(runtime.component_names(), ["api", "store"]);
    assert_eq!(runtime.disabled_components(), ["audit"]);
    runtime.start().await.unwrap();
    assert_eq!(starts(&journal, "audit"), 0, "a disabled component does not start");
    assert_eq!(ready_components(&runtime).await, ["api", "store"], "nor is it asked by the probes");
    assert_eq!(*saw.lock().unwrap(), [false], "nor is it anyone's dependency");

    let enabled = Journal::new();
    let audit = Probe::new("audit").depends_on(&["store"]).joins(StopPhase::Flush).journal(&enabled);
    let report = runtime.reload(vec![ReloadChange::enable("audit", Arc::new(audit))]).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.enabled, ["audit"]);
    assert_eq!(
        (starts(&journal, "audit"), starts(&enabled, "audit")),
        (0, 1),
        "the value built from the new config runs"
    );
    assert_eq!(starts(&journal, "store"), 1, "its dependency runs on");
    assert_eq!(*saw.lock().unwrap(), [false, true], "its optional dependent started again, and has it");
    assert_eq!(ready_components(&runtime).await, ["api", "audit", "store"]);
    assert_eq!(runtime.component_names(), ["api", "audit", "store"]);
    assert!(runtime.component_settings("audit").unwrap().enabled);

    // The shutdown stops it too, before the store it needs.
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
    assert_eq!(stops(&enabled, "audit", StopPhase::Flush), 1);
    assert_eq!(stops(&journal, "store", StopPhase::Close), 1);
}

#[tokio::test]
async fn disabling_stops_it_and_its_optional_dependents_start_again_without_it() {
    let (journal, saw) = (Journal::new(), Arc::new(Mutex::new(Vec::new())));
    let runtime = app(&journal, &saw, true);
    runtime.start().await.unwrap();
    assert_eq!(*saw.lock().unwrap(), [true]);

    let copy = Probe::new("audit").depends_on(&["store"]).joins(StopPhase::Flush);
    let report = runtime.reload(vec![ReloadChange::disable("audit", Arc::new(copy))]).await;
    assert!(report.is_complete(), "{report:?}");
    assert_eq!(report.disabled, ["audit"]);
    assert_eq!(stops(&journal, "audit", StopPhase::Flush), 1, "it stopped through its phases");
    assert_eq!(*saw.lock().unwrap(), [true, false], "its optional dependent started again without it");
    assert_eq!(ready_components(&runtime).await, ["api", "store"]);
    assert_eq!(runtime.restart("audit", "a test").await.unwrap_err(), "`audit` is disabled: it does not run");

    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
    assert_eq!(stops(&journal, "audit", StopPhase::Flush), 1, "a disabled component is not stopped again");
}

#[tokio::test]
async fn disabling_what_a_running_component_requires_is_refused_before_anything_stops() {
    let (journal, saw) = (Journal::new(), Arc::new(Mutex::new(Vec::new())));
    let runtime = app(&journal, &saw, true);
    runtime.start().await.unwrap();

    let store = Probe::new("store").joins(StopPhase::Close);
    let report = runtime.reload(vec![ReloadChange::disable("store", Arc::new(store))]).await;
    assert!(!report.is_complete() && report.refused, "{report:?}");
    for who in ["api", "audit"] {
        let problem = format!("component `{who}` requires `store`, which would be disabled");
        assert!(report.failed.iter().any(|p| p.starts_with(&problem)), "{problem}: {report:?}");
    }
    assert!(journal.who_did(Step::Stop(StopPhase::Close)).is_empty(), "nothing stopped");
    assert_eq!(starts(&journal, "store"), 1);
    assert_eq!(ready_components(&runtime).await, ["api", "audit", "store"]);

    // The lifecycle settings say the same before a SIGHUP applies anything.
    let off = ComponentSettings { enabled: false, ..Default::default() };
    let problems = runtime.check_settings(&[("store".into(), off)]).unwrap_err();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(runtime.check_settings(&[("audit".into(), off)]).is_ok(), "api declared audit optional");
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
}

#[tokio::test]
async fn an_enabled_component_that_fails_to_start_undoes_the_whole_shift() {
    let (journal, saw) = (Journal::new(), Arc::new(Mutex::new(Vec::new())));
    let runtime = Runtime::builder()
        .component(Probe::new("store").joins(StopPhase::Close).journal(&journal))
        .component(Api { saw: saw.clone() })
        .component(Probe::new("mailer").restartable().joins(StopPhase::Close).journal(&journal))
        .component_named("audit", Arc::new(Probe::new("audit")), disabled())
        .build()
        .unwrap();
    runtime.start().await.unwrap();

    // Disable `mailer` and enable an `audit` that cannot start, together.
    let fresh = Journal::new();
    let mailer = Probe::new("mailer").restartable().joins(StopPhase::Close).journal(&fresh);
    let broken = Probe::new("audit").on_start(Behavior::Fail("no route to the audit log".into()));
    let report = runtime
        .reload(vec![
            ReloadChange::disable("mailer", Arc::new(mailer)),
            ReloadChange::enable("audit", Arc::new(broken)),
        ])
        .await;
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert!(!report.refused, "tried, and undone: {report:?}");
    assert!(report.failed[0].contains("no route to the audit log"), "{report:?}");
    assert!(report.enabled.is_empty() && report.disabled.is_empty(), "{report:?}");
    assert_eq!(stops(&journal, "mailer", StopPhase::Close), 1, "mailer had stopped");
    assert_eq!(starts(&fresh, "mailer"), 1, "a fresh copy of the config in force runs again");
    // api stopped to take audit in, never started with it (audit failed
    // first), and started again as it was.
    assert_eq!(*saw.lock().unwrap(), [false, false], "api runs again, without audit");
    assert_eq!(ready_components(&runtime).await, ["api", "mailer", "store"]);
    assert_eq!(runtime.disabled_components(), ["audit"]);
    assert!(runtime.shutdown_handle().reason().is_none(), "the app goes on");
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
}

#[tokio::test]
async fn the_app_stays_ready_while_a_leaf_is_enabled_or_disabled() {
    let runtime = Runtime::builder()
        .component(Probe::new("store"))
        .component_named("audit", Arc::new(Probe::new("audit")), disabled())
        .build()
        .unwrap();
    runtime.start().await.unwrap();

    // Its start waits at a barrier: meanwhile, the app is as ready as it was.
    let (starting, draining, journal) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)), Journal::new());
    let slow = Probe::new("audit")
        .on_start(Behavior::Barrier(starting.clone()))
        .on(StopPhase::Drain, Behavior::Barrier(draining.clone()))
        .journal(&journal);
    let reloading = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.reload(vec![ReloadChange::enable("audit", Arc::new(slow))]).await }
    });
    while starts(&journal, "audit") == 0 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(ready_components(&runtime).await, ["store"], "not asked until it is ready");
    starting.wait().await;
    assert!(reloading.await.unwrap().is_complete());
    assert_eq!(ready_components(&runtime).await, ["audit", "store"]);

    // Its drain waits at a barrier: it is out of the probes already.
    let reloading = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.reload(vec![ReloadChange::disable("audit", Arc::new(Probe::new("audit")))]).await }
    });
    while !journal.did("audit", Step::Stop(StopPhase::Drain)) {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(ready_components(&runtime).await, ["store"], "no longer asked while it stops");
    draining.wait().await;
    assert!(reloading.await.unwrap().is_complete());
    assert_eq!(ready_components(&runtime).await, ["store"]);
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
}

#[tokio::test]
async fn a_component_that_ran_and_cannot_start_twice_is_not_enabled_again() {
    let runtime = Runtime::builder().component(Probe::new("store")).component(Probe::new("audit")).build().unwrap();
    runtime.start().await.unwrap();
    let report = runtime.reload(vec![ReloadChange::disable("audit", Arc::new(Probe::new("audit")))]).await;
    assert!(report.is_complete(), "{report:?}");
    let report = runtime.reload(vec![ReloadChange::enable("audit", Arc::new(Probe::new("audit")))]).await;
    assert!(report.refused && report.failed.len() == 1, "{report:?}");
    assert!(report.failed[0].contains("`audit` ran before in this process"), "{report:?}");
    assert_eq!(ready_components(&runtime).await, ["store"]);
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
}

#[tokio::test]
async fn a_disabled_component_that_could_not_run_is_left_out_and_enabling_it_says_why() {
    let runtime = Runtime::builder()
        .component(Probe::new("store"))
        .component_named("audit", Arc::new(Probe::new("audit").depends_on(&["ledger"])), disabled())
        .build()
        .expect("a disabled component's problems fail nothing");
    assert!(runtime.disabled_components().is_empty(), "left out of the graph");
    runtime.start().await.unwrap();
    let report = runtime.reload(vec![ReloadChange::enable("audit", Arc::new(Probe::new("audit")))]).await;
    assert_eq!(
        report.failed,
        ["component `audit` cannot be enabled: component `audit` depends on `ledger`, but no component has that name"]
    );
    let on = ComponentSettings::default();
    assert!(runtime.check_settings(&[("audit".into(), on)]).unwrap_err()[0].contains("depends on `ledger`"));
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
}
