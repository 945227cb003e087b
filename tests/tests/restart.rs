//! Restarts: a component whose background task fails is restarted along
//! the graph (its dependents stopped first, in reverse order, through their
//! stop phases; then it, then they, started again in order), within its
//! restart limit; past the limit the app shuts down. Restart types, the
//! build-time checks, readiness while restarting, and a property test that
//! races restarts against a shutdown.

use std::sync::Arc;
use std::time::Duration;

use orderly::{
    events::EventKind, phase::Phase, runtime::BuildError, settings::ComponentOverrides, settings::RuntimeSettings,
    OnFailure, Readiness, Restart, Runtime, ShutdownReason, StopPhase,
};
use orderly_testing::{short_budgets, Behavior, Edge, Journal, Probe, Step, TaskEnding, TaskSwitch, TestApp};
use proptest::prelude::*;

/// `queue` ← `consumer` ← `api`, and `metrics` beside them. Only `queue`
/// restarts; its dependents are restartable; `metrics` is neither.
fn service(journal: &Journal, switch: &TaskSwitch, queue: Restart) -> Vec<Probe> {
    vec![
        Probe::new("queue").restarts(queue).background_task(switch).joins(StopPhase::Close).journal(journal),
        Probe::new("consumer").depends_on(&["queue"]).restartable().joins(StopPhase::StopWorkers).journal(journal),
        Probe::new("api").depends_on(&["consumer"]).restartable().joins(StopPhase::StopAccepting).journal(journal),
        Probe::new("metrics").joins(StopPhase::Flush).journal(journal),
    ]
}

/// Fast restarts: the tests assert order, not time.
fn fast_restarts(max_restarts: u32) -> RuntimeSettings {
    let mut settings = RuntimeSettings { shutdown: short_budgets(Duration::from_secs(2)), ..Default::default() };
    settings.components.insert(
        "queue".into(),
        ComponentOverrides {
            max_restarts: Some(max_restarts),
            restart_backoff: Some(Duration::from_millis(1)),
            ..Default::default()
        },
    );
    settings
}

async fn start(probes: Vec<Probe>, settings: RuntimeSettings) -> TestApp {
    let mut builder = TestApp::builder();
    for probe in probes {
        builder = builder.component(probe);
    }
    builder.configure(|b| b.settings(settings)).start().await.unwrap()
}

