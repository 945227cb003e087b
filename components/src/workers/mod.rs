//! The workers component (`[workers]`): a pool of job runners with bounded
//! concurrency over two queues — a durable Postgres queue shared by every
//! replica, and an in-memory bounded queue.
//!
//! - Handlers are registered by job kind from the `start` of components
//!   that depend on the workers ([`Workers::handle`]).
//! - Work begins once the start the workers are part of is complete (the
//!   app's, or a restart's): their dependents have registered by then.
//! - An idle worker is woken by a new durable job at once: `enqueue`
//!   notifies in its transaction and a dedicated connection listens
//!   (`wake.rs`); `poll_interval` is the fallback.
//! - Phase 1 stops claiming new jobs. Phase 3 asks running jobs to stop
//!   ([`JobContext::cancelled`]), waits for them within its budget, and
//!   gives every job it did not finish back to the queue (lease released),
//!   so another replica picks it up. A durable job's effects, written in
//!   [`JobContext::transaction`], commit together with its completion:
//!   nothing is lost and no completed job runs again, even after SIGKILL
//!   (the dead process's leases expire and its jobs are claimed again).
//! - Kinds whose effects all live in the job's transaction may share one
//!   transaction with other jobs ([`Workers::handle_grouped`], `group.rs`):
//!   one `BEGIN`, one completion and one `COMMIT` for up to `group_size` jobs.

mod durable;
mod group;
mod job;
mod memory;
mod metrics;
mod options;
mod periodic;
mod stage;
mod wake;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderly::settings::RetryPolicy;
use orderly::{
    config::Validate, config::Validation, BoxError, Component, Dependency, ReloadContext, Reloaded, StartContext,
    StopContext,
};
use parking_lot::{Mutex, RwLock};
use serde::Deserialize;
use tokio::sync::{mpsc, watch, Semaphore};

pub use durable::{enqueue, enqueue_with, QueueError};
pub use job::{DeadJob, Job, JobContext, JobHandler, JobId, RetryLater};
pub use memory::MemoryQueue;
pub use options::{Enqueued, JobOptions};
pub use periodic::PeriodicConfig;

use self::durable::DurableQueue;
use self::metrics::WorkerMetrics;
use self::stage::{advance, has_reached, reached, Stage};
use crate::idle::{Busy, InProgress};
use crate::metrics::Metrics;
use crate::postgres::Database;

/// The in-memory queue's label in metrics.
const MEMORY: &str = "memory";

/// `[workers]`. Every key can be set as `APP__WORKERS__<KEY>`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkersConfig {
    /// The durable queue this process works on.
    pub queue: String,
    /// Jobs run at once, both queues together.
    pub concurrency: usize,
    /// How often an idle worker looks for durable jobs.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How long a claimed job stays ours without renewal (renewed every third of it).
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// Attempts before a job is dead-lettered.
    pub max_attempts: i32,
    /// Backoff after the first failure, doubling per attempt.
    #[serde(with = "humantime_serde")]
    pub backoff_initial: Duration,
    /// The longest backoff.
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// The in-memory queue's capacity.
    pub memory_capacity: usize,
    /// Jobs of grouped kinds ([`Workers::handle_grouped`]) run in one
    /// transaction, at most this many; each group takes one of `concurrency`.
    pub group_size: usize,
    /// Jobs enqueued on a schedule (`[workers.periodic.<kind>]`), once per
    /// tick across the replicas sharing the queue.
    pub periodic: std::collections::BTreeMap<String, PeriodicConfig>,
}

impl Default for WorkersConfig {
    fn default() -> Self {
        Self {
            queue: "default".into(),
            concurrency: 4,
            poll_interval: Duration::from_millis(250),
            lease: Duration::from_secs(30),
            max_attempts: 5,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            memory_capacity: 1024,
            group_size: 16,
            periodic: Default::default(),
        }
    }
}

impl Validate for WorkersConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(!self.queue.is_empty(), "queue", "must not be empty");
        v.check((1..=10_000).contains(&self.concurrency), "concurrency", "must be 1 to 10000");
        v.check(self.lease >= Duration::from_millis(300), "lease", "must be at least 300ms");
        v.check(self.max_attempts >= 1, "max_attempts", "must be at least 1");
        v.check(!self.poll_interval.is_zero(), "poll_interval", "must be greater than 0");
        v.check(self.memory_capacity >= 1, "memory_capacity", "must be at least 1");
        // A failure re-runs every job of its group alone, and a group holds
        // its connection and its rows' locks until it commits: keep it short.
        v.check((1..=64).contains(&self.group_size), "group_size", "must be 1 to 64");
        for (kind, periodic) in &self.periodic {
            if let Err(problem) = periodic.schedule() {
                v.error(&format!("periodic.{kind}"), problem);
            }
        }
    }
}

