//! The one hook runner: every hook (a start, each stop phase's hooks, a
//! restart's members, a reload hook) runs through [`launch`], so that a
//! panic is caught and a hang can be abandoned.
//!
//! A hook is polled once in place: most hooks (and every default no-op)
//! finish on that first poll, so they cost no task spawn. A hook that is
//! still pending moves into its own task, which can be aborted at its cap.
//! The walk along the graph (`walk.rs`) launches many at once; [`run_one`]
//! runs a single one; [`within`] bounds a future the caller keeps polling
//! itself (one start attempt, inside its component's launched start).
//!
//! The engine's lowest floor: it names only the error vocabulary, not the
//! graph or the state.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;
use std::time::Instant;

use tokio::task::{JoinError, JoinHandle};

use crate::error::panic_message;

/// An owned, sendable future.
pub(crate) type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// How a hook (a start, a stop hook, a spawned task) ended.
#[derive(Debug)]
pub(crate) enum Ended<T> {
    /// It returned.
    Returned(T),
    /// It panicked, with this message.
    Panicked(String),
    /// Its task was aborted before it finished (a cancelled start).
    Aborted,
    /// It ran past its limit and was abandoned: its task is aborted.
    OverLimit,
}

impl<T> Ended<T> {
    /// The same end, with what it returned changed by `f`.
    pub(crate) fn map<U>(self, f: impl FnOnce(T) -> U) -> Ended<U> {
        match self {
            Ended::Returned(value) => Ended::Returned(f(value)),
            Ended::Panicked(message) => Ended::Panicked(message),
            Ended::Aborted => Ended::Aborted,
            Ended::OverLimit => Ended::OverLimit,
        }
    }
}

/// A hook after its first poll.
pub(crate) enum Launched<T> {
    /// Finished on the first poll.
    Done(Ended<T>),
    /// Still running in its own task.
    Running(JoinHandle<T>),
}

/// Polls `future` once in place; spawns it if it is not done.
pub(crate) async fn launch<T: Send + 'static>(future: BoxFuture<T>) -> Launched<T> {
    let mut slot = Some(future);
    std::future::poll_fn(move |cx| {
        let Some(mut future) = slot.take() else {
            return Poll::Ready(Launched::Done(Ended::Panicked("hook polled after completion".into())));
        };
        Poll::Ready(match std::panic::catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(value)) => Launched::Done(Ended::Returned(value)),
            // The task polls again at once with its own waker, as the Future
            // contract requires of whoever polls next.
            Ok(Poll::Pending) => Launched::Running(tokio::spawn(future)),
            Err(payload) => Launched::Done(Ended::Panicked(panic_message(payload.as_ref()))),
        })
    })
    .await
}

/// How a spawned hook ended, from what its handle gave.
pub(crate) fn join_result<T>(result: Result<T, JoinError>) -> Ended<T> {
    match result {
        Ok(value) => Ended::Returned(value),
        Err(e) if e.is_panic() => Ended::Panicked(panic_message(e.into_panic().as_ref())),
        Err(_) => Ended::Aborted,
    }
}

/// Runs `future` until `deadline`; `None` if it did not finish. A future
/// that is done on its first poll never arms a timer, which is most of
/// them, nor works out its deadline (a sum of an instant and a timeout).
pub(crate) async fn within<F: Future>(deadline: impl FnOnce() -> Instant, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    if let Poll::Ready(output) = futures::poll!(future.as_mut()) {
        return Some(output);
    }
    let deadline = deadline();
    // Boxed: the timer is large and most callers never need it, while every
    // caller's future (a component's whole start) would carry its size.
    Box::pin(tokio::time::timeout_at(deadline.into(), future)).await.ok()
}

/// Runs one hook outside a walk along the graph (a reload hook), the way a
/// walk runs each of its hooks: polled once in place, then in its own task
/// until it returns, `limit` passes (abandoned: `OverLimit`) or `interrupt`
/// completes first (`Aborted`).
pub(crate) async fn run_one<T: Send + 'static>(
    hook: BoxFuture<T>,
    limit: Instant,
    interrupt: impl Future<Output = ()>,
) -> Ended<T> {
    match launch(hook).await {
        Launched::Done(ended) => ended,
        Launched::Running(mut handle) => {
            let ended = tokio::select! {
                result = &mut handle => return join_result(result),
                _ = tokio::time::sleep_until(limit.into()) => Ended::OverLimit,
                _ = interrupt => Ended::Aborted,
            };
            handle.abort();
            ended
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_ready_future_is_not_spawned() {
        match launch(Box::pin(async { 7 })).await {
            Launched::Done(Ended::Returned(7)) => {}
            _ => panic!("expected an inline result"),
        }
    }

    #[tokio::test]
    async fn a_pending_future_finishes_in_its_task() {
        let launched = launch(Box::pin(async {
            tokio::task::yield_now().await;
            9
        }))
        .await;
        let Launched::Running(handle) = launched else { panic!("expected a task") };
        assert!(matches!(join_result(handle.await), Ended::Returned(9)));
    }

    #[tokio::test]
    async fn a_panic_on_first_poll_is_caught() {
        let launched = launch(Box::pin(async { panic!("boom") })).await;
        assert!(matches!(launched, Launched::Done(Ended::Panicked(m)) if m == "boom"));
    }

    #[tokio::test]
    async fn a_panic_in_the_task_is_caught() {
        let launched = launch(Box::pin(async {
            tokio::task::yield_now().await;
            panic!("late boom")
        }))
        .await;
        let Launched::Running(handle) = launched else { panic!("expected a task") };
        assert!(matches!(join_result(handle.await), Ended::Panicked(m) if m == "late boom"));
    }
}
