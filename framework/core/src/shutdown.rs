//! The shutdown sequence, top to bottom. This is the one place it lives.
//!
//! 0. A request: [`Shutdown::trigger`](crate::Shutdown::trigger) from anywhere (the `orderly` crate's
//!    process shell turns the first SIGTERM or SIGINT into one, and arms its
//!    watchdog). The request withdraws readiness at once.
//! 1. Readiness flips to not-ready (probes keep answering: 503).
//! 2. The propagation delay lets load balancers stop routing here.
//! 3. A restart in progress (`restart.rs`) is let finish its current step;
//!    it starts nothing new once the shutdown was requested.
//! 4. Phases 1 to 5 run strictly in order. Within a phase, dependents stop
//!    before their dependencies and independent components stop
//!    concurrently. Only components that run take part, and each joins
//!    only the phases whose hook it overrides. A restart stops its
//!    components through the same phases (`stop_phases`).
//! 5. The [`ShutdownReport`] names every problem; the process shell turns
//!    it into the exit status.
//!
//! Budgets: the whole sequence ends by `shutdown.deadline`; each phase ends
//! by its budget; each hook ends by its cap. A hook past its cap is
//! abandoned (its task aborted) and named, and its dependencies go on. Hooks
//! not yet run when a phase's budget is spent are skipped and named. A panic
//! is caught and named. Nothing here waits without a bound.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::component::Component;
use crate::context::StopContext;
use crate::error::box_error_chain;
use crate::error::{BoxError, StopProblem};
use crate::event::EventKind;
use crate::hook::{BoxFuture, Ended};
use crate::nodeset::NodeSet;
use crate::phase::{Phase, PhaseSet, StopPhase};
use crate::state::Shared;
use crate::trigger::ShutdownReason;
use crate::walk::{drive, Begin, Pass, Walk};

/// What a shutdown did.
#[derive(Debug, Clone)]
pub struct ShutdownReport {
    /// Why it ran.
    pub reason: ShutdownReason,
    /// Every hook that failed, panicked, was abandoned or was skipped.
    pub problems: Vec<StopProblem>,
    /// How long each phase took.
    pub phases: Vec<(StopPhase, Duration)>,
    /// From the request to the end of phase 5.
    pub elapsed: Duration,
    /// How long it waited for a restart in progress to reach a consistent
    /// point (at most the restart's running hooks' caps); part of `elapsed`.
    pub waited_for_restart: Duration,
}

