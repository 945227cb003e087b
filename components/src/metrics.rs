//! The metrics component: the runtime's Prometheus registry as a typed
//! dependency, with the process's own metrics registered on it, and
//! optionally pushed to a Prometheus Pushgateway.
//!
//! There is one registry per runtime, not a process-global: two apps (or
//! two tests) in one process never see each other's series. The framework's
//! lifecycle metrics already live there; this component adds
//! `process_*` (CPU, memory, file descriptors) and hands the registry to the
//! components that declare `Dependency::on::<Metrics>()`.

use std::time::Duration;

use futures::FutureExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use orderly::settings::RetryPolicy;
use orderly::{
    config::Validate, config::Validation, BoxError, Component, ReloadContext, Reloaded, StartContext, StopContext,
};
use parking_lot::Mutex;
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};
use serde::Deserialize;

/// The backoff between push attempts: doubling from this, with full
/// jitter, up to [`PUSH_BACKOFF_MAX`] (a push interval is seconds).
const PUSH_BACKOFF_INITIAL: Duration = Duration::from_millis(100);
/// The largest backoff between push attempts.
const PUSH_BACKOFF_MAX: Duration = Duration::from_secs(2);

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Register `process_*` metrics (CPU seconds, resident memory, open file descriptors).
    pub process: bool,
    /// Pushes to a Pushgateway (`[metrics.push]`); off without a URL.
    pub push: PushConfig,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { process: true, push: PushConfig::default() }
    }
}

/// `[metrics.push]`: the metrics flusher. With no `url` it is off, and
/// pull via the management server's `/metrics` works as always.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// The Pushgateway, for example `http://pushgateway:9091` (`APP__METRICS__PUSH__URL`).
    pub url: String,
    /// How often to push.
    #[serde(with = "humantime_serde")]
    pub interval: Duration,
    /// The `job` grouping label.
    pub job: String,
    /// The `instance` grouping label; empty = the host name.
    pub instance: String,
    /// How long one push may take.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Tries per push (with backoff) before it is counted as failed.
    pub attempts: u32,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            interval: Duration::from_secs(15),
            job: "orderly".into(),
            instance: String::new(),
            timeout: Duration::from_secs(5),
            attempts: 3,
        }
    }
}

impl Validate for MetricsConfig {
    fn validate(&self, v: &mut Validation) {
        let push = &self.push;
        v.check(
            push.url.is_empty() || push.url.starts_with("http://") || push.url.starts_with("https://"),
            "push.url",
            format!("`{}` is not an http(s) URL (leave it empty to turn pushing off)", push.url),
        );
        v.check(!push.interval.is_zero(), "push.interval", "must be greater than 0");
        v.check(!push.job.is_empty() && !push.job.contains('/'), "push.job", "must be non-empty, without '/'");
        v.check(!push.instance.contains('/'), "push.instance", "must not contain '/'");
        v.check(push.attempts >= 1, "push.attempts", "must be at least 1");
    }
}

/// Something went wrong with metrics; says what.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The registry was asked for before the component started.
    #[error("the metrics registry is not available before the `metrics` component has started")]
    NotStarted,
    /// Registering a collector failed (usually a duplicate metric name).
    #[error("registering {what}: {source}")]
    Register {
        /// What was being registered.
        what: &'static str,
        /// Prometheus's reason.
        #[source]
        source: prometheus::Error,
    },
    /// Encoding the text exposition format failed.
    #[error("encoding metrics: {0}")]
    Encode(#[source] prometheus::Error),
    /// A push to the Pushgateway failed after every attempt.
    #[error("pushing metrics to {url}: {reason}")]
    Push {
        /// The grouping URL pushed to.
        url: String,
        /// The last failure.
        reason: String,
    },
}

/// The metrics component. Depend on it to register your own metrics:
///
/// ```
/// use orderly::{BoxError, Component, Dependency, StartContext};
/// use orderly_components::metrics::Metrics;
///
/// struct Orders;
///
/// #[orderly::component]
/// impl Component for Orders {
///     fn dependencies(&self) -> Vec<Dependency> {
///         vec![Dependency::on::<Metrics>()]
///     }
///     async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
///         let registry = ctx.dependency::<Metrics>()?.registry()?;
///         let placed = prometheus::IntCounter::new("orders_placed_total", "Orders placed.")?;
///         registry.register(Box::new(placed.clone()))?;
///         Ok(())
///     }
/// }
/// ```
#[derive(Default)]
pub struct Metrics {
    /// The config in force: built with, or the last reload's.
    config: Mutex<MetricsConfig>,
    registry: Mutex<Option<Registry>>,
    /// The pusher in force (`None`: pushing is off), watched by the push
    /// loop of the current run, so a reload turns pushing on, off or
    /// elsewhere without a restart.
    pusher: Mutex<Option<watch::Sender<Option<Pusher>>>>,
    /// The current run's logger and push counter, for a reload's pusher.
    run: Mutex<Option<(slog::Logger, PushCounter)>>,
}

