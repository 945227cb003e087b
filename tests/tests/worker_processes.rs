//! 1,000 durable jobs worked by separate processes sharing one Postgres
//! queue: one is sent SIGTERM midway (it gives its jobs back), a
//! replacement starts, and later another is killed with SIGKILL (its leases
//! expire). Every job completes exactly once; none is lost; no completed
//! job runs again. Once with jobs alone, once with grouped jobs (several
//! to a transaction).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use orderly_components::postgres::DevDatabase;

struct Worker {
    child: Child,
    lines: mpsc::Receiver<String>,
}

fn spawn(url: &str) -> Worker {
    spawn_with(url, &[])
}

fn spawn_with(url: &str, env: &[(&str, &str)]) -> Worker {
    let mut child = Command::new(env!("CARGO_BIN_EXE_worker-child"))
        .env_clear()
        .envs(env.iter().copied())
        .env("APP__DATABASE__URL", url)
        .env("APP__WORKERS__CONCURRENCY", "4")
        .env("APP__WORKERS__LEASE", "1s")
        .env("APP__WORKERS__POLL_INTERVAL", "20ms")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("worker-child");
    let (tx, lines) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Worker { child, lines }
}

impl Worker {
    fn wait_for(&self, msg: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            if serde_json::from_str::<serde_json::Value>(&line).is_ok_and(|v| v["msg"] == msg) {
                return;
            }
            seen.push(line);
        }
        panic!("no `{msg}` from the worker; it wrote:\n{}", seen.join("\n"));
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(self.child.id() as i32, signal) }, 0);
    }

    fn exit_code(&mut self) -> Option<i32> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the worker did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn count(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

async fn wait_until(client: &tokio_postgres::Client, sql: &str, at_least: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while count(client, sql).await < at_least {
        assert!(Instant::now() < deadline, "`{sql}` never reached {at_least}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_job_completes_exactly_once_across_sigterm_and_sigkill() {
    exactly_once_across_sigterm_and_sigkill("record").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_grouped_job_completes_exactly_once_across_sigterm_and_sigkill() {
    exactly_once_across_sigterm_and_sigkill("record_grouped").await;
}

async fn exactly_once_across_sigterm_and_sigkill(kind: &str) {
    let server = DevDatabase::start().await.expect("a throwaway postgres");
    let url = server.url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "CREATE TABLE processed (job_id BIGINT PRIMARY KEY, pid BIGINT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
                                     tx BIGINT NOT NULL DEFAULT txid_current());
             CREATE TABLE runs (job_id BIGINT NOT NULL, pid BIGINT NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp());",
        )
        .await
        .unwrap();

    let first = spawn(&url);
    first.wait_for("workers ready"); // the queue's table exists now
    let mut second = spawn(&url);
    second.wait_for("workers ready");
    client
        .execute(
            "INSERT INTO orderly_jobs (queue, kind, payload, max_attempts)
             SELECT 'default', $1, jsonb_build_object('ms', 5 + g % 20), 5 FROM generate_series(1, 1000) g",
            &[&kind],
        )
        .await
        .unwrap();

    let mut first = first;
    wait_until(&client, "SELECT count(*) FROM processed", 250).await;
    first.signal(libc::SIGTERM);
    assert_eq!(first.exit_code(), Some(0), "SIGTERM mid-work is a clean shutdown");
    let third = spawn(&url);
    third.wait_for("workers ready");

    wait_until(&client, "SELECT count(*) FROM processed", 600).await;
    second.signal(libc::SIGKILL);
    assert_eq!(second.exit_code(), None, "killed by a signal");

    wait_until(&client, "SELECT count(*) FROM orderly_jobs WHERE status = 'done'", 1000).await;
    let mut third = third;
    third.signal(libc::SIGTERM);
    assert_eq!(third.exit_code(), Some(0));

    assert_eq!(count(&client, "SELECT count(*) FROM processed").await, 1000, "every job's effect, once");
    assert_eq!(
        count(&client, "SELECT count(*) FROM orderly_jobs WHERE status <> 'done'").await,
        0,
        "none lost or dead"
    );
    assert_eq!(
        count(&client, "SELECT count(*) FROM runs r JOIN processed p USING (job_id) WHERE r.at > p.at").await,
        0,
        "no completed job ran again"
    );
    assert!(count(&client, "SELECT count(DISTINCT pid) FROM processed").await >= 2, "the processes shared the work");
    let transactions = count(&client, "SELECT count(DISTINCT tx) FROM processed").await;
    if kind == "record_grouped" {
        assert!(transactions <= 500, "grouped jobs shared transactions: {transactions} for 1000 jobs");
    } else {
        assert_eq!(transactions, 1000, "one transaction per job alone");
    }
    let handed_over =
        "SELECT count(*) FROM (SELECT job_id FROM runs GROUP BY job_id HAVING count(DISTINCT pid) > 1) AS h";
    assert!(count(&client, handed_over).await > 0, "the killed process's leased jobs were taken over");
    drop(client);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_periodic_job_runs_once_per_tick_across_replicas_when_one_is_killed() {
    let server = DevDatabase::start().await.expect("a throwaway postgres");
    let url = server.url();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    // Not unique: a tick run twice must show, not fail.
    client.batch_execute("CREATE TABLE ticks (slot BIGINT NOT NULL, pid BIGINT NOT NULL)").await.unwrap();
    let tick = [("TICK_MS", "400")];
    let first = spawn_with(&url, &tick);
    first.wait_for("workers ready");
    let second = spawn_with(&url, &tick);
    second.wait_for("workers ready");

    wait_until(&client, "SELECT count(*) FROM ticks", 5).await;
    wait_until(&client, "SELECT count(DISTINCT pid) FROM ticks", 2).await;
    let before = count(&client, "SELECT count(*) FROM ticks").await;
    first.signal(libc::SIGKILL);
    // At least five more ticks with one replica left (the killed one's
    // claimed tick, if any, runs once its 1 s lease expires).
    wait_until(&client, "SELECT count(*) FROM ticks", before + 5).await;
    let mut second = second;
    second.signal(libc::SIGTERM);
    assert_eq!(second.exit_code(), Some(0));

    let twice =
        count(&client, "SELECT count(*) FROM (SELECT slot FROM ticks GROUP BY slot HAVING count(*) > 1) t").await;
    assert_eq!(twice, 0, "no tick ran twice");
    // Every slot from the first to the last was enqueued and ran: with one
    // replica alive, none is missed (two replicas both late by a whole
    // period would miss one; 400 ms leaves room on a busy machine).
    let (first_slot, last_slot, ticks): (i64, i64, i64) = {
        let row = client.query_one("SELECT min(slot), max(slot), count(*) FROM ticks", &[]).await.unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    let done = "SELECT count(*) FROM orderly_jobs WHERE kind = 'tick' AND status = 'done'";
    assert_eq!(count(&client, done).await, ticks, "every enqueued tick that ran, ran once");
    // A tick is named by its start in Unix ms: 400 ms apart.
    assert_eq!(ticks, (last_slot - first_slot) / 400 + 1, "no tick was missed between {first_slot} and {last_slot}");
    assert_eq!((last_slot - first_slot) % 400, 0, "ticks start on the period's boundaries");
    drop(client);
    server.stop().await.unwrap();
}
