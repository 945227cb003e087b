//! What the runtime tracks about each component while the app runs: its
//! condition (degraded, restarting), which run of it is current, and its
//! recent restarts, and the tasks its current run spawned. Plain state,
//! read by probes and written by supervision; it names only `RunTasks`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

use crate::run_tasks::RunTasks;

/// Why a component is not fully well, beyond what its `ready` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Condition {
    /// A failure while running was ignored (`on_failure = "ignore"`): degraded from then on.
    Degraded(String),
    /// Being restarted, itself or with a dependency: not ready.
    Restarting(std::sync::Arc<str>),
    /// Enabled by a reload and starting: not asked, and not counted, until
    /// it is ready (the app was ready without it).
    Enabling,
}

/// What the runtime tracks about one component while the app runs.
pub(crate) struct Supervised {
    pub(crate) condition: Mutex<Option<Condition>>,
    /// Bumped when the component is stopped for a restart: background tasks
    /// of an earlier run are no longer its own, and their ends are ignored.
    pub(crate) generation: AtomicU64,
    /// The restarts within the current period, with their causes.
    pub(crate) history: Mutex<VecDeque<(Instant, String)>>,
    /// The background tasks of its current run.
    pub(crate) tasks: std::sync::Arc<RunTasks>,
    /// The dependency (index) whose failure it goes down with, from that
    /// failure until the restart that takes it along completes: its own
    /// failures meanwhile are that dependency's, not its.
    /// An atomic (`NO_ONE` for none): a restart of hundreds clears it on
    /// every member, and most have nothing to clear.
    down_with: AtomicUsize,
    /// Its `start` returned `Ok` at least once in this process: its type
    /// has started, so starting it again (a new value included) needs
    /// `Component::restartable`.
    pub(crate) ran: AtomicBool,
    /// Set while a restart stops it to start the same value again right
    /// after ([`StopContext::starts_again`](crate::StopContext::starts_again)).
    pub(crate) starts_again: AtomicBool,
}

impl Default for Supervised {
    fn default() -> Self {
        Self {
            condition: Mutex::new(None),
            generation: AtomicU64::new(0),
            history: Mutex::new(VecDeque::new()),
            tasks: Default::default(),
            down_with: AtomicUsize::new(NO_ONE),
            ran: AtomicBool::new(false),
            starts_again: AtomicBool::new(false),
        }
    }
}

/// `down_with` when it goes down with no one.
const NO_ONE: usize = usize::MAX;

impl Supervised {
    /// The current run of the component.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The dependency it goes down with, if any.
    pub(crate) fn down_with(&self) -> Option<usize> {
        Some(self.down_with.load(Ordering::Acquire)).filter(|&k| k != NO_ONE)
    }

    /// It goes down with dependency `k`, unless it goes down with one already.
    pub(crate) fn go_down_with(&self, k: usize) {
        let _ = self.down_with.compare_exchange(NO_ONE, k, Ordering::AcqRel, Ordering::Acquire);
    }

    /// It goes down with no one (its restart completed).
    pub(crate) fn clear_down_with(&self) {
        // A load first: most have nothing to clear, and a write would dirty the line.
        if self.down_with.load(Ordering::Acquire) != NO_ONE {
            self.down_with.store(NO_ONE, Ordering::Release);
        }
    }
}
