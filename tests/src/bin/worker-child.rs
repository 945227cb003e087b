//! A worker process for the multi-process queue test: the standard
//! components (HTTP and management servers off) plus one job handler.
//!
//! Job kind `record`: logs its start in `runs` (autocommit, so interrupted
//! runs are visible), sleeps `payload.ms`, then writes `processed` in the
//! job's transaction, which commits with the job's completion. Kind
//! `record_grouped`: the same handler, registered with `handle_grouped`
//! (several jobs to a transaction). With `TICK_MS` set, a periodic `tick`
//! job every that many milliseconds, which writes its slot and the
//! process's pid into `ticks` in the job's transaction.

use std::time::Duration;

use orderly::{BoxError, Component, Dependency, StartContext};
use orderly_components::postgres::Database;
use orderly_components::workers::{Job, JobContext, JobHandler, Workers};

struct Record {
    database: std::sync::Arc<Database>,
}

#[orderly::async_trait]
impl JobHandler for Record {
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        let pid = std::process::id() as i64;
        self.database.get().await?.execute("INSERT INTO runs (job_id, pid) VALUES ($1, $2)", &[&job.id, &pid]).await?;
        let ms = job.payload["ms"].as_u64().unwrap_or(10);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        let tx = ctx.transaction().ok_or("a durable job")?;
        tx.execute("INSERT INTO processed (job_id, pid) VALUES ($1, $2)", &[&job.id, &pid]).await?;
        Ok(())
    }
}

/// Writes its slot, once per run, in the job's transaction.
struct Tick;

#[orderly::async_trait]
impl JobHandler for Tick {
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        let slot = job.payload["slot"].as_i64().ok_or("a periodic job carries its slot")?;
        let tx = ctx.transaction().ok_or("a durable job")?;
        tx.execute("INSERT INTO ticks (slot, pid) VALUES ($1, $2)", &[&slot, &(std::process::id() as i64)]).await?;
        Ok(())
    }
}

#[derive(Default)]
struct RecordJobs;

#[orderly::component]
impl Component for RecordJobs {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Workers>(), Dependency::on::<Database>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let database = ctx.dependency::<Database>()?;
        let workers = ctx.dependency::<Workers>()?;
        workers.handle("record", Record { database: database.clone() });
        workers.handle_grouped("record_grouped", Record { database });
        if let Some(ms) = std::env::var("TICK_MS").ok().and_then(|v| v.parse::<u64>().ok()) {
            workers.handle("tick", Tick);
            workers.every("tick", Duration::from_millis(ms), serde_json::json!({}));
        }
        Ok(())
    }
}

const CONFIG: &str = r#"
[components.http]
enabled = false
[components.admin]
enabled = false
[database]
migrations = ""
[log]
format = "json"
"#;

fn main() -> std::process::ExitCode {
    orderly::app::App::new(orderly::app_info!(), orderly::link![orderly_components])
        .embedded_config(CONFIG)
        .component(RecordJobs)
        .run()
}
