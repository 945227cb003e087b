//! Periodic jobs: a job of a kind every period, or at each time a cron
//! expression names, once per tick across every replica that shares the
//! queue.
//!
//! A tick is identified by its start, in Unix milliseconds: for a period,
//! time is cut into slots (`unix time / period`) and a slot starts at
//! `slot × period`; for a cron expression (UTC), a tick is each time it
//! matches. At each tick every replica tries to take it: `orderly_periodic`
//! holds the last tick taken per (queue, kind), and only an `UPDATE` that
//! moves it forward returns a row. The winner enqueues the job in the same
//! transaction, so a tick is enqueued exactly once, whoever wins, and
//! ticks that passed while every replica was down are not caught up on
//! (the job is "every period", not "once per period ever").

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use super::durable::{enqueue_with, DurableQueue, QueueError};
use super::options::JobOptions;
use super::stage::{reached, Stage};

/// When a periodic job comes round.
#[derive(Debug, Clone)]
pub(crate) enum Schedule {
    /// Every period, from the Unix epoch (so replicas agree on the slots).
    Every(Duration),
    /// At each time the expression matches, in UTC.
    Cron(Box<croner::Cron>),
}

impl Schedule {
    /// The tick under way at `now`, taken at once when a replica starts:
    /// a period's current slot; none for cron (its ticks are instants).
    fn current(&self, now: SystemTime) -> Option<i64> {
        match self {
            Schedule::Every(period) => {
                let (slot, _) = slot_of(now, *period);
                Some(slot.saturating_mul(period_ms(*period)))
            }
            Schedule::Cron(_) => None,
        }
    }

    /// The next tick after `now` (its start in Unix ms) and how long until
    /// it; `None` if a cron expression never matches again.
    fn next_after(&self, now: SystemTime) -> Option<(i64, Duration)> {
        let now_ms = i64::try_from(now.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).ok()?;
        let next_ms = match self {
            Schedule::Every(period) => {
                let (slot, _) = slot_of(now, *period);
                slot.checked_add(1)?.checked_mul(period_ms(*period))?
            }
            Schedule::Cron(cron) => {
                let now = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms)?;
                cron.find_next_occurrence(&now, false).ok()?.timestamp_millis()
            }
        };
        Some((next_ms, Duration::from_millis(u64::try_from(next_ms - now_ms).unwrap_or(0))))
    }
}

fn period_ms(period: Duration) -> i64 {
    i64::try_from(period.as_millis().max(1)).unwrap_or(i64::MAX)
}

/// `[workers.periodic.<kind>]`: a job of that kind on a schedule, once per
/// tick across every replica sharing the queue. Register its handler as
/// for any kind (`workers.handle(kind, …)`).
///
/// ```toml
/// [workers.periodic.send_digest]
/// cron = "0 7 * * MON-FRI"        # UTC; 5 fields, or 6 with seconds first
/// payload = { audience = "staff" }
///
/// [workers.periodic.refresh_rates]
/// every = "15m"                   # or a fixed period, from the Unix epoch
/// ```
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeriodicConfig {
    /// A cron expression, in UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A fixed period (instead of `cron`).
    #[serde(with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub every: Option<Duration>,
    /// The job's payload; the tick's start (Unix ms) is added as `slot`.
    pub payload: serde_json::Map<String, serde_json::Value>,
}

impl PeriodicConfig {
    /// The schedule, or why there is none.
    pub(crate) fn schedule(&self) -> Result<Schedule, String> {
        match (&self.cron, self.every) {
            (Some(expression), None) => expression
                .parse::<croner::Cron>()
                .map(|cron| Schedule::Cron(Box::new(cron)))
                .map_err(|e| format!("`{expression}` is not a cron expression: {e}")),
            (None, Some(period)) if !period.is_zero() => Ok(Schedule::Every(period)),
            (None, Some(_)) => Err("`every` must be greater than 0".into()),
            (Some(_), Some(_)) => Err("set `cron` or `every`, not both".into()),
            (None, None) => Err("set `cron` (a cron expression) or `every` (a period)".into()),
        }
    }
}

/// A job of `kind` with `payload` on `schedule`.
#[derive(Debug, Clone)]
pub(crate) struct Periodic {
    pub(crate) kind: String,
    pub(crate) schedule: Schedule,
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
    let mut due = job.schedule.current(SystemTime::now());
    loop {
        if let Some(slot) = due {
            match take(&queue, &job, slot, max_attempts).await {
                Ok(true) => slog::debug!(logger, "periodic job enqueued"; "kind" => &job.kind, "slot" => slot),
                Ok(false) => {}
                Err(e) => slog::warn!(logger, "could not enqueue a periodic job; trying at the next tick";
                    "kind" => &job.kind, "error" => %e),
            }
        }
        let Some((next, until_next)) = job.schedule.next_after(SystemTime::now()) else {
            slog::warn!(logger, "a periodic job's schedule has no tick left; it will not run again"; "kind" => &job.kind);
            return;
        };
        tokio::select! {
            () = tokio::time::sleep(until_next) => {}
            () = reached(&mut stage, Stage::NotClaiming) => return,
        }
        due = Some(next);
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

    #[test]
    fn a_schedule_is_a_cron_expression_or_a_period_and_says_what_is_wrong() {
        let config = |cron: Option<&str>, every: Option<u64>| PeriodicConfig {
            cron: cron.map(str::to_owned),
            every: every.map(Duration::from_secs),
            ..PeriodicConfig::default()
        };
        assert!(matches!(config(Some("0 7 * * MON-FRI"), None).schedule(), Ok(Schedule::Cron(_))));
        assert!(matches!(config(None, Some(60)).schedule(), Ok(Schedule::Every(_))));
        let problem = |c: PeriodicConfig| c.schedule().err().unwrap_or_default();
        assert!(problem(config(Some("every day"), None)).contains("`every day` is not a cron expression"));
        assert!(problem(config(Some("* * * * *"), Some(60))).contains("not both"));
        assert!(problem(config(None, None)).contains("set `cron`"));
        assert!(problem(config(None, Some(0))).contains("greater than 0"));
        let toml: PeriodicConfig =
            toml::from_str("cron = \"*/5 * * * *\"\npayload = { audience = \"staff\" }").unwrap();
        assert_eq!(toml.payload["audience"], "staff");
    }

    #[test]
    fn ticks_are_named_by_their_start_in_unix_milliseconds() {
        let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
        let every = Schedule::Every(Duration::from_millis(300));
        assert_eq!(every.current(at(1_000)), Some(900));
        assert_eq!(every.next_after(at(1_000)), Some((1_200, Duration::from_millis(200))));
        // Every five minutes, on the minute: 00:05 after 00:03:20.
        let cron = Schedule::Cron(Box::new("*/5 * * * *".parse().unwrap()));
        assert_eq!(cron.current(at(200_000)), None);
        assert_eq!(cron.next_after(at(200_000)), Some((300_000, Duration::from_secs(100))));
        // With seconds: every 10 s.
        let cron = Schedule::Cron(Box::new("*/10 * * * * *".parse().unwrap()));
        assert_eq!(cron.next_after(at(1_000)), Some((10_000, Duration::from_secs(9))));
        // 30 February never comes.
        let never = Schedule::Cron(Box::new("0 0 30 2 *".parse().unwrap()));
        assert_eq!(never.next_after(at(0)), None);
    }
}
