//! # orderly-testing
//!
//! A test harness: start real components, run a real shutdown, and assert
//! on what happened, in a few lines. A dev-dependency: it depends on
//! `orderly-core` alone and is never compiled into a service's binary.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use orderly_testing::{Behavior, Journal, Probe, TestApp};
//! use orderly_core::{events::EventKind, StopPhase, phase::Phase};
//!
//! let journal = Journal::new();
//! let app = TestApp::builder()
//!     .component(Probe::new("db").joins(StopPhase::Close).journal(&journal))
//!     .component(Probe::new("api").depends_on(&["db"]).joins(StopPhase::Close).journal(&journal))
//!     .start()
//!     .await
//!     .unwrap();
//! let report = app.shutdown().await;
//! assert!(report.is_clean());
//! // Dependents stop before their dependencies, within a phase:
//! assert!(journal.ended_before("api", StopPhase::Close, "db", StopPhase::Close));
//! assert!(app.timeline().position("db", EventKind::Stopped, Some(Phase::Stop(StopPhase::Close))).is_some());
//! # });
//! ```

#![warn(missing_docs)]
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Barrier;

use orderly_core::events::Timeline;
use orderly_core::runtime::{BuildError, RuntimeBuilder, StartError};
use orderly_core::settings::{PhaseBudgets, ShutdownSettings};
use orderly_core::{
    phase::PhaseSet, runtime::ShutdownReport, BoxError, Component, Dependency, OnFailure, Readiness, Restart, Runtime,
    ShutdownReason, StartContext, StopContext, StopPhase,
};

/// What a [`Probe`] hook does.
#[derive(Clone)]
pub enum Behavior {
    /// Returns `Ok` at once.
    Succeed,
    /// Returns this error.
    Fail(String),
    /// Fails this many times, then succeeds (for retry tests).
    FailTimes(u32),
    /// Never returns.
    Hang,
    /// Panics with this message.
    Panic(String),
    /// Sleeps asynchronously, then returns `Ok`.
    Sleep(Duration),
    /// Yields to the scheduler this many times, then returns `Ok`.
    Yield(u32),
    /// Waits at the barrier, then returns `Ok`: proves hooks run concurrently
    /// without measuring time (run serially, they would never pass it).
    Barrier(Arc<Barrier>),
    /// Blocks the thread (a misbehaving hook), then returns `Ok`.
    Block(Duration),
}

/// A configurable component that records what the runtime made it do.
pub struct Probe {
    name: String,
    dependencies: Vec<String>,
    start: Behavior,
    not_ready_polls: u32,
    phases: HashMap<StopPhase, Behavior>,
    journal: Journal,
    attempts: AtomicU32,
    ready_polls: AtomicU32,
    restart: Restart,
    on_failure: OnFailure,
    restartable: bool,
    task: Option<TaskSwitch>,
}

impl Probe {
    /// A probe that starts at once, is ready at once and joins no stop phase.
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            dependencies: Vec::new(),
            start: Behavior::Succeed,
            not_ready_polls: 0,
            phases: HashMap::new(),
            journal: Journal::new(),
            attempts: AtomicU32::new(0),
            ready_polls: AtomicU32::new(0),
            restart: Restart::Temporary,
            on_failure: OnFailure::Shutdown,
            restartable: false,
            task: None,
        }
    }

    /// Restarts of this type (and so is restartable).
    pub fn restarts(mut self, restart: Restart) -> Self {
        self.restart = restart;
        self
    }

    /// What a failure of its background task does.
    pub fn on_failure(mut self, policy: OnFailure) -> Self {
        self.on_failure = policy;
        self
    }

    /// May be started again after its stop hooks ran (a dependency restarted).
    pub fn restartable(mut self) -> Self {
        self.restartable = true;
        self
    }

    /// Each start spawns a supervised background task that ends when
    /// `switch` is flipped, in the way it is flipped.
    pub fn background_task(mut self, switch: &TaskSwitch) -> Self {
        self.task = Some(switch.clone());
        self
    }

    /// Depends on the components with these names.
    pub fn depends_on(mut self, names: &[&str]) -> Self {
        self.dependencies.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// What `start` does.
    pub fn on_start(mut self, behavior: Behavior) -> Self {
        self.start = behavior;
        self
    }

    /// `ready` reports not-ready this many times before ready.
    pub fn not_ready_for(mut self, polls: u32) -> Self {
        self.not_ready_polls = polls;
        self
    }

    /// Joins `phase`, doing `behavior` there.
    pub fn on(mut self, phase: StopPhase, behavior: Behavior) -> Self {
        self.phases.insert(phase, behavior);
        self
    }

    /// Joins `phase` and succeeds at once.
    pub fn joins(self, phase: StopPhase) -> Self {
        self.on(phase, Behavior::Succeed)
    }

    /// Joins all five phases and succeeds at once in each.
    pub fn joins_all(mut self) -> Self {
        for phase in StopPhase::ALL {
            self = self.joins(phase);
        }
        self
    }

    /// Records into `journal` (shared with the test).
    pub fn journal(mut self, journal: &Journal) -> Self {
        self.journal = journal.clone();
        self
    }

    async fn perform(&self, step: Step, behavior: &Behavior) -> Result<(), BoxError> {
        self.journal.record(&self.name, step, Edge::Begin);
        let result = match behavior {
            Behavior::Succeed => Ok(()),
            Behavior::Fail(message) => Err(message.clone().into()),
            Behavior::FailTimes(n) => {
                if self.attempts.fetch_add(1, Ordering::SeqCst) < *n {
                    Err(format!("transient failure {}", self.attempts.load(Ordering::SeqCst)).into())
                } else {
                    Ok(())
                }
            }
            Behavior::Hang => std::future::pending().await,
            Behavior::Panic(message) => panic!("{message}"),
            Behavior::Sleep(d) => {
                tokio::time::sleep(*d).await;
                Ok(())
            }
            Behavior::Yield(n) => {
                for _ in 0..*n {
                    tokio::task::yield_now().await;
                }
                Ok(())
            }
            Behavior::Barrier(barrier) => {
                barrier.wait().await;
                Ok(())
            }
            Behavior::Block(d) => {
                std::thread::sleep(*d);
                Ok(())
            }
        };
        if result.is_ok() {
            self.journal.record(&self.name, step, Edge::End);
        }
        result
    }

    async fn stop(&self, phase: StopPhase, _ctx: &StopContext) -> Result<(), BoxError> {
        match self.phases.get(&phase) {
            Some(behavior) => self.perform(Step::Stop(phase), behavior).await,
            // `joined_phases` lists only the phases with a behavior, so the
            // runtime never calls this hook for another one.
            None => Ok(()),
        }
    }
}

