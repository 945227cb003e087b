//! What the runtime tracks about each component while the app runs: its
//! condition (degraded, restarting), which run of it is current, and its
//! recent restarts, and the tasks its current run spawned. Plain state,
//! read by probes and written by supervision; it names only `RunTasks`
//! and `PhaseSet`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::phase::PhaseSet;
use crate::run_tasks::RunTasks;

/// Why a component is not fully well, beyond what its `ready` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// A failure while running was ignored (`on_failure = "ignore"`): degraded from then on.
    Degraded(String),
    /// Being restarted, itself or with a dependency: not ready.
    Restarting(String),
}

/// What the runtime tracks about one component while the app runs.
#[derive(Default)]
pub(crate) struct Supervised {
    pub(crate) condition: Mutex<Option<Condition>>,
    /// Bumped when the component is stopped for a restart: background tasks
    /// of an earlier run are no longer its own, and their ends are ignored.
    pub(crate) generation: AtomicU64,
    /// The restarts within the current period, with their causes.
    pub(crate) history: Mutex<VecDeque<(Instant, String)>>,
    /// The background tasks of its current run.
    pub(crate) tasks: std::sync::Arc<RunTasks>,
    /// The stop phases whose hook has begun since it last started: a stop
    /// that a shutdown interrupted (a restart's) is finished by the
    /// shutdown, which runs only the phases left, so no hook runs twice.
    stopped: AtomicU8,
}

impl Supervised {
    /// The stop phases whose hook has begun since it last started.
    pub(crate) fn stopped_phases(&self) -> PhaseSet {
        PhaseSet::from_bits(self.stopped.load(Ordering::Acquire))
    }

    /// Records that its hook of `phase` began.
    pub(crate) fn began_stopping(&self, phase: crate::phase::StopPhase) {
        self.stopped.fetch_or(PhaseSet::NONE.with(phase).bits(), Ordering::AcqRel);
    }

    /// It started (again): no phase of its stop has run.
    pub(crate) fn started_afresh(&self) {
        self.stopped.store(0, Ordering::Release);
    }

    /// The current run of the component.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}
