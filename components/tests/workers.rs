//! The workers against a real, throwaway Postgres: jobs run once with their
//! effects committed with their completion, failures retry with backoff and
//! dead-letter, and phase 3 gives back what it could not finish.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orderly::events::EventKind;
use orderly::{
    config::Secret, phase::Phase, settings::PhaseBudgets, settings::ShutdownSettings, BoxError, Component, Dependency,
    Runtime, ShutdownReason, StartContext, StopPhase,
};
use orderly_components::admin::{Admin, AdminConfig};
use orderly_components::metrics::Metrics;
use orderly_components::postgres::{Database, DatabaseConfig, DevDatabase};
use orderly_components::workers::{Job, JobContext, JobHandler, JobOptions, RetryLater, Workers, WorkersConfig};

/// Writes the job's id into `processed`, in the job's transaction.
struct Record;

#[orderly::async_trait]
impl JobHandler for Record {
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        let tx = ctx.transaction().ok_or("durable jobs have a transaction")?;
        tx.execute("INSERT INTO processed (job_id) VALUES ($1)", &[&job.id]).await?;
        Ok(())
    }
}

struct AlwaysFails;

#[orderly::async_trait]
impl JobHandler for AlwaysFails {
    async fn run(&self, _: &Job, _: &JobContext<'_>) -> Result<(), BoxError> {
        Err("the upstream said no".into())
    }
}

/// Stops when asked.
struct Cooperative;

#[orderly::async_trait]
impl JobHandler for Cooperative {
    async fn run(&self, _: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        ctx.cancelled().await;
        Err("cancelled before finishing".into())
    }
}

/// Ignores cancellation.
struct Stubborn;

#[orderly::async_trait]
impl JobHandler for Stubborn {
    async fn run(&self, _: &Job, _: &JobContext<'_>) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_secs(600)).await;
        Ok(())
    }
}

struct Counter(Arc<AtomicUsize>);

