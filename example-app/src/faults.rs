//! Fault injection for experiments (`[faults]`), all off by default.
//!
//! | key | effect |
//! |---|---|
//! | `slow_auth_ms` | every authenticated API request sleeps this long before its handler, so requests run into `http.request_timeout` (504) |
//! | `db_failure` | once the app has started, the orders API and its jobs act as if every database call failed: the API answers 503, `/readyz` reports `orders` not ready, jobs are retried |
//! | `slow_job_ms` | every confirmation job sleeps this long before it runs, ignoring cancellation: a stubborn job for phase 3 to cut off |
//!
//! Set them with `APP__FAULTS__DB_FAILURE=true` and the like. A process
//! with a fault switched on says so in its log at start.
//!
//! A layer, not part of the business code: the orders component takes
//! `Faults` as an optional dependency and, only when a fault is switched
//! on, wraps its API scope in [`inject_request_faults`] and its job
//! handler in [`Faults::wrap_job`]. The store, the authentication and the
//! job know nothing of it, and with every fault off nothing is wrapped.
//!
//! `db_failure` waits for the app to have started: it simulates a database
//! lost while serving. (A database that is down at startup is the database
//! component's business: it retries, then the start fails.)

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use orderly::{config::Validate, config::Validation, runtime::Lifecycle, BoxError, Component, StartContext};
use orderly_components::http::ApiError;
use orderly_components::postgres::DbError;
use orderly_components::workers::{Job, JobContext, JobHandler};
use serde::Deserialize;

/// `[faults]`.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
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

    /// Whether API requests need the fault layer at all.
    pub fn affects_requests(&self) -> bool {
        self.config.slow_auth_ms > 0 || self.config.db_failure
    }

    /// Whether jobs need the fault layer at all.
    pub fn affects_jobs(&self) -> bool {
        self.config.slow_job_ms > 0 || self.config.db_failure
    }

    /// `handler`, with the job faults in front of it.
    pub fn wrap_job<H: JobHandler>(self: &Arc<Self>, handler: H) -> FaultyJob<H> {
        FaultyJob { faults: self.clone(), handler }
    }
}

/// The error the database gives when it is unreachable, as the fault's stand-in.
fn db_down() -> DbError {
    DbError::Unavailable("faults.db_failure is on".into())
}

/// Middleware for a scope whose app data holds `web::Data<Arc<Faults>>`:
/// sleeps `slow_auth_ms`, then answers as an unreachable database would
/// (503, `Retry-After`) while `db_failure` is on.
pub async fn inject_request_faults(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let faults =
        req.app_data::<web::Data<Arc<Faults>>>().cloned().ok_or_else(|| ApiError::internal("no faults layer data"))?;
    if let Some(delay) = faults.slow_auth() {
        tokio::time::sleep(delay).await;
    }
    if faults.db_failure() {
        return Err(ApiError::from(db_down()).into());
    }
    next.call(req).await
}

/// A job handler with the job faults in front of it.
pub struct FaultyJob<H> {
    faults: Arc<Faults>,
    handler: H,
}

#[orderly::async_trait]
impl<H: JobHandler> JobHandler for FaultyJob<H> {
    async fn run(&self, job: &Job, ctx: &JobContext<'_>) -> Result<(), BoxError> {
        if let Some(delay) = self.faults.slow_job() {
            // Deliberately deaf to ctx.cancelled(): a stubborn job for phase 3 to cut off.
            tokio::time::sleep(delay).await;
        }
        if self.faults.db_failure() {
            return Err(db_down().into());
        }
        self.handler.run(job, ctx).await
    }
}

#[orderly::component]
impl Component for Faults {
    fn restartable(&self) -> bool {
        true
    }

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
