//! What the runtime tracks about each component while the app runs: its
//! condition (degraded, restarting), which run of it is current, and its
//! recent restarts, and the tasks its current run spawned. Plain state,
//! read by probes and written by supervision; it names only `RunTasks`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The dependency (index) whose failure it goes down with, from that
    /// failure until the restart that takes it along completes: its own
    /// failures meanwhile are that dependency's, not its.
    pub(crate) down_with: Mutex<Option<usize>>,
    /// Its `start` returned `Ok` at least once in this process: its type
    /// has started, so starting it again (a new value included) needs
    /// `Component::restartable`.
    pub(crate) ran: std::sync::atomic::AtomicBool,
    /// Set while a restart stops it to start the same value again right
    /// after ([`StopContext::starts_again`](crate::StopContext::starts_again)).
    pub(crate) starts_again: std::sync::atomic::AtomicBool,
}

impl Supervised {
    /// The current run of the component.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}
