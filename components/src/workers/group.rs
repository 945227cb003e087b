//! Grouped jobs: several durable jobs of kinds registered with
//! [`Workers::handle_grouped`](super::Workers::handle_grouped) run one after
//! another in one transaction, completed by one statement and one `COMMIT`.
//!
//! A job alone costs four round trips (`BEGIN`, its write, its completion,
//! `COMMIT`); a group of n costs n + 3. Exactly once holds as for a job
//! alone: every job's effects and its completion commit together or not at
//! all. What a group changes is what happens on failure: one failing job
//! rolls the whole group back, and each of its jobs then runs again alone
//! (so a failing job is recorded exactly as it would be, and the others
//! complete). That re-run is why only handlers whose effects all live in
//! the transaction may be grouped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::durable::DurableQueue;
use super::stage::{has_reached, reached, Stage};
use super::{record, run_alone, JobContext, Outcome, Running, Shared};
use crate::workers::{Job, JobHandler, JobId};

/// How a group's run ended.
enum GroupOutcome {
    /// The first jobs, one per duration, committed; any after them were
    /// not started because phase 3 began, and go back to the queue.
    Committed { durations: Vec<Duration> },
    /// Cut off, or stopped failing during phase 3: everything rolled back
    /// and goes back to the queue.
    GiveBack,
    /// Rolled back for `why`: each job runs again alone.
    Alone(String),
}

/// Splits claimed jobs into what runs together: each job of a kind that is
/// not grouped alone, and the grouped ones in groups spread over the
/// `slots` that are free (a group takes one), at most `group_size` each.
pub(super) fn units(shared: &Shared, jobs: Vec<Job>, slots: usize) -> Vec<Vec<Job>> {
    let grouped = shared.grouped.read();
    if grouped.is_empty() {
        return jobs.into_iter().map(|job| vec![job]).collect();
    }
    let (together, alone): (Vec<Job>, Vec<Job>) = jobs.into_iter().partition(|job| grouped.contains(&job.kind));
    let mut units: Vec<Vec<Job>> = alone.into_iter().map(|job| vec![job]).collect();
    let size = together.len().div_ceil(slots.max(1)).clamp(1, shared.group_size.max(1));
    let mut together = together.into_iter().peekable();
    while together.peek().is_some() {
        units.push(together.by_ref().take(size).collect());
    }
    units
}

/// Runs a group to its end and records every job's outcome.
pub(super) async fn run_group(shared: Arc<Shared>, queue: DurableQueue, jobs: Vec<Job>) {
    let _running: Vec<Running> = jobs.iter().map(|_| Running::new(&shared, &queue.queue)).collect();
    let started = Instant::now();
    match execute_group(&shared, &queue, &jobs).await {
        GroupOutcome::Committed { durations } => {
            let finished = durations.len();
            for (job, took) in jobs.iter().zip(&durations) {
                shared
                    .metrics
                    .duration
                    .with_label_values(&[&*queue.queue, job.kind.as_str()])
                    .observe(took.as_secs_f64());
            }
            shared.metrics.jobs.with_label_values(&[&queue.queue, "done"]).inc_by(finished as u64);
            for job in &jobs[finished..] {
                record(&shared, &queue, job, Outcome::CutOff, started).await;
            }
        }
        GroupOutcome::GiveBack => {
            for job in &jobs {
                record(&shared, &queue, job, Outcome::CutOff, started).await;
            }
        }
        GroupOutcome::Alone(why) => {
            slog::debug!(shared.logger, "a group of jobs rolled back; running each alone"; "jobs" => jobs.len(), "why" => &why);
            for job in &jobs {
                run_alone(&shared, &queue, job).await;
            }
        }
    }
}

/// Runs the group's handlers in one transaction, renewing their leases
/// meanwhile, and commits their completion with their effects.
async fn execute_group(shared: &Shared, queue: &DurableQueue, jobs: &[Job]) -> GroupOutcome {
    let handlers: Option<Vec<Arc<dyn JobHandler>>> = {
        let handlers = shared.handlers.read();
        jobs.iter().map(|job| handlers.get(&job.kind).cloned()).collect()
    };
    let Some(handlers) = handlers else {
        return GroupOutcome::Alone("a kind of the group has no handler here".into());
    };
    let mut client = match queue.client().await {
        Ok(client) => client,
        Err(e) => return GroupOutcome::Alone(e.to_string()),
    };
    let tx = match client.transaction().await {
        Ok(tx) => tx,
        Err(e) => return GroupOutcome::Alone(e.to_string()),
    };
    let ids: Vec<JobId> = jobs.iter().map(|job| job.id).collect();
    let ctx = JobContext { stage: shared.stage.subscribe(), transaction: Some(&tx) };
    let mut stage = shared.stage.subscribe();
    let renew_every = queue.lease / 3;
    let mut renew_at = tokio::time::Instant::now() + renew_every;
    let mut durations = Vec::with_capacity(jobs.len());
    for (job, handler) in jobs.iter().zip(&handlers) {
        // Phase 3 began: what is done commits, what has not started goes back.
        if has_reached(&stage, Stage::Cancelling) {
            break;
        }
        let started = Instant::now();
        let run = handler.run(job, &ctx);
        let mut run = std::pin::pin!(run);
        let result = loop {
            tokio::select! {
                result = &mut run => break result,
                // The transaction rolls back on drop.
                () = reached(&mut stage, Stage::CuttingOff) => return GroupOutcome::GiveBack,
                () = tokio::time::sleep_until(renew_at) => {
                    renew_at += renew_every;
                    if !matches!(queue.renew_all(&ids).await, Ok(n) if n == ids.len() as u64) {
                        slog::warn!(shared.logger, "lost the lease of a job in a running group"; "jobs" => ?ids);
                    }
                }
            }
        };
        if let Err(error) = result {
            if has_reached(&stage, Stage::Cancelling) {
                return GroupOutcome::GiveBack;
            }
            let why = format!("job {} failed: {}", job.id, orderly::events::error_chain(error.as_ref()));
            return GroupOutcome::Alone(why);
        }
        durations.push(started.elapsed());
    }
    drop(ctx);
    let finished = &ids[..durations.len()];
    if finished.is_empty() {
        return GroupOutcome::GiveBack;
    }
    match queue.complete_all_in(&tx, finished).await {
        Ok(n) if n == finished.len() as u64 => match tx.commit().await {
            Ok(()) => GroupOutcome::Committed { durations },
            // Alone, each job finds out whether this commit took after all:
            // a job already done is not ours any more and rolls back.
            Err(e) => GroupOutcome::Alone(format!("committing the group: {e}")),
        },
        Ok(_) => GroupOutcome::Alone("a job's lease was lost while the group ran".into()),
        Err(e) => GroupOutcome::Alone(e.to_string()),
    }
}
