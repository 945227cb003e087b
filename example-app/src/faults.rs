//! Fault injection for experiments (`[faults]`), all off by default.
//!
//! | key | effect |
//! |---|---|
//! | `slow_auth_ms` | every API request's authentication sleeps this long first, so requests run into `http.request_timeout` (504) |
//! | `db_failure` | once the app has started, every database call of the orders API and its jobs fails: the API answers 503, `/readyz` reports not ready, jobs are retried |
//! | `slow_job_ms` | every confirmation job sleeps this long before it writes, ignoring cancellation: a stubborn job for phase 3 to cut off |
//!
//! Set them with `APP__FAULTS__DB_FAILURE=true` and the like. A process
//! with a fault switched on says so in its log at start.
//!
//! `db_failure` waits for the app to have started: it simulates a database
//! lost while serving. (A database that is down at startup is the database
//! component's business: it retries, then the start fails.)

use std::sync::OnceLock;
use std::time::Duration;

use orderly::{config::Validate, config::Validation, runtime::Lifecycle, BoxError, Component, StartContext};
use serde::Deserialize;

/// `[faults]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultsConfig {
    /// Authentication sleeps this long (milliseconds).
    pub slow_auth_ms: u64,
    /// Database calls fail.
    pub db_failure: bool,
    /// Confirmation jobs sleep this long, ignoring cancellation (milliseconds).
    pub slow_job_ms: u64,
}

impl Validate for FaultsConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(self.slow_auth_ms <= 600_000, "slow_auth_ms", "must be at most 600000 (10 minutes)");
        v.check(self.slow_job_ms <= 3_600_000, "slow_job_ms", "must be at most 3600000 (an hour)");
    }
}

/// The faults in force, for the components that inject them.
pub struct Faults {
    config: FaultsConfig,
    lifecycle: OnceLock<Lifecycle>,
}

impl Faults {
    /// Faults as configured.
    pub fn new(config: FaultsConfig) -> Self {
        Self { config, lifecycle: OnceLock::new() }
    }

    /// How long authentication sleeps, if at all.
    pub fn slow_auth(&self) -> Option<Duration> {
        (self.config.slow_auth_ms > 0).then(|| Duration::from_millis(self.config.slow_auth_ms))
    }

    /// Whether database calls fail: configured so, and the app has started.
    pub fn db_failure(&self) -> bool {
        self.config.db_failure && self.lifecycle.get().is_some_and(|l| l.health().is_started())
    }

    /// How long a confirmation job sleeps, if at all.
    pub fn slow_job(&self) -> Option<Duration> {
        (self.config.slow_job_ms > 0).then(|| Duration::from_millis(self.config.slow_job_ms))
    }
}

#[orderly::component]
impl Component for Faults {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let _ = self.lifecycle.set(ctx.lifecycle());
        let c = &self.config;
        if c.slow_auth_ms > 0 || c.db_failure || c.slow_job_ms > 0 {
            slog::warn!(ctx.logger(), "fault injection is on";
                "slow_auth_ms" => c.slow_auth_ms, "db_failure" => c.db_failure, "slow_job_ms" => c.slow_job_ms);
        }
        Ok(())
    }
}

orderly::register!(Faults: FaultsConfig => Faults::new);
