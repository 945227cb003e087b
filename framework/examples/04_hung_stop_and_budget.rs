//! 04: a hung stop hook. `Exporter` never finishes its flush; it is
//! abandoned at its 200 ms cap and named, and phase 5 still closes the
//! database. The whole shutdown stays inside its deadline.
//!
//! cargo run -p orderly --example 04_hung_stop_and_budget

use std::time::Duration;

use orderly::{
    settings::PhaseBudgets, settings::ShutdownSettings, BoxError, Component, Runtime, ShutdownReason, StopContext,
};

struct Exporter;

#[orderly::component]
impl Component for Exporter {
    async fn flush(&self, ctx: &StopContext) -> Result<(), BoxError> {
        println!(
            "exporter: flushing; I will be abandoned at {:?} from now",
            ctx.deadline() - std::time::Instant::now()
        );
        std::future::pending().await // a collector that never answers
    }
}

struct Database;

#[orderly::component]
impl Component for Database {
    async fn close(&self, _: &StopContext) -> Result<(), BoxError> {
        println!("database: closed in phase 5 despite the hung exporter");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let budgets = ShutdownSettings {
        deadline: Duration::from_secs(5),
        component_cap: Some(Duration::from_millis(200)),
        phases: PhaseBudgets::uniform(Duration::from_secs(1)),
        ..ShutdownSettings::default()
    };
    let runtime = Runtime::builder().component(Exporter).component(Database).shutdown_settings(budgets).build()?;
    runtime.start().await.map_err(|outcome| format!("{outcome:?}"))?;
    let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    for problem in &report.problems {
        println!("problem: {problem}");
    }
    println!("shutdown took {:?}; clean: {}", report.elapsed, report.is_clean());
    Ok(())
}