/// Pushes the registry to one Pushgateway group.
#[derive(Clone)]
struct Pusher {
    client: reqwest::Client,
    url: String,
    attempts: u32,
    interval: Duration,
    registry: Registry,
    pushes: IntCounterVec,
    logger: slog::Logger,
}

impl Pusher {
    /// The pusher `push` asks for, or `None` when it has no URL.
    fn of(
        push: &PushConfig,
        registry: &Registry,
        pushes: &PushCounter,
        logger: &slog::Logger,
    ) -> Result<Option<Self>, BoxError> {
        if push.url.is_empty() {
            return Ok(None);
        }
        Ok(Some(Self {
            client: reqwest::Client::builder().timeout(push.timeout).build()?,
            url: group_url(push),
            attempts: push.attempts,
            interval: push.interval,
            registry: registry.clone(),
            pushes: pushes.0.clone(),
            logger: logger.clone(),
        }))
    }

    /// One push, retried with backoff; counted either way, never fatal.
    async fn push(&self) -> Result<(), MetricsError> {
        let retry = RetryPolicy::new(self.attempts, PUSH_BACKOFF_INITIAL, PUSH_BACKOFF_MAX);
        let mut reason = String::new();
        for attempt in 1..=self.attempts {
            let body = render(&self.registry)?;
            let sent =
                self.client.put(&self.url).header(reqwest::header::CONTENT_TYPE, TEXT_FORMAT).body(body).send().await;
            match sent {
                Ok(response) if response.status().is_success() => {
                    self.pushes.with_label_values(&["ok"]).inc();
                    return Ok(());
                }
                Ok(response) => {
                    let status = response.status();
                    reason = format!("{status}: {}", response.text().await.unwrap_or_default().trim());
                }
                Err(e) => reason = e.to_string(),
            }
            if attempt < self.attempts {
                tokio::time::sleep(retry.backoff(attempt)).await;
            }
        }
        self.pushes.with_label_values(&["error"]).inc();
        let error = MetricsError::Push { url: self.url.clone(), reason };
        slog::warn!(self.logger, "metrics push failed"; "error" => %error);
        Err(error)
    }
}

/// Pushes every `interval` of the pusher in force until the run ends;
/// a new pusher (a reload) restarts the interval, none pauses pushing.
async fn push_loop(mut pushers: watch::Receiver<Option<Pusher>>, ended: CancellationToken) {
    let mut current = pushers.borrow_and_update().clone();
    loop {
        let next = async {
            match &current {
                Some(pusher) => tokio::time::sleep(pusher.interval).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = ended.cancelled() => return,
            changed = pushers.changed() => match changed {
                Ok(()) => current = pushers.borrow_and_update().clone(),
                Err(_) => return,
            },
            () = next => {
                if let Some(pusher) = &current {
                    // Logged and counted inside; a failed push is never fatal.
                    let _ = pusher.push().await;
                }
            }
        }
    }
}

/// `orderly_metrics_pushes_total{result}`, once per runtime.
#[derive(Clone)]
struct PushCounter(IntCounterVec);

impl PushCounter {
    fn register(registry: &Registry) -> Result<Self, MetricsError> {
        let counter = register(
            registry,
            "orderly_metrics_pushes_total",
            IntCounterVec::new(
                Opts::new("orderly_metrics_pushes_total", "Pushes to the Pushgateway, by result (ok, error)."),
                &["result"],
            ),
        )?;
        Ok(Self(counter))
    }
}

/// The `process_*` collector is registered: once per runtime, for every run.
#[derive(Clone)]
struct ProcessMetrics;

impl ProcessMetrics {
    fn register(registry: &Registry) -> Result<Self, MetricsError> {
        let collector = prometheus::process_collector::ProcessCollector::for_self();
        registry
            .register(Box::new(collector))
            .map_err(|source| MetricsError::Register { what: "process metrics", source })?;
        Ok(Self)
    }
}

/// `{url}/metrics/job/{job}/instance/{instance}`.
fn group_url(push: &PushConfig) -> String {
    let instance = if push.instance.is_empty() { crate::hostname() } else { push.instance.clone() };
    format!("{}/metrics/job/{}/instance/{}", push.url.trim_end_matches('/'), push.job, instance)
}

impl Metrics {
    /// A metrics component with `config` (usually built from `[metrics]`).
    pub fn new(config: MetricsConfig) -> Self {
        Self { config: Mutex::new(config), ..Self::default() }
    }

    /// The runtime's registry (a cheap handle; clones share the same metrics).
    pub fn registry(&self) -> Result<Registry, MetricsError> {
        self.registry.lock().clone().ok_or(MetricsError::NotStarted)
    }

    /// Every metric in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, MetricsError> {
        render(&self.registry()?)
    }

    /// The pusher in force, if pushing is on.
    fn current_pusher(&self) -> Option<Pusher> {
        self.pusher.lock().as_ref().and_then(|pushers| pushers.borrow().clone())
    }
}

