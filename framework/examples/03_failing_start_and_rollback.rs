//! 03: a failing start. `Cache` starts, `Queue` fails; the runtime stops
//! `Cache` again (and only it), then reports the root cause — the queue's
//! own error, never "cancelled".
//!
//! cargo run -p orderly --example 03_failing_start_and_rollback

use orderly::{runtime::StartError, BoxError, Component, Dependency, Runtime, StartContext, StopContext};

struct Cache;

#[orderly::component]
impl Component for Cache {
    async fn close(&self, _: &StopContext) -> Result<(), BoxError> {
        println!("cache: closed by the rollback");
        Ok(())
    }
}

struct Queue;

#[orderly::component]
impl Component for Queue {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Cache>()]
    }
    async fn start(&self, _: &StartContext) -> Result<(), BoxError> {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        Err(format!("connecting to the broker at 127.0.0.1:5672: {refused}").into())
    }
    async fn close(&self, _: &StopContext) -> Result<(), BoxError> {
        unreachable!("a component that never started is never stopped")
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = Runtime::builder().component(Cache).component(Queue).build()?;
    let Err(outcome) = runtime.start().await else { return Err("the start should have failed".into()) };
    if let StartError::Failed { failure, rollback } = *outcome {
        println!("start failed: {failure}");
        println!("rollback clean: {}", rollback.is_clean());
    }
    for event in runtime.timeline().of_kind(orderly::events::EventKind::RolledBack) {
        println!("rolled back: {}", event.component.as_deref().unwrap_or("?"));
    }
    Ok(())
}
