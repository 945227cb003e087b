//! 07: a component that fails while running. `Recommendations` loses its
//! model in a background task; its policy is `OnFailure::Ignore`, so the
//! failure is logged as an event, counted, and the component reported
//! degraded, while `Checkout` goes on. With the default policy
//! (`Shutdown`), the same failure would run the five-phase shutdown and
//! exit 4. Config can override either: `[components.recommendations]
//! on_failure = "shutdown"`.
//!
//! cargo run -p orderly --example 07_failure_policy

use std::time::Duration;

use orderly::{events::EventKind, BoxError, Component, OnFailure, Readiness, Runtime, ShutdownReason, StartContext};

struct Recommendations;

#[orderly::component]
impl Component for Recommendations {
    fn on_failure(&self) -> OnFailure {
        OnFailure::Ignore // the shop sells without recommendations
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err("the recommendation model could not be reloaded".into())
        });
        Ok(())
    }
}

struct Checkout;

#[orderly::component]
impl Component for Checkout {}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = Runtime::builder().component(Recommendations).component(Checkout).build()?;
    runtime.start().await.map_err(|e| format!("{e:?}"))?;
    tokio::time::sleep(Duration::from_millis(200)).await;

    let failed = runtime.timeline().of_kind(EventKind::Failed);
    println!("failed while running: {:?} ({})", failed[0].component, failed[0].error.as_deref().unwrap_or(""));
    let report = runtime.health().readiness(Duration::from_secs(1)).await;
    for (name, readiness) in &report.components {
        println!("{name}: {readiness:?}");
    }
    assert!(report.ready, "degraded is still ready: checkout goes on");
    assert!(report.components.iter().any(|(n, r)| n == "recommendations" && matches!(r, Readiness::Degraded(_))));
    assert_eq!(runtime.shutdown_handle().reason(), None, "no shutdown was requested");

    let shutdown = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    println!("shutdown clean: {}", shutdown.is_clean());
    Ok(())
}
