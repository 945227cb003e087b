//! Supervision under random races (issue #18): random graphs in which
//! several components crash (a dependency and its dependent among them,
//! together or apart), restarts whose starts fail, stop hooks that hang or
//! fail, reloads and a SIGTERM at random moments. Whatever happens:
//!
//! - never two runs of one component alive at once (each run's task counts
//!   itself while it lives);
//! - every start that returned `Ok` is followed by its stop before the
//!   next start, and the app ends with nothing running;
//! - no task of any run is alive after the shutdown;
//! - the shutdown ends within its deadline;
//! - a restart or an escalation names a component that did crash, never a
//!   dependent that merely went down with its dependency.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orderly::{
    async_trait, events::EventKind, runtime::ReloadChange, settings::ComponentOverrides, settings::RuntimeSettings,
    BoxError, Component, Dependency, Restart, Runtime, ShutdownReason, StartContext, StopContext,
};
use orderly_testing::short_budgets;
use proptest::prelude::*;

/// What a component's close hook does.
#[derive(Debug, Clone, Copy)]
enum Close {
    Succeed,
    Fail,
    Hang,
}

/// What every value of one component (the first and each reload's) shares.
#[derive(Default)]
struct Record {
    /// Tasks of its runs alive now; more than one is an overlap.
    live: AtomicI64,
    overlapped: AtomicBool,
    /// Start attempts so far (the first never fails).
    attempts: AtomicU32,
    /// In order: `true` for a start that returned `Ok`, `false` for a close hook that began.
    steps: Mutex<Vec<bool>>,
    /// Bumped to make the current run's task fail.
    crash: tokio::sync::watch::Sender<u64>,
}

/// Counts itself alive while its task lives.
struct Alive(Arc<Record>);

impl Alive {
    fn new(record: Arc<Record>) -> Self {
        if record.live.fetch_add(1, Ordering::SeqCst) >= 1 {
            record.overlapped.store(true, Ordering::SeqCst);
        }
        Self(record)
    }
}

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Chaos {
    name: String,
    deps: Vec<String>,
    crashes: bool,
    /// Every how many start attempts one fails (0: never); never the first.
    fail_every: u32,
    close: Close,
    record: Arc<Record>,
}

#[async_trait]
impl Component for Chaos {
    fn name(&self) -> &str {
        &self.name
    }

    fn dependencies(&self) -> Vec<Dependency> {
        self.deps.iter().map(Dependency::named).collect()
    }

    fn restart(&self) -> Restart {
        if self.crashes {
            Restart::Transient
        } else {
            Restart::Temporary
        }
    }

    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let attempt = self.record.attempts.fetch_add(1, Ordering::SeqCst);
        // The task first: a failed attempt leaves it to the runtime to end.
        let alive = Alive::new(self.record.clone());
        let mut crash = self.record.crash.subscribe();
        let crashes = self.crashes;
        ctx.spawn(async move {
            let _alive = alive;
            loop {
                if crash.changed().await.is_err() {
                    return Ok(()); // the test is over
                }
                if crashes {
                    return Err::<(), BoxError>("crashed".into());
                }
            }
        });
        if self.fail_every > 0 && attempt > 0 && attempt.is_multiple_of(self.fail_every) {
            return Err("a start attempt failed".into());
        }
        self.record.steps.lock().unwrap().push(true);
        Ok(())
    }

    async fn close(&self, _ctx: &StopContext) -> Result<(), BoxError> {
        self.record.steps.lock().unwrap().push(false);
        match self.close {
            Close::Succeed => Ok(()),
            Close::Fail => Err("close failed".into()),
            Close::Hang => std::future::pending().await,
        }
    }
}

/// Something the test does at a moment.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// Crash component `i`'s task.
    Crash(usize),
    /// Crash `i` and then, at once, every component that depends on it directly.
    CrashWithDependents(usize),
    /// Reload component `i` (no reload hook: a restart with a new value).
    Reload(usize),
}

#[derive(Debug, Clone)]
struct Scenario {
    deps: Vec<Vec<usize>>,
    crashes: Vec<bool>,
    fail_every: Vec<u32>,
    close: Vec<Close>,
    max_restarts: u32,
    coalesce_ms: u64,
    actions: Vec<(u64, Action)>,
    sigterm_after_ms: u64,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (2usize..7)
        .prop_flat_map(|n| {
            let deps = (0..n)
                .map(|i| {
                    proptest::collection::btree_set(0..i.max(1), 0..=i.min(2)).prop_map(move |d| {
                        if i == 0 {
                            vec![]
                        } else {
                            d.into_iter().collect()
                        }
                    })
                })
                .collect::<Vec<_>>();
            let close = prop_oneof![6 => Just(Close::Succeed), 1 => Just(Close::Fail), 1 => Just(Close::Hang)];
            let action = prop_oneof![
                3 => (0..n).prop_map(Action::Crash),
                2 => (0..n).prop_map(Action::CrashWithDependents),
                1 => (0..n).prop_map(Action::Reload),
            ];
            (
                deps,
                proptest::collection::vec(proptest::bool::weighted(0.5), n),
                proptest::collection::vec(prop_oneof![3 => Just(0u32), 1 => 2u32..4], n),
                proptest::collection::vec(close, n),
                2u32..6,
                prop_oneof![Just(0u64), Just(5u64)],
                proptest::collection::vec((0u64..15, action), 1..6),
                0u64..60,
            )
        })
        .prop_map(|(deps, crashes, fail_every, close, max_restarts, coalesce_ms, actions, sigterm_after_ms)| Scenario {
            deps,
            crashes,
            fail_every,
            close,
            max_restarts,
            coalesce_ms,
            actions,
            sigterm_after_ms,
        })
}