#[async_trait]
impl Component for Probe {
    fn name(&self) -> &str {
        &self.name
    }

    fn dependencies(&self) -> Vec<Dependency> {
        self.dependencies.iter().map(Dependency::named).collect()
    }

    fn joined_phases(&self) -> PhaseSet {
        let phases: Vec<StopPhase> = self.phases.keys().copied().collect();
        PhaseSet::of(&phases)
    }

    fn restart(&self) -> Restart {
        self.restart
    }

    fn on_failure(&self) -> OnFailure {
        self.on_failure
    }

    fn restartable(&self) -> bool {
        self.restartable || self.restart != Restart::Temporary || self.on_failure == OnFailure::Restart
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        self.perform(Step::Start, &self.start).await?;
        if let Some(switch) = &self.task {
            // Subscribed before start returns, so no flip after it is missed.
            let mut flips = switch.ending.subscribe();
            ctx.spawn(async move {
                if flips.changed().await.is_err() {
                    return Ok(()); // the switch is gone: the test is over
                }
                let ending = flips.borrow().clone();
                match ending {
                    Some(TaskEnding::Fail(message)) => Err(message.into()),
                    Some(TaskEnding::Panic(message)) => panic!("{message}"),
                    Some(TaskEnding::Return) | None => Ok(()),
                }
            });
        }
        Ok(())
    }

    async fn ready(&self) -> Readiness {
        if self.ready_polls.fetch_add(1, Ordering::SeqCst) < self.not_ready_polls {
            return Readiness::NotReady("warming up".into());
        }
        self.journal.record(&self.name, Step::Ready, Edge::End);
        Readiness::Ready
    }

    async fn stop_accepting(&self, ctx: &StopContext) -> Result<(), BoxError> {
        self.stop(StopPhase::StopAccepting, ctx).await
    }
    async fn drain(&self, ctx: &StopContext) -> Result<(), BoxError> {
        self.stop(StopPhase::Drain, ctx).await
    }
    async fn stop_workers(&self, ctx: &StopContext) -> Result<(), BoxError> {
        self.stop(StopPhase::StopWorkers, ctx).await
    }
    async fn flush(&self, ctx: &StopContext) -> Result<(), BoxError> {
        self.stop(StopPhase::Flush, ctx).await
    }
    async fn close(&self, ctx: &StopContext) -> Result<(), BoxError> {
        self.stop(StopPhase::Close, ctx).await
    }
}

/// How a [`Probe`]'s background task ends when its [`TaskSwitch`] flips.
#[derive(Debug, Clone)]
pub enum TaskEnding {
    /// It returns this error.
    Fail(String),
    /// It panics with this message.
    Panic(String),
    /// It returns `Ok`.
    Return,
}

/// Ends the background tasks of the probes that share it, on demand: every
/// task running when it flips ends, once. Tasks started later (after a
/// restart) wait for the next flip.
#[derive(Clone)]
pub struct TaskSwitch {
    ending: Arc<tokio::sync::watch::Sender<Option<TaskEnding>>>,
}

