//! Jobs and their handlers.

use std::sync::Arc;

use async_trait::async_trait;
use orderly::BoxError;
use tokio::sync::watch;

use super::stage::{has_reached, reached, Stage};

/// A job's id in the durable queue (0 for in-memory jobs).
pub type JobId = i64;

/// One job as a handler sees it.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its id: use it as the idempotency key of whatever the job does.
    pub id: JobId,
    /// The queue it came from.
    pub queue: Arc<str>,
    /// Which handler runs it.
    pub kind: String,
    /// Its input.
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
}

/// What a handler gets besides the job: the shutdown's cancellation and,
/// for durable jobs, the transaction the job completes in.
pub struct JobContext<'a> {
    pub(crate) stage: watch::Receiver<Stage>,
    pub(crate) transaction: Option<&'a deadpool_postgres::Transaction<'a>>,
}

impl JobContext<'_> {
    /// Resolves when phase 3 asks running jobs to stop: finish quickly or
    /// return an error, and the job goes back to the queue for another worker.
    pub async fn cancelled(&self) {
        // A pool that is gone counts as cancelled too.
        reached(&mut self.stage.clone(), Stage::Cancelling).await;
    }

    /// Whether cancellation has been asked for.
    pub fn is_cancelled(&self) -> bool {
        has_reached(&self.stage, Stage::Cancelling)
    }

    /// The transaction a durable job completes in. Write the job's effects
    /// here: they commit together with the job's completion, so a job's
    /// effects land exactly once even if the process is killed. `None` for
    /// in-memory jobs.
    pub fn transaction(&self) -> Option<&deadpool_postgres::Transaction<'_>> {
        self.transaction.map(|t| t as _)
    }
}

/// Runs jobs of one kind. Register it with
/// [`Workers::handle`](super::Workers::handle) from the `start` of a
/// component that depends on the workers (with typed access to its own
/// dependencies).
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one job. An error retries it with backoff, up to the attempt
    /// limit, then dead-letters it.
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError>;
}

/// A handler's answer that the job cannot be done *yet* (a rate-limited API
/// said to wait, a resource is not there yet): return it as the error, and
/// the job runs again after the delay, without spending an attempt. What
/// the attempt wrote in the job's transaction is rolled back.
///
/// ```
/// use std::time::Duration;
/// use orderly_components::workers::RetryLater;
/// let error: orderly::BoxError = RetryLater(Duration::from_secs(30)).into();
/// assert!(error.downcast_ref::<RetryLater>().is_some());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not yet: run again in {} ms", .0.as_millis())]
pub struct RetryLater(pub std::time::Duration);

/// A job that used up its attempts (or was cancelled), as
/// [`Workers::dead_jobs`](super::Workers::dead_jobs) lists it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DeadJob {
    /// Its id, for [`Workers::retry_dead`](super::Workers::retry_dead).
    pub id: JobId,
    /// Its kind.
    pub kind: String,
    /// Its payload.
    pub payload: serde_json::Value,
    /// Attempts made.
    pub attempts: i32,
    /// The last attempt's error (`cancelled` for a cancelled job).
    pub last_error: Option<String>,
}
