//! Durable jobs on a private dev database: enqueue, a worker runs them and
//! writes their effect in the job's own transaction, then a clean stop.
//! Needs PostgreSQL's server binaries (Debian: `apt-get install postgresql`).
//!
//! `cargo run -p orderly-components --example 02_durable_jobs`

use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Component, Dependency, Runtime, ShutdownReason, StartContext};
use orderly_components::metrics::Metrics;
use orderly_components::postgres::{Database, DatabaseConfig};
use orderly_components::workers::{Job, JobContext, JobHandler, Workers, WorkersConfig};

struct Welcome;

#[orderly::async_trait]
impl JobHandler for Welcome {
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        let tx = ctx.transaction().ok_or("a durable job")?;
        let name = job.payload["name"].as_str().unwrap_or("stranger");
        tx.execute("INSERT INTO welcomed (job_id, name) VALUES ($1, $2)", &[&job.id, &name]).await?;
        Ok(())
    }
}

/// Creates its table and registers its handler.
struct Welcomes;

#[orderly::component]
impl Component for Welcomes {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Workers>(), Dependency::on::<Database>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let db = ctx.dependency::<Database>()?;
        db.get()
            .await?
            .batch_execute("CREATE TABLE IF NOT EXISTS welcomed (job_id BIGINT PRIMARY KEY, name TEXT)")
            .await?;
        ctx.dependency::<Workers>()?.handle("welcome", Welcome);
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let database = Arc::new(Database::new(DatabaseConfig { migrations: String::new(), ..DatabaseConfig::default() }));
    let workers =
        Arc::new(Workers::new(WorkersConfig { poll_interval: Duration::from_millis(20), ..WorkersConfig::default() }));
    let runtime = Runtime::builder()
        .component(Metrics::default())
        .component_arc(database.clone())
        .component_arc(workers.clone())
        .component(Welcomes)
        .build()?;
    runtime.start().await.map_err(|e| format!("{e:?}"))?;
    println!("dev database on port {:?}", database.dev_database_port().await);

    for name in ["Ada", "Grace", "Barbara"] {
        let id = workers.enqueue("welcome", serde_json::json!({ "name": name })).await?;
        println!("enqueued job {id} for {name}");
    }
    let client = database.get().await?;
    while client.query_one("SELECT count(*) FROM welcomed", &[]).await?.get::<_, i64>(0) < 3 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for row in client.query("SELECT job_id, name FROM welcomed ORDER BY job_id", &[]).await? {
        println!("job {} welcomed {}", row.get::<_, i64>(0), row.get::<_, String>(1));
    }
    drop(client);

    let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    println!("shutdown clean: {} (the dev database is stopped and removed)", report.is_clean());
    Ok(())
}
