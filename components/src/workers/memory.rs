//! The in-memory queue: bounded, never unbounded. `enqueue` waits for room;
//! `try_enqueue` is rejected at once when full. Its jobs do not survive the
//! process: use it for work that may be lost (cache warming, fan-out of
//! notifications that are also recoverable elsewhere), and the durable
//! queue for everything else.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::mpsc;

use super::durable::QueueError;
use super::job::Job;

/// The sending side, handed to producers.
#[derive(Clone)]
pub struct MemoryQueue {
    pub(crate) name: Arc<str>,
    pub(crate) sender: mpsc::Sender<Job>,
    /// Cleared in phase 1: from then on, enqueueing is refused.
    pub(crate) accepting: Arc<AtomicBool>,
}

impl MemoryQueue {
    fn job(&self, kind: &str, payload: serde_json::Value) -> Job {
        Job { id: 0, queue: self.name.clone(), kind: kind.to_owned(), payload, attempt: 1 }
    }

    fn check_accepting(&self) -> Result<(), QueueError> {
        if self.accepting.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(QueueError::Stopping)
        }
    }

    /// Adds a job, waiting while the queue is full.
    pub async fn enqueue(&self, kind: &str, payload: serde_json::Value) -> Result<(), QueueError> {
        self.check_accepting()?;
        self.sender
            .send(self.job(kind, payload))
            .await
            .map_err(|_| QueueError::Rejected { queue: self.name.to_string(), state: "closed" })
    }

    /// Adds a job, or is rejected at once when the queue is full.
    pub fn try_enqueue(&self, kind: &str, payload: serde_json::Value) -> Result<(), QueueError> {
        self.check_accepting()?;
        self.sender.try_send(self.job(kind, payload)).map_err(|e| QueueError::Rejected {
            queue: self.name.to_string(),
            state: match e {
                mpsc::error::TrySendError::Full(_) => "full",
                mpsc::error::TrySendError::Closed(_) => "closed",
            },
        })
    }

    /// Jobs waiting.
    pub fn depth(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn full_is_rejected_or_waits_never_grows() {
        let (sender, mut receiver) = mpsc::channel(2);
        let queue = MemoryQueue { name: "mem".into(), sender, accepting: Arc::new(AtomicBool::new(true)) };
        queue.try_enqueue("a", serde_json::Value::Null).unwrap();
        queue.enqueue("b", serde_json::Value::Null).await.unwrap();
        assert_eq!(queue.depth(), 2);
        let error = queue.try_enqueue("c", serde_json::Value::Null).unwrap_err();
        assert!(error.to_string().contains("full"), "{error}");
        let waiting = tokio::spawn({
            let queue = queue.clone();
            async move { queue.enqueue("d", serde_json::Value::Null).await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "enqueue waits for room");
        assert_eq!(receiver.recv().await.unwrap().kind, "a");
        waiting.await.unwrap().unwrap();
        assert_eq!(queue.depth(), 2);
        queue.accepting.store(false, Ordering::SeqCst);
        assert!(matches!(queue.try_enqueue("e", serde_json::Value::Null), Err(QueueError::Stopping)));
    }
}