/// What the running pool shares with its tasks.
struct Shared {
    handlers: RwLock<HashMap<String, Arc<dyn JobHandler>>>,
    /// Per job kind: how many may run at once in this process (`handle_at_most`).
    limits: RwLock<HashMap<String, usize>>,
    /// Per limited kind: how many run now.
    running_kinds: Mutex<HashMap<String, usize>>,
    /// Kinds whose jobs may share a transaction (`handle_grouped`).
    grouped: RwLock<HashSet<String>>,
    /// The most jobs in one group.
    group_size: usize,
    /// Where the stop is: claiming, not claiming, cancelling, cutting off.
    stage: watch::Sender<Stage>,
    in_flight: Arc<InProgress>,
    /// A claim query in flight: phase 1 ends only once it has returned, so
    /// nothing is claimed after it (not even a job phase 3 gives back).
    claiming: Arc<InProgress>,
    metrics: WorkerMetrics,
    logger: slog::Logger,
}

impl Shared {
    /// The kinds at their limit now, which the claim leaves in the queue.
    fn saturated_kinds(&self) -> Vec<String> {
        let limits = self.limits.read();
        if limits.is_empty() {
            return Vec::new();
        }
        let running = self.running_kinds.lock();
        limits
            .iter()
            .filter(|(kind, max)| running.get(*kind).copied().unwrap_or(0) >= **max)
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Counts a job of `kind` as running if its limit allows: `Some` (with
    /// the kind, if limited, to free later), or `None` when it is at its limit.
    fn take_kind_slot(&self, kind: &str) -> Option<Option<String>> {
        let Some(&max) = self.limits.read().get(kind) else { return Some(None) };
        let mut running = self.running_kinds.lock();
        let count = running.entry(kind.to_owned()).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(Some(kind.to_owned()))
    }

    fn free_kind_slot(&self, slot: Option<String>) {
        if let Some(kind) = slot {
            if let Some(count) = self.running_kinds.lock().get_mut(&kind) {
                *count = count.saturating_sub(1);
            }
        }
    }
}

/// Counts a running job (for phase 3 and the gauge) until dropped.
struct Running {
    gauge: prometheus::IntGauge,
    _busy: Busy,
}

impl Running {
    fn new(shared: &Arc<Shared>, queue: &str) -> Self {
        let gauge = shared.metrics.in_flight.with_label_values(&[queue]);
        gauge.inc();
        Running { gauge, _busy: shared.in_flight.enter() }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// What dependents register from their starts: handlers, limits, grouped
/// kinds and schedules. They belong to a run: a restart of the workers
/// restarts their dependents, which register again.
#[derive(Default)]
struct Registrations {
    handlers: HashMap<String, Arc<dyn JobHandler>>,
    limits: HashMap<String, usize>,
    grouped: HashSet<String>,
    periodic: Vec<Arc<periodic::Periodic>>,
}

/// One run of the workers: what a restart begins afresh.
struct Run {
    shared: Arc<Shared>,
    durable: DurableQueue,
    memory: MemoryQueue,
    /// Claims run while a permit is free; a reload of `concurrency` adds
    /// permits or takes them away as jobs end.
    slots: Arc<Semaphore>,
    /// How often an idle claim loop looks again (`poll_interval`, live).
    poll: watch::Sender<Duration>,
    /// Schedules of this run, from config and from dependents.
    periodic: Mutex<Schedules>,
}

/// A run's schedules, and whether their loops have begun (after that, one
/// registered by a dependent that restarted alone gets a loop at once).
struct Schedules {
    jobs: Vec<Arc<periodic::Periodic>>,
    begun: bool,
}

impl Run {
    /// Adds a schedule; once the run's schedules run, starts its loop
    /// unless one of its kind runs already (a dependent that restarted
    /// alone registers its schedules again).
    fn schedule(&self, job: Arc<periodic::Periodic>, max_attempts: i32) {
        let mut schedules = self.periodic.lock();
        if schedules.jobs.iter().any(|j| j.kind == job.kind) {
            return;
        }
        schedules.jobs.push(job.clone());
        if schedules.begun {
            let (stage, logger) = (self.shared.stage.subscribe(), self.shared.logger.clone());
            // Ends with the run's phase 1, as its siblings do.
            tokio::spawn(periodic::run(self.durable.clone(), job, max_attempts, stage, logger));
        }
    }
}

/// The workers component.
pub struct Workers {
    /// The config in force: built with, or the last reload's.
    config: RwLock<WorkersConfig>,
    /// Registrations made before the first start (for example in `main`):
    /// every run begins with them.
    before_start: Mutex<Registrations>,
    run: RwLock<Option<Arc<Run>>>,
}

impl Workers {
    /// Workers with `config`.
    pub fn new(config: WorkersConfig) -> Self {
        Self { config: RwLock::new(config), before_start: Mutex::default(), run: RwLock::new(None) }
    }

    fn run(&self) -> Option<Arc<Run>> {
        self.run.read().clone()
    }

    /// Registers with the current run, or for every run before the first.
    fn register(&self, into_run: impl FnOnce(&Run), before: impl FnOnce(&mut Registrations)) {
        match self.run() {
            Some(run) => into_run(&run),
            None => before(&mut self.before_start.lock()),
        }
    }

    /// Enqueues a durable job of `kind` with `payload` (an object; its
    /// `slot` key is set to the period's start, in Unix ms) every `period`, once per
    /// period across every replica sharing the queue. Call it from the
    /// `start` of a component that depends on the workers, beside
    /// [`handle`](Self::handle); it begins once the start is complete. A
    /// dependent that restarts alone registers it again: a kind already
    /// scheduled keeps its schedule, a new one begins at once.
    pub fn every(&self, kind: &str, period: Duration, payload: serde_json::Value) {
        let schedule = periodic::Schedule::Every(period.max(Duration::from_millis(1)));
        let job = Arc::new(periodic::Periodic { kind: kind.to_owned(), schedule, payload });
        let max_attempts = self.config.read().max_attempts;
        self.register(|run| run.schedule(job.clone(), max_attempts), |before| before.periodic.push(job.clone()));
    }

    /// Runs jobs of `kind` with `handler`, at most `max` of them at once in
    /// this process (a rate-limited API, a heavy job), whatever the
    /// `concurrency` allows for the rest. The claim leaves that kind's jobs
    /// in the queue while it is at its limit.
    pub fn handle_at_most(&self, kind: &str, handler: impl JobHandler, max: usize) {
        self.handle(kind, handler);
        let max = max.max(1);
        self.register(
            |run| {
                run.shared.limits.write().insert(kind.to_owned(), max);
            },
            |before| {
                before.limits.insert(kind.to_owned(), max);
            },
        );
    }

    /// Runs jobs of `kind` with `handler`, several in one transaction:
    /// one `BEGIN`, one completion and one `COMMIT` for up to `group_size`
    /// jobs (measured: about twice the jobs a second; `benches/RESULTS.md`).
    ///
    /// Only for handlers whose every effect is written in
    /// [`JobContext::transaction`]: when one job of a group fails, the
    /// whole transaction rolls back and each job runs again alone, so a
    /// handler that also calls an outside service would call it twice.
    /// Exactly once still holds for what is in the transaction: a job's
    /// effects commit with its completion or not at all.
    pub fn handle_grouped(&self, kind: &str, handler: impl JobHandler) {
        self.handle(kind, handler);
        self.register(
            |run| {
                run.shared.grouped.write().insert(kind.to_owned());
            },
            |before| {
                before.grouped.insert(kind.to_owned());
            },
        );
    }

    /// Runs jobs of `kind` with `handler`. Call it from the `start` of a
    /// component that depends on the workers.
    pub fn handle(&self, kind: &str, handler: impl JobHandler) {
        let handler: Arc<dyn JobHandler> = Arc::new(handler);
        self.register(
            |run| {
                run.shared.handlers.write().insert(kind.to_owned(), handler.clone());
            },
            |before| {
                before.handlers.insert(kind.to_owned(), handler.clone());
            },
        );
    }

    /// Adds a durable job to this process's queue.
    pub async fn enqueue(&self, kind: &str, payload: serde_json::Value) -> Result<JobId, QueueError> {
        let durable = self.started_queue()?;
        let client = durable.client().await?;
        let max_attempts = self.config.read().max_attempts;
        enqueue(&client, &durable.queue, kind, &payload, max_attempts).await
    }

    /// Adds a durable job to this process's queue, with a delay, a
    /// priority or a unique key.
    pub async fn enqueue_with(
        &self,
        kind: &str,
        payload: serde_json::Value,
        options: &JobOptions,
    ) -> Result<Enqueued, QueueError> {
        let durable = self.started_queue()?;
        let client = durable.client().await?;
        let max_attempts = self.config.read().max_attempts;
        enqueue_with(&client, &durable.queue, kind, &payload, max_attempts, options).await
    }

    /// Adds a durable job to this process's queue inside `client`'s
    /// transaction (or with any client): the job exists exactly when the
    /// write that caused it commits. Works before the workers have started.
    pub async fn enqueue_in<C: deadpool_postgres::GenericClient>(
        &self,
        client: &C,
        kind: &str,
        payload: serde_json::Value,
    ) -> Result<JobId, QueueError> {
        let (queue, max_attempts) = {
            let config = self.config.read();
            (config.queue.clone(), config.max_attempts)
        };
        enqueue(client, &queue, kind, &payload, max_attempts).await
    }

    /// Cancels a durable job that has not started: it is dead-lettered with
    /// `cancelled` as its error. `false` if it is running, finished or unknown.
    pub async fn cancel(&self, id: JobId) -> Result<bool, QueueError> {
        self.started_queue()?.cancel(id).await
    }

    /// The most recent dead jobs of this process's queue, newest first.
    pub async fn dead_jobs(&self, limit: i64) -> Result<Vec<DeadJob>, QueueError> {
        self.started_queue()?.dead(limit).await
    }

    /// Runs a dead job again, with its attempts counted from zero.
    /// `false` if it is not dead.
    pub async fn retry_dead(&self, id: JobId) -> Result<bool, QueueError> {
        self.started_queue()?.revive(id).await
    }

    fn started_queue(&self) -> Result<DurableQueue, QueueError> {
        self.run().map(|run| run.durable.clone()).ok_or(QueueError::Unavailable("the workers have not started".into()))
    }

    /// The in-memory queue (bounded) of the current run.
    pub fn memory_queue(&self) -> Result<MemoryQueue, QueueError> {
        self.run().map(|run| run.memory.clone()).ok_or(QueueError::Unavailable("the workers have not started".into()))
    }

    /// Jobs running now.
    pub fn in_flight(&self) -> usize {
        self.run().map_or(0, |run| run.shared.in_flight.count())
    }
}

fn owner_id() -> String {
    format!("{}:{}:{:08x}", crate::hostname(), std::process::id(), fastrand::u32(..))
}

/// How one run of a durable job ended.
enum Outcome {
    /// The handler succeeded and the job's completion committed with its effects.
    Done,
    /// The handler succeeded after the lease was lost: its effects rolled back.
    LeaseLost,
    /// Cut off at the end of phase 3: its transaction rolled back.
    CutOff,
    /// The handler, or the queue around it, failed.
    Failed(String),
    /// The handler asked to run it again later ([`RetryLater`]): no attempt spent.
    Later(Duration),
}

/// Runs one durable job to an outcome, then records it in the queue.
async fn run_durable(shared: Arc<Shared>, queue: DurableQueue, job: Job) {
    let _running = Running::new(&shared, &queue.queue);
    run_alone(&shared, &queue, &job).await;
}

/// Runs a job in a transaction of its own and records its outcome (the
/// caller counts it as running).
async fn run_alone(shared: &Shared, queue: &DurableQueue, job: &Job) {
    let started = Instant::now();
    let outcome = execute(shared, queue, job).await;
    shared
        .metrics
        .duration
        .with_label_values(&[&*queue.queue, job.kind.as_str()])
        .observe(started.elapsed().as_secs_f64());
    record(shared, queue, job, outcome, started).await;
}

/// Runs the handler in the job's transaction, renewing the lease meanwhile,
/// and commits the completion with the job's effects.
async fn execute(shared: &Shared, queue: &DurableQueue, job: &Job) -> Outcome {
    let failed = |e: &dyn std::fmt::Display| Outcome::Failed(e.to_string());
    let Some(handler) = shared.handlers.read().get(&job.kind).cloned() else {
        return Outcome::Failed(format!("no handler for job kind `{}` in this process", job.kind));
    };
    let mut client = match queue.client().await {
        Ok(client) => client,
        Err(e) => return failed(&e),
    };
    let tx = match client.transaction().await {
        Ok(tx) => tx,
        Err(e) => return failed(&e),
    };
    let ctx = JobContext { stage: shared.stage.subscribe(), transaction: Some(&tx) };
    let mut stage = shared.stage.subscribe();
    let renew_every = queue.lease / 3;
    let result = {
        let run = handler.run(job, &ctx);
        let mut run = std::pin::pin!(run);
        loop {
            tokio::select! {
                result = &mut run => break result,
                // The transaction rolls back on drop.
                () = reached(&mut stage, Stage::CuttingOff) => return Outcome::CutOff,
                () = tokio::time::sleep(renew_every) => {
                    if !matches!(queue.renew(job.id).await, Ok(true)) {
                        slog::warn!(shared.logger, "lost the lease of a running job"; "job" => job.id);
                    }
                }
            }
        }
    };
    drop(ctx);
    if let Err(e) = result {
        if let Some(RetryLater(delay)) = e.downcast_ref::<RetryLater>() {
            return Outcome::Later(*delay);
        }
        return Outcome::Failed(orderly::events::error_chain(e.as_ref()));
    }
    match queue.complete_in(&tx, job.id).await {
        Ok(true) => tx.commit().await.map_or_else(|e| failed(&e), |()| Outcome::Done),
        Ok(false) => Outcome::LeaseLost, // someone else has it now; roll back our effects
        Err(e) => failed(&e),
    }
}

/// Records a run's outcome in the queue and the metrics: done, given back,
/// retried later or dead-lettered. A job is never lost: where even this
/// fails, its lease expires and another worker claims it.
async fn record(shared: &Shared, queue: &DurableQueue, job: &Job, outcome: Outcome, started: Instant) {
    let label = |status: &str| shared.metrics.jobs.with_label_values(&[&queue.queue, status]).inc();
    match outcome {
        Outcome::Done => label("done"),
        Outcome::LeaseLost => {
            slog::warn!(shared.logger, "job finished after its lease was lost; its effects were rolled back"; "job" => job.id)
        }
        // Back to the queue for the next process.
        Outcome::CutOff => match queue.release(job.id).await {
            Ok(()) => {
                label("released");
                slog::warn!(shared.logger, "job cut off at the end of the stop budget; given back to the queue";
                    "job" => job.id, "kind" => &job.kind, "ran_ms" => started.elapsed().as_millis() as u64);
            }
            Err(e) => {
                slog::warn!(shared.logger, "job cut off; could not give it back, its lease will expire";
                    "job" => job.id, "kind" => &job.kind, "error" => %e)
            }
        },
        // Failing because it was asked to stop is not the job's fault: no attempt is spent.
        Outcome::Failed(_) if *shared.stage.borrow() >= Stage::Cancelling => match queue.release(job.id).await {
            Ok(()) => label("released"),
            Err(e) => {
                slog::warn!(shared.logger, "could not release a job; its lease will expire"; "job" => job.id, "error" => %e)
            }
        },
        Outcome::Later(delay) => match queue.later(job.id, delay).await {
            Ok(()) => label("later"),
            Err(e) => {
                slog::warn!(shared.logger, "could not put a job off; its lease will expire"; "job" => job.id, "error" => %e)
            }
        },
        Outcome::Failed(error) => match queue.fail(job, &error).await {
            Ok(true) => {
                label("dead");
                slog::error!(shared.logger, "job dead-lettered"; "job" => job.id, "kind" => &job.kind, "error" => &error);
            }
            Ok(false) => {
                label("failed");
                slog::warn!(shared.logger, "job failed; will retry"; "job" => job.id, "kind" => &job.kind, "attempt" => job.attempt, "error" => &error);
            }
            Err(e) => {
                slog::warn!(shared.logger, "could not record a job failure; its lease will expire"; "job" => job.id, "error" => %e)
            }
        },
    }
}

/// Runs one in-memory job.
async fn run_memory(shared: Arc<Shared>, job: Job) {
    let _running = Running::new(&shared, MEMORY);
    let handler = shared.handlers.read().get(&job.kind).cloned();
    let started = Instant::now();
    let ctx = JobContext { stage: shared.stage.subscribe(), transaction: None };
    let mut stage = shared.stage.subscribe();
    let status = match handler {
        None => "failed",
        Some(handler) => tokio::select! {
            result = handler.run(&job, &ctx) => if result.is_ok() { "done" } else { "failed" },
            () = reached(&mut stage, Stage::CuttingOff) => "dropped",
        },
    };
    shared.metrics.duration.with_label_values(&[MEMORY, &job.kind]).observe(started.elapsed().as_secs_f64());
    shared.metrics.jobs.with_label_values(&[MEMORY, status]).inc();
}

/// Claims durable jobs while there is room, until phase 1.
async fn claim_loop(
    shared: Arc<Shared>,
    queue: DurableQueue,
    slots: Arc<Semaphore>,
    poll: watch::Receiver<Duration>,
    wake: Arc<tokio::sync::Notify>,
) {
    let mut stage = shared.stage.subscribe();
    loop {
        if has_reached(&stage, Stage::NotClaiming) {
            return;
        }
        // Wait for room, or for phase 1. Phase 1 wins a tie: a slot freed by
        // a job that phase 3 gave back must not claim that job again.
        let permit = tokio::select! {
            biased;
            () = reached(&mut stage, Stage::NotClaiming) => return,
            permit = slots.clone().acquire_owned() => match permit { Ok(p) => p, Err(_) => return },
        };
        // A connection can be a long wait when jobs hold the pool, and the
        // one that frees it may be a job phase 3 just gave back: phase 1
        // ends the wait, and the stage is checked again once it is over.
        let client = tokio::select! {
            biased;
            () = reached(&mut stage, Stage::NotClaiming) => return,
            client = queue.client() => client,
        };
        let claimed = {
            // Phase 1 waits for a claim begun before it (`stop_accepting`).
            let _claiming = shared.claiming.enter();
            // Pairs with the fence in `stop_accepting`: either it sees this
            // claim counted, or this sees its stage.
            std::sync::atomic::fence(Ordering::SeqCst);
            if has_reached(&stage, Stage::NotClaiming) {
                return;
            }
            let room = 1 + slots.available_permits() as i64;
            // Grouped kinds take a group per slot: claim enough to fill them.
            let grouped: Vec<String> = shared.grouped.read().iter().cloned().collect();
            let group_room = room * shared.group_size as i64;
            let saturated = shared.saturated_kinds();
            match client {
                Ok(client) => queue.claim(&client, room, &saturated, &grouped, group_room).await,
                Err(e) => Err(e),
            }
        };
        let jobs = match claimed {
            Ok(jobs) => jobs,
            Err(e) => {
                slog::warn!(shared.logger, "claiming jobs failed; retrying"; "error" => %e);
                Vec::new()
            }
        };
        if jobs.is_empty() {
            drop(permit);
            // A new job wakes it (`wake.rs`); the poll covers lost notifications.
            tokio::select! {
                biased;
                () = reached(&mut stage, Stage::NotClaiming) => return,
                () = wake.notified() => {}
                () = tokio::time::sleep(*poll.borrow()) => {}
            }
            continue;
        }
        let mut permits = vec![permit];
        let slots_now = 1 + slots.available_permits();
        // Claimed before phase 1 ended: these run, and phase 3 stops them.
        for unit in group::units(&shared, jobs, slots_now) {
            let permit = match permits.pop() {
                Some(p) => p,
                // Claimed as many as there were permits; they are free unless memory jobs took them.
                None => match slots.clone().acquire_owned().await {
                    Ok(p) => p,
                    Err(_) => return,
                },
            };
            // One batch may hold more of a limited kind than it has room
            // for: those go back at once, attempt not counted.
            let mut kind_slots = Vec::with_capacity(unit.len());
            let mut admitted = Vec::with_capacity(unit.len());
            for job in unit {
                match shared.take_kind_slot(&job.kind) {
                    Some(slot) => {
                        kind_slots.push(slot);
                        admitted.push(job);
                    }
                    None => {
                        if let Err(e) = queue.release(job.id).await {
                            slog::warn!(shared.logger, "could not give back a job over its kind's limit; its lease will expire"; "job" => job.id, "error" => %e);
                        }
                    }
                }
            }
            let (shared, queue) = (shared.clone(), queue.clone());
            tokio::spawn(async move {
                match admitted.len() {
                    0 => {}
                    1 => {
                        if let Some(job) = admitted.pop() {
                            run_durable(shared.clone(), queue, job).await;
                        }
                    }
                    _ => group::run_group(shared.clone(), queue, admitted).await,
                }
                for slot in kind_slots {
                    shared.free_kind_slot(slot);
                }
                drop(permit);
            });
        }
    }
}

/// Runs in-memory jobs as they come, until phase 1; then drops what is left.
async fn memory_loop(shared: Arc<Shared>, mut receiver: mpsc::Receiver<Job>, slots: Arc<Semaphore>) {
    let mut stage = shared.stage.subscribe();
    loop {
        let job = tokio::select! {
            biased;
            () = reached(&mut stage, Stage::NotClaiming) => break,
            job = receiver.recv() => match job { Some(job) => job, None => return },
        };
        let Ok(permit) = slots.clone().acquire_owned().await else { break };
        let shared = shared.clone();
        tokio::spawn(async move {
            run_memory(shared, job).await;
            drop(permit);
        });
    }
    receiver.close();
    let mut dropped = 0;
    while receiver.try_recv().is_ok() {
        dropped += 1;
    }
    if dropped > 0 {
        shared.metrics.jobs.with_label_values(&[MEMORY, "dropped"]).inc_by(dropped);
        slog::warn!(shared.logger, "in-memory jobs not started before shutdown were dropped"; "jobs" => dropped);
    }
}

/// Keeps `queue_depth` current.
async fn depth_loop(shared: Arc<Shared>, queue: DurableQueue, memory: MemoryQueue) {
    let mut stage = shared.stage.subscribe();
    let mut series = std::collections::BTreeSet::new();
    loop {
        if let Ok(stats) = queue.stats().await {
            let metrics = &shared.metrics;
            metrics.depth.with_label_values(&[&queue.queue]).set(stats.depth());
            metrics.oldest_ready.with_label_values(&[&queue.queue]).set(stats.oldest_ready_seconds);
            series = metrics.set_jobs(&queue.queue, &stats.jobs, series);
        }
        shared.metrics.depth.with_label_values(&[MEMORY]).set(memory.depth() as i64);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = reached(&mut stage, Stage::NotClaiming) => return,
        }
    }
}

/// Changes how many jobs run at once from `old` to `new`: more permits at
/// once; fewer by taking permits as running jobs give them back.
fn resize(slots: &Arc<Semaphore>, old: usize, new: usize) {
    if new > old {
        slots.add_permits(new - old);
    } else if new < old {
        let slots = slots.clone();
        let fewer = u32::try_from(old - new).unwrap_or(u32::MAX);
        // Bounded by the jobs that run now; ends once they have given back enough.
        tokio::spawn(async move {
            if let Ok(taken) = slots.acquire_many(fewer).await {
                taken.forget();
            }
        });
    }
}

/// `/debug/jobs`: the queue's jobs by kind and state, how long the oldest
/// due one has waited, and the newest dead jobs with their errors.
async fn jobs_page(queue: DurableQueue) -> serde_json::Value {
    use serde_json::json;
    let (stats, dead) = futures::join!(queue.stats(), queue.dead(20));
    let (jobs, oldest) = match stats {
        Ok(stats) => {
            let jobs: Vec<_> = stats
                .jobs
                .iter()
                .map(|(kind, state, count)| json!({ "kind": kind, "state": state, "count": count }))
                .collect();
            (json!(jobs), json!(stats.oldest_ready_seconds))
        }
        Err(e) => (json!({ "error": e.to_string() }), serde_json::Value::Null),
    };
    let dead = dead.map_or_else(|e| json!({ "error": e.to_string() }), |dead| json!(dead));
    json!({ "queue": &*queue.queue, "jobs": jobs, "oldest_ready_seconds": oldest, "dead": dead })
}

#[orderly::component]
impl Component for Workers {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Database>(), Dependency::on::<Metrics>()]
    }

    /// Each run starts afresh: its own claim loop, queues and registrations
    /// (its dependents restart with it and register again); jobs of the
    /// run before were finished or given back in its phase 3.
    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.dependency::<Metrics>()?;
        let config = self.config.read().clone();
        let database = ctx.dependency::<Database>()?;
        let pool = database.pool()?;
        let listening = database.connection_config()?;
        let durable = DurableQueue {
            pool,
            queue: config.queue.as_str().into(),
            owner: owner_id(),
            lease: config.lease,
            // Attempts are per job (`max_attempts`); the policy gives only the backoff.
            retry: Arc::new(Mutex::new(RetryPolicy::new(1, config.backoff_initial, config.backoff_max))),
        };
        durable.create_schema().await?;
        let before = {
            let before = self.before_start.lock();
            Registrations {
                handlers: before.handlers.clone(),
                limits: before.limits.clone(),
                grouped: before.grouped.clone(),
                periodic: before.periodic.clone(),
            }
        };
        let shared = Arc::new(Shared {
            handlers: RwLock::new(before.handlers),
            limits: RwLock::new(before.limits),
            running_kinds: Mutex::default(),
            grouped: RwLock::new(before.grouped),
            group_size: config.group_size,
            stage: watch::Sender::new(Stage::Claiming),
            in_flight: Arc::default(),
            claiming: Arc::default(),
            metrics: ctx.metric_set(WorkerMetrics::register)?,
            logger: ctx.logger().clone(),
        });
        let (sender, receiver) = mpsc::channel(config.memory_capacity);
        let memory = MemoryQueue { name: MEMORY.into(), sender, accepting: Arc::new(AtomicBool::new(true)) };
        // Schedules from config join those of dependents (validation checked them).
        let mut periodic = before.periodic;
        for (kind, configured) in &config.periodic {
            if let Ok(schedule) = configured.schedule() {
                let payload = serde_json::Value::Object(configured.payload.clone());
                periodic.push(Arc::new(periodic::Periodic { kind: kind.clone(), schedule, payload }));
            }
        }
        let run = Arc::new(Run {
            shared: shared.clone(),
            durable: durable.clone(),
            memory: memory.clone(),
            slots: Arc::new(Semaphore::new(config.concurrency)),
            poll: watch::Sender::new(config.poll_interval),
            periodic: Mutex::new(Schedules { jobs: periodic, begun: false }),
        });
        *self.run.write() = Some(run.clone());

        let page_queue = durable.clone();
        ctx.lifecycle().add_debug_page("jobs", move || jobs_page(page_queue.clone()));
        // Handlers and schedules are registered by dependents' starts, which
        // come after this one: work begins once the start this is part of
        // (the app's, or a restart's) has completed. Every loop belongs to
        // this run, and ends with it at the latest.
        let max_attempts = config.max_attempts;
        let all_started = ctx.all_started();
        let wake = Arc::new(tokio::sync::Notify::new());
        let (begin, _) = watch::channel(false);
        let begun = || {
            let mut begun = begin.subscribe();
            async move { begun.wait_for(|b| *b).await.is_ok() }
        };
        {
            let (shared, wake, started) = (shared.clone(), wake.clone(), begun());
            ctx.spawn(async move {
                if started.await {
                    let stage = shared.stage.subscribe();
                    wake::listen(listening, durable.queue.clone(), wake, stage, shared.logger.clone()).await;
                }
                Ok(())
            });
        }
        {
            let (run, started) = (run.clone(), begun());
            ctx.spawn(async move {
                if started.await {
                    let mut schedules = Vec::new();
                    let jobs = {
                        let mut periodic = run.periodic.lock();
                        periodic.begun = true;
                        periodic.jobs.clone()
                    };
                    for job in jobs {
                        if !run.shared.handlers.read().contains_key(&job.kind) {
                            slog::warn!(run.shared.logger, "a periodic job's kind has no handler in this process; its jobs wait for a process that has one";
                                "kind" => &job.kind);
                        }
                        let (stage, logger) = (run.shared.stage.subscribe(), run.shared.logger.clone());
                        schedules.push(periodic::run(run.durable.clone(), job, max_attempts, stage, logger));
                    }
                    futures::future::join_all(schedules).await;
                }
                Ok(())
            });
        }
        {
            let (shared, slots, started) = (shared.clone(), run.slots.clone(), begun());
            ctx.spawn(async move {
                if started.await {
                    memory_loop(shared, receiver, slots).await;
                }
                Ok(())
            });
        }
        {
            let (shared, durable, memory, started) = (shared.clone(), run.durable.clone(), memory.clone(), begun());
            ctx.spawn(async move {
                if started.await {
                    depth_loop(shared, durable, memory).await;
                }
                Ok(())
            });
        }
        {
            let (run, started) = (run.clone(), begun());
            ctx.spawn(async move {
                if started.await {
                    let poll = run.poll.subscribe();
                    claim_loop(run.shared.clone(), run.durable.clone(), run.slots.clone(), poll, wake).await;
                }
                Ok(())
            });
        }
        ctx.spawn(async move {
            begin.send_replace(all_started.await);
            Ok(())
        });
        slog::info!(ctx.logger(), "workers ready"; "queue" => &config.queue, "concurrency" => config.concurrency);
        Ok(())
    }

