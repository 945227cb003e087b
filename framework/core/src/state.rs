//! [`Shared`]: the running app's state that the engine (start, the stop
//! phases), supervision (restarts, reloads) and the runtime all work on:
//! the graph, the event emitter, the loggers, what runs, health and the
//! restart turn. Plain state and the operations on it; it names nothing of
//! the engine above it.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;

use parking_lot::Mutex;

use crate::emitter::Events;
use crate::event::EventKind;
use crate::graph::Graph;
use crate::health::Health;
use crate::lifecycle::Lifecycle;
use crate::metric_sets::MetricSets;
use crate::nodeset::NodeSet;
use crate::phase::{PhaseSet, StopPhase};
use crate::resources::Resources;
use crate::settings::{ShutdownSettings, SupervisionSettings};
use crate::trigger::Shutdown;
use crate::view::ComponentsView;
use crate::walks::Walks;

/// Where the runtime is, and which components run.
#[derive(Debug)]
pub(crate) enum Stage {
    /// `start` has not been called.
    NotStarted,
    /// `start` is running.
    Starting,
    /// Started; marks which components run now (restarts change it).
    Running(NodeSet),
    /// Start did not complete; marks the components that did start, to roll back.
    StartFailed(NodeSet),
    /// Shut down, or rolled back.
    Stopped,
}

/// What the start and shutdown sequences share.
pub(crate) struct Shared {
    pub(crate) graph: Arc<Graph>,
    pub(crate) events: Events,
    pub(crate) loggers: Vec<slog::Logger>,
    pub(crate) shutdown: Shutdown,
    pub(crate) resources: Resources,
    /// Set when a component's `start` returns `Ok`, even if the task is later
    /// cancelled or panics while waiting for readiness: it must be rolled back.
    pub(crate) start_returned: Vec<AtomicBool>,
    pub(crate) registry: prometheus::Registry,
    pub(crate) settings: ShutdownSettings,
    /// The app-wide restart intensity.
    pub(crate) supervision: SupervisionSettings,
    /// Per component: whether its current run spawned a task or handed out
    /// its cancellation token (set through `Host::run_tasks`). Ending the
    /// runs of components that did neither, most, costs one load each.
    pub(crate) spawned: Vec<AtomicBool>,
    /// Per component: the stop phases whose hook has begun since it last
    /// started (`PhaseSet` bits). A stop that a shutdown interrupted (a
    /// restart's) is finished by the shutdown, which runs only the phases
    /// left, so no hook runs twice. Beside each other rather than in each
    /// node: the stop reads them all.
    pub(crate) stopped: Vec<AtomicU8>,
    /// Per component: the stop phases whose `stopping` event is out (a
    /// hook is announced when it first logs, goes to its own task, or
    /// ends, whichever is first; once).
    pub(crate) announced: Vec<AtomicU8>,
    /// Every restart within the intensity's period: when, of whom, why.
    pub(crate) app_restarts: Mutex<std::collections::VecDeque<(Instant, Arc<str>, String)>>,
    pub(crate) health: Health,
    pub(crate) stage: Mutex<Stage>,
    /// Components a restart left stopped when it yielded to a failed
    /// dependency's restart, which starts them again.
    pub(crate) parked: Mutex<NodeSet>,
    /// Held by a restart while it runs and by the shutdown once it begins
    /// its phases: one at a time, so each sees exactly what runs.
    pub(crate) restart_turn: tokio::sync::Mutex<()>,
    /// The start walks so far, and how each ended.
    pub(crate) walks: Walks,
    /// Metric sets that every run of a component shares.
    pub(crate) metric_sets: MetricSets,
}

impl Shared {
    /// The view of the lifecycle that components and the shell may keep.
    pub(crate) fn lifecycle(&self) -> Lifecycle {
        let components: std::sync::Weak<dyn ComponentsView> = Arc::downgrade(&self.graph) as _;
        Lifecycle::new(self.health.clone(), self.events.timeline().clone(), self.events.epoch_wall(), components)
    }

