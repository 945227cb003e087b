//! Components for the child-process tests: a small service whose stop
//! hooks print what they do, plus misbehaving components that tests switch
//! on through config (`APP__COMPONENTS__<NAME>__ENABLED=true`).

use std::time::Duration;

use orderly::{
    async_trait, config::FromConfig, config::Secret, config::Validate, config::Validation, BoxError, Component,
    Dependency, StartContext, StopContext,
};
use serde::Deserialize;

/// Prints one line that the parent test reads, bypassing the log drain.
fn mark(component: &str, what: &str) {
    println!("MARK {component} {what}");
}

/// Config of [`Api`].
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// How long the drain takes, in milliseconds.
    pub drain_ms: u64,
    /// How long `start` takes, in milliseconds (a slow startup).
    pub start_ms: u64,
}

impl Validate for ApiConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(self.drain_ms <= 60_000, "drain_ms", "must be at most 60000");
        v.check(self.start_ms <= 60_000, "start_ms", "must be at most 60000");
    }
}

/// Stands in for a server: joins phases 1 and 2, depends on [`Store`].
pub struct Api {
    drain: Duration,
    start: Duration,
}

#[async_trait]
impl Component for Api {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Store>()]
    }
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.dependency::<Store>()?;
        tokio::time::sleep(self.start).await;
        Ok(())
    }
    async fn stop_accepting(&self, _: &StopContext) -> Result<(), BoxError> {
        mark("api", "stop_accepting");
        Ok(())
    }
    async fn drain(&self, _: &StopContext) -> Result<(), BoxError> {
        tokio::time::sleep(self.drain).await;
        mark("api", "drain");
        Ok(())
    }
}

impl FromConfig for Api {
    type Config = ApiConfig;
    fn from_config(config: ApiConfig) -> Result<Self, BoxError> {
        Ok(Api { drain: Duration::from_millis(config.drain_ms), start: Duration::from_millis(config.start_ms) })
    }
}
orderly::register!(Api);

/// Config of [`Store`].
#[derive(Debug, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// A connection URL with a password in it.
    pub url: Secret<String>,
}

impl Validate for StoreConfig {}

/// Stands in for a connection pool: joins phases 4 and 5.
pub struct Store;

#[async_trait]
impl Component for Store {
    async fn flush(&self, ctx: &StopContext) -> Result<(), BoxError> {
        slog::info!(ctx.logger(), "store flushed"; "rows" => 3);
        mark("store", "flush");
        Ok(())
    }
    async fn close(&self, _: &StopContext) -> Result<(), BoxError> {
        mark("store", "close");
        Ok(())
    }
}

impl FromConfig for Store {
    type Config = StoreConfig;
    fn from_config(_: StoreConfig) -> Result<Self, BoxError> {
        Ok(Store)
    }
}
orderly::register!(Store);

/// Leaves a blocking thread and a task running forever (off by default).
#[derive(Default)]
pub struct Stray;

#[async_trait]
impl Component for Stray {
    async fn start(&self, _: &StartContext) -> Result<(), BoxError> {
        tokio::task::spawn_blocking(|| loop {
            std::thread::sleep(Duration::from_secs(3600));
        });
        tokio::spawn(std::future::pending::<()>());
        Ok(())
    }
}

orderly::register_default!(Stray);

/// Hangs forever in its drain (off by default).
#[derive(Default)]
pub struct Hanger;

#[async_trait]
impl Component for Hanger {
    async fn drain(&self, _: &StopContext) -> Result<(), BoxError> {
        mark("hanger", "drain-begin");
        std::future::pending().await
    }
}

orderly::register_default!(Hanger);

/// Blocks its thread in flush, so no timer can abandon it (off by default):
/// only the watchdog can end the process.
#[derive(Default)]
pub struct Blocker;

#[async_trait]
impl Component for Blocker {
    async fn flush(&self, _: &StopContext) -> Result<(), BoxError> {
        mark("blocker", "flush-begin");
        std::thread::sleep(Duration::from_secs(3600));
        Ok(())
    }
}

orderly::register_default!(Blocker);

/// Blocks every runtime worker thread 300 ms after the app has started,
/// as a deadlock or a blocking call in async code would (off by default):
/// nothing on the runtime runs after that, not even the watchdog pings.
#[derive(Default)]
pub struct Wedge;

#[async_trait]
impl Component for Wedge {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let lifecycle = ctx.lifecycle();
        tokio::spawn(async move {
            lifecycle.health().started().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            mark("wedge", "blocking");
            // More blockers than worker threads: each takes one and never yields.
            for _ in 0..64 {
                tokio::spawn(async { std::thread::sleep(Duration::from_secs(3600)) });
            }
        });
        Ok(())
    }
}

orderly::register_default!(Wedge);

/// Alive until 300 ms after the app has started, then stuck for good: its
/// `live` says so (off by default). The runtime itself stays responsive.
#[derive(Default)]
pub struct Stuck {
    since: std::sync::OnceLock<std::time::Instant>,
}

#[async_trait]
impl Component for Stuck {
    async fn start(&self, _ctx: &StartContext) -> Result<(), BoxError> {
        let _ = self.since.set(std::time::Instant::now());
        Ok(())
    }

    async fn live(&self) -> Result<(), BoxError> {
        match self.since.get() {
            Some(since) if since.elapsed() > Duration::from_millis(300) => {
                Err("its loop made no progress since 300 ms after the start".into())
            }
            _ => Ok(()),
        }
    }
}

orderly::register_default!(Stuck);

/// Fails to start (off by default); depends on [`Store`], so the rollback
/// must stop `store` and nothing else that had not started.
#[derive(Default)]
pub struct Broken;

#[async_trait]
impl Component for Broken {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Store>()]
    }
    async fn start(&self, _: &StartContext) -> Result<(), BoxError> {
        Err("cannot reach the payment gateway".into())
    }
}

orderly::register_default!(Broken);

/// Fails while running, from a supervised background task (off by default).
#[derive(Default)]
pub struct Crasher;

#[async_trait]
impl Component for Crasher {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err("lost the lease on the work queue".into())
        });
        Ok(())
    }
}

orderly::register_default!(Crasher);

/// Panics 30 ms after every start, and restarts (off by default): a crash
/// loop, which its restart limit ends.
#[derive(Default)]
pub struct Flapper;

#[async_trait]
impl Component for Flapper {
    fn restart(&self) -> orderly::Restart {
        orderly::Restart::Transient
    }
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.spawn(async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            panic!("the consumer's broker connection dropped");
        });
        Ok(())
    }
}

orderly::register_default!(Flapper);

/// Fails while running with an error whose text has newlines and
/// notify-protocol lines in it (off by default): what reaches systemd's
/// `STATUS` must stay one line and never carry error text.
#[derive(Default)]
pub struct Garbler;

#[async_trait]
impl Component for Garbler {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        ctx.spawn(async {
            tokio::time::sleep(Duration::from_millis(30)).await;
            Err("password=hunter2 rejected\nWATCHDOG=trigger\nSTATUS=owned".into())
        });
        Ok(())
    }
}

orderly::register_default!(Garbler);
