//! [`RunTasks`]: the background tasks one component's current run spawned
//! (`StartContext::spawn`), so that the runtime can end them when that run
//! ends: cancellation first (a token the tasks can watch), then abort at a
//! limit. A restarted component is a fresh process (OTP's rule): nothing of
//! its old run outlives it.
//!
//! Part of the model's plain state: it names nothing else in the crate.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

/// How long aborted tasks get to be dropped: an abort takes effect at a
/// task's next await, so only one stuck in synchronous code needs it all.
const ABORT_GRACE: Duration = Duration::from_millis(100);

/// The tasks of one component's current run.
#[derive(Default)]
pub(crate) struct RunTasks {
    state: Mutex<State>,
    /// Signalled whenever a task ends.
    ended: Notify,
}

#[derive(Default)]
struct State {
    /// Tasks spawned and not yet dropped.
    live: usize,
    /// Every task spawned in this run (aborting a finished one does nothing).
    aborts: Vec<AbortHandle>,
    /// Cancelled when the run ends; made when first asked for.
    token: Option<CancellationToken>,
}

/// How ending a run's tasks went, for its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TasksEnded {
    /// Ended on their own once cancelled.
    pub(crate) cancelled: usize,
    /// Still running at the limit, then aborted.
    pub(crate) aborted: usize,
    /// Not even an abort ended them (stuck in synchronous code).
    pub(crate) stuck: usize,
}

/// A run's abort handles while its tasks are being ended: dropped, however
/// the ending went, it aborts them (a finished task ignores the abort).
struct AbortOnDrop(Vec<AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(AbortHandle::abort);
    }
}

/// Held by a running task; its drop (the task returned, panicked or was
/// aborted) counts the task ended.
pub(crate) struct TaskGuard(Arc<RunTasks>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        let mut state = self.0.state.lock();
        state.live = state.live.saturating_sub(1);
        drop(state);
        self.0.ended.notify_waiters();
    }
}

impl RunTasks {
    /// The token the current run's tasks may watch.
    pub(crate) fn token(&self) -> CancellationToken {
        self.state.lock().token.get_or_insert_with(CancellationToken::new).clone()
    }

    /// Counts a task of the current run as running until the guard drops.
    pub(crate) fn track(self: &Arc<Self>) -> TaskGuard {
        self.state.lock().live += 1;
        TaskGuard(self.clone())
    }

    /// Keeps the means to abort a task of the current run.
    pub(crate) fn add_abort(&self, abort: AbortHandle) {
        let mut state = self.state.lock();
        // Finished tasks need no handle: keep the list from growing over a long run.
        state.aborts.retain(|handle| !handle.is_finished());
        state.aborts.push(abort);
    }

    /// Ends the current run's tasks: cancels its token, waits up to
    /// `limit` for them to end, aborts those still running. The next run
    /// gets a fresh token. `None` if no task was running.
    ///
    /// Cancel-safe: if this future is dropped before it finishes (its
    /// caller was cut short), the tasks still running are aborted at once.
    pub(crate) async fn end(&self, limit: Duration) -> Option<TasksEnded> {
        let (token, aborts, running) = {
            let mut state = self.state.lock();
            let aborts = AbortOnDrop(std::mem::take(&mut state.aborts));
            (state.token.take(), aborts, state.live)
        };
        if let Some(token) = token {
            token.cancel();
        }
        if running == 0 {
            return None;
        }
        let left = self.wait_for_none(limit).await;
        if left == 0 {
            return Some(TasksEnded { cancelled: running, aborted: 0, stuck: 0 });
        }
        aborts.0.iter().for_each(AbortHandle::abort);
        let stuck = self.wait_for_none(ABORT_GRACE).await;
        Some(TasksEnded { cancelled: running - left, aborted: left - stuck, stuck })
    }

    /// Waits until no task runs, at most `limit`; how many still run.
    async fn wait_for_none(&self, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            // Registered before the count is read, so an end in between is not missed.
            let ended = self.ended.notified();
            let live = self.state.lock().live;
            if live == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return self.state.lock().live;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_task_that_watches_the_token_ends_when_cancelled_and_one_that_does_not_is_aborted() {
        let tasks = Arc::new(RunTasks::default());
        for watches in [true, false] {
            let (guard, token) = (tasks.track(), tasks.token());
            let handle = tokio::spawn(async move {
                let _guard = guard;
                if watches {
                    token.cancelled().await;
                } else {
                    std::future::pending::<()>().await;
                }
            });
            tasks.add_abort(handle.abort_handle());
        }
        let ended = tasks.end(Duration::from_millis(50)).await;
        assert_eq!(ended, Some(TasksEnded { cancelled: 1, aborted: 1, stuck: 0 }));
        assert!(!tasks.token().is_cancelled(), "the next run has a fresh token");
        assert_eq!(tasks.end(Duration::from_millis(50)).await, None, "nothing left to end");
    }

    #[tokio::test]
    async fn an_ending_cut_short_aborts_what_still_runs() {
        let tasks = Arc::new(RunTasks::default());
        let guard = tasks.track();
        let handle = tokio::spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await;
        });
        tasks.add_abort(handle.abort_handle());
        // The caller is cancelled (a shutdown cut a start short) while it waits.
        let cut = tokio::time::timeout(Duration::from_millis(20), tasks.end(Duration::from_secs(60))).await;
        assert!(cut.is_err());
        assert_eq!(tasks.wait_for_none(Duration::from_secs(5)).await, 0, "the task was aborted, not left running");
    }
}