/// Waits until the timeline holds `count` events of `kind`.
async fn wait_for(app: &TestApp, kind: EventKind, count: usize) -> Vec<orderly::events::LifecycleEvent> {
    for _ in 0..2000 {
        let found = app.timeline().of_kind(kind);
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    panic!("fewer than {count} {kind} events: {:#?}", app.timeline().events());
}

/// The journal's steps from sequence number `from` on, as `component step` words.
fn steps_since(journal: &Journal, from: usize) -> Vec<String> {
    journal
        .entries()
        .into_iter()
        .filter(|e| e.seq >= from && e.edge == Edge::Begin && e.step != Step::Ready)
        .map(|e| match e.step {
            Step::Start => format!("{} start", e.component),
            Step::Stop(p) => format!("{} {}", e.component, p.as_str()),
            Step::Ready => unreachable!(),
        })
        .collect()
}

fn restarts_metric(runtime: &Runtime, component: &str) -> f64 {
    runtime
        .metrics_registry()
        .gather()
        .iter()
        .filter(|f| f.name() == "orderly_component_restarts_total")
        .flat_map(|f| f.get_metric())
        .find(|m| m.get_label().iter().any(|l| l.name() == "component" && l.value() == component))
        .map_or(0.0, |m| m.get_counter().get_value())
}

#[tokio::test]
async fn a_failed_component_restarts_with_its_dependents_in_graph_order() {
    for ending in [TaskEnding::Fail("lost the broker connection".into()), TaskEnding::Panic("broker frame".into())] {
        let (journal, switch) = (Journal::new(), TaskSwitch::new());
        let app = start(service(&journal, &switch, Restart::Transient), fast_restarts(3)).await;
        let before = journal.entries().len();

        switch.flip(ending.clone());
        let restarted = wait_for(&app, EventKind::Restarted, 1).await;

        // Dependents stop first, in reverse order and through their phases;
        // then the component and its dependents start again, in order.
        // `metrics`, which does not depend on it, is left alone.
        assert_eq!(
            steps_since(&journal, before),
            [
                "api stop_accepting",
                "consumer stop_workers",
                "queue close",
                "queue start",
                "consumer start",
                "api start"
            ],
            "{ending:?}"
        );
        let restarting = &app.timeline().of_kind(EventKind::Restarting)[0];
        assert_eq!(restarting.component.as_deref(), Some("queue"));
        let cause = restarting.error.as_deref().unwrap_or_default();
        assert!(cause.contains("lost the broker connection") || cause.contains("panicked: broker frame"), "{cause}");
        let detail = restarting.detail.as_deref().unwrap_or_default();
        assert!(detail.contains("restart 1 of 3") && detail.contains("consumer") && detail.contains("api"), "{detail}");
        assert!(!detail.contains("metrics"), "{detail}");
        assert!(restarted[0].elapsed.is_some());
        // A restart is not a shutdown: no app-wide phase events, the app still runs.
        assert!(app.timeline().of_kind(EventKind::PhaseStarted).is_empty());
        assert!(app.runtime().shutdown_handle().reason().is_none());
        assert!(app.runtime().health().readiness(Duration::from_secs(1)).await.ready);
        assert_eq!(restarts_metric(app.runtime(), "queue"), 1.0);

        // The restarted component is supervised again: its new task's failure restarts it again.
        switch.flip(TaskEnding::Fail("again".into()));
        wait_for(&app, EventKind::Restarted, 2).await;
        assert!(app.shutdown().await.is_clean());
        // Each component stopped once per start: nothing left running, nothing stopped twice.
        for name in ["queue", "consumer", "api"] {
            let starts = journal
                .entries()
                .iter()
                .filter(|e| e.component == name && e.step == Step::Start && e.edge == Edge::Begin)
                .count();
            assert_eq!(starts, 3, "{name}");
        }
    }
}

#[tokio::test]
async fn while_it_restarts_readiness_names_the_reason_and_liveness_stays_up() {
    let (journal, switch) = (Journal::new(), TaskSwitch::new());
    // `api`'s starts wait at the barrier: the test holds the restart there.
    let gate = Arc::new(tokio::sync::Barrier::new(2));
    let mut probes = service(&journal, &switch, Restart::Transient);
    probes[2] = Probe::new("api")
        .depends_on(&["consumer"])
        .restartable()
        .on_start(Behavior::Barrier(gate.clone()))
        .journal(&journal);
    let first_start = tokio::spawn({
        let gate = gate.clone();
        async move { gate.wait().await }
    });
    let app = start(probes, fast_restarts(3)).await;
    first_start.await.unwrap();

    switch.flip(TaskEnding::Fail("lost the broker connection".into()));
    // Wait until api's second start is held at the gate.
    for _ in 0..2000 {
        let api_starts =
            |e: &&orderly_testing::Entry| e.component == "api" && e.step == Step::Start && e.edge == Edge::Begin;
        if journal.entries().iter().filter(api_starts).count() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let report = app.runtime().health().readiness(Duration::from_secs(1)).await;
    assert!(!report.ready, "{report:?}");
    assert_eq!(report.state, orderly::health::AppState::Running, "liveness is untouched");
    let of = |name: &str| report.components.iter().find(|(n, _)| n == name).map(|(_, r)| r.clone());
    assert!(
        matches!(of("queue"), Some(Readiness::NotReady(r)) if r.contains("restarting: lost the broker connection"))
    );
    assert!(matches!(of("api"), Some(Readiness::NotReady(r)) if r.contains("restarting with `queue`")));
    assert_eq!(of("metrics"), Some(Readiness::Ready));

    gate.wait().await;
    wait_for(&app, EventKind::Restarted, 1).await;
    assert!(app.runtime().health().readiness(Duration::from_secs(1)).await.ready);
    assert!(app.shutdown().await.is_clean());
}

#[tokio::test]
async fn two_failures_within_a_limit_of_three_recover() {
    let (journal, switch) = (Journal::new(), TaskSwitch::new());
    let app = start(service(&journal, &switch, Restart::Transient), fast_restarts(3)).await;
    for round in 1..=2 {
        switch.flip(TaskEnding::Panic(format!("crash {round}")));
        wait_for(&app, EventKind::Restarted, round).await;
    }
    assert!(app.timeline().of_kind(EventKind::RestartLimitExceeded).is_empty());
    assert!(app.runtime().shutdown_handle().reason().is_none());
    assert_eq!(restarts_metric(app.runtime(), "queue"), 2.0);
    assert!(app.shutdown().await.is_clean());
}

#[tokio::test]
async fn past_the_limit_the_app_gives_up_and_runs_the_five_phases() {
    let (journal, switch) = (Journal::new(), TaskSwitch::new());
    let app = start(service(&journal, &switch, Restart::Transient), fast_restarts(1)).await;
    switch.flip(TaskEnding::Fail("first".into()));
    wait_for(&app, EventKind::Restarted, 1).await;
    let before = journal.entries().len();
    switch.flip(TaskEnding::Fail("second".into()));
    let exceeded = wait_for(&app, EventKind::RestartLimitExceeded, 1).await;

    let history = exceeded[0].error.clone().unwrap_or_default();
    assert!(history.contains("more than 1 restart(s) within 10s"), "{history}");
    assert!(history.contains("ago: first") && history.contains("now: second"), "{history}");
    let reason = app.runtime().shutdown_handle().reason();
    assert!(matches!(&reason, Some(ShutdownReason::RestartLimitExceeded { component, .. }) if component == "queue"));
    assert!(reason.is_some_and(|r| r.is_failure()));
    // Nothing was restarted the second time: the shutdown stops everything, in the five phases.
    let report = app.shutdown().await;
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.phases.len(), 5);
    assert_eq!(
        steps_since(&journal, before),
        ["api stop_accepting", "consumer stop_workers", "metrics flush", "queue close"]
    );
}

#[tokio::test]
async fn transient_ignores_a_clean_return_and_permanent_restarts_after_it() {
    for (restart, restarts) in [(Restart::Transient, false), (Restart::Permanent, true)] {
        let (journal, switch) = (Journal::new(), TaskSwitch::new());
        let app = start(service(&journal, &switch, restart), fast_restarts(3)).await;
        switch.flip(TaskEnding::Return);
        if restarts {
            let restarting = wait_for(&app, EventKind::Restarting, 1).await;
            assert!(restarting[0].error.as_deref().is_some_and(|e| e.contains("permanent")), "{restarting:?}");
            wait_for(&app, EventKind::Restarted, 1).await;
        } else {
            // Give a wrongly scheduled restart every chance to show up, then check it did not.
            tokio::time::sleep(Duration::from_millis(100)).await;
            assert!(app.timeline().of_kind(EventKind::Restarting).is_empty(), "{restart:?}");
        }
        assert!(app.runtime().shutdown_handle().reason().is_none(), "{restart:?}");
        assert!(app.shutdown().await.is_clean());
    }
}

#[tokio::test]
async fn temporary_keeps_the_failure_policy_a_failure_shuts_down() {
    let (journal, switch) = (Journal::new(), TaskSwitch::new());
    let app = start(service(&journal, &switch, Restart::Temporary), fast_restarts(3)).await;
    switch.flip(TaskEnding::Fail("lost the broker connection".into()));
    let reason = tokio::time::timeout(Duration::from_secs(10), app.runtime().shutdown_handle().wait())
        .await
        .expect("a temporary component's failure requests a shutdown");
    assert!(matches!(reason, ShutdownReason::ComponentFailed { ref component, .. } if component == "queue"));
    assert!(app.timeline().of_kind(EventKind::Restarting).is_empty());
    assert!(app.shutdown().await.is_clean());
}

#[tokio::test]
async fn on_failure_restart_in_config_makes_a_restartable_component_restart() {
    let (journal, switch) = (Journal::new(), TaskSwitch::new());
    let mut settings = fast_restarts(3);
    settings.components.get_mut("queue").unwrap().on_failure = Some(OnFailure::Restart);
    let mut probes = service(&journal, &switch, Restart::Temporary);
    probes[0] = Probe::new("queue").restartable().background_task(&switch).joins(StopPhase::Close).journal(&journal);
    let app = start(probes, settings).await;
    switch.flip(TaskEnding::Fail("lost the broker connection".into()));
    wait_for(&app, EventKind::Restarted, 1).await;
    assert!(app.shutdown().await.is_clean());
}

#[test]
fn a_dependent_that_cannot_start_twice_is_refused_at_build() {
    let switch = TaskSwitch::new();
    let error = Runtime::builder()
        .component(Probe::new("queue").restarts(Restart::Transient).background_task(&switch))
        .component(Probe::new("consumer").depends_on(&["queue"]))
        .component(Probe::new("api").depends_on(&["consumer"]).restartable())
        .build()
        .err()
        .expect("consumer cannot restart");
    let BuildError::Supervision(problems) = &error else { panic!("{error}") };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("component `consumer` depends on `queue`, which restarts"), "{problems:?}");
}