impl Default for TaskSwitch {
    fn default() -> Self {
        Self::new()
    }
}

impl TaskSwitch {
    /// A switch no task has seen flip.
    pub fn new() -> Self {
        Self { ending: Arc::new(tokio::sync::watch::Sender::new(None)) }
    }

    /// Ends every task waiting on this switch, `how`.
    pub fn flip(&self, how: TaskEnding) {
        self.ending.send_replace(Some(how));
    }
}

/// A step a probe performed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// `start`.
    Start,
    /// `ready` returning ready.
    Ready,
    /// A stop hook.
    Stop(StopPhase),
}

/// The beginning or the successful end of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edge {
    /// The hook began.
    Begin,
    /// The hook returned `Ok` (for `Ready`: reported ready).
    End,
}

/// One thing a probe did, and when.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The probe's name.
    pub component: String,
    /// The step.
    pub step: Step,
    /// Begin or end.
    pub edge: Edge,
    /// When.
    pub at: Instant,
    /// Its place in the journal; ties in `at` are broken by this.
    pub seq: usize,
}

/// What probes actually did, in order: the ground truth that tests compare
/// the runtime's own events against.
#[derive(Clone, Default)]
pub struct Journal {
    entries: Arc<Mutex<Vec<Entry>>>,
}

impl Journal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&self, component: &str, step: Step, edge: Edge) {
        let mut entries = self.entries.lock();
        let seq = entries.len();
        entries.push(Entry { component: component.to_string(), step, edge, at: Instant::now(), seq });
    }

    /// Every entry, in order.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries.lock().clone()
    }

    /// The sequence number of the first `edge` of `step` by `component`.
    pub fn seq(&self, component: &str, step: Step, edge: Edge) -> Option<usize> {
        self.entries.lock().iter().find(|e| e.component == component && e.step == step && e.edge == edge).map(|e| e.seq)
    }

    /// Whether `component` performed `step` at all.
    pub fn did(&self, component: &str, step: Step) -> bool {
        self.seq(component, step, Edge::Begin).is_some()
    }

    /// The components that began `step`, in order.
    pub fn who_did(&self, step: Step) -> Vec<String> {
        self.entries
            .lock()
            .iter()
            .filter(|e| e.step == step && e.edge == Edge::Begin)
            .map(|e| e.component.clone())
            .collect()
    }

    /// Whether `a`'s hook for `pa` ended before `b`'s hook for `pb` began.
    pub fn ended_before(&self, a: &str, pa: StopPhase, b: &str, pb: StopPhase) -> bool {
        match (self.seq(a, Step::Stop(pa), Edge::End), self.seq(b, Step::Stop(pb), Edge::Begin)) {
            (Some(end), Some(begin)) => end < begin,
            _ => false,
        }
    }
}

/// Budgets for tests: short, so a hung hook costs little, and fitting the deadline.
pub fn short_budgets(phase: Duration) -> ShutdownSettings {
    ShutdownSettings { deadline: phase * 6, phases: PhaseBudgets::uniform(phase), ..ShutdownSettings::default() }
}

/// A started app under test.
pub struct TestApp {
    runtime: Runtime,
}

/// Builds a [`TestApp`].
pub struct TestAppBuilder {
    builder: RuntimeBuilder,
}

impl TestApp {
    /// A builder for an app under test.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder { builder: Runtime::builder() }
    }

    /// Runs the real five-phase shutdown.
    pub async fn shutdown(&self) -> ShutdownReport {
        self.runtime.shutdown(ShutdownReason::Requested { by: "test".into(), reason: "test finished".into() }).await
    }

    /// Every lifecycle event so far.
    pub fn timeline(&self) -> &Timeline {
        self.runtime.timeline()
    }

    /// The runtime itself.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }
}

/// Why a [`TestApp`] did not start.
#[derive(Debug)]
pub enum TestStartError {
    /// The graph was invalid.
    Build(BuildError),
    /// Start failed or was interrupted; rollback already ran.
    Start(Box<StartError>, Timeline),
}

impl TestAppBuilder {
    /// Adds a component.
    pub fn component(mut self, component: impl Component) -> Self {
        self.builder = self.builder.component(component);
        self
    }

    /// Changes the underlying runtime builder (settings, sinks, ...).
    pub fn configure(mut self, f: impl FnOnce(RuntimeBuilder) -> RuntimeBuilder) -> Self {
        self.builder = f(self.builder);
        self
    }

    /// Builds and starts the app.
    pub async fn start(self) -> Result<TestApp, TestStartError> {
        let runtime = self.builder.build().map_err(TestStartError::Build)?;
        match runtime.start().await {
            Ok(()) => Ok(TestApp { runtime }),
            Err(outcome) => Err(TestStartError::Start(outcome, runtime.timeline().clone())),
        }
    }
}
