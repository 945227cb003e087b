//! A background worker: every `interval` it persists the visit log, so a
//! crash loses at most one interval of visits. It joins phase 3: the loop is
//! told to stop, and the iteration in progress finishes first.

use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Component, Dependency, FromConfig, StartContext, StopContext, Validate, Validation};
use parking_lot::Mutex;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::visit_log::{VisitBook, VisitLog};

/// `[housekeeper]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HousekeeperConfig {
    /// How often to persist the visit log.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
}

impl Default for HousekeeperConfig {
    fn default() -> Self {
        Self { interval: Duration::from_secs(5) }
    }
}

impl Validate for HousekeeperConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(self.interval >= Duration::from_millis(10), "interval", "must be at least 10ms");
    }
}

/// The worker component.
pub struct Housekeeper {
    interval: Duration,
    worker: Mutex<Option<(watch::Sender<bool>, JoinHandle<()>)>>,
}

#[orderly::component]
impl Component for Housekeeper {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<VisitLog>()]
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let book: Arc<VisitBook> = ctx.resource::<VisitBook>()?;
        let (stop, mut stopped) = watch::channel(false);
        let interval = self.interval;
        let logger = ctx.logger().clone();
        let handle = ctx.spawn(async move {
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stopped.changed() => return Ok(()),
                    _ = ticks.tick() => {}
                }
                // A failed write keeps the visits buffered; the next tick or the
                // final flush retries, so this is worth a warning, not a crash.
                match book.persist().await {
                    Ok(0) => {}
                    Ok(n) => slog::debug!(logger, "persisted visits"; "visits" => n),
                    Err(e) => slog::warn!(logger, "persisting visits failed; will retry"; "error" => e.to_string()),
                }
            }
        });
        *self.worker.lock() = Some((stop, handle));
        Ok(())
    }

    async fn stop_workers(&self, _ctx: &StopContext) -> Result<(), BoxError> {
        let worker = self.worker.lock().take();
        if let Some((stop, handle)) = worker {
            let _ = stop.send(true);
            handle.await.map_err(|e| format!("the housekeeping loop ended badly: {e}"))?;
        }
        Ok(())
    }
}

impl FromConfig for Housekeeper {
    type Config = HousekeeperConfig;

    fn from_config(config: HousekeeperConfig) -> Result<Self, BoxError> {
        Ok(Housekeeper { interval: config.interval, worker: Mutex::new(None) })
    }
}

orderly::register!(Housekeeper);