#[test]
fn restarting_a_component_that_cannot_start_twice_or_contradicting_policies_is_refused() {
    let mut settings = RuntimeSettings::default();
    settings
        .components
        .insert("plain".into(), ComponentOverrides { restart: Some(Restart::Transient), ..Default::default() });
    settings.components.insert(
        "torn".into(),
        ComponentOverrides {
            restart: Some(Restart::Permanent),
            on_failure: Some(OnFailure::Ignore),
            ..Default::default()
        },
    );
    let error = Runtime::builder()
        .component(Probe::new("plain"))
        .component(Probe::new("torn").restartable())
        .settings(settings)
        .build()
        .err()
        .expect("both are refused");
    let text = error.to_string();
    assert!(text.contains("component `plain` is set to restart, but its type cannot start twice"), "{text}");
    assert!(text.contains("component `torn`: on_failure = \"ignore\" contradicts restart = \"permanent\""), "{text}");
}

/// A random graph (edges from lower to higher index), one restarting node,
/// its task failing at a random moment, and a shutdown at another.
#[derive(Debug, Clone)]
struct Race {
    /// `deps[i]`: indices below `i` that node `i` depends on.
    deps: Vec<Vec<usize>>,
    /// Each node's start time, in ms.
    start_ms: Vec<u64>,
    failing: usize,
    fail_after_ms: u64,
    shutdown_after_ms: u64,
    backoff_ms: u64,
}

