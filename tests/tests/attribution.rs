//! Failures are attributed along the graph (issue #18, item 3): when a
//! dependency and its dependent fail close together, in either order, the
//! dependency restarts once with the dependent as its member. The
//! dependent's own failure is not its own: no policy runs for it (not even
//! `on_failure = shutdown`) and nothing is counted against its limit.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orderly::{
    async_trait, events::EventKind, settings::ComponentOverrides, settings::RuntimeSettings, BoxError, Component,
    Dependency, OnFailure, Restart, Runtime, ShutdownReason, StartContext, StopPhase,
};
use orderly_testing::{short_budgets, Edge, Journal, Probe, Step, TaskEnding, TaskSwitch, TestApp};
use tokio::sync::Notify;

/// Which failure reaches the runtime first.
#[derive(Debug, Clone, Copy)]
enum Order {
    DependencyFirst,
    DependentFirst,
}

/// `db` ← `consumer`, each with a background task on its own switch. The
/// consumer may not restart even once on its own account.
async fn start(journal: &Journal, db: &TaskSwitch, consumer: &TaskSwitch, policy: OnFailure) -> TestApp {
    let mut settings = RuntimeSettings { shutdown: short_budgets(Duration::from_secs(2)), ..Default::default() };
    let fast = ComponentOverrides { restart_backoff: Some(Duration::from_millis(1)), ..Default::default() };
    settings.components.insert("db".into(), ComponentOverrides { max_restarts: Some(3), ..fast.clone() });
    settings.components.insert("consumer".into(), ComponentOverrides { max_restarts: Some(0), ..fast });
    let consumer = Probe::new("consumer").depends_on(&["db"]).restartable().background_task(consumer);
    let consumer = match policy {
        OnFailure::Restart => consumer.restarts(Restart::Transient),
        other => consumer.on_failure(other),
    };
    TestApp::builder()
        .component(
            Probe::new("db").restarts(Restart::Transient).background_task(db).joins(StopPhase::Close).journal(journal),
        )
        .component(consumer.joins(StopPhase::StopWorkers).journal(journal))
        .configure(|b| b.settings(settings))
        .start()
        .await
        .unwrap_or_else(|e| panic!("start failed: {e:?}"))
}