    /// The enabled components: those the app starts.
    pub(crate) fn enabled(&self) -> NodeSet {
        let mut enabled = NodeSet::empty(self.graph.len());
        for (i, _) in self.graph.nodes.iter().enumerate().filter(|(_, node)| node.enabled()) {
            enabled.insert(i);
        }
        enabled
    }

    /// Component `i` and its dependents, those that run now; `None` unless the app is running.
    pub(crate) fn running_with_dependents(&self, i: usize) -> Option<NodeSet> {
        let closure = self.graph.with_dependents(i);
        match &*self.stage.lock() {
            Stage::Running(running) => Some(closure.intersection(running)),
            _ => None,
        }
    }

    /// Component `i` fails: each of its dependents goes down with it. Their
    /// runs end with the restart to come, so their tasks' ends are stale
    /// from now (a new run number), and the restart of any of them in
    /// progress yields to `i`'s.
    /// Returns `i` and its dependents (what a restart of `i` may take along).
    pub(crate) fn mark_going_down(&self, i: usize) -> NodeSet {
        let closure = self.graph.with_dependents(i);
        // A disabled dependent does not run: it goes down with no one.
        for j in closure.iter().filter(|&j| j != i && self.graph.nodes[j].enabled()) {
            let supervised = &self.graph.nodes[j].supervised;
            supervised.generation.fetch_add(1, Ordering::AcqRel);
            supervised.go_down_with(i);
        }
        closure
    }

    /// The members of a restart of the component whose `closure` (it and
    /// every dependent) this is: those of the closure that run now, and
    /// those a dependent's restart left stopped when it yielded to this
    /// one. `None` unless the app is running.
    pub(crate) fn take_members(&self, closure: &NodeSet) -> Option<NodeSet> {
        let mut members = match &*self.stage.lock() {
            Stage::Running(running) => closure.intersection(running),
            _ => return None,
        };
        let mut parked = self.parked.lock();
        members.union_with(&closure.intersection(&parked));
        parked.subtract(closure);
        Some(members)
    }

    /// A restart yields: those of its `members` that do not run wait,
    /// stopped, for the restart that takes them along.
    pub(crate) fn park(&self, members: &NodeSet) {
        let mut stopped = members.clone();
        stopped.subtract(&self.running_among(members));
        self.parked.lock().union_with(&stopped);
    }

    /// Which of `members` run now.
    pub(crate) fn running_among(&self, members: &NodeSet) -> NodeSet {
        match &*self.stage.lock() {
            Stage::Running(running) => members.intersection(running),
            _ => NodeSet::empty(self.graph.len()),
        }
    }

    /// Records that the marked components stopped (for a restart).
    pub(crate) fn mark_stopped(&self, stopped: &NodeSet) {
        if let Stage::Running(running) = &mut *self.stage.lock() {
            running.subtract(stopped);
        }
        for i in stopped.iter() {
            self.start_returned[i].store(false, std::sync::atomic::Ordering::Release);
        }
    }

    /// Records that the marked components started (the app's start, once
    /// complete, or a restart's).
    pub(crate) fn mark_started(&self, started: &NodeSet) {
        let mut stage = self.stage.lock();
        match &mut *stage {
            Stage::Running(running) => running.union_with(started),
            Stage::Starting => *stage = Stage::Running(started.clone()),
            Stage::NotStarted | Stage::StartFailed(_) | Stage::Stopped => {}
        }
    }

    /// Ends the stage: which components run (or started, in a start that
    /// failed) and must stop now. Nothing, the second time.
    pub(crate) fn take_running(&self) -> NodeSet {
        match std::mem::replace(&mut *self.stage.lock(), Stage::Stopped) {
            Stage::Running(running) | Stage::StartFailed(running) => running,
            Stage::NotStarted | Stage::Starting | Stage::Stopped => NodeSet::empty(self.graph.len()),
        }
    }

