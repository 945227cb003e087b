//! Process-level Postgres benches, each against a throwaway Postgres:
//!
//! - durable queue throughput: jobs/s with 1 and 2 `queue-worker`
//!   processes (4 concurrent jobs each; then again with the job kind
//!   grouped, up to 16 jobs a transaction), against a hand-written floor — the
//!   same claim/complete SQL in a loop of 4 tasks per process, with no
//!   framework, no leases renewed, no metrics;
//! - pool checkout latency under contention: `Database::get` + `SELECT 1`
//!   from 1, 4 and 16 tasks on a pool of 4 connections;
//! - wake-up latency: an idle `queue-worker` (polling every 250 ms, the
//!   default), jobs enqueued one at a time, from the enqueue's commit to
//!   the job done: with `enqueue` (which notifies) against a plain
//!   `INSERT` (found by the poll alone).
//!
//! `cargo build --release -p orderly-benches --bins && target/release/db-harness [--jobs N] [--rounds N] [--graphile DIR] [--only queue]`
//!
//! With `--graphile benches/graphile` (after `npm install graphile-worker@0.17`
//! there), Graphile Worker runs the same jobs on the same Postgres in each
//! round, its fastest setting (local queue, batched completion) and its
//! plain one, with 1 and 2 processes; rounds alternate the contenders.
//! `--only queue` skips the pool and wake-up measurements.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderly::{config::Secret, Runtime, ShutdownReason};
use orderly_components::postgres::{Database, DatabaseConfig, DevDatabase};

async fn client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("connect");
    tokio::spawn(connection);
    client
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.expect("count").get(0)
}

fn spawn_worker(url: &str, grouped: bool, noop: bool) -> Child {
    let me = std::env::current_exe().expect("own path");
    Command::new(me.with_file_name("queue-worker"))
        .env("BENCH_GROUPED", if grouped { "1" } else { "0" })
        .env("BENCH_NOOP", if noop { "1" } else { "0" })
        .env("APP__DATABASE__URL", url)
        .env("APP__DATABASE__POOL_SIZE", "8")
        .env("APP__WORKERS__CONCURRENCY", "4")
        .env("APP__WORKERS__POLL_INTERVAL", "5ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("queue-worker")
}

async fn enqueue(client: &tokio_postgres::Client, jobs: i64) {
    client
        .execute(
            "INSERT INTO orderly_jobs (queue, kind, payload, max_attempts)
             SELECT 'default', 'touch', '{}'::jsonb, 5 FROM generate_series(1, $1::BIGINT)",
            &[&jobs],
        )
        .await
        .expect("enqueue");
}

async fn reset(client: &tokio_postgres::Client) {
    client.batch_execute("TRUNCATE orderly_jobs; TRUNCATE touched;").await.expect("truncate");
}

/// Jobs/s with `processes` worker processes.
async fn orderly_throughput(url: &str, processes: usize, jobs: i64, grouped: bool, noop: bool) -> f64 {
    let client = client(url).await;
    reset(&client).await;
    let mut workers: Vec<Child> = (0..processes).map(|_| spawn_worker(url, grouped, noop)).collect();
    // Let them start (they poll every 5 ms once up).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let started = Instant::now();
    enqueue(&client, jobs).await;
    while count(&client, "SELECT count(*) FROM orderly_jobs WHERE status = 'done'").await < jobs {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = jobs as f64 / started.elapsed().as_secs_f64();
    for worker in &mut workers {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) };
        let _ = worker.wait();
    }
    let written = if noop { 0 } else { jobs };
    assert_eq!(count(&client, "SELECT count(*) FROM touched").await, written);
    rate
}