async fn wait_for(app: &TestApp, kind: EventKind) {
    for _ in 0..2000 {
        if !app.timeline().of_kind(kind).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("no {kind} event: {:#?}", app.timeline().events());
}

fn starts(journal: &Journal, name: &str) -> usize {
    journal.entries().iter().filter(|e| e.component == name && e.step == Step::Start && e.edge == Edge::Begin).count()
}

async fn fail_together(order: Order, policy: OnFailure) {
    let (journal, db, consumer) = (Journal::new(), TaskSwitch::new(), TaskSwitch::new());
    let app = start(&journal, &db, &consumer, policy).await;
    let (first, second) = match order {
        Order::DependencyFirst => (&db, &consumer),
        Order::DependentFirst => (&consumer, &db),
    };
    first.flip(TaskEnding::Fail("first".into()));
    // Close together, but each served on its own.
    tokio::time::sleep(Duration::from_millis(3)).await;
    second.flip(TaskEnding::Fail("second".into()));
    wait_for(&app, EventKind::Restarted).await;
    // Anything that would still happen for the consumer's failure has had its time.
    tokio::time::sleep(Duration::from_millis(150)).await;

    let context = format!("{order:?}, {policy:?}: {:#?}", app.timeline().events());
    assert!(app.runtime().shutdown_handle().reason().is_none(), "the app must not shut down: {context}");
    let restarting = app.timeline().of_kind(EventKind::Restarting);
    assert_eq!(restarting.len(), 1, "one restart: {context}");
    assert_eq!(restarting[0].component.as_deref(), Some("db"), "{context}");
    assert!(restarting[0].detail.as_deref().unwrap_or_default().contains("consumer"), "{context}");
    let restarted = app.timeline().of_kind(EventKind::Restarted);
    assert_eq!(restarted.len(), 1, "{context}");
    assert_eq!(restarted[0].component.as_deref(), Some("db"), "{context}");
    assert!(app.timeline().of_kind(EventKind::RestartLimitExceeded).is_empty(), "{context}");
    assert!(app.timeline().of_kind(EventKind::Failed).is_empty(), "{context}");
    assert_eq!((starts(&journal, "db"), starts(&journal, "consumer")), (2, 2), "each started twice: {context}");
    assert!(app.runtime().health().readiness(Duration::from_secs(1)).await.ready, "{context}");

    // Nothing was counted against the consumer: its own failure now is its
    // first, and with a limit of zero it escalates, naming it.
    if policy == OnFailure::Restart {
        consumer.flip(TaskEnding::Fail("its own".into()));
        wait_for(&app, EventKind::RestartLimitExceeded).await;
        let exceeded = app.timeline().of_kind(EventKind::RestartLimitExceeded);
        assert_eq!(exceeded[0].component.as_deref(), Some("consumer"), "{context}");
        let history = exceeded[0].error.as_deref().unwrap_or_default();
        assert!(history.contains("its own") && !history.contains("first") && !history.contains("second"), "{history}");
    }
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dependency_restarts_once_whichever_failure_arrives_first() {
    for order in [Order::DependencyFirst, Order::DependentFirst] {
        fail_together(order, OnFailure::Restart).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_that_would_shut_the_app_down_goes_down_with_its_dependency_instead() {
    for order in [Order::DependencyFirst, Order::DependentFirst] {
        fail_together(order, OnFailure::Shutdown).await;
    }
}

/// A database whose background task dies when told to, and is down from then
/// until its next start.
struct Database {
    down: Arc<AtomicBool>,
    crash: Arc<Notify>,
}

#[async_trait]
impl Component for Database {
    fn name(&self) -> &str {
        "db"
    }

    fn restart(&self) -> Restart {
        Restart::Transient
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        self.down.store(false, Ordering::SeqCst);
        let (down, crash) = (self.down.clone(), self.crash.clone());
        ctx.spawn(async move {
            crash.notified().await;
            down.store(true, Ordering::SeqCst);
            Err::<(), BoxError>("connection reset".into())
        });
        Ok(())
    }
}

/// Its second start (the one its own restart makes) fails because the
/// database went down meanwhile; every other start succeeds.
struct Consumer {
    db_down: Arc<AtomicBool>,
    runs: AtomicU32,
    restarting: Arc<Notify>,
    crash: Arc<Notify>,
}

#[async_trait]
impl Component for Consumer {
    fn name(&self) -> &str {
        "consumer"
    }

    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::named("db")]
    }

    fn restart(&self) -> Restart {
        Restart::Transient
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        if self.runs.fetch_add(1, Ordering::SeqCst) == 1 {
            self.restarting.notify_one();
            for _ in 0..2000 {
                if self.db_down.load(Ordering::SeqCst) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            // Long enough for the database's failure to reach the runtime.
            tokio::time::sleep(Duration::from_millis(20)).await;
            return Err("the database is gone".into());
        }
        let crash = self.crash.clone();
        ctx.spawn(async move {
            crash.notified().await;
            Err::<(), BoxError>("its own crash".into())
        });
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependents_restart_yields_when_its_dependency_fails_during_it() {
    let down = Arc::new(AtomicBool::new(false));
    let (crash, restarting, own_crash) = (Arc::new(Notify::new()), Arc::new(Notify::new()), Arc::new(Notify::new()));
    let consumer = Arc::new(Consumer {
        db_down: down.clone(),
        runs: AtomicU32::new(0),
        restarting: restarting.clone(),
        crash: own_crash.clone(),
    });
    let mut settings = RuntimeSettings { shutdown: short_budgets(Duration::from_secs(2)), ..Default::default() };
    // One restart of its own, and its failed start would be a second.
    let once =
        ComponentOverrides { max_restarts: Some(1), restart_backoff: Some(Duration::ZERO), ..Default::default() };
    settings.components.insert("consumer".into(), once.clone());
    settings.components.insert("db".into(), once);
    let runtime = Runtime::builder()
        .component(Database { down, crash: crash.clone() })
        .component_arc(consumer.clone())
        .settings(settings)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    runtime.start().await.unwrap_or_else(|e| panic!("{e}"));

    own_crash.notify_one();
    restarting.notified().await;
    crash.notify_one();
    for _ in 0..2000 {
        if !runtime.timeline().of_kind(EventKind::Restarted).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    let context = format!("{:#?}", runtime.timeline().events());
    assert!(runtime.shutdown_handle().reason().is_none(), "no escalation: {context}");
    let who = |kind| -> Vec<String> {
        runtime.timeline().of_kind(kind).iter().filter_map(|e| e.component.as_deref().map(str::to_string)).collect()
    };
    assert_eq!(who(EventKind::Restarting), ["consumer", "db"], "{context}");
    assert_eq!(who(EventKind::Restarted), ["db"], "the consumer's restart yielded: {context}");
    let db_restart = &runtime.timeline().of_kind(EventKind::Restarting)[1];
    assert!(db_restart.detail.as_deref().unwrap_or_default().contains("consumer"), "{context}");
    assert_eq!(consumer.runs.load(Ordering::SeqCst), 3, "{context}");
    assert!(runtime.health().readiness(Duration::from_secs(1)).await.ready, "{context}");
    let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    assert!(report.is_clean(), "{report:?}");
}
