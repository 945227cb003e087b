//! Grouped and scheduled durable jobs on a private dev database: a kind
//! whose effects are all in its transaction runs several jobs to a
//! transaction (`handle_grouped`), and a job comes every second from a
//! cron expression in config (`[workers.periodic.<kind>]`).
//! Needs PostgreSQL's server binaries (Debian: `apt-get install postgresql`).
//!
//! `cargo run -p orderly-components --example 04_grouped_and_scheduled_jobs`

use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Component, Dependency, Runtime, ShutdownReason, StartContext};
use orderly_components::metrics::Metrics;
use orderly_components::postgres::{Database, DatabaseConfig};
use orderly_components::workers::{Job, JobContext, JobHandler, PeriodicConfig, Workers, WorkersConfig};

/// Writes the job and its transaction's id: grouped jobs share one.
struct Note;

#[orderly::async_trait]
impl JobHandler for Note {
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        let tx = ctx.transaction().ok_or("a durable job")?;
        tx.execute("INSERT INTO notes (job_id, kind, tx) VALUES ($1, $2, txid_current())", &[&job.id, &job.kind])
            .await?;
        Ok(())
    }
}

/// Creates its table and registers the handlers.
struct Notes;

#[orderly::component]
impl Component for Notes {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Workers>(), Dependency::on::<Database>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let db = ctx.dependency::<Database>()?;
        db.get()
            .await?
            .batch_execute("CREATE TABLE IF NOT EXISTS notes (job_id BIGINT PRIMARY KEY, kind TEXT, tx BIGINT)")
            .await?;
        let workers = ctx.dependency::<Workers>()?;
        workers.handle_grouped("note", Note);
        workers.handle("tick", Note);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let database = Arc::new(Database::new(DatabaseConfig { migrations: String::new(), ..DatabaseConfig::default() }));
    let mut config = WorkersConfig { poll_interval: Duration::from_millis(20), ..WorkersConfig::default() };
    // As `[workers.periodic.tick]` with `cron = "* * * * * *"` would say in a file.
    config.periodic.insert("tick".into(), PeriodicConfig { cron: Some("* * * * * *".into()), ..Default::default() });
    let workers = Arc::new(Workers::new(config));
    let runtime = Runtime::builder()
        .component(Metrics::default())
        .component_arc(database.clone())
        .component_arc(workers.clone())
        .component(Notes)
        .build()?;
    runtime.start().await.map_err(|e| format!("{e:?}"))?;

    // Enqueued in one statement, so one claim finds them all and groups them.
    let client = database.get().await?;
    client
        .execute(
            "INSERT INTO orderly_jobs (queue, kind, payload, max_attempts)
             SELECT 'default', 'note', '{}'::jsonb, 5 FROM generate_series(1, 40)",
            &[],
        )
        .await?;
    let count = |sql: &'static str| {
        let client = &client;
        async move { client.query_one(sql, &[]).await.map(|row| row.get::<_, i64>(0)) }
    };
    while count("SELECT count(*) FROM notes WHERE kind = 'note'").await? < 40
        || count("SELECT count(*) FROM notes WHERE kind = 'tick'").await? < 3
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let transactions = count("SELECT count(DISTINCT tx) FROM notes WHERE kind = 'note'").await?;
    println!("40 grouped jobs done in {transactions} transactions");
    for row in client.query("SELECT job_id, payload->>'slot' FROM notes JOIN orderly_jobs ON id = job_id WHERE notes.kind = 'tick' ORDER BY job_id", &[]).await? {
        println!("tick job {} for the second starting at {} ms", row.get::<_, i64>(0), row.get::<_, Option<String>>(1).unwrap_or_default());
    }
    drop(client);

    let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    println!("shutdown clean: {} (the dev database is stopped and removed)", report.is_clean());
    Ok(())
}
