//! A count of things in progress that can be waited on until it reaches
//! zero: the HTTP server's open connections, the workers' running jobs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Notify;

/// Things in progress; each holds a [`Busy`] guard.
#[derive(Default)]
pub(crate) struct InProgress {
    count: AtomicUsize,
    idle: Notify,
}

/// Counted while alive.
pub(crate) struct Busy(Arc<InProgress>);

impl InProgress {
    /// Counts one more until the guard is dropped.
    pub(crate) fn enter(self: &Arc<Self>) -> Busy {
        self.count.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    pub(crate) fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until nothing is in progress: `true`, or `false` at `until`.
    pub(crate) async fn wait_until_idle(&self, until: Instant) -> bool {
        let idle = async {
            loop {
                // Register before reading the count, so a drop in between is not missed.
                let notified = self.idle.notified();
                let mut notified = std::pin::pin!(notified);
                notified.as_mut().enable();
                if self.count() == 0 {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout_at(until.into(), idle).await.is_ok()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn waits_for_the_last_guard_or_gives_up() {
        let work = Arc::new(InProgress::default());
        let (a, b) = (work.enter(), work.enter());
        assert!(!work.wait_until_idle(Instant::now() + Duration::from_millis(10)).await, "still busy");
        let waiter = tokio::spawn({
            let work = work.clone();
            async move { work.wait_until_idle(Instant::now() + Duration::from_secs(30)).await }
        });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        drop(b);
        assert!(waiter.await.unwrap());
        assert_eq!(work.count(), 0);
    }
}