    /// `concurrency`, `poll_interval`, `backoff_initial`, `backoff_max` and
    /// `max_attempts` apply at once: a smaller concurrency takes effect as
    /// running jobs end, a retry already scheduled keeps its time. The
    /// rest (the queue, the lease, the group size, the in-memory capacity,
    /// schedules) restarts the workers with their dependents.
    async fn reload(&self, ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        let Some(new) = ctx.replacement::<Workers>() else { return Ok(Reloaded::NeedsRestart) };
        let new = new.config.read().clone();
        let old = self.config.read().clone();
        let unchanged_rest = WorkersConfig {
            concurrency: old.concurrency,
            poll_interval: old.poll_interval,
            backoff_initial: old.backoff_initial,
            backoff_max: old.backoff_max,
            max_attempts: old.max_attempts,
            ..new.clone()
        };
        if serde_json::to_value(&unchanged_rest)? != serde_json::to_value(&old)? {
            return Ok(Reloaded::NeedsRestart);
        }
        let Some(run) = self.run() else { return Ok(Reloaded::NeedsRestart) };
        resize(&run.slots, old.concurrency, new.concurrency);
        run.poll.send_replace(new.poll_interval);
        *run.durable.retry.lock() = RetryPolicy::new(1, new.backoff_initial, new.backoff_max);
        slog::info!(ctx.logger(), "reloaded in place"; "concurrency" => new.concurrency,
            "poll_interval" => ?new.poll_interval, "max_attempts" => new.max_attempts);
        *self.config.write() = new;
        Ok(Reloaded::Applied)
    }

