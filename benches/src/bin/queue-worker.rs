//! A worker process for the queue bench: the standard components (HTTP and
//! management servers off) and a `touch` job that writes one row in the
//! job's transaction. With `BENCH_GROUPED=1`, `touch` is registered with
//! `handle_grouped` (its only effect is in the transaction); with
//! `BENCH_NOOP=1` it does nothing (the queue's own cost alone).

use orderly::{BoxError, Component, Dependency, StartContext};
use orderly_components::workers::{Job, JobContext, JobHandler, Workers};

struct Touch {
    noop: bool,
}

#[orderly::async_trait]
impl JobHandler for Touch {
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        if self.noop {
            return Ok(());
        }
        let tx = ctx.transaction().ok_or("a durable job")?;
        tx.execute("INSERT INTO touched (job_id) VALUES ($1)", &[&job.id]).await?;
        Ok(())
    }
}

#[derive(Default)]
struct TouchJobs;

#[orderly::component]
impl Component for TouchJobs {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Workers>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let workers = ctx.dependency::<Workers>()?;
        let touch = Touch { noop: std::env::var("BENCH_NOOP").is_ok_and(|v| v == "1") };
        if std::env::var("BENCH_GROUPED").is_ok_and(|v| v == "1") {
            workers.handle_grouped("touch", touch);
        } else {
            workers.handle("touch", touch);
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
level = "warning"
"#;

fn main() -> std::process::ExitCode {
    orderly::app::App::new(orderly::app_info!(), orderly::link![orderly_components])
        .embedded_config(CONFIG)
        .component(TouchJobs)
        .run()
}
