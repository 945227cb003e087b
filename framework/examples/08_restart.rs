//! 08: restarting a failed component along the graph. `Broker`'s connection
//! loop drops twice; it is `Restart::Transient`, so each time the runtime
//! stops its dependent `Orders` (through its stop phases), then `Broker`,
//! backs off, starts `Broker` and, once it is ready, `Orders` again.
//! `Search`, which depends on neither, keeps serving. With `max_restarts =
//! 2` a third failure within the period would end the app with exit code 5.
//! Config can set the same: `[components.broker] restart = "transient"`,
//! `max_restarts = 2`, `restart_period = "10s"`, `restart_backoff = "100ms"`.
//!
//! cargo run -p orderly --example 08_restart

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orderly::{
    events::EventKind, settings::ComponentOverrides, settings::RuntimeSettings, BoxError, Component, Dependency,
    Restart, Runtime, ShutdownReason, StartContext, StopContext,
};

/// A connection whose read loop drops on its first two runs.
#[derive(Default)]
struct Broker {
    runs: Arc<AtomicU32>,
}

#[orderly::component]
impl Component for Broker {
    fn restart(&self) -> Restart {
        Restart::Transient // restarted after a failure, within its limit
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let run = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        slog::info!(ctx.logger(), "connected"; "run" => run);
        ctx.spawn(async move {
            tokio::time::sleep(Duration::from_millis(30)).await;
            if run <= 2 {
                return Err(format!("connection reset by peer (run {run})").into());
            }
            std::future::pending().await // the third connection holds
        });
        Ok(())
    }

    async fn close(&self, _ctx: &StopContext) -> Result<(), BoxError> {
        Ok(()) // close the connection
    }
}

/// Consumes from the broker: stopped before it, started after it.
struct Orders;

#[orderly::component]
impl Component for Orders {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Broker>()]
    }

    fn restartable(&self) -> bool {
        true // its start may run again when the broker restarts
    }

    async fn stop_workers(&self, _ctx: &StopContext) -> Result<(), BoxError> {
        Ok(()) // stop consuming
    }
}

struct Search;

#[orderly::component]
impl Component for Search {}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut settings = RuntimeSettings::default();
    settings.components.insert(
        "broker".into(),
        ComponentOverrides {
            max_restarts: Some(2),
            restart_backoff: Some(Duration::from_millis(20)),
            ..Default::default()
        },
    );
    let runtime = Runtime::builder()
        .component(Broker::default())
        .component(Orders)
        .component(Search)
        .settings(settings)
        .build()?;
    runtime.start().await.map_err(|e| format!("{e:?}"))?;

    for _ in 0..500 {
        if runtime.timeline().of_kind(EventKind::Restarted).len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for event in runtime.timeline().events() {
        if matches!(event.event, EventKind::Restarting | EventKind::Restarted | EventKind::Stopped | EventKind::Started)
        {
            let what = event.error.as_deref().or(event.detail.as_deref()).unwrap_or("");
            println!(
                "{:>8.1} ms  {:<12} {:<10} {what}",
                event.at.as_secs_f64() * 1e3,
                event.event.as_str(),
                event.component.as_deref().unwrap_or("app")
            );
        }
    }
    assert_eq!(runtime.timeline().of_kind(EventKind::Restarted).len(), 2, "two restarts, then it holds");
    assert!(runtime.health().readiness(Duration::from_secs(1)).await.ready);
    assert_eq!(runtime.shutdown_handle().reason(), None, "the app never went down");

    let shutdown = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    println!("shutdown clean: {}", shutdown.is_clean());
    Ok(())
}
