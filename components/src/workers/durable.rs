//! The durable queue: jobs in a Postgres table, claimed with
//! `FOR UPDATE SKIP LOCKED` under a lease, so any number of processes can
//! share it. A job has attempts, exponential backoff between them, and a
//! dead-letter state after the last one. A process that dies leaves its
//! leases to expire; the jobs are then claimed again.

use std::time::Duration;

use deadpool_postgres::{GenericClient, Pool, Transaction};
use orderly::settings::RetryPolicy;
use tokio_postgres::Row;

use super::job::{Job, JobId};
use super::options::{Enqueued, JobOptions};

/// The table and its index; created under an advisory lock at start.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS orderly_jobs (
    id           BIGSERIAL PRIMARY KEY,
    queue        TEXT NOT NULL,
    kind         TEXT NOT NULL,
    payload      JSONB NOT NULL,
    status       TEXT NOT NULL DEFAULT 'ready' CHECK (status IN ('ready', 'running', 'done', 'dead')),
    attempts     INT NOT NULL DEFAULT 0,
    max_attempts INT NOT NULL,
    run_after    TIMESTAMPTZ NOT NULL DEFAULT now(),
    lease_until  TIMESTAMPTZ,
    lease_owner  TEXT,
    last_error   TEXT,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at  TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS orderly_jobs_claimable ON orderly_jobs (queue, run_after) WHERE status IN ('ready', 'running');
ALTER TABLE orderly_jobs ADD COLUMN IF NOT EXISTS priority INT NOT NULL DEFAULT 0;
ALTER TABLE orderly_jobs ADD COLUMN IF NOT EXISTS unique_key TEXT;
CREATE INDEX IF NOT EXISTS orderly_jobs_by_priority ON orderly_jobs (queue, priority DESC, run_after, id) WHERE status IN ('ready', 'running');
CREATE UNIQUE INDEX IF NOT EXISTS orderly_jobs_unique ON orderly_jobs (queue, unique_key)
    WHERE unique_key IS NOT NULL AND status IN ('ready', 'running');
CREATE INDEX IF NOT EXISTS orderly_jobs_dead ON orderly_jobs (queue, kind) WHERE status = 'dead';
-- The last tick of each periodic job taken, per queue and kind (periodic.rs).
CREATE TABLE IF NOT EXISTS orderly_periodic (
    queue TEXT NOT NULL,
    kind  TEXT NOT NULL,
    slot  BIGINT NOT NULL,
    PRIMARY KEY (queue, kind)
);
";

/// What a claim sets on the jobs it takes ($3: the lease in ms, $4: the owner).
const CLAIMED: &str = "status = 'running', attempts = attempts + 1,
    lease_until = now() + $3::BIGINT * interval '1 millisecond', lease_owner = $4";

/// Which jobs a claim may take ($1: the queue): ready ones whose time has
/// come, and running ones whose lease expired (their worker died).
const CLAIMABLE: &str =
    "queue = $1 AND ((status = 'ready' AND run_after <= now()) OR (status = 'running' AND lease_until < now()))";

/// Same key space as the migrations' lock, different key.
const SCHEMA_LOCK: i64 = 0x006f_7264_6572_6c7a;

/// A queue operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// No connection (pool exhausted, database down, or stopped).
    #[error("the job queue's database is unavailable: {0}")]
    Unavailable(String),
    /// Postgres rejected a statement.
    #[error("{what}: {source}")]
    Query {
        /// What was being done.
        what: &'static str,
        /// The cause.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The in-memory queue is full (`try_enqueue`) or closed.
    #[error("the in-memory queue `{queue}` is {state}")]
    Rejected {
        /// The queue.
        queue: String,
        /// `full` or `closed`.
        state: &'static str,
    },
    /// Enqueueing was refused because the workers are stopping.
    #[error("the workers are stopping and take no new jobs")]
    Stopping,
}

