//! [`Host`]: what a component's contexts may ask of the running app that
//! made them.
//!
//! The contexts are part of the model, which may not name the graph, the
//! engine or the runtime above it. So the model states here what it needs,
//! as a trait, and the runtime's state implements it (in `runtime.rs`):
//! the arrow points down from the implementation to this contract.

use std::sync::Arc;

use crate::lifecycle::Lifecycle;
use crate::metric_sets::MetricSets;
use crate::resources::{AnyArc, Resources};
use crate::run_tasks::RunTasks;
use crate::trigger::Shutdown;
use crate::walks::Walks;

/// How a supervised background task (one started with
/// [`StartContext::spawn`](crate::StartContext::spawn)) ended.
#[derive(Debug)]
pub(crate) enum TaskEnd {
    /// It returned `Ok`.
    Finished,
    /// It returned an error or panicked: the error chain or panic message.
    Failed(String),
}

/// The running app, as a component's contexts see it. Components are
/// addressed by their index in the graph.
pub(crate) trait Host: Send + Sync + 'static {
    /// Component `i`'s name.
    fn name(&self, i: usize) -> &Arc<str>;
    /// Component `i`'s logger (its records carry `component`).
    fn logger(&self, i: usize) -> &slog::Logger;
    /// The registry for every component's metrics.
    fn metrics_registry(&self) -> &prometheus::Registry;
    /// The app's shutdown handle.
    fn shutdown(&self) -> &Shutdown;
    /// The view of the lifecycle that components may keep.
    fn lifecycle(&self) -> Lifecycle;
    /// How many components the graph has.
    fn len(&self) -> usize;
    /// The components `i` declared as dependencies (those that exist).
    fn declared(&self, i: usize) -> &[usize];
    /// Whether component `j` is enabled (a disabled one is in the graph,
    /// not started, and no dependency of anyone's).
    fn enabled(&self, j: usize) -> bool;
    /// Component `j` as it runs now, for a typed downcast.
    fn instance(&self, j: usize) -> AnyArc;
    /// What components provided during their start.
    fn resources(&self) -> &Resources;
    /// Whether component `i` is being stopped by a restart that starts the
    /// same value again right after (never during a shutdown).
    fn starts_again(&self, i: usize) -> bool;
    /// Component `i`'s current run (a restart begins a new one).
    fn run_of(&self, i: usize) -> u64;
    /// The tasks of component `i`'s current run, which end with it.
    fn run_tasks(&self, i: usize) -> &Arc<RunTasks>;
    /// A background task of component `i`'s run `run` ended: the
    /// component's failure policy applies.
    fn task_ended(self: Arc<Self>, i: usize, run: u64, end: TaskEnd);
    /// Component `i`'s hook of `phase`, begun at `began`, is announced
    /// (`stopping`), once however often it is asked.
    fn announce_stop(&self, i: usize, phase: crate::phase::StopPhase, began: std::time::Instant);
    /// The start walks so far, and how each ended.
    fn walks(&self) -> &Walks;
    /// Metric sets registered once per runtime, shared by every run.
    fn metric_sets(&self) -> &MetricSets;
}