/// Encodes a registry in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> Result<String, MetricsError> {
    let mut out = Vec::with_capacity(16 * 1024);
    TextEncoder::new().encode(&registry.gather(), &mut out).map_err(MetricsError::Encode)?;
    // The text encoder writes only UTF-8 (names, labels and numbers).
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Registers the collector `made` under `what` (the metric's name, for
/// the error), and returns it to record into: the one way the standard
/// components register their metrics.
pub(crate) fn register<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    what: &'static str,
    made: Result<C, prometheus::Error>,
) -> Result<C, MetricsError> {
    let collector = made.map_err(|source| MetricsError::Register { what, source })?;
    registry.register(Box::new(collector.clone())).map_err(|source| MetricsError::Register { what, source })?;
    Ok(collector)
}

/// The content type of [`render`]'s output.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[orderly::component]
impl Component for Metrics {
    /// Each run takes the registry afresh and pushes from a loop of its own;
    /// the metric sets (process, pushes) stay registered once per runtime.
    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let config = self.config.lock().clone();
        let registry = ctx.metrics_registry().clone();
        if config.process {
            ctx.metric_set(ProcessMetrics::register)?;
        }
        let pushes = ctx.metric_set(PushCounter::register)?;
        let pusher = Pusher::of(&config.push, &registry, &pushes, ctx.logger())?;
        if let Some(pusher) = &pusher {
            slog::info!(ctx.logger(), "pushing metrics"; "url" => &pusher.url, "interval" => ?pusher.interval);
        }
        let (pushers, watching) = watch::channel(pusher);
        ctx.spawn(push_loop(watching, ctx.cancellation()).map(Ok));
        *self.registry.lock() = Some(registry);
        *self.pusher.lock() = Some(pushers);
        *self.run.lock() = Some((ctx.logger().clone(), pushes));
        Ok(())
    }

    /// `[metrics.push]` applies at once: the URL, the interval, the
    /// grouping labels, turning pushing on or off. `process` stays as the
    /// process started (its collector cannot be taken back); a change to it
    /// is logged.
    async fn reload(&self, ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        let Some(new) = ctx.replacement::<Metrics>() else { return Ok(Reloaded::NeedsRestart) };
        let new = new.config.lock().clone();
        let registry = self.registry()?;
        let (logger, pushes) = self.run.lock().clone().ok_or(MetricsError::NotStarted)?;
        let pusher = Pusher::of(&new.push, &registry, &pushes, &logger)?;
        if new.process != self.config.lock().process {
            slog::warn!(ctx.logger(), "[metrics] process changes at the next start of the process");
        }
        match &pusher {
            Some(pusher) => {
                slog::info!(ctx.logger(), "pushing metrics"; "url" => &pusher.url, "interval" => ?pusher.interval)
            }
            None => slog::info!(ctx.logger(), "metrics push is off"),
        }
        if let Some(pushers) = &*self.pusher.lock() {
            pushers.send_replace(pusher);
        }
        *self.config.lock() = new;
        Ok(Reloaded::Applied)
    }

    /// Phase 4: one final push, after the HTTP server has drained and the
    /// workers have stopped, so the last counts reach the gateway.
    async fn flush(&self, ctx: &StopContext) -> Result<(), BoxError> {
        let Some(pusher) = self.current_pusher() else { return Ok(()) };
        // The run's loop must not push after this one.
        if let Some(pushers) = &*self.pusher.lock() {
            pushers.send_replace(None);
        }
        match tokio::time::timeout_at(ctx.deadline().into(), pusher.push()).await {
            Ok(Ok(())) => slog::info!(ctx.logger(), "final metrics push done"),
            // Counted and logged; not a reason to fail the shutdown.
            Ok(Err(error)) => slog::error!(ctx.logger(), "final metrics push failed"; "error" => %error),
            Err(_) => slog::error!(ctx.logger(), "final metrics push did not finish within the phase's budget"),
        }
        Ok(())
    }
}

orderly::register!(Metrics: MetricsConfig => Metrics::new);

#[cfg(test)]
mod tests {
    use super::*;
    use orderly::{Runtime, ShutdownReason};

    #[tokio::test]
    async fn exposes_the_runtimes_registry_with_process_and_lifecycle_metrics() {
        let runtime = Runtime::builder().component(Metrics::default()).build().unwrap();
        runtime.start().await.unwrap();
        let text = render(runtime.metrics_registry()).unwrap();
        assert!(text.contains("process_resident_memory_bytes"), "{text}");
        assert!(text.contains("orderly_component_start_seconds"), "{text}");
        runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    }

    #[test]
    fn registry_before_start_is_a_clear_error() {
        let error = Metrics::default().registry().unwrap_err();
        assert!(error.to_string().contains("before the `metrics` component has started"));
    }
}