/// The floor: `tasks` loops, each claiming one job with the same SQL,
/// writing the row and completing it in one transaction.
async fn floor_throughput(url: &str, tasks: usize, jobs: i64) -> f64 {
    let setup = client(url).await;
    reset(&setup).await;
    enqueue(&setup, jobs).await;
    let started = Instant::now();
    let loops: Vec<_> = (0..tasks)
        .map(|_| {
            let url = url.to_owned();
            tokio::spawn(async move {
                let mut client = client(&url).await;
                loop {
                    let claimed = client
                        .query_opt(
                            "UPDATE orderly_jobs SET status = 'running', attempts = attempts + 1,
                                    lease_until = now() + interval '30 seconds', lease_owner = 'floor'
                             WHERE id IN (SELECT id FROM orderly_jobs WHERE queue = 'default' AND status = 'ready'
                                          ORDER BY run_after, id FOR UPDATE SKIP LOCKED LIMIT 1)
                             RETURNING id",
                            &[],
                        )
                        .await
                        .expect("claim");
                    let Some(row) = claimed else { return };
                    let id: i64 = row.get(0);
                    let tx = client.transaction().await.expect("tx");
                    tx.execute("INSERT INTO touched (job_id) VALUES ($1)", &[&id]).await.expect("touch");
                    tx.execute("UPDATE orderly_jobs SET status = 'done', finished_at = now() WHERE id = $1", &[&id])
                        .await
                        .expect("done");
                    tx.commit().await.expect("commit");
                }
            })
        })
        .collect();
    for l in loops {
        l.await.expect("floor task");
    }
    jobs as f64 / started.elapsed().as_secs_f64()
}

/// Graphile Worker's jobs/s on the same job (`benches/graphile/bench.js`).
fn graphile_throughput(dir: &str, url: &str, jobs: i64, mode: &str, processes: usize) -> f64 {
    let output = Command::new("node")
        .current_dir(dir)
        .args(["bench.js", url, &jobs.to_string(), mode, &processes.to_string()])
        .output()
        .expect("node (Node 20) and `npm install graphile-worker@0.17` in the Graphile folder");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "graphile bench failed: {text}{}", String::from_utf8_lossy(&output.stderr));
    text.rsplit("= ")
        .next()
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no jobs/s in: {text}"))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

async fn checkout_latency(url: &str) {
    println!("## Pool checkout latency: Database::get + SELECT 1, pool of 4, 2,000 calls per run");
    let config = DatabaseConfig {
        url: Secret::new(url.to_owned()),
        pool_size: 4,
        wait_timeout: Duration::from_secs(10),
        migrations: String::new(),
        ..DatabaseConfig::default()
    };
    let db = Arc::new(Database::new(config));
    let runtime = Runtime::builder().component_arc(db.clone()).build().expect("runtime");
    runtime.start().await.map_err(|e| format!("{e:?}")).expect("start");
    for tasks in [1usize, 4, 16] {
        let per_task = 2_000 / tasks;
        let runs: Vec<_> = (0..tasks)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move {
                    let mut checkout = Vec::with_capacity(per_task);
                    for _ in 0..per_task {
                        let t0 = Instant::now();
                        let client = db.get().await.expect("checkout");
                        checkout.push(t0.elapsed());
                        client.query_one("SELECT 1", &[]).await.expect("select");
                    }
                    checkout
                })
            })
            .collect();
        let mut all = Vec::new();
        for run in runs {
            all.extend(run.await.expect("task"));
        }
        all.sort();
        println!(
            "{tasks:>3} tasks: checkout p50 {:>8.1} µs   p99 {:>8.1} µs   max {:>8.1} µs",
            percentile(&all, 0.5).as_secs_f64() * 1e6,
            percentile(&all, 0.99).as_secs_f64() * 1e6,
            all.last().map_or(0.0, |d| d.as_secs_f64() * 1e6)
        );
    }
    runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    println!();
}

