//! [`JobOptions`]: how a durable job is enqueued beyond its kind and
//! payload: when it may run, how urgent it is, and whether it must be the
//! only one of its key waiting.

use std::time::Duration;

/// Options for [`Workers::enqueue_with`](super::Workers::enqueue_with) and
/// [`enqueue_with`](super::enqueue_with).
///
/// ```
/// use std::time::Duration;
/// use orderly_components::workers::JobOptions;
/// let reminder = JobOptions::new().run_in(Duration::from_secs(3600)).priority(-1).unique("remind:order:42");
/// # let _ = reminder;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobOptions {
    pub(crate) delay: Duration,
    pub(crate) priority: i32,
    pub(crate) unique_key: Option<String>,
}

impl JobOptions {
    /// Run as soon as a worker is free, priority 0, not unique.
    pub fn new() -> Self {
        Self::default()
    }

    /// Not before `delay` from the enqueue (the database's clock).
    pub fn run_in(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Jobs whose time has come are claimed highest priority first (then
    /// oldest first); the default is 0, and negative values are allowed.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// At most one job with this key is waiting or running in the queue:
    /// enqueueing another while one is returns the existing job
    /// ([`Enqueued::created`] is false). Once it is done (or dead), the key
    /// is free again.
    pub fn unique(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }
}

/// What an enqueue did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The job: the new one, or the one already waiting with the same unique key.
    pub id: super::JobId,
    /// Whether a new job was created.
    pub created: bool,
}
