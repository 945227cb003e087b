//! Start walks and their outcome: the app's startup, and each restart or
//! reload that starts components along the graph again.
//!
//! A component that must wait for the rest of its start before it acts
//! (an HTTP server takes traffic only once the components that add its
//! routes, which start after it, have started) asks through
//! [`StartContext::all_started`](crate::StartContext::all_started) whether
//! the walk its start belongs to completed. Walks run one at a time (the
//! startup before any restart; restarts and reloads hold the restart
//! turn), so a walk that begins means the ones before it have ended.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;

/// How many ended walks' outcomes are kept: a task that asks about its walk
/// long after it ended (its run is over by then) is answered from the
/// newest outcome it can know.
const KEPT: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct Record {
    /// The newest walk begun (1, the first).
    begun: u64,
    /// The outcome of the newest ended walks, oldest first.
    ended: VecDeque<(u64, bool)>,
}

impl Record {
    fn outcome(&self, walk: u64) -> Option<bool> {
        self.ended.iter().rev().find(|(id, _)| *id == walk).map(|(_, complete)| *complete)
    }

    fn has_ended(&self, walk: u64) -> bool {
        self.ended.back().is_some_and(|(id, _)| *id >= walk)
    }
}

/// The runtime's record of its start walks.
pub(crate) struct Walks {
    record: watch::Sender<Record>,
    /// The newest walk begun, beside the record: every start reads it, and
    /// a load costs nothing where the record's lock would be contended.
    current: AtomicU64,
}

impl Default for Walks {
    fn default() -> Self {
        Self { record: watch::Sender::new(Record::default()), current: AtomicU64::new(0) }
    }
}

impl Walks {
    /// A walk begins: its number.
    pub(crate) fn begin(&self) -> u64 {
        let mut walk = 0;
        self.record.send_modify(|record| {
            record.begun += 1;
            walk = record.begun;
        });
        self.current.store(walk, Ordering::Release);
        walk
    }

    /// Walk `walk` ended: `complete` if every component in it started and is ready.
    pub(crate) fn end(&self, walk: u64, complete: bool) {
        self.record.send_modify(|record| {
            if record.ended.len() == KEPT {
                record.ended.pop_front();
            }
            record.ended.push_back((walk, complete));
        });
    }

    /// The walk running now (or the last one).
    pub(crate) fn current(&self) -> u64 {
        self.current.load(Ordering::Acquire)
    }

    /// Waits until walk `walk` ended: whether it completed.
    pub(crate) async fn completed(&self, walk: u64) -> bool {
        let mut record = self.record.subscribe();
        // An outcome too old to be kept: the walk ended long ago, and
        // whoever asks belongs to a run that has ended too.
        let outcome = match record.wait_for(|record| record.has_ended(walk)).await {
            Ok(record) => record.outcome(walk).unwrap_or(false),
            Err(_) => false,
        };
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_learns_its_own_walks_outcome_even_after_later_walks() {
        let walks = std::sync::Arc::new(Walks::default());
        let first = walks.begin();
        let waiting = tokio::spawn({
            let walks = walks.clone();
            async move { walks.completed(first).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the walk has not ended");
        walks.end(first, true);
        let second = walks.begin();
        walks.end(second, false);
        assert!(waiting.await.unwrap());
        assert!(walks.completed(first).await, "asked after a later walk ended");
        assert!(!walks.completed(second).await);
        assert_eq!(walks.current(), second);
    }
}