impl ShutdownReport {
    /// No hook failed, panicked, overran or was skipped.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Runs the whole sequence for the components that run (or, after a
/// failed start, those that started).
pub(crate) async fn shut_down(shared: &Arc<Shared>, reason: ShutdownReason) -> ShutdownReport {
    let began = Instant::now();
    let settings = &shared.settings;
    let deadline = began + settings.deadline;
    shared.events.emit(EventKind::ShutdownRequested.build().detail(reason.to_string()));

    shared.health.begin_shutdown();
    shared.events.emit(EventKind::ReadinessWithdrawn.build().detail("shutting down"));

    if !settings.propagation_delay.is_zero() {
        tokio::time::sleep_until(
            tokio::time::Instant::from_std(began + settings.propagation_delay).min(deadline.into()),
        )
        .await;
    }

    // A restart in progress sees the request and stops where it is: no
    // hook begins, those running end by their caps, nothing new starts.
    // Then what runs, and which of its phases are left, is exact.
    let waiting = Instant::now();
    let _turn = shared.restart_turn.lock().await;
    let waited_for_restart = waiting.elapsed();
    let running = shared.take_running();
    let (problems, phases) = stop_phases(shared, &running, Some(deadline)).await;
    // Nothing runs after the shutdown: every component's tasks end (those
    // of a start that was cancelled included), within the deadline.
    shared.end_runs(&NodeSet::full(shared.graph.len()), Some(deadline)).await;

    shared.health.finish_shutdown();
    let elapsed = began.elapsed();
    let mut verdict = if problems.is_empty() { "clean".to_string() } else { format!("{} problem(s)", problems.len()) };
    if waited_for_restart >= Duration::from_millis(1) {
        let waited = humantime::format_duration(Duration::from_millis(waited_for_restart.as_millis() as u64));
        verdict.push_str(&format!("; waited {waited} for a restart's running hooks"));
    }
    shared.events.emit(EventKind::ShutdownFinished.build().elapsed(elapsed).detail(verdict));
    ShutdownReport { reason, problems, phases, elapsed, waited_for_restart }
}

/// Phases 1 to 5, strictly in order, for the components marked in
/// `included`, each phase within its budget. With a `deadline` this is the
/// app's shutdown: every phase also ends by it, and each is announced with
/// app-wide `phase_started`/`phase_finished` events. Without one it is a
/// restart's stop of some components, while the app goes on; a shutdown
/// request interrupts it: no hook begins from then on, the hooks running
/// end by their caps, and the shutdown finishes the stop (each component
/// only in the phases not yet begun for it, so no hook runs twice).
pub(crate) async fn stop_phases(
    shared: &Arc<Shared>,
    included: &NodeSet,
    deadline: Option<Instant>,
) -> (Vec<StopProblem>, Vec<(StopPhase, Duration)>) {
    // Asked once: which phases each component joins (one not included
    // joins none). The others pass through each phase uncalled.
    let mut joins = vec![PhaseSet::NONE; shared.graph.len()];
    for i in included.iter() {
        joins[i] = shared.graph.nodes[i].component().joined_phases().without(shared.stopped_phases(i));
    }
    let mut problems = Vec::new();
    let mut phases = Vec::with_capacity(StopPhase::ALL.len());
    for phase in StopPhase::ALL {
        if deadline.is_none() && shared.shutdown.is_requested() {
            break; // a restart's stop, interrupted: the shutdown finishes it
        }
        let phase_began = Instant::now();
        let budget_end = phase_began + shared.settings.phases.get(phase);
        let phase_end = deadline.map_or(budget_end, |deadline| budget_end.min(deadline));
        if deadline.is_some() {
            shared.events.emit(EventKind::PhaseStarted.build().phase(Phase::Stop(phase)));
        }
        // A phase no one joins has nothing to order: it is not walked.
        if joins.iter().any(|joined| joined.contains(phase)) {
            let interruptible = deadline.is_none();
            run_phase(shared, included, &joins, (phase, phase_end, interruptible), &mut problems).await;
        }
        let took = phase_began.elapsed();
        if deadline.is_some() {
            shared.events.emit(EventKind::PhaseFinished.build().phase(Phase::Stop(phase)).elapsed(took));
        }
        phases.push((phase, took));
    }
    (problems, phases)
}

/// One phase: the reversed graph walked concurrently, within `phase_end`.
/// `interruptible`: a restart's stop, which a shutdown request interrupts.
async fn run_phase(
    shared: &Arc<Shared>,
    included: &NodeSet,
    joins: &[PhaseSet],
    (phase, phase_end, interruptible): (StopPhase, Instant, bool),
    problems: &mut Vec<StopProblem>,
) {
    let graph = &shared.graph;
    // Reversed: a component waits for its dependents.
    let walk = Walk::new(&graph.dependents, &graph.dependencies, included);
    let hooks = vec![None; graph.len()];
    let mut pass = Stopping { shared, joins, phase, phase_end, interruptible, hooks, problems };
    let (_, abandoned) = drive(walk, &mut pass, tokio::time::sleep_until(phase_end.into())).await;

    // The phase's budget is spent: what still runs was abandoned (its task
    // aborted); name it, and name what never ran.
    for i in abandoned.nodes() {
        if let Some(hook) = pass.hooks[i] {
            pass.report(i, hook.began, Ended::OverLimit);
        }
    }
    // A restart's stop that a shutdown interrupted skipped nothing: the
    // shutdown runs what never began here.
    if interruptible && shared.shutdown.is_requested() {
        return;
    }
    for i in (0..graph.len()).filter(|&i| joins[i].contains(phase) && pass.hooks[i].is_none()) {
        let name = &graph.nodes[i].name;
        let error = "never ran: the phase's budget was spent while its dependents were still stopping".to_string();
        shared.events.emit(EventKind::Skipped.build().component(name).phase(Phase::Stop(phase)).error(error.clone()));
        pass.problems.push(StopProblem { component: name.to_string(), phase, event: EventKind::Skipped, error });
    }
}

/// One stop phase as a walk along the reversed graph: each component that
/// joins the phase runs its hook within its cap; the others pass through.
struct Stopping<'a> {
    shared: &'a Arc<Shared>,
    joins: &'a [PhaseSet],
    phase: StopPhase,
    phase_end: Instant,
    /// A restart's stop: once a shutdown is requested, no hook begins.
    interruptible: bool,
    /// The hook each component ran in this phase; `None`: it has not run.
    hooks: Vec<Option<Hook>>,
    problems: &'a mut Vec<StopProblem>,
}