fn query(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> QueueError {
    move |source| QueueError::Query { what, source }
}

/// The queue's SQL, for one queue name and lease owner.
#[derive(Clone)]
pub(crate) struct DurableQueue {
    pub(crate) pool: Pool,
    pub(crate) queue: std::sync::Arc<str>,
    /// Who holds the leases this process takes (host:pid:nonce).
    pub(crate) owner: String,
    pub(crate) lease: Duration,
    /// Between a failed attempt and the next (its ceiling: a job's next
    /// run is predictable); a reload changes it for the next failure.
    pub(crate) retry: std::sync::Arc<parking_lot::Mutex<RetryPolicy>>,
}

impl DurableQueue {
    pub(crate) async fn client(&self) -> Result<deadpool_postgres::Object, QueueError> {
        self.pool.get().await.map_err(|e| QueueError::Unavailable(e.to_string()))
    }

    /// Creates or brings up to date the queue's tables, unless they are
    /// current already. Replicas that start while others run must not take
    /// the table's strongest lock for nothing: `ALTER TABLE … ADD COLUMN IF
    /// NOT EXISTS` locks the table even when the column exists, and a
    /// running replica's claim or enqueue in between deadlocked with it
    /// (seen: the new replica failed to start). When an upgrade does need
    /// the DDL and loses a deadlock to running replicas, it tries again.
    pub(crate) async fn create_schema(&self) -> Result<(), QueueError> {
        let client = self.client().await?;
        client.execute("SELECT pg_advisory_lock($1)", &[&SCHEMA_LOCK]).await.map_err(query("locking the schema"))?;
        let created = self.bring_schema_up_to_date(&client).await;
        let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&SCHEMA_LOCK]).await;
        created?;
        unlocked.map_err(query("unlocking the schema"))?;
        Ok(())
    }

    async fn bring_schema_up_to_date(&self, client: &deadpool_postgres::Object) -> Result<(), QueueError> {
        // The newest objects of SCHEMA: when both exist, everything before
        // them does (the batch runs whole). Update this when SCHEMA grows.
        let current = client
            .query_one(
                "SELECT to_regclass('orderly_jobs_dead') IS NOT NULL AND to_regclass('orderly_periodic') IS NOT NULL",
                &[],
            )
            .await
            .map_err(query("reading the queue's schema"))?;
        if current.get::<_, bool>(0) {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            match client.batch_execute(SCHEMA).await.map_err(query("creating the queue's tables")) {
                Err(QueueError::Query { source, .. })
                    if attempt < 5
                        && source.code().is_some_and(|code| {
                            *code == tokio_postgres::error::SqlState::T_R_DEADLOCK_DETECTED
                                || *code == tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE
                        }) =>
                {
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// Claims up to `limit` jobs on `client`: ready ones whose time has
    /// come, and running ones whose lease expired (their worker died).
    /// Jobs of the `skipped` kinds (at their limit in this process) stay.
    /// With `grouped` kinds, up to `group_limit` of theirs besides, since
    /// a group of them takes one slot (`group.rs`).
    pub(crate) async fn claim(
        &self,
        client: &deadpool_postgres::Object,
        limit: i64,
        skipped: &[String],
        grouped: &[String],
        group_limit: i64,
    ) -> Result<Vec<Job>, QueueError> {
        // Prepared once per connection: one round trip per statement, not two.
        let rows = if grouped.is_empty() {
            let statement = client
                .prepare_cached(&format!(
                    "UPDATE orderly_jobs SET {CLAIMED}
                     WHERE id IN (
                         SELECT id FROM orderly_jobs
                         WHERE {CLAIMABLE} AND NOT (kind = ANY($5::TEXT[]))
                         ORDER BY priority DESC, run_after, id
                         FOR UPDATE SKIP LOCKED
                         LIMIT $2)
                     RETURNING id, kind, payload, attempts"
                ))
                .await
                .map_err(query("preparing the claim"))?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 5] =
                [&&*self.queue, &limit, &(self.lease.as_millis() as i64), &self.owner, &skipped];
            client.query(&statement, &params).await
        } else {
            // Two budgets in one statement: `limit` jobs to run alone, and
            // `group_limit` of the grouped kinds.
            let statement = client
                .prepare_cached(&format!(
                    "WITH alone AS (
                         SELECT id FROM orderly_jobs
                         WHERE {CLAIMABLE} AND NOT (kind = ANY($5::TEXT[])) AND NOT (kind = ANY($6::TEXT[]))
                         ORDER BY priority DESC, run_after, id
                         FOR UPDATE SKIP LOCKED
                         LIMIT $2),
                     together AS (
                         SELECT id FROM orderly_jobs
                         WHERE {CLAIMABLE} AND NOT (kind = ANY($5::TEXT[])) AND kind = ANY($6::TEXT[])
                         ORDER BY priority DESC, run_after, id
                         FOR UPDATE SKIP LOCKED
                         LIMIT $7)
                     UPDATE orderly_jobs SET {CLAIMED}
                     WHERE id IN (SELECT id FROM alone UNION ALL SELECT id FROM together)
                     RETURNING id, kind, payload, attempts"
                ))
                .await
                .map_err(query("preparing the claim"))?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
                &&*self.queue,
                &limit,
                &(self.lease.as_millis() as i64),
                &self.owner,
                &skipped,
                &grouped,
                &group_limit,
            ];
            client.query(&statement, &params).await
        };
        let rows = rows.map_err(query("claiming jobs"))?;
        Ok(rows.iter().map(|row| self.job(row)).collect())
    }

    fn job(&self, row: &Row) -> Job {
        Job { id: row.get(0), queue: self.queue.clone(), kind: row.get(1), payload: row.get(2), attempt: row.get(3) }
    }

    /// Extends the lease of a job still being worked on; `false` if it is no longer ours.
    pub(crate) async fn renew(&self, id: JobId) -> Result<bool, QueueError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE orderly_jobs SET lease_until = now() + $3::BIGINT * interval '1 millisecond'
                 WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
                &[&id, &self.owner, &(self.lease.as_millis() as i64)],
            )
            .await
            .map_err(query("renewing a lease"))?;
        Ok(n == 1)
    }

    /// Marks the job done inside the handler's transaction; `false` if the
    /// lease was lost (another worker has it now: the caller rolls back).
    pub(crate) async fn complete_in(&self, tx: &Transaction<'_>, id: JobId) -> Result<bool, QueueError> {
        let statement = tx
            .prepare_cached(
                "UPDATE orderly_jobs SET status = 'done', finished_at = now(), lease_until = NULL, last_error = NULL
                 WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
            )
            .await
            .map_err(query("preparing the completion"))?;
        let n = tx.execute(&statement, &[&id, &self.owner]).await.map_err(query("completing a job"))?;
        Ok(n == 1)
    }

    /// Marks the jobs of a group done inside their shared transaction;
    /// how many were still ours (fewer: some lease was lost, roll back).
    pub(crate) async fn complete_all_in(&self, tx: &Transaction<'_>, ids: &[JobId]) -> Result<u64, QueueError> {
        let statement = tx
            .prepare_cached(
                "UPDATE orderly_jobs SET status = 'done', finished_at = now(), lease_until = NULL, last_error = NULL
                 WHERE id = ANY($1) AND lease_owner = $2 AND status = 'running'",
            )
            .await
            .map_err(query("preparing the group's completion"))?;
        tx.execute(&statement, &[&ids, &self.owner]).await.map_err(query("completing a group of jobs"))
    }

    /// Extends the leases of a group's jobs; how many are still ours.
    pub(crate) async fn renew_all(&self, ids: &[JobId]) -> Result<u64, QueueError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE orderly_jobs SET lease_until = now() + $3::BIGINT * interval '1 millisecond'
                 WHERE id = ANY($1) AND lease_owner = $2 AND status = 'running'",
                &[&ids, &self.owner, &(self.lease.as_millis() as i64)],
            )
            .await
            .map_err(query("renewing a group's leases"))
    }

    /// Records a failed attempt: back to `ready` after a backoff, or `dead`
    /// after the last attempt. Returns whether it is dead.
    pub(crate) async fn fail(&self, job: &Job, error: &str) -> Result<bool, QueueError> {
        let backoff = self.retry.lock().ceiling(u32::try_from(job.attempt).unwrap_or(0));
        let client = self.client().await?;
        let row = client
            .query_opt(
                "UPDATE orderly_jobs SET
                     status = CASE WHEN attempts >= max_attempts THEN 'dead' ELSE 'ready' END,
                     run_after = now() + $3::BIGINT * interval '1 millisecond',
                     lease_until = NULL, lease_owner = NULL, last_error = $4,
                     finished_at = CASE WHEN attempts >= max_attempts THEN now() END
                 WHERE id = $1 AND lease_owner = $2 AND status = 'running'
                 RETURNING status",
                &[&job.id, &self.owner, &(backoff.as_millis() as i64), &error],
            )
            .await
            .map_err(query("recording a failure"))?;
        Ok(row.is_some_and(|r| r.get::<_, &str>(0) == "dead"))
    }

    /// Puts a running job off by `delay` without counting the attempt (`RetryLater`).
    pub(crate) async fn later(&self, id: JobId, delay: Duration) -> Result<(), QueueError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE orderly_jobs SET status = 'ready', attempts = greatest(attempts - 1, 0),
                        run_after = now() + $3::BIGINT * interval '1 millisecond', lease_until = NULL, lease_owner = NULL
                 WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
                &[&id, &self.owner, &i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)],
            )
            .await
            .map_err(query("putting a job off"))?;
        Ok(())
    }

    /// Cancels a job that has not started; whether it was waiting.
    pub(crate) async fn cancel(&self, id: JobId) -> Result<bool, QueueError> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE orderly_jobs SET status = 'dead', last_error = 'cancelled', finished_at = now()
                 WHERE id = $1 AND queue = $2 AND status = 'ready'",
                &[&id, &&*self.queue],
            )
            .await
            .map_err(query("cancelling a job"))?;
        Ok(n == 1)
    }

    /// The newest dead jobs, at most `limit`.
    pub(crate) async fn dead(&self, limit: i64) -> Result<Vec<super::job::DeadJob>, QueueError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, kind, payload, attempts, last_error FROM orderly_jobs
                 WHERE queue = $1 AND status = 'dead' ORDER BY finished_at DESC, id DESC LIMIT $2",
                &[&&*self.queue, &limit],
            )
            .await
            .map_err(query("listing dead jobs"))?;
        Ok(rows
            .iter()
            .map(|r| super::job::DeadJob {
                id: r.get(0),
                kind: r.get(1),
                payload: r.get(2),
                attempts: r.get(3),
                last_error: r.get(4),
            })
            .collect())
    }

    /// Makes a dead job ready again, attempts from zero, and wakes a worker.
    pub(crate) async fn revive(&self, id: JobId) -> Result<bool, QueueError> {
        let client = self.client().await?;
        let channel = super::wake::channel(&self.queue);
        let row = client
            .query_opt(
                "WITH job AS (
                     UPDATE orderly_jobs SET status = 'ready', attempts = 0, run_after = now(),
                            last_error = NULL, finished_at = NULL
                     WHERE id = $1 AND queue = $2 AND status = 'dead' RETURNING id)
                 SELECT id, pg_notify($3, '') FROM job",
                &[&id, &&*self.queue, &channel],
            )
            .await
            .map_err(query("retrying a dead job"))?;
        Ok(row.is_some())
    }

    /// Gives a job back without counting the attempt (shutdown).
    pub(crate) async fn release(&self, id: JobId) -> Result<(), QueueError> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE orderly_jobs SET status = 'ready', attempts = greatest(attempts - 1, 0),
                        lease_until = NULL, lease_owner = NULL
                 WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
                &[&id, &self.owner],
            )
            .await
            .map_err(query("releasing a job"))?;
        Ok(())
    }

    /// The queue's jobs by kind and state, and the age of the oldest job
    /// waiting to run, for the operators' gauges. One statement; each
    /// half reads a partial index (done jobs, however many, are not read).
    /// The age is measured to the clock, not to `now()`: the statement's
    /// transaction may have begun before a job it sees was enqueued, which
    /// read a job that has waited as not having waited at all.
    pub(crate) async fn stats(&self) -> Result<QueueStats, QueueError> {
        let client = self.client().await?;
        let statement = client
            .prepare_cached(
                "SELECT kind,
                        CASE WHEN status = 'ready' AND run_after > now() THEN 'scheduled' ELSE status END,
                        count(*)::BIGINT,
                        COALESCE(EXTRACT(EPOCH FROM clock_timestamp() - min(run_after)), 0)::FLOAT8
                 FROM orderly_jobs WHERE queue = $1 AND status IN ('ready', 'running')
                 GROUP BY 1, 2
                 UNION ALL
                 SELECT kind, 'dead', count(*)::BIGINT, 0::FLOAT8
                 FROM orderly_jobs WHERE queue = $1 AND status = 'dead'
                 GROUP BY 1",
            )
            .await
            .map_err(query("preparing the queue's statistics"))?;
        let rows = client.query(&statement, &[&&*self.queue]).await.map_err(query("measuring the queue"))?;
        let mut stats = QueueStats::default();
        for row in rows {
            let (kind, state, count, age): (String, String, i64, f64) =
                (row.get(0), row.get(1), row.get(2), row.get(3));
            if state == "ready" {
                stats.oldest_ready_seconds = stats.oldest_ready_seconds.max(age);
            }
            stats.jobs.push((kind, state, count));
        }
        Ok(stats)
    }
}