/// Enqueue-to-done latency of jobs enqueued one at a time to an idle worker.
async fn wake_latency(url: &str) {
    let client = client(url).await;
    reset(&client).await;
    let mut worker = Command::new(std::env::current_exe().expect("own path").with_file_name("queue-worker"))
        .env("APP__DATABASE__URL", url)
        .env("APP__WORKERS__CONCURRENCY", "4")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("queue-worker");
    tokio::time::sleep(Duration::from_secs(2)).await; // started and idle
                                                      // `enqueue` takes a pool's client (or a transaction), as an app's code has.
    let config: tokio_postgres::Config = url.parse().expect("url");
    let pool = deadpool_postgres::Pool::builder(deadpool_postgres::Manager::new(config, tokio_postgres::NoTls))
        .max_size(1)
        .build()
        .expect("pool");
    let pooled = pool.get().await.expect("a connection");
    println!("## Wake-up latency: an idle worker (poll 250 ms), 100 jobs enqueued 30 ms apart, enqueue commit to done");
    for (how, notify) in [("enqueue (NOTIFY)", true), ("plain INSERT (poll only)", false)] {
        reset(&client).await;
        for _ in 0..100 {
            if notify {
                orderly_components::workers::enqueue(&pooled, "default", "touch", &serde_json::json!({}), 5)
                    .await
                    .expect("enqueue");
            } else {
                enqueue(&client, 1).await;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        while count(&client, "SELECT count(*) FROM orderly_jobs WHERE status = 'done'").await < 100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let rows = client
            .query(
                "SELECT EXTRACT(EPOCH FROM (finished_at - created_at))::float8 * 1000 FROM orderly_jobs ORDER BY 1",
                &[],
            )
            .await
            .expect("latencies");
        let ms: Vec<f64> = rows.iter().map(|r| r.get(0)).collect();
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        println!(
            "{how:>26}: mean {mean:6.1} ms   p50 {:6.1} ms   p99 {:6.1} ms   max {:6.1} ms",
            at(0.5),
            at(0.99),
            at(1.0)
        );
    }
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    unsafe { libc::kill(worker.id() as i32, libc::SIGTERM) };
    let _ = worker.wait();
    println!();
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let jobs: i64 = args
        .iter()
        .position(|a| a == "--jobs")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    let server = DevDatabase::start().await.expect("postgres binaries (see RECIPES)");
    let url = server.url();
    let setup = client(&url).await;
    setup.batch_execute("CREATE TABLE touched (job_id BIGINT PRIMARY KEY)").await.expect("schema");
    // Let one worker create the queue's table, then measure.
    let mut first = spawn_worker(&url, false, false);
    while !setup
        .query_one("SELECT to_regclass('orderly_jobs') IS NOT NULL", &[])
        .await
        .expect("regclass")
        .get::<_, bool>(0)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let _ = first.wait();

    let option = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let rounds: usize = option("--rounds").and_then(|v| v.parse().ok()).unwrap_or(1);
    let graphile = option("--graphile");
    println!("## Durable queue throughput: {jobs} jobs, 4 concurrent jobs per process, one row written per job");
    for round in 1..=rounds {
        for processes in [1usize, 2] {
            let floor = floor_throughput(&url, 4 * processes, jobs).await;
            let orderly = orderly_throughput(&url, processes, jobs, false, false).await;
            let grouped = orderly_throughput(&url, processes, jobs, true, false).await;
            let mut line = format!(
                "round {round}, {processes} process(es): orderly {orderly:>6.0}   grouped {grouped:>6.0}   floor ({} tasks) {floor:>6.0}",
                4 * processes
            );
            if let Some(dir) = &graphile {
                let batched = graphile_throughput(dir, &url, jobs, "batched", processes);
                let plain = graphile_throughput(dir, &url, jobs, "plain", processes);
                line.push_str(&format!(
                    "   graphile batched {batched:>6.0}   graphile plain {plain:>6.0}   grouped/graphile-best {:.2}x",
                    grouped / batched.max(plain)
                ));
            }
            println!("{line}   (jobs/s)");
        }
    }
    println!();
    println!("## The same with no-op jobs (nothing written: the queue's own cost)");
    for round in 1..=rounds {
        for processes in [1usize, 2] {
            let orderly = orderly_throughput(&url, processes, jobs, false, true).await;
            let grouped = orderly_throughput(&url, processes, jobs, true, true).await;
            let mut line =
                format!("round {round}, {processes} process(es): orderly {orderly:>6.0}   grouped {grouped:>6.0}");
            if let Some(dir) = &graphile {
                let batched = graphile_throughput(dir, &url, jobs, "batched-noop", processes);
                line.push_str(&format!(
                    "   graphile batched {batched:>6.0}   grouped/graphile {:.2}x",
                    grouped / batched
                ));
            }
            println!("{line}   (jobs/s)");
        }
    }
    println!();
    if option("--only").as_deref() == Some("queue") {
        drop(setup);
        server.stop().await.expect("stop");
        return;
    }
    checkout_latency(&url).await;
    wake_latency(&url).await;
    drop(setup);
    server.stop().await.expect("stop");
}