fn name(i: usize) -> String {
    format!("c{i}")
}

impl Scenario {
    fn component(&self, i: usize, record: &Arc<Record>) -> Chaos {
        Chaos {
            name: name(i),
            deps: self.deps[i].iter().map(|&d| name(d)).collect(),
            crashes: self.crashes[i],
            fail_every: self.fail_every[i],
            close: self.close[i],
            record: record.clone(),
        }
    }
}

async fn run(scenario: Scenario) -> Result<(), TestCaseError> {
    let n = scenario.deps.len();
    let records: Vec<Arc<Record>> = (0..n).map(|_| Arc::new(Record::default())).collect();
    let mut settings = RuntimeSettings { shutdown: short_budgets(Duration::from_millis(400)), ..Default::default() };
    settings.supervision.coalesce_window = Duration::from_millis(scenario.coalesce_ms);
    for i in 0..n {
        settings.components.insert(
            name(i),
            ComponentOverrides {
                max_restarts: Some(scenario.max_restarts),
                restart_backoff: Some(Duration::from_millis(1)),
                // A hung close hook is abandoned here, not at the phase's budget.
                stop_cap: Some(Duration::from_millis(20)),
                ..Default::default()
            },
        );
    }
    let runtime = (0..n)
        .fold(Runtime::builder(), |builder, i| builder.component(scenario.component(i, &records[i])))
        .settings(settings.clone())
        .build()
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    runtime.start().await.map_err(|e| TestCaseError::fail(format!("{e:?}")))?;

    let driver = tokio::spawn({
        let (runtime, records, scenario) = (runtime.clone(), records.clone(), scenario.clone());
        async move {
            for (after_ms, action) in scenario.actions.clone() {
                tokio::time::sleep(Duration::from_millis(after_ms)).await;
                match action {
                    Action::Crash(i) => {
                        records[i].crash.send_modify(|c| *c += 1);
                    }
                    Action::CrashWithDependents(i) => {
                        records[i].crash.send_modify(|c| *c += 1);
                        for (j, deps) in scenario.deps.iter().enumerate() {
                            if deps.contains(&i) {
                                records[j].crash.send_modify(|c| *c += 1);
                            }
                        }
                    }
                    Action::Reload(i) => {
                        let (new, current) = (scenario.component(i, &records[i]), scenario.component(i, &records[i]));
                        runtime.reload(vec![ReloadChange::new(name(i), Arc::new(new), Arc::new(current))]).await;
                    }
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(scenario.sigterm_after_ms)).await;
    let deadline = runtime.shutdown_deadline();
    let report = tokio::time::timeout(Duration::from_secs(20), runtime.shutdown(ShutdownReason::Signal("SIGTERM")))
        .await
        .map_err(|_| TestCaseError::fail("the shutdown did not finish"))?;
    driver.abort();
    let _ = driver.await;
    let events = runtime.timeline().events();
    let context = || {
        events
            .iter()
            .map(|e| format!("{:?} {:?} {:?} {:?} {:?}", e.component, e.event, e.phase, e.error, e.detail))
            .collect::<Vec<_>>()
            .join("\n")
    };

    // Within its deadline (and the watchdog's one second past it).
    prop_assert!(report.elapsed <= deadline + Duration::from_secs(1), "took {:?}", report.elapsed);
    for (i, record) in records.iter().enumerate() {
        prop_assert!(!record.overlapped.load(Ordering::SeqCst), "c{i} had two runs alive at once:\n{}", context());
        prop_assert_eq!(
            record.live.load(Ordering::SeqCst),
            0,
            "a task of c{} outlived the shutdown:\n{}",
            i,
            context()
        );
        let steps = record.steps.lock().unwrap().clone();
        let mut running = false;
        for &started in &steps {
            prop_assert!(started != running, "c{i}: starts and stops do not alternate: {steps:?}\n{}", context());
            running = started;
        }
        prop_assert!(!running, "c{i} was left running: {steps:?}\n{}", context());
    }
    // Restarts and escalations name components that crashed or failed to start.
    let crashed: BTreeSet<String> = (0..n).filter(|&i| scenario.crashes[i]).map(name).collect();
    for e in events.iter().filter(|e| matches!(e.event, EventKind::Restarting | EventKind::RestartLimitExceeded)) {
        let who = e.component.as_deref().unwrap_or_default().to_string();
        prop_assert!(crashed.contains(&who), "{who} restarted but never crashed:\n{}", context());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn supervision_holds_under_crashes_failed_starts_hung_stops_reloads_and_a_sigterm(scenario in scenario()) {
        let tokio = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        tokio.block_on(run(scenario))?;
    }
}
