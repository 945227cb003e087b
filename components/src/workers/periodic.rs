//! Periodic jobs: a job of a kind every period, once per period across
//! every replica that shares the queue.
//!
//! Time is cut into slots (`unix time / period`). At each slot's start,
//! every replica tries to take it: `orderly_periodic` holds the last slot
//! taken per (queue, kind), and only an `UPDATE` that moves it forward
//! returns a row. The winner enqueues the job in the same transaction, so
//! a slot is enqueued exactly once, whoever wins, and a replica that was
//! down for a while does not catch up on slots it missed (the job is
//! "every period", not "once per period ever").

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::durable::{enqueue_with, DurableQueue, QueueError};
use super::options::JobOptions;
use super::stage::{reached, Stage};

/// The table of slots taken; created with the queue's schema.
pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orderly_periodic (
    queue TEXT NOT NULL,
    kind  TEXT NOT NULL,
    slot  BIGINT NOT NULL,
    PRIMARY KEY (queue, kind)
);
";

/// A job of `kind` with `payload` every `period`.
#[derive(Debug, Clone)]
pub(crate) struct Periodic {
    pub(crate) kind: String,
    pub(crate) period: Duration,
    pub(crate) payload: serde_json::Value,
}

/// The slot `now` falls in, and how long until the next one begins.
fn slot_of(now: SystemTime, period: Duration) -> (i64, Duration) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let period_ms = period.as_millis().max(1);
    let slot = since.as_millis() / period_ms;
    let next = Duration::from_millis(u64::try_from((slot + 1) * period_ms - since.as_millis()).unwrap_or(u64::MAX));
    (i64::try_from(slot).unwrap_or(i64::MAX), next)
}

/// Takes slot `slot` for `job` and enqueues it; whether this replica won it.
async fn take(queue: &DurableQueue, job: &Periodic, slot: i64, max_attempts: i32) -> Result<bool, QueueError> {
    let mut client = queue.client().await?;
    let tx = client.transaction().await.map_err(|e| QueueError::Unavailable(e.to_string()))?;
    let won = tx
        .query_opt(
            "INSERT INTO orderly_periodic (queue, kind, slot) VALUES ($1, $2, $3)
             ON CONFLICT (queue, kind) DO UPDATE SET slot = EXCLUDED.slot WHERE orderly_periodic.slot < EXCLUDED.slot
             RETURNING slot",
            &[&&*queue.queue, &job.kind, &slot],
        )
        .await
        .map_err(|e| QueueError::Query { what: "taking a periodic slot", source: e })?;
    if won.is_none() {
        return Ok(false);
    }
    let mut payload = job.payload.clone();
    if let Some(object) = payload.as_object_mut() {
        object.insert("slot".into(), slot.into());
    }
    enqueue_with(&tx, &queue.queue, &job.kind, &payload, max_attempts, &JobOptions::new()).await?;
    tx.commit().await.map_err(|e| QueueError::Unavailable(e.to_string()))?;
    Ok(true)
}

/// Enqueues `job` at the start of each of its slots until phase 1.
pub(crate) async fn run(
    queue: DurableQueue,
    job: Arc<Periodic>,
    max_attempts: i32,
    mut stage: watch::Receiver<Stage>,
    logger: slog::Logger,
) {
    loop {
        let (slot, _) = slot_of(SystemTime::now(), job.period);
        match take(&queue, &job, slot, max_attempts).await {
            Ok(true) => slog::debug!(logger, "periodic job enqueued"; "kind" => &job.kind, "slot" => slot),
            Ok(false) => {}
            Err(e) => slog::warn!(logger, "could not enqueue a periodic job; trying at the next slot";
                "kind" => &job.kind, "error" => %e),
        }
        let (_, until_next) = slot_of(SystemTime::now(), job.period);
        tokio::select! {
            () = tokio::time::sleep(until_next) => {}
            () = reached(&mut stage, Stage::NotClaiming) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_cut_time_by_the_period() {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        assert_eq!(slot_of(at(1_000), Duration::from_millis(300)), (3, Duration::from_millis(200)));
        assert_eq!(slot_of(at(1_200), Duration::from_millis(300)), (4, Duration::from_millis(300)));
    }
}