fn race() -> impl Strategy<Value = Race> {
    (2usize..7)
        .prop_flat_map(|n| {
            let deps = (0..n)
                .map(|i| {
                    proptest::collection::vec(0..i.max(1), 0..=i.min(2))
                        .prop_map(move |d| if i == 0 { vec![] } else { d })
                })
                .collect::<Vec<_>>();
            (deps, proptest::collection::vec(0u64..4, n), 0..n, 0u64..10, 0u64..40, 0u64..6)
        })
        .prop_map(|(deps, start_ms, failing, fail_after_ms, shutdown_after_ms, backoff_ms)| Race {
            deps: deps
                .into_iter()
                .map(|mut d| {
                    d.sort_unstable();
                    d.dedup();
                    d
                })
                .collect(),
            start_ms,
            failing,
            fail_after_ms,
            shutdown_after_ms,
            backoff_ms,
        })
}

async fn run_race(race: Race) -> Result<(), TestCaseError> {
    let (journal, switch) = (Journal::new(), TaskSwitch::new());
    let name = |i: usize| format!("c{i}");
    let mut builder = Runtime::builder();
    for (i, deps) in race.deps.iter().enumerate() {
        let deps: Vec<String> = deps.iter().map(|&d| name(d)).collect();
        let deps: Vec<&str> = deps.iter().map(String::as_str).collect();
        let mut probe = Probe::new(&name(i))
            .depends_on(&deps)
            .restartable()
            .on_start(Behavior::Sleep(Duration::from_millis(race.start_ms[i])))
            .joins(StopPhase::Close)
            .journal(&journal);
        if i == race.failing {
            probe = probe.restarts(Restart::Permanent).background_task(&switch);
        }
        builder = builder.component(probe);
    }
    let mut settings = RuntimeSettings { shutdown: short_budgets(Duration::from_secs(2)), ..Default::default() };
    settings.components.insert(
        name(race.failing),
        ComponentOverrides {
            max_restarts: Some(100),
            restart_backoff: Some(Duration::from_millis(race.backoff_ms)),
            ..Default::default()
        },
    );
    let runtime = builder.settings(settings).build().map_err(|e| TestCaseError::fail(e.to_string()))?;
    runtime.start().await.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;

    // Keep failing (a crash loop) until the shutdown, which comes at its own moment.
    let flipper = tokio::spawn({
        let switch = switch.clone();
        let fail_after = Duration::from_millis(race.fail_after_ms);
        async move {
            loop {
                tokio::time::sleep(fail_after).await;
                switch.flip(TaskEnding::Fail("crash".into()));
                tokio::task::yield_now().await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(race.shutdown_after_ms)).await;
    let report = tokio::time::timeout(Duration::from_secs(20), runtime.shutdown(ShutdownReason::Signal("SIGTERM")))
        .await
        .map_err(|_| TestCaseError::fail("the shutdown did not finish"))?;
    flipper.abort();
    prop_assert!(report.is_clean(), "{:?}", report.problems);

    // Nothing starts after the shutdown began its phases.
    let events = runtime.timeline().events();
    let phases_began = events
        .iter()
        .position(|e| e.event == EventKind::PhaseStarted && e.phase == Some(Phase::Stop(StopPhase::StopAccepting)));
    prop_assert!(phases_began.is_some());
    if let Some(last_start) = events.iter().rposition(|e| e.event == EventKind::Starting) {
        prop_assert!(last_start < phases_began.unwrap_or(0), "a start after the shutdown began: {events:#?}");
    }
    // Exactly what ran was stopped: every completed start has exactly one stop, after it.
    for i in 0..race.deps.len() {
        let steps: Vec<(Step, Edge)> = journal
            .entries()
            .into_iter()
            .filter(|e| e.component == name(i) && e.step != Step::Ready)
            .map(|e| (e.step, e.edge))
            .collect();
        let mut running = false;
        for (step, edge) in &steps {
            match (step, edge) {
                (Step::Start, Edge::End) => {
                    prop_assert!(!running, "c{i} started twice without a stop: {steps:?}");
                    running = true;
                }
                (Step::Stop(StopPhase::Close), Edge::End) => {
                    prop_assert!(running, "c{i} stopped while not running: {steps:?}");
                    running = false;
                }
                _ => {}
            }
        }
        prop_assert!(
            !running,
            "c{i} was left running: {steps:?} {:?}",
            runtime
                .timeline()
                .events()
                .iter()
                .map(|e| format!("{:?} {:?} {:?} {:?}", e.component, e.event, e.phase, e.detail))
                .collect::<Vec<_>>()
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_restart_racing_a_shutdown_stops_exactly_what_runs_and_starts_nothing_after(race in race()) {
        let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        tokio.block_on(run_race(race))?;
    }
}

/// Every run spawns a task that fails at once: a crash loop.
struct CrashLoop;

#[orderly::async_trait]
impl orderly::Component for CrashLoop {
    fn restart(&self) -> Restart {
        Restart::Transient
    }
    async fn start(&self, ctx: &orderly::StartContext) -> Result<(), orderly::BoxError> {
        ctx.spawn(async {
            tokio::task::yield_now().await;
            Err("the link dropped".into())
        });
        Ok(())
    }
}

#[tokio::test]
async fn a_crash_loop_spread_across_components_meets_the_app_wide_intensity_naming_every_one() {
    let mut settings = RuntimeSettings::default();
    for name in ["left", "right"] {
        // Each alone stays far below its own limit.
        let overrides =
            ComponentOverrides { max_restarts: Some(100), restart_backoff: Some(Duration::ZERO), ..Default::default() };
        settings.components.insert(name.into(), overrides);
    }
    settings.supervision = orderly::settings::SupervisionSettings {
        max_restarts: 6,
        restart_period: Duration::from_secs(60),
        ..Default::default()
    };
    let runtime = Runtime::builder()
        .component_named("left", Arc::new(CrashLoop), None)
        .component_named("right", Arc::new(CrashLoop), None)
        .settings(settings)
        .build()
        .unwrap();
    runtime.start().await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(20), runtime.shutdown_handle().wait()).await.unwrap();
    let ShutdownReason::RestartLimitExceeded { error, .. } = &reason else { panic!("{reason:?}") };
    assert!(error.contains("more than 6 restarts across the app within 1m"), "{error}");
    assert!(error.contains("left") && error.contains("right"), "every component named: {error}");
    let report = runtime.shutdown(reason).await;
    assert!(report.is_clean(), "{:?}", report.problems);
}

/// How often `component` began its hook of `phase`.
fn began(journal: &Journal, component: &str, phase: StopPhase) -> usize {
    let step = Step::Stop(phase);
    journal.entries().iter().filter(|e| e.component == component && e.step == step && e.edge == Edge::Begin).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_a_restarts_stop_waits_only_for_the_hook_that_runs_and_stops_the_rest_itself() {
    let (journal, switch) = (Journal::new(), TaskSwitch::new());
    let hung_a_while = Behavior::Sleep(Duration::from_millis(300));
    let probes = vec![
        Probe::new("queue")
            .restarts(Restart::Transient)
            .background_task(&switch)
            .on(StopPhase::Close, hung_a_while.clone())
            .journal(&journal),
        Probe::new("consumer")
            .depends_on(&["queue"])
            .restartable()
            .on(StopPhase::Drain, hung_a_while)
            .journal(&journal),
    ];
    let app = start(probes, fast_restarts(5)).await;
    switch.flip(TaskEnding::Fail("the broker went away".into()));
    // The restart is stopping the consumer: its drain runs.
    for _ in 0..5000 {
        if journal.did("consumer", Step::Stop(StopPhase::Drain)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(journal.did("consumer", Step::Stop(StopPhase::Drain)), "the restart never began its stop");
    let report = app.runtime().shutdown(ShutdownReason::Signal("SIGTERM")).await;

    // The restart finished only the hook it was running: the queue's close
    // (a later phase) ran in the shutdown's own phase 5, not before it.
    let events = app.timeline().events();
    let shutdown_close = events
        .iter()
        .position(|e| e.event == EventKind::PhaseStarted && e.phase == Some(Phase::Stop(StopPhase::Close)))
        .expect("the shutdown's phase 5");
    let queue_close = events
        .iter()
        .position(|e| {
            e.event == EventKind::Stopping
                && e.component.as_deref() == Some("queue")
                && e.phase == Some(Phase::Stop(StopPhase::Close))
        })
        .expect("the queue's close");
    assert!(shutdown_close < queue_close, "the shutdown waited for the restart's later phases: {events:#?}");
    // Every component stopped once: no hook ran twice, none was left out.
    assert_eq!((began(&journal, "consumer", StopPhase::Drain), began(&journal, "queue", StopPhase::Close)), (1, 1));
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.waited_for_restart > Duration::ZERO, "the wait for the restart's drain is reported");
    let queue_starts = journal
        .entries()
        .iter()
        .filter(|e| e.component == "queue" && e.step == Step::Start && e.edge == Edge::Begin)
        .count();
    assert_eq!(queue_starts, 1, "the interrupted restart started nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_a_restarts_backoff_cuts_it_short_and_stops_nothing_twice() {
    let (journal, switch) = (Journal::new(), TaskSwitch::new());
    let mut settings = fast_restarts(5);
    if let Some(queue) = settings.components.get_mut("queue") {
        queue.restart_backoff = Some(Duration::from_secs(60));
        queue.restart_backoff_max = Some(Duration::from_secs(60));
    }
    let app = start(service(&journal, &switch, Restart::Transient), settings).await;
    switch.flip(TaskEnding::Fail("the broker went away".into()));
    // Stopped for the restart, now in a backoff of up to a minute.
    for _ in 0..5000 {
        if journal.did("queue", Step::Stop(StopPhase::Close)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let deadline = app.runtime().shutdown_deadline();
    let report = app.runtime().shutdown(ShutdownReason::Signal("SIGTERM")).await;
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.elapsed < deadline, "the backoff was not cut short: {:?}", report.elapsed);
    // What the restart stopped is not stopped again; `metrics`, untouched by it, stops once.
    for (name, phase) in
        [("queue", StopPhase::Close), ("consumer", StopPhase::StopWorkers), ("metrics", StopPhase::Flush)]
    {
        assert_eq!(began(&journal, name, phase), 1, "{name}");
    }
    let starts = journal.entries().iter().filter(|e| e.step == Step::Start && e.edge == Edge::Begin).count();
    assert_eq!(starts, 4, "nothing started again after the backoff");
}

/// Starts at once the first time (with a task that fails when told); every
/// later start never returns.
struct HangsOnRestart {
    starts: std::sync::atomic::AtomicU32,
    switch: Arc<tokio::sync::Notify>,
    closed: Arc<std::sync::atomic::AtomicU32>,
}

#[orderly::async_trait]
impl orderly::Component for HangsOnRestart {
    fn name(&self) -> &str {
        "queue"
    }
    fn restart(&self) -> Restart {
        Restart::Transient
    }
    async fn start(&self, ctx: &orderly::StartContext) -> Result<(), orderly::BoxError> {
        if self.starts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            std::future::pending::<()>().await;
        }
        let switch = self.switch.clone();
        ctx.spawn(async move {
            switch.notified().await;
            Err::<(), orderly::BoxError>("the broker went away".into())
        });
        Ok(())
    }
    async fn close(&self, _ctx: &orderly::StopContext) -> Result<(), orderly::BoxError> {
        self.closed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shutdown_during_a_restarts_start_cancels_it_and_stops_each_component_once() {
    let (switch, closed) = (Arc::new(tokio::sync::Notify::new()), Arc::new(std::sync::atomic::AtomicU32::new(0)));
    let queue = HangsOnRestart { starts: Default::default(), switch: switch.clone(), closed: closed.clone() };
    let journal = Journal::new();
    let runtime = Runtime::builder()
        .component(queue)
        .component(
            Probe::new("consumer").depends_on(&["queue"]).restartable().joins(StopPhase::StopWorkers).journal(&journal),
        )
        .settings(fast_restarts(5))
        .build()
        .unwrap();
    runtime.start().await.unwrap();
    switch.notify_one();
    // The restart stopped both and is now in the queue's start, which hangs.
    for _ in 0..5000 {
        if runtime.timeline().of_kind(EventKind::Starting).len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    assert!(report.is_clean(), "{:?}", report.problems);
    assert!(report.elapsed < runtime.shutdown_deadline());
    assert_eq!(closed.load(std::sync::atomic::Ordering::SeqCst), 1, "the queue closed once, in the restart");
    assert_eq!(began(&journal, "consumer", StopPhase::StopWorkers), 1, "the consumer stopped once, in the restart");
    let cancelled = runtime.timeline().of_kind(EventKind::Cancelled);
    assert_eq!(cancelled.len(), 1, "the hung start was cancelled: {:#?}", runtime.timeline().events());
    assert_eq!(cancelled[0].component.as_deref(), Some("queue"));
}

/// Records, at each stop, whether the runtime said it starts again.
struct Listener {
    name: &'static str,
    deps: Vec<&'static str>,
    said: Arc<std::sync::Mutex<Vec<(&'static str, bool)>>>,
}

#[orderly::async_trait]
impl orderly::Component for Listener {
    fn name(&self) -> &str {
        self.name
    }
    fn dependencies(&self) -> Vec<orderly::Dependency> {
        self.deps.iter().map(|d| orderly::Dependency::named(*d)).collect()
    }
    fn restartable(&self) -> bool {
        true
    }
    async fn stop_accepting(&self, ctx: &orderly::StopContext) -> Result<(), orderly::BoxError> {
        self.said.lock().unwrap().push((self.name, ctx.starts_again()));
        Ok(())
    }
}

#[tokio::test]
async fn a_stop_says_whether_the_same_value_starts_again() {
    let said = Arc::new(std::sync::Mutex::new(Vec::new()));
    let listener = |name, deps: &[&'static str]| Listener { name, deps: deps.to_vec(), said: said.clone() };
    let runtime =
        Runtime::builder().component(listener("pool", &[])).component(listener("server", &["pool"])).build().unwrap();
    runtime.start().await.unwrap();
    let take = || std::mem::take(&mut *said.lock().unwrap());

    runtime.restart("pool", "a test").await.unwrap();
    assert_eq!(take(), [("server", true), ("pool", true)], "a restart: both start again");

    // A reload that puts a new `pool` in place: the old value does not start again, its dependent does.
    let change =
        orderly::runtime::ReloadChange::new("pool", Arc::new(listener("pool", &[])), Arc::new(listener("pool", &[])));
    assert!(runtime.reload(vec![change]).await.is_complete());
    assert_eq!(take(), [("server", true), ("pool", false)]);

    // Disabled: it stops for good.
    let change = orderly::runtime::ReloadChange::disable("server", Arc::new(listener("server", &["pool"])));
    assert!(runtime.reload(vec![change]).await.is_complete());
    assert_eq!(take(), [("server", false)]);

    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
    assert_eq!(take(), [("pool", false)], "the shutdown stops for good");
}
