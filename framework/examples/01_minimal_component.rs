//! 01: the smallest useful component — it starts, and it closes in phase 5.
//!
//! cargo run -p orderly --example 01_minimal_component

use orderly::{BoxError, Component, Runtime, ShutdownReason, StartContext, StopContext};

struct Greeter;

#[orderly::component]
impl Component for Greeter {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        println!("{}: started", ctx.name());
        Ok(())
    }

    // Overriding one stop hook joins that phase and no other.
    async fn close(&self, ctx: &StopContext) -> Result<(), BoxError> {
        println!("{}: closing in phase {} ({})", ctx.name(), ctx.phase().number(), ctx.phase());
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = Runtime::builder().component(Greeter).build()?;
    runtime.start().await.map_err(|outcome| format!("{outcome:?}"))?;
    let report = runtime.shutdown(ShutdownReason::Requested { by: "example".into(), reason: "done".into() }).await;
    println!("clean shutdown: {} in {:?}", report.is_clean(), report.elapsed);
    for event in runtime.timeline().events() {
        println!(
            "  {:>9.3} ms  {:<10} {:<18} {}",
            event.at.as_secs_f64() * 1e3,
            event.component.as_deref().unwrap_or("app"),
            event.event,
            event.phase.map(|p| p.as_str()).unwrap_or("")
        );
    }
    Ok(())
}