#[orderly::async_trait]
impl JobHandler for Counter {
    async fn run(&self, _: &Job, _: &JobContext<'_>) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Waits until the test opens it (with `concurrency = 1`, holds the worker).
struct Gate(Arc<tokio::sync::Semaphore>);

#[orderly::async_trait]
impl JobHandler for Gate {
    async fn run(&self, _: &Job, _: &JobContext<'_>) -> Result<(), BoxError> {
        let _ = self.0.acquire().await?;
        Ok(())
    }
}

/// Records the order jobs ran in.
struct Order(Arc<std::sync::Mutex<Vec<i64>>>);

#[orderly::async_trait]
impl JobHandler for Order {
    async fn run(&self, job: &Job, _: &JobContext<'_>) -> Result<(), BoxError> {
        self.0.lock().unwrap().push(job.id);
        Ok(())
    }
}

/// On its first run asks to run again in 200 ms; then succeeds. Counts its runs.
struct LaterOnce(Arc<AtomicUsize>);

#[orderly::async_trait]
impl JobHandler for LaterOnce {
    async fn run(&self, _: &Job, _: &JobContext<'_>) -> Result<(), BoxError> {
        match self.0.fetch_add(1, Ordering::SeqCst) {
            0 => Err(RetryLater(Duration::from_millis(200)).into()),
            _ => Ok(()),
        }
    }
}

/// Fails its first run; then succeeds. Counts its runs.
struct FailsOnce(Arc<AtomicUsize>);

#[orderly::async_trait]
impl JobHandler for FailsOnce {
    async fn run(&self, _: &Job, _: &JobContext<'_>) -> Result<(), BoxError> {
        match self.0.fetch_add(1, Ordering::SeqCst) {
            0 => Err("the upstream was down".into()),
            _ => Ok(()),
        }
    }
}

/// How many `single` jobs run now, and the most that ever ran at once
/// (one test process each, under nextest).
static SINGLE_NOW: AtomicUsize = AtomicUsize::new(0);
static SINGLE_MOST: AtomicUsize = AtomicUsize::new(0);

/// Takes 30 ms, and records how many of its kind run at once.
struct Single;

#[orderly::async_trait]
impl JobHandler for Single {
    async fn run(&self, _: &Job, _: &JobContext<'_>) -> Result<(), BoxError> {
        let now = SINGLE_NOW.fetch_add(1, Ordering::SeqCst) + 1;
        SINGLE_MOST.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(30)).await;
        SINGLE_NOW.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

/// Registers the handlers, like an app's component would.
/// Writes the job's id and its transaction's id into `grouped_effects`,
/// in the job's transaction; fails when the payload says so, and takes
/// `ms` first when it says so.
struct RecordTx;

#[orderly::async_trait]
impl JobHandler for RecordTx {
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        if let Some(ms) = job.payload["ms"].as_u64() {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        let tx = ctx.transaction().ok_or("durable jobs have a transaction")?;
        tx.execute("INSERT INTO grouped_effects (job_id, tx) VALUES ($1, txid_current())", &[&job.id]).await?;
        if job.payload["fail"] == true {
            return Err("this one always fails".into());
        }
        Ok(())
    }
}

struct Handlers(Arc<AtomicUsize>, Arc<tokio::sync::Semaphore>, Arc<std::sync::Mutex<Vec<i64>>>);

#[orderly::component]
impl Component for Handlers {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Workers>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let workers = ctx.dependency::<Workers>()?;
        workers.handle("record", Record);
        workers.handle_grouped("grouped", RecordTx);
        workers.handle("cron_tick", Counter(self.0.clone()));
        workers.handle("fails", AlwaysFails);
        workers.handle("cooperative", Cooperative);
        workers.handle("stubborn", Stubborn);
        workers.handle("count", Counter(self.0.clone()));
        workers.handle("gate", Gate(self.1.clone()));
        workers.handle_at_most("single", Single, 1);
        workers.handle("later", LaterOnce(self.0.clone()));
        workers.handle("flaky", FailsOnce(self.0.clone()));
        workers.handle("order", Order(self.2.clone()));
        Ok(())
    }
}

struct Setup {
    server: DevDatabase,
    runtime: Runtime,
    workers: Arc<Workers>,
    counted: Arc<AtomicUsize>,
    /// Closed: a `gate` job holds its worker until permits are added.
    gate: Arc<tokio::sync::Semaphore>,
    /// The `order` jobs' ids, in the order they ran.
    order: Arc<std::sync::Mutex<Vec<i64>>>,
    /// The management server, debug pages on.
    admin: Arc<Admin>,
}

async fn setup(workers: WorkersConfig, stop_workers: Duration) -> Setup {
    let server = DevDatabase::start().await.expect("a throwaway postgres");
    let (client, connection) = tokio_postgres::connect(&server.url(), tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE processed (job_id BIGINT PRIMARY KEY);
             CREATE TABLE grouped_effects (job_id BIGINT PRIMARY KEY, tx BIGINT NOT NULL)",
        )
        .await
        .unwrap();
    let database =
        DatabaseConfig { url: Secret::new(server.url()), migrations: String::new(), ..DatabaseConfig::default() };
    let workers = Arc::new(Workers::new(workers));
    let counted = Arc::new(AtomicUsize::new(0));
    let (gate, order) = (Arc::new(tokio::sync::Semaphore::new(0)), Arc::new(std::sync::Mutex::new(Vec::new())));
    let settings = ShutdownSettings {
        phases: PhaseBudgets { stop_workers, ..PhaseBudgets::default() },
        ..ShutdownSettings::default()
    };
    let admin = Arc::new(Admin::new(AdminConfig { bind: "127.0.0.1:0".into(), debug: true, ..AdminConfig::default() }));
    let runtime = Runtime::builder()
        .component(Metrics::default())
        .component(Database::new(database))
        .component_arc(workers.clone())
        .component_arc(admin.clone())
        .component(Handlers(counted.clone(), gate.clone(), order.clone()))
        .shutdown_settings(settings)
        .build()
        .unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    Setup { server, runtime, workers, counted, gate, order, admin }
}

async fn query_i64(url: &str, sql: &str) -> i64 {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client.query_one(sql, &[]).await.unwrap().get(0)
}

async fn eventually(url: &str, sql: &str, expected: i64) {
    for _ in 0..500 {
        if query_i64(url, sql).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("`{sql}` never reached {expected} (last: {})", query_i64(url, sql).await);
}

fn reason() -> ShutdownReason {
    ShutdownReason::Signal("SIGTERM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_jobs_complete_once_with_their_effects() {
    let s = setup(WorkersConfig::default(), Duration::from_secs(5)).await;
    for n in 0..50 {
        s.workers.enqueue("record", serde_json::json!({ "n": n })).await.unwrap();
    }
    let url = s.server.url();
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE status = 'done'", 50).await;
    assert_eq!(query_i64(&url, "SELECT count(*) FROM processed").await, 50);
    let text = orderly_components::metrics::render(s.runtime.metrics_registry()).unwrap();
    assert!(text.contains(r#"jobs_total{queue="default",status="done"} 50"#), "{text}");
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_retries_with_backoff_then_is_dead_lettered() {
    let config = WorkersConfig {
        max_attempts: 3,
        backoff_initial: Duration::from_millis(20),
        poll_interval: Duration::from_millis(10),
        ..WorkersConfig::default()
    };
    let s = setup(config, Duration::from_secs(5)).await;
    let id = s.workers.enqueue("fails", serde_json::json!({})).await.unwrap();
    let url = s.server.url();
    eventually(
        &url,
        &format!("SELECT count(*) FROM orderly_jobs WHERE id = {id} AND status = 'dead' AND attempts = 3"),
        1,
    )
    .await;
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let error: String =
        client.query_one("SELECT last_error FROM orderly_jobs WHERE id = $1", &[&id]).await.unwrap().get(0);
    assert!(error.contains("the upstream said no"), "{error}");
    let text = orderly_components::metrics::render(s.runtime.metrics_registry()).unwrap();
    assert!(text.contains(r#"jobs_total{queue="default",status="failed"} 2"#), "{text}");
    assert!(text.contains(r#"jobs_total{queue="default",status="dead"} 1"#), "{text}");
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_3_gives_back_every_job_it_did_not_finish() {
    let s = setup(WorkersConfig::default(), Duration::from_millis(1500)).await;
    let cooperative = s.workers.enqueue("cooperative", serde_json::json!({})).await.unwrap();
    let stubborn = s.workers.enqueue("stubborn", serde_json::json!({})).await.unwrap();
    let url = s.server.url();
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE status = 'running'", 2).await;
    while s.workers.in_flight() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = s.runtime.shutdown(reason()).await;
    assert!(report.is_clean(), "{report:?}");
    for id in [cooperative, stubborn] {
        let sql = format!("SELECT count(*) FROM orderly_jobs WHERE id = {id} AND status = 'ready' AND attempts = 0 AND lease_owner IS NULL");
        assert_eq!(query_i64(&url, &sql).await, 1, "job {id} is back in the queue, its attempt not counted");
    }
    let text = orderly_components::metrics::render(s.runtime.metrics_registry()).unwrap();
    assert!(text.contains(r#"jobs_total{queue="default",status="released"} 2"#), "{text}");
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_1_ends_only_once_a_claim_sent_before_it_has_returned() {
    let config = WorkersConfig { poll_interval: Duration::from_millis(10), ..WorkersConfig::default() };
    let s = setup(config, Duration::from_millis(1500)).await;
    let url = s.server.url();
    // Hold the table, so the next claim waits inside Postgres, as one does
    // that reaches it late. A claim returning after phase 1 could take a job
    // that phase 3 gives back.
    let (locker, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    locker.batch_execute("BEGIN; LOCK TABLE orderly_jobs IN EXCLUSIVE MODE").await.unwrap();
    // The claim (with grouped kinds, it begins `WITH alone AS`).
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
                   AND query LIKE '%UPDATE orderly_jobs SET status = ''running''%'";
    eventually(&url, waiting, 1).await;

    let timeline = s.runtime.timeline();
    let phase_1 = Some(Phase::Stop(StopPhase::StopAccepting));
    let shutdown = s.runtime.shutdown(reason());
    let mut shutdown = std::pin::pin!(shutdown);
    // However long the claim is held, phase 1 does not end.
    for _ in 0..30 {
        tokio::select! {
            report = &mut shutdown => panic!("the shutdown ended while a claim was in flight: {report:?}"),
            () = tokio::time::sleep(Duration::from_millis(10)) => {}
        }
    }
    assert!(timeline.position("workers", EventKind::Stopping, phase_1).is_some(), "phase 1 began");
    assert!(timeline.position("workers", EventKind::Stopped, phase_1).is_none(), "phase 1 waits for the claim");

    locker.batch_execute("COMMIT").await.unwrap();
    let report = shutdown.await;
    assert!(report.is_clean(), "{report:?}");
    assert!(timeline.position("workers", EventKind::Stopped, phase_1).is_some());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_queue_runs_jobs_and_is_bounded() {
    let config = WorkersConfig { memory_capacity: 4, ..WorkersConfig::default() };
    let s = setup(config, Duration::from_secs(5)).await;
    let queue = s.workers.memory_queue().unwrap();
    for _ in 0..20 {
        queue.enqueue("count", serde_json::Value::Null).await.unwrap();
    }
    while s.counted.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    let error = queue.try_enqueue("count", serde_json::Value::Null).unwrap_err();
    assert!(error.to_string().contains("stopping"), "after phase 1: {error}");
    s.server.stop().await.unwrap();
}

/// Waits until the `count` handler has run `n` jobs; `false` after `limit`.
async fn counted(s: &Setup, n: usize, limit: Duration) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while s.counted.load(Ordering::SeqCst) < n {
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_job_wakes_an_idle_worker_at_once_and_a_lost_listener_comes_back() {
    // A poll once a minute: a job that runs within the test's limit was woken.
    let config = WorkersConfig { poll_interval: Duration::from_secs(60), ..WorkersConfig::default() };
    let s = setup(config, Duration::from_secs(5)).await;
    let url = s.server.url();
    // The worker has polled once, found nothing, and sleeps; its listener is up.
    eventually(&url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'orderly-jobs-listener'", 1).await;
    s.workers.enqueue("count", serde_json::json!({})).await.unwrap();
    assert!(counted(&s, 1, Duration::from_secs(20)).await, "the job waited for the poll");

    // The listening connection dies: it is established again, and a job
    // enqueued after that wakes the worker as before.
    let killed = query_i64(
        &url,
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = 'orderly-jobs-listener') AS t",
    )
    .await;
    assert_eq!(killed, 1);
    eventually(&url, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'orderly-jobs-listener'", 1).await;
    s.workers.enqueue("count", serde_json::json!({})).await.unwrap();
    assert!(counted(&s, 2, Duration::from_secs(20)).await, "the job waited for the poll after the reconnect");
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn priority_decides_the_order_and_a_delay_is_respected() {
    let config = WorkersConfig { concurrency: 1, ..WorkersConfig::default() };
    let s = setup(config, Duration::from_secs(5)).await;
    let url = s.server.url();
    // The one worker is held by a gate while the others queue up.
    s.workers.enqueue("gate", serde_json::json!({})).await.unwrap();
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE kind = 'gate' AND status = 'running'", 1).await;
    let low = s.workers.enqueue_with("order", serde_json::json!({}), &JobOptions::new().priority(-5)).await.unwrap();
    let plain = s.workers.enqueue("order", serde_json::json!({})).await.unwrap();
    let high = s.workers.enqueue_with("order", serde_json::json!({}), &JobOptions::new().priority(10)).await.unwrap();
    let later = JobOptions::new().run_in(Duration::from_millis(400)).priority(100);
    let delayed = s.workers.enqueue_with("order", serde_json::json!({}), &later).await.unwrap();
    s.gate.add_permits(1);
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE kind = 'order' AND status = 'done'", 4).await;
    // The delayed one, although the most urgent, waited for its time; the others by priority.
    assert_eq!(*s.order.lock().unwrap(), [high.id, plain, low.id, delayed.id]);
    let waited = query_i64(
        &url,
        &format!(
            "SELECT (finished_at >= created_at + interval '400 milliseconds')::int::bigint FROM orderly_jobs WHERE id = {}",
            delayed.id
        ),
    )
    .await;
    assert_eq!(waited, 1, "ran before its time");
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_job_is_enqueued_once_while_it_waits_and_again_once_done() {
    let config = WorkersConfig { concurrency: 1, ..WorkersConfig::default() };
    let s = setup(config, Duration::from_secs(5)).await;
    let url = s.server.url();
    s.workers.enqueue("gate", serde_json::json!({})).await.unwrap();
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE kind = 'gate' AND status = 'running'", 1).await;
    let once = JobOptions::new().unique("recount:customer:7");
    let first = s.workers.enqueue_with("count", serde_json::json!({}), &once).await.unwrap();
    let again = s.workers.enqueue_with("count", serde_json::json!({}), &once).await.unwrap();
    assert!(first.created && !again.created, "{first:?} {again:?}");
    assert_eq!(again.id, first.id, "the waiting job is returned");
    s.gate.add_permits(1);
    assert!(counted(&s, 1, Duration::from_secs(20)).await);
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE kind = 'count' AND status = 'done'", 1).await;
    // Done: the key is free again.
    let later = s.workers.enqueue_with("count", serde_json::json!({}), &once).await.unwrap();
    assert!(later.created && later.id != first.id, "{later:?}");
    assert!(counted(&s, 2, Duration::from_secs(20)).await);
    assert_eq!(s.counted.load(Ordering::SeqCst), 2, "never more than one at a time for the key");
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_can_put_its_job_off_without_spending_an_attempt() {
    let s = setup(WorkersConfig::default(), Duration::from_secs(5)).await;
    let url = s.server.url();
    let id = s.workers.enqueue("later", serde_json::json!({})).await.unwrap();
    eventually(&url, &format!("SELECT count(*) FROM orderly_jobs WHERE id = {id} AND status = 'done'"), 1).await;
    assert_eq!(s.counted.load(Ordering::SeqCst), 2, "ran twice");
    let row = query_i64(
        &url,
        &format!(
            "SELECT (attempts * 10 + (finished_at >= created_at + interval '200 milliseconds')::int)::bigint \
             FROM orderly_jobs WHERE id = {id}"
        ),
    )
    .await;
    assert_eq!(row, 11, "one attempt counted, and the second run waited its 200 ms");
    let text = orderly_components::metrics::render(s.runtime.metrics_registry()).unwrap();
    assert!(text.contains(r#"jobs_total{queue="default",status="later"} 1"#), "{text}");
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_job_can_be_cancelled_and_a_dead_one_listed_and_run_again() {
    let config = WorkersConfig { concurrency: 1, max_attempts: 1, ..WorkersConfig::default() };
    let s = setup(config, Duration::from_secs(5)).await;
    let url = s.server.url();
    s.workers.enqueue("gate", serde_json::json!({})).await.unwrap();
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE kind = 'gate' AND status = 'running'", 1).await;
    let waiting = s.workers.enqueue("count", serde_json::json!({"n": 1})).await.unwrap();
    assert!(s.workers.cancel(waiting).await.unwrap(), "a waiting job is cancelled");
    assert!(!s.workers.cancel(waiting).await.unwrap(), "only once");

    // One attempt allowed: the flaky job dies at once, and is listed.
    let flaky = s.workers.enqueue("flaky", serde_json::json!({"n": 2})).await.unwrap();
    s.gate.add_permits(1);
    eventually(&url, &format!("SELECT count(*) FROM orderly_jobs WHERE id = {flaky} AND status = 'dead'"), 1).await;
    let dead = s.workers.dead_jobs(10).await.unwrap();
    let ids: Vec<i64> = dead.iter().map(|d| d.id).collect();
    assert_eq!(ids, [flaky, waiting], "newest first: {dead:?}");
    assert_eq!(dead[0].last_error.as_deref(), Some("the upstream was down"));
    assert_eq!(dead[1].last_error.as_deref(), Some("cancelled"));
    assert_eq!(s.counted.load(Ordering::SeqCst), 1, "the cancelled job never ran; the flaky one once");

    // Run it again: attempts from zero, and this time it succeeds.
    assert!(s.workers.retry_dead(flaky).await.unwrap());
    eventually(&url, &format!("SELECT count(*) FROM orderly_jobs WHERE id = {flaky} AND status = 'done'"), 1).await;
    assert!(!s.workers.retry_dead(flaky).await.unwrap(), "it is not dead any more");
    assert_eq!(s.workers.dead_jobs(10).await.unwrap().len(), 1);
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

/// Registers a `tick` job every 100 ms, and its handler.
struct Ticker;

#[orderly::component]
impl Component for Ticker {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Workers>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let workers = ctx.dependency::<Workers>()?;
        workers.handle("tick", Counter(Arc::new(AtomicUsize::new(0))));
        workers.every("tick", Duration::from_millis(100), serde_json::json!({ "what": "tick" }));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_job_is_enqueued_once_per_period_across_replicas() {
    let server = DevDatabase::start().await.expect("a throwaway postgres");
    let url = server.url();
    let replica = || {
        let database =
            DatabaseConfig { url: Secret::new(url.clone()), migrations: String::new(), ..DatabaseConfig::default() };
        Runtime::builder()
            .component(Metrics::default())
            .component(Database::new(database))
            .component(Workers::new(WorkersConfig::default()))
            .component(Ticker)
            .build()
            .unwrap()
    };
    let (a, b) = (replica(), replica());
    a.start().await.map_err(|e| format!("{e:?}")).unwrap();
    b.start().await.map_err(|e| format!("{e:?}")).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(a.shutdown(reason()).await.is_clean());
    assert!(b.shutdown(reason()).await.is_clean());
    let jobs = query_i64(&url, "SELECT count(*) FROM orderly_jobs WHERE kind = 'tick'").await;
    let slots = query_i64(&url, "SELECT count(DISTINCT payload->>'slot') FROM orderly_jobs WHERE kind = 'tick'").await;
    assert_eq!(jobs, slots, "a slot was enqueued twice");
    assert!(jobs >= 5, "about one per 100 ms over 1.2 s, from two replicas: {jobs}");
    let kept =
        query_i64(&url, "SELECT count(*) FROM orderly_jobs WHERE kind = 'tick' AND payload->>'what' = 'tick'").await;
    assert_eq!(kept, jobs, "the payload is the registered one, with its slot");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_with_a_limit_never_runs_more_at_once_and_the_others_go_on() {
    let s = setup(WorkersConfig { concurrency: 4, ..WorkersConfig::default() }, Duration::from_secs(5)).await;
    let url = s.server.url();
    for _ in 0..8 {
        s.workers.enqueue("single", serde_json::json!({})).await.unwrap();
    }
    for _ in 0..8 {
        s.workers.enqueue("count", serde_json::json!({})).await.unwrap();
    }
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE status = 'done'", 16).await;
    assert_eq!(SINGLE_MOST.load(Ordering::SeqCst), 1, "at most one `single` at a time");
    assert_eq!(s.counted.load(Ordering::SeqCst), 8);
    let attempts = query_i64(&url, "SELECT max(attempts)::bigint FROM orderly_jobs WHERE kind = 'single'").await;
    assert_eq!(attempts, 1, "a job given back for its kind's limit spends no attempt");
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

/// Waits until the rendered registry has every one of `lines` (a gauge is
/// refreshed once a second).
async fn eventually_metrics(s: &Setup, lines: &[&str], absent: &[&str]) -> String {
    let mut text = String::new();
    for _ in 0..200 {
        text = orderly_components::metrics::render(s.runtime.metrics_registry()).unwrap();
        if lines.iter().all(|l| text.contains(l)) && !absent.iter().any(|a| text.contains(a)) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("never had {lines:?} without {absent:?}:\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_jobs_by_kind_and_state_and_how_long_the_oldest_waits() {
    let config = WorkersConfig { concurrency: 1, max_attempts: 1, ..WorkersConfig::default() };
    let s = setup(config, Duration::from_secs(5)).await;
    let url = s.server.url();
    // One worker: a gate job holds it, so what comes after waits.
    s.workers.enqueue("gate", serde_json::json!({})).await.unwrap();
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE kind = 'gate' AND status = 'running'", 1).await;
    for n in 0..2 {
        s.workers.enqueue("count", serde_json::json!({ "n": n })).await.unwrap();
    }
    s.workers
        .enqueue_with("count", serde_json::json!({ "n": 9 }), &JobOptions::new().run_in(Duration::from_secs(3600)))
        .await
        .unwrap();
    let text = eventually_metrics(
        &s,
        &[
            r#"queue_jobs{kind="gate",queue="default",state="running"} 1"#,
            r#"queue_jobs{kind="count",queue="default",state="ready"} 2"#,
            r#"queue_jobs{kind="count",queue="default",state="scheduled"} 1"#,
            r#"queue_depth{queue="default"} 4"#,
        ],
        &[],
    )
    .await;
    let oldest: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix(r#"queue_oldest_ready_seconds{queue="default"} "#))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no oldest-ready gauge:\n{text}"));
    assert!(oldest > 0.0, "the ready jobs have waited: {oldest}");

    // Let everything due run; the failing job dies at its only attempt.
    let fails = s.workers.enqueue("fails", serde_json::json!({ "n": 3 })).await.unwrap();
    s.gate.add_permits(1);
    eventually(&url, &format!("SELECT count(*) FROM orderly_jobs WHERE id = {fails} AND status = 'dead'"), 1).await;
    eventually_metrics(
        &s,
        &[
            r#"queue_jobs{kind="fails",queue="default",state="dead"} 1"#,
            r#"queue_jobs{kind="count",queue="default",state="scheduled"} 1"#,
            r#"queue_oldest_ready_seconds{queue="default"} 0"#,
        ],
        // Drained series are removed, not left at their last count.
        &[r#"queue_jobs{kind="gate""#, r#"queue_jobs{kind="count",queue="default",state="ready"}"#],
    )
    .await;
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

/// Enqueues `payloads` as `grouped` jobs in one statement, so that one
/// claim finds them all (jobs enqueued one by one are claimed one by one).
async fn enqueue_grouped(url: &str, payloads: &[serde_json::Value], max_attempts: i32) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .execute(
            "INSERT INTO orderly_jobs (queue, kind, payload, max_attempts)
             SELECT 'default', 'grouped', p, $2 FROM unnest($1::JSONB[]) AS p",
            &[&payloads, &max_attempts],
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grouped_jobs_share_transactions_and_complete_once_with_their_effects() {
    let config = WorkersConfig { concurrency: 2, group_size: 8, ..WorkersConfig::default() };
    let s = setup(config, Duration::from_secs(5)).await;
    let url = s.server.url();
    let payloads: Vec<serde_json::Value> = (0..200).map(|n| serde_json::json!({ "n": n })).collect();
    enqueue_grouped(&url, &payloads, 5).await;
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE status = 'done'", 200).await;
    assert_eq!(query_i64(&url, "SELECT count(*) FROM grouped_effects").await, 200, "every effect once");
    let transactions = query_i64(&url, "SELECT count(DISTINCT tx) FROM grouped_effects").await;
    assert!(transactions <= 200 / 4, "jobs shared transactions: {transactions} for 200 jobs");
    let largest = query_i64(&url, "SELECT max(n) FROM (SELECT count(*) AS n FROM grouped_effects GROUP BY tx) g").await;
    assert!(largest <= 8, "no group beyond group_size: {largest}");
    let text = orderly_components::metrics::render(s.runtime.metrics_registry()).unwrap();
    assert!(text.contains(r#"jobs_total{queue="default",status="done"} 200"#), "{text}");
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_rolls_its_group_back_and_each_then_runs_alone() {
    let config = WorkersConfig { concurrency: 1, group_size: 8, max_attempts: 1, ..WorkersConfig::default() };
    let s = setup(config, Duration::from_secs(5)).await;
    let url = s.server.url();
    let payloads: Vec<serde_json::Value> = (0..8).map(|n| serde_json::json!({ "n": n, "fail": n == 3 })).collect();
    enqueue_grouped(&url, &payloads, 1).await;
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE status IN ('done', 'dead')", 8).await;
    assert_eq!(query_i64(&url, "SELECT count(*) FROM orderly_jobs WHERE status = 'done'").await, 7);
    let dead = "SELECT count(*) FROM orderly_jobs WHERE status = 'dead' AND payload->>'fail' = 'true' AND attempts = 1";
    assert_eq!(query_i64(&url, dead).await, 1, "the failing job is dead after its one attempt, as it would be alone");
    // The group's first run rolled back whole: what stayed are the runs
    // alone, one effect per completed job and none for the failed one.
    let effects =
        "SELECT count(*) FROM grouped_effects e JOIN orderly_jobs j ON j.id = e.job_id WHERE j.status = 'done'";
    assert_eq!(query_i64(&url, effects).await, 7);
    assert_eq!(query_i64(&url, "SELECT count(*) FROM grouped_effects").await, 7, "no effect of the failed job");
    let after = "SELECT count(*) FROM grouped_effects e JOIN orderly_jobs j ON j.id = e.job_id
                 WHERE (j.payload->>'n')::INT > 3";
    assert_eq!(query_i64(&url, after).await, 4, "the jobs after the failing one ran too");
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_3_commits_what_a_group_finished_and_gives_back_the_rest() {
    let config = WorkersConfig { concurrency: 1, group_size: 8, ..WorkersConfig::default() };
    let s = setup(config, Duration::from_secs(5)).await;
    let url = s.server.url();
    let payloads: Vec<serde_json::Value> = (0..8).map(|n| serde_json::json!({ "n": n, "ms": 300 })).collect();
    enqueue_grouped(&url, &payloads, 5).await;
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE status = 'running'", 8).await;
    // Claimed is not begun: wait until the group's transaction is open and
    // its first handler runs (its connection idles in the transaction
    // while the handler sleeps), so phase 3 finds a job under way.
    eventually(&url, "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction'", 1).await;
    let report = s.runtime.shutdown(reason()).await;
    assert!(report.is_clean(), "{report:?}");
    let done = query_i64(&url, "SELECT count(*) FROM orderly_jobs WHERE status = 'done'").await;
    assert!((1..8).contains(&done), "the job running when phase 3 began finished, the rest did not start: {done}");
    assert_eq!(
        query_i64(&url, "SELECT count(*) FROM grouped_effects").await,
        done,
        "effects exactly for the done jobs"
    );
    let back = "SELECT count(*) FROM orderly_jobs WHERE status = 'ready' AND attempts = 0 AND lease_owner IS NULL";
    assert_eq!(query_i64(&url, back).await, 8 - done, "the rest are back in the queue, attempts not counted");
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_scheduled_in_config_runs_at_each_tick_of_its_cron_expression() {
    let mut config = WorkersConfig::default();
    let every_second: orderly_components::workers::PeriodicConfig =
        toml::from_str("cron = \"* * * * * *\"\npayload = { audience = \"staff\" }").unwrap();
    config.periodic.insert("cron_tick".into(), every_second);
    let s = setup(config, Duration::from_secs(5)).await;
    let url = s.server.url();
    eventually(&url, "SELECT least(count(*), 3) FROM orderly_jobs WHERE kind = 'cron_tick' AND status = 'done'", 3)
        .await;
    let on_the_second = "SELECT count(*) FROM orderly_jobs WHERE kind = 'cron_tick'
                         AND (payload->>'slot')::BIGINT % 1000 = 0 AND payload->>'audience' = 'staff'";
    let all = query_i64(&url, "SELECT count(*) FROM orderly_jobs WHERE kind = 'cron_tick'").await;
    assert_eq!(query_i64(&url, on_the_second).await, all, "each tick on a whole second, with the configured payload");
    let distinct =
        query_i64(&url, "SELECT count(DISTINCT payload->>'slot') FROM orderly_jobs WHERE kind = 'cron_tick'").await;
    assert_eq!(distinct, all, "no tick enqueued twice");
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_starts_while_another_holds_the_queue_table() {
    let s = setup(WorkersConfig::default(), Duration::from_secs(5)).await;
    let url = s.server.url();
    // A running replica's transaction that has written to the table and
    // not committed yet (an enqueue in an app's own transaction, a claim).
    let (holder, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    holder
        .batch_execute(
            "BEGIN; INSERT INTO orderly_jobs (queue, kind, payload, max_attempts) VALUES ('other', 'x', '{}', 1)",
        )
        .await
        .unwrap();
    let database =
        DatabaseConfig { url: Secret::new(url.clone()), migrations: String::new(), ..DatabaseConfig::default() };
    let second = Runtime::builder()
        .component(Metrics::default())
        .component(Database::new(database))
        .component(Workers::new(WorkersConfig::default()))
        .build()
        .unwrap();
    // Its schema is current: the new replica must not wait for the strongest
    // lock on the table (it used to, behind every open transaction, and
    // deadlocked with one that wrote next).
    let started = tokio::time::timeout(Duration::from_secs(20), second.start()).await;
    assert!(matches!(started, Ok(Ok(_))), "the second replica did not start: {:?}", started.map(|r| r.map(|_| ())));
    holder.batch_execute("ROLLBACK").await.unwrap();
    assert!(second.shutdown(reason()).await.is_clean());
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_jobs_shows_the_queue_and_the_last_dead_jobs_with_their_errors() {
    let config = WorkersConfig { max_attempts: 1, ..WorkersConfig::default() };
    let s = setup(config, Duration::from_secs(5)).await;
    let url = s.server.url();
    let fails = s.workers.enqueue("fails", serde_json::json!({ "n": 1 })).await.unwrap();
    let later = JobOptions::new().run_in(Duration::from_secs(3600));
    s.workers.enqueue_with("count", serde_json::json!({}), &later).await.unwrap();
    eventually(&url, &format!("SELECT count(*) FROM orderly_jobs WHERE id = {fails} AND status = 'dead'"), 1).await;

    let admin = s.admin.local_addr().expect("the management server is up");
    let client = reqwest::Client::new();
    let page: serde_json::Value =
        client.get(format!("http://{admin}/debug/jobs")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["queue"], "default", "{page}");
    let jobs = page["jobs"].as_array().unwrap();
    assert!(jobs.contains(&serde_json::json!({ "kind": "count", "state": "scheduled", "count": 1 })), "{page}");
    assert!(jobs.contains(&serde_json::json!({ "kind": "fails", "state": "dead", "count": 1 })), "{page}");
    assert_eq!(page["dead"][0]["id"], fails, "{page}");
    assert_eq!(page["dead"][0]["last_error"], "the upstream said no", "{page}");

    let missing = client.get(format!("http://{admin}/debug/nothing-here")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    let missing: serde_json::Value = missing.json().await.unwrap();
    assert_eq!(missing["pages"], serde_json::json!(["jobs"]), "the pages there are: {missing}");
    let lifecycle = client.get(format!("http://{admin}/debug/lifecycle")).send().await.unwrap();
    assert!(lifecycle.json::<serde_json::Value>().await.unwrap()["timeline"].is_array(), "fixed pages still win");
    assert!(s.runtime.shutdown(reason()).await.is_clean());
    s.server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_changes_concurrency_and_attempts_while_jobs_run() {
    let old = WorkersConfig { concurrency: 1, poll_interval: Duration::from_millis(20), ..WorkersConfig::default() };
    let s = setup(old.clone(), Duration::from_secs(5)).await;
    let url = s.server.url();
    for _ in 0..3 {
        s.workers.enqueue("gate", serde_json::json!({})).await.unwrap();
    }
    let running = "SELECT count(*) FROM orderly_jobs WHERE kind = 'gate' AND status = 'running'";
    eventually(&url, running, 1).await;

    let new = WorkersConfig { concurrency: 3, max_attempts: 2, ..old.clone() };
    let change =
        orderly::runtime::ReloadChange::new("workers", Arc::new(Workers::new(new)), Arc::new(Workers::new(old)));
    let report = s.runtime.reload(vec![change]).await;
    assert_eq!(report.applied, ["workers"], "{report:?}");
    eventually(&url, running, 3).await;
    let id = s.workers.enqueue("fails", serde_json::json!({})).await.unwrap();
    let attempts = format!("SELECT max_attempts::BIGINT FROM orderly_jobs WHERE id = {id}");
    assert_eq!(query_i64(&url, &attempts).await, 2, "the new max_attempts is given to new jobs");
    assert!(s.runtime.timeline().of_kind(EventKind::Stopping).is_empty(), "nothing stopped");
    s.gate.add_permits(3);
    eventually(&url, "SELECT count(*) FROM orderly_jobs WHERE kind = 'gate' AND status = 'done'", 3).await;
    assert!(s.runtime.shutdown(reason()).await.is_clean());
}

/// Schedules `kind` every 50 ms and counts its runs: a dependent whose
/// reload restarts it alone, with a new kind.
struct KindTicker {
    kind: &'static str,
    runs: Arc<AtomicUsize>,
}

#[orderly::component]
impl Component for KindTicker {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Workers>()]
    }

    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let workers = ctx.dependency::<Workers>()?;
        workers.handle(self.kind, Counter(self.runs.clone()));
        workers.every(self.kind, Duration::from_millis(50), serde_json::json!({}));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_from_a_dependent_that_restarted_alone_runs() {
    let server = DevDatabase::start().await.expect("a throwaway postgres");
    let database =
        DatabaseConfig { url: Secret::new(server.url()), migrations: String::new(), ..DatabaseConfig::default() };
    let (first, second) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let runtime = Runtime::builder()
        .component(Metrics::default())
        .component(Database::new(database))
        .component(Workers::new(WorkersConfig { poll_interval: Duration::from_millis(20), ..WorkersConfig::default() }))
        .component(KindTicker { kind: "tick_a", runs: first.clone() })
        .build()
        .unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    while first.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Its new config schedules another kind; the workers keep running.
    let change = orderly::runtime::ReloadChange::new(
        "kind_ticker",
        Arc::new(KindTicker { kind: "tick_b", runs: second.clone() }),
        Arc::new(KindTicker { kind: "tick_a", runs: first.clone() }),
    );
    let report = runtime.reload(vec![change]).await;
    assert_eq!(report.restarted, ["kind_ticker"], "{report:?}");
    let ran = async {
        while second.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), ran).await.expect("the new schedule runs");
    assert!(runtime.shutdown(reason()).await.is_clean());
}