    /// Whether `start` completed and no shutdown took over since.
    pub(crate) fn is_running(&self) -> bool {
        matches!(*self.stage.lock(), Stage::Running(_))
    }

    /// Ends the runs of the `members`: their background tasks still running
    /// are cancelled, then aborted at each one's stop cap (by `deadline`,
    /// in a shutdown), each ending reported as a `tasks_ended` event. Their
    /// tasks' ends from now on are stale, not failures. Returns once every
    /// member's tasks have ended (or were found stuck).
    pub(crate) async fn end_runs(&self, members: &NodeSet, deadline: Option<Instant>) {
        // Most runs spawned nothing: they have nothing to end and cost one load.
        // A load first: a write to every flag would dirty lines the start reads.
        let busy = members
            .iter()
            .filter(|&i| self.spawned[i].load(Ordering::Acquire) && self.spawned[i].swap(false, Ordering::AcqRel));
        let mut busy = busy.peekable();
        if busy.peek().is_none() {
            return;
        }
        let ended = busy.map(|i| {
            let node = &self.graph.nodes[i];
            let run = node.supervised.generation.fetch_add(1, Ordering::AcqRel);
            let cap = node.settings().stop_cap.or(self.settings.component_cap).unwrap_or(TASK_GRACE);
            let limit = deadline.map_or(cap, |d| cap.min(d.saturating_duration_since(Instant::now())));
            async move { (i, run, node.supervised.tasks.end(limit).await) }
        });
        for (i, run, ended) in join_all(ended).await {
            let Some(ended) = ended else { continue };
            let mut detail = format!("run {run}: {} cancelled, {} aborted at its cap", ended.cancelled, ended.aborted);
            if ended.stuck > 0 {
                detail.push_str(&format!(", {} still running (stuck in synchronous code)", ended.stuck));
            }
            self.events.emit(EventKind::TasksEnded.build().component(&self.graph.nodes[i].name).detail(detail));
        }
    }

    /// The stop phases begun for component `i` since it last started.
    pub(crate) fn stopped_phases(&self, i: usize) -> PhaseSet {
        PhaseSet::from_bits(self.stopped[i].load(Ordering::Acquire))
    }

    /// Records that component `i`'s hook of `phase` began.
    pub(crate) fn began_stopping(&self, i: usize, phase: StopPhase) {
        self.stopped[i].fetch_or(PhaseSet::NONE.with(phase).bits(), Ordering::AcqRel);
    }

    /// Component `i` started: no phase of its stop has begun.
    pub(crate) fn started_afresh(&self, i: usize) {
        // Most never stopped: a load, and no write to a line others read.
        for bits in [&self.stopped[i], &self.announced[i]] {
            if bits.load(Ordering::Acquire) != 0 {
                bits.store(0, Ordering::Release);
            }
        }
    }

    /// Emits `stopping` for component `i`'s hook of `phase`, begun at
    /// `began`, unless it was emitted already.
    pub(crate) fn announce_stop(&self, i: usize, phase: StopPhase, began: Instant) {
        let bit = PhaseSet::NONE.with(phase).bits();
        if self.announced[i].fetch_or(bit, Ordering::AcqRel) & bit == 0 {
            let event = EventKind::Stopping.build().component(&self.graph.nodes[i].name);
            self.events.emit(event.phase(crate::phase::Phase::Stop(phase)).at(began));
        }
    }

    /// Before a start attempt of component `i` (after a failed one, or
    /// after its start failed for good): the earlier attempt's run ends and
    /// what it provided is withdrawn, so nothing of it is seen twice.
    pub(crate) async fn clean_slate(&self, i: usize) {
        let mut only = NodeSet::empty(self.graph.len());
        only.insert(i);
        self.end_runs(&only, None).await;
        self.resources.withdraw(&only);
    }
}

/// How long a run's tasks get to end once cancelled when the component has
/// no stop cap: they are past their component's stop phases already.
const TASK_GRACE: Duration = Duration::from_secs(1);