    async fn stop_accepting(&self, ctx: &StopContext) -> Result<(), BoxError> {
        let Some(run) = self.run() else { return Ok(()) };
        run.memory.accepting.store(false, Ordering::SeqCst);
        {
            let shared = &run.shared;
            advance(&shared.stage, Stage::NotClaiming);
            std::sync::atomic::fence(Ordering::SeqCst);
            if !shared.claiming.wait_until_idle(ctx.deadline()).await {
                return Err("a claim of jobs was still in flight at the end of phase 1".into());
            }
            slog::info!(ctx.logger(), "stopped claiming jobs"; "in_flight" => shared.in_flight.count());
        }
        Ok(())
    }

    async fn stop_workers(&self, ctx: &StopContext) -> Result<(), BoxError> {
        let Some(run) = self.run() else { return Ok(()) };
        let shared = &run.shared;
        advance(&shared.stage, Stage::Cancelling);
        let deadline = ctx.deadline();
        // Leave time to give unfinished jobs back before the budget ends.
        let margin = deadline.saturating_duration_since(Instant::now()).mul_f64(0.2).min(Duration::from_millis(500));
        if !shared.in_flight.wait_until_idle(deadline - margin).await {
            let left = shared.in_flight.count();
            slog::warn!(ctx.logger(), "jobs still running at the end of the budget; giving them back"; "jobs" => left);
            advance(&shared.stage, Stage::CuttingOff);
            if !shared.in_flight.wait_until_idle(deadline).await {
                let left = shared.in_flight.count();
                return Err(format!("{left} job(s) could not be given back in time; their leases will expire").into());
            }
        }
        slog::info!(ctx.logger(), "workers stopped");
        Ok(())
    }
}

orderly::register!(Workers: WorkersConfig => Workers::new);