/// What [`DurableQueue::stats`] measured.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct QueueStats {
    /// `(kind, state, count)`; state is `ready` (its time has come),
    /// `scheduled` (later), `running` or `dead`. Kinds with no job are absent.
    pub(crate) jobs: Vec<(String, String, i64)>,
    /// How long the oldest job whose time has come has waited; 0 if none.
    pub(crate) oldest_ready_seconds: f64,
}

impl QueueStats {
    /// Jobs waiting or leased: what `queue_depth` has always counted.
    pub(crate) fn depth(&self) -> i64 {
        self.jobs.iter().filter(|(_, state, _)| state != "dead").map(|(_, _, count)| count).sum()
    }
}

/// Adds a job with any client or transaction: enqueue in the same
/// transaction as the write that causes it, and the job exists exactly
/// when the write does. Idle workers are woken when it commits
/// (`NOTIFY`), not at their next poll.
pub async fn enqueue<C: GenericClient>(
    client: &C,
    queue: &str,
    kind: &str,
    payload: &serde_json::Value,
    max_attempts: i32,
) -> Result<JobId, QueueError> {
    Ok(enqueue_with(client, queue, kind, payload, max_attempts, &JobOptions::new()).await?.id)
}

/// [`enqueue`] with [`JobOptions`]: a delay, a priority, a unique key.
pub async fn enqueue_with<C: GenericClient>(
    client: &C,
    queue: &str,
    kind: &str,
    payload: &serde_json::Value,
    max_attempts: i32,
    options: &JobOptions,
) -> Result<Enqueued, QueueError> {
    // The notification wakes an idle worker; Postgres sends it at commit,
    // so only for a job that exists. One round trip for both.
    let channel = super::wake::channel(queue);
    let delay_ms = i64::try_from(options.delay.as_millis()).unwrap_or(i64::MAX);
    let inserted = client
        .query_opt(
            "WITH job AS (
                 INSERT INTO orderly_jobs (queue, kind, payload, max_attempts, run_after, priority, unique_key)
                 VALUES ($1, $2, $3, $4, now() + $5::BIGINT * interval '1 millisecond', $6, $7)
                 ON CONFLICT (queue, unique_key) WHERE unique_key IS NOT NULL AND status IN ('ready', 'running')
                 DO NOTHING
                 RETURNING id)
             SELECT id, pg_notify($8, '') FROM job",
            &[&queue, &kind, payload, &max_attempts, &delay_ms, &options.priority, &options.unique_key, &channel],
        )
        .await
        .map_err(query("enqueueing a job"))?;
    if let Some(row) = inserted {
        return Ok(Enqueued { id: row.get(0), created: true });
    }
    // A job with the same unique key is waiting or running: that one.
    let existing = client
        .query_opt(
            "SELECT id FROM orderly_jobs WHERE queue = $1 AND unique_key = $2 AND status IN ('ready', 'running')",
            &[&queue, &options.unique_key],
        )
        .await
        .map_err(query("finding the job with the same unique key"))?;
    match existing {
        Some(row) => Ok(Enqueued { id: row.get(0), created: false }),
        // It finished between the two statements: the key is free again.
        None => Box::pin(enqueue_with(client, queue, kind, payload, max_attempts, options)).await,
    }
}