impl Stopping<'_> {
    /// When node `i`'s hook, begun at `hook_began`, is abandoned, and its
    /// cap if that is what binds there (else the phase's budget does).
    fn limit(&self, i: usize, hook_began: Instant) -> (Instant, Option<Duration>) {
        let cap = self.shared.graph.nodes[i].settings().stop_cap.or(self.shared.settings.component_cap);
        let cap_end = cap.and_then(|c| hook_began.checked_add(c)).map_or(self.phase_end, |end| end.min(self.phase_end));
        (cap_end, cap.filter(|_| cap_end < self.phase_end))
    }

    /// Emits `stopping` for node `i`'s hook, unless the hook did (its first log line).
    fn announce(&self, i: usize, hook_began: Instant) {
        self.shared.announce_stop(i, self.phase, hook_began);
    }

    /// Whether node `i`'s hook is announced already.
    fn announced(&self, i: usize) -> bool {
        let bit = PhaseSet::NONE.with(self.phase).bits();
        self.shared.announced[i].load(std::sync::atomic::Ordering::Acquire) & bit != 0
    }

    /// Emits the event for a finished hook and records any problem.
    fn report(&mut self, i: usize, hook_began: Instant, ended: Ended<Result<(), BoxError>>) {
        let (shared, phase) = (self.shared, self.phase);
        let name = &shared.graph.nodes[i].name;
        // One clock read serves both the duration and the event's time, as in start.
        let ended_at = Instant::now();
        let elapsed = ended_at.saturating_duration_since(hook_began);
        let (event, error) = match ended {
            Ended::Returned(Ok(())) => {
                shared.events.emit(
                    EventKind::Stopped.build().component(name).phase(Phase::Stop(phase)).elapsed(elapsed).at(ended_at),
                );
                return;
            }
            Ended::Returned(Err(e)) => (EventKind::Failed, box_error_chain(&e)),
            Ended::Panicked(message) => (EventKind::Panicked, message),
            Ended::Aborted => (EventKind::Failed, "the hook's task was aborted".to_string()),
            // Which limit bound says how it is reported.
            Ended::OverLimit => match self.limit(i, hook_began).1 {
                Some(cap) => {
                    (EventKind::TimedOut, format!("abandoned: ran past its cap of {}", humantime::format_duration(cap)))
                }
                None => (
                    EventKind::TimedOut,
                    format!(
                        "abandoned: the phase's budget ({}) was spent",
                        humantime::format_duration(shared.settings.phases.get(phase))
                    ),
                ),
            },
        };
        shared.events.emit(
            event.build().component(name).phase(Phase::Stop(phase)).elapsed(elapsed).at(ended_at).error(error.clone()),
        );
        self.problems.push(StopProblem { component: name.to_string(), phase, event, error });
    }
}

impl Pass for Stopping<'_> {
    type Output = (Result<(), BoxError>, bool);
    /// The budget is spent (the rest is skipped).
    type Halt = ();

    fn begin(&mut self, i: usize) -> Begin<Self::Output, ()> {
        if !self.joins[i].contains(self.phase) || (self.interruptible && self.shared.shutdown.is_requested()) {
            return Begin::PassThrough;
        }
        let hook_began = Instant::now();
        if hook_began >= self.phase_end {
            return Begin::Halt(());
        }
        self.hooks[i] = Some(Hook { began: hook_began });
        let node = &self.shared.graph.nodes[i];
        self.shared.began_stopping(i, self.phase);
        let (cap_end, _) = self.limit(i, hook_began);
        let ctx = StopContext {
            name: node.name.clone(),
            phase: self.phase,
            index: i,
            began: hook_began,
            host: self.shared.clone(),
            logger: std::sync::OnceLock::new(),
            deadline: cap_end,
            not_joined: AtomicBool::new(false),
        };
        Begin::Run { task: call_hook(node.component(), ctx), limit: Some(cap_end) }
    }

    fn spawned(&mut self, i: usize) {
        if let Some(hook) = self.hooks[i] {
            self.announce(i, hook.began);
        }
    }

    fn end(&mut self, i: usize, ended: Ended<Self::Output>) -> Result<(), ()> {
        let Some(hook) = self.hooks[i] else { return Ok(()) };
        // A default no-op, done on its first poll, did not join: nothing to
        // report (a hook that panicked did run).
        if let (Ended::Returned((_, false)), false) = (&ended, self.announced(i)) {
            return Ok(());
        }
        self.announce(i, hook.began);
        self.report(i, hook.began, ended.map(|(result, _joined)| result));
        Ok(())
    }
}

/// A hook that began in this phase.
#[derive(Clone, Copy)]
struct Hook {
    began: Instant,
}

/// The hook of `phase`, as an owned future, with whether it was more than
/// the default no-op (the context lives in the future: no allocation of its own).
fn call_hook(component: Arc<dyn Component>, ctx: StopContext) -> BoxFuture<(Result<(), BoxError>, bool)> {
    Box::pin(async move {
        let result = match ctx.phase {
            StopPhase::StopAccepting => component.stop_accepting(&ctx).await,
            StopPhase::Drain => component.drain(&ctx).await,
            StopPhase::StopWorkers => component.stop_workers(&ctx).await,
            StopPhase::Flush => component.flush(&ctx).await,
            StopPhase::Close => component.close(&ctx).await,
        };
        (result, ctx.joined())
    })
}
