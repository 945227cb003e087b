//! 02: dependencies. `Api` declares `Database` by type, gets it and the pool
//! it provides as typed handles, starts after it is ready, and stops before
//! it in every phase. `Metrics` is independent and starts concurrently.
//!
//! cargo run -p orderly --example 02_dependencies

use std::sync::Arc;

use orderly::{
    graph::GraphFormat, BoxError, Component, Dependency, Runtime, ShutdownReason, StartContext, StopContext,
};

/// What the database component hands to its dependents.
struct Pool {
    url: String,
}

struct Database;

#[orderly::component]
impl Component for Database {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.provide(Arc::new(Pool { url: "postgres://localhost/app".into() }));
        Ok(())
    }
    async fn close(&self, _: &StopContext) -> Result<(), BoxError> {
        println!("database: pool closed (phase 5)");
        Ok(())
    }
}

struct Api;

#[orderly::component]
impl Component for Api {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Database>()]
    }
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let pool: Arc<Pool> = ctx.resource::<Pool>()?;
        let _db: Arc<Database> = ctx.dependency::<Database>()?;
        println!("api: started with a pool for {}", pool.url);
        Ok(())
    }
    async fn drain(&self, _: &StopContext) -> Result<(), BoxError> {
        println!("api: drained (phase 2)");
        Ok(())
    }
    async fn close(&self, _: &StopContext) -> Result<(), BoxError> {
        println!("api: closed before the database it depends on (phase 5)");
        Ok(())
    }
}

struct Metrics;

#[orderly::component]
impl Component for Metrics {
    async fn flush(&self, _: &StopContext) -> Result<(), BoxError> {
        println!("metrics: flushed after every producer stopped (phase 4)");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = Runtime::builder().component(Api).component(Database).component(Metrics).build()?;
    println!("{}", runtime.render_graph(GraphFormat::Mermaid));
    runtime.start().await.map_err(|outcome| format!("{outcome:?}"))?;
    let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    println!("clean: {}", report.is_clean());
    Ok(())
}
