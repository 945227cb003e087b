//! The tracing component (`[tracing]`): OpenTelemetry traces exported over
//! OTLP/HTTP (protobuf), with W3C trace-context propagation.
//!
//! - `start` builds the exporter and a batching tracer provider, installs it
//!   globally with the W3C propagator. The HTTP server depends on it
//!   (optionally) and asks [`Tracing::is_exporting`] at its start whether
//!   to make per-request spans. With `endpoint = ""` (the default) it installs
//!   nothing: tracing is off and costs nothing.
//! - Phase 4 (flush) records the lifecycle as spans (startup, each
//!   component's start, the shutdown and each phase that has finished),
//!   then runs `force_flush` and `shutdown`. It runs after the HTTP server
//!   has drained and the workers have stopped, so the spans of the last
//!   requests are exported, not lost.
//!
//! The exporter uses a blocking HTTP client on the batch processor's own
//! thread: an async client with the default batch processor panics with
//! "there is no reactor running". Flush and shutdown run on a blocking
//! thread for the same reason.

mod lifecycle_spans;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::global;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use orderly::{
    config::Validate, config::Validation, runtime::Lifecycle, BoxError, Component, ReloadContext, Reloaded,
    StartContext, StopContext,
};
use parking_lot::Mutex;
use serde::Deserialize;

/// `[tracing]`. Every key can be set as `APP__TRACING__<KEY>`.
#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// The OTLP/HTTP traces endpoint, for example `http://127.0.0.1:4318/v1/traces`.
    /// Empty turns tracing off.
    pub endpoint: String,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// The share of new traces sampled, 0.0 to 1.0. A caller's sampling
    /// decision (from `traceparent`) is always followed.
    pub sampler_ratio: f64,
    /// How long one export may take.
    #[serde(with = "humantime_serde")]
    pub export_timeout: Duration,
    /// Export the lifecycle (startup and shutdown phases) as spans too.
    pub lifecycle_spans: bool,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            service_name: "orderly-service".into(),
            sampler_ratio: 1.0,
            export_timeout: Duration::from_secs(5),
            lifecycle_spans: true,
        }
    }
}

impl Validate for TracingConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(
            self.endpoint.is_empty() || self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://"),
            "endpoint",
            format!("`{}` is not an http(s) URL (leave it empty to turn tracing off)", self.endpoint),
        );
        v.check((0.0..=1.0).contains(&self.sampler_ratio), "sampler_ratio", "must be between 0.0 and 1.0");
        v.check(!self.service_name.is_empty(), "service_name", "must not be empty");
        v.check(!self.export_timeout.is_zero(), "export_timeout", "must be greater than 0");
    }
}

/// What can go wrong with tracing, with what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum TracingError {
    /// The OTLP exporter could not be built.
    #[error("building the OTLP exporter for {endpoint}: {source}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// The cause.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// Flushing or shutting down the provider failed (spans may be lost).
    #[error("{what} the tracer provider: {source}")]
    Provider {
        /// `flushing` or `shutting down`.
        what: &'static str,
        /// The cause.
        #[source]
        source: opentelemetry_sdk::error::OTelSdkError,
    },
    /// The blocking task doing the work was lost.
    #[error("the tracing {0} task did not finish")]
    Task(&'static str),
    /// Flush and shutdown did not finish within the phase's budget.
    #[error("flushing traces did not finish within the phase's budget")]
    Timeout,
}

/// The tracing component.
pub struct Tracing {
    /// The config in force: built with, or the last reload's.
    config: Mutex<TracingConfig>,
    provider: Mutex<Option<SdkTracerProvider>>,
    /// On while a provider exports: the HTTP server reads it per request.
    exporting: Arc<AtomicBool>,
    /// Providers a reload replaced. They keep exporting the spans of
    /// requests that began before the reload and end after it, and shut
    /// down with the run (phase 4).
    retired: Mutex<Vec<SdkTracerProvider>>,
    lifecycle: Mutex<Option<Lifecycle>>,
}

impl Tracing {
    /// A tracing component with `config`.
    pub fn new(config: TracingConfig) -> Self {
        Self {
            config: Mutex::new(config),
            provider: Mutex::new(None),
            exporting: Arc::default(),
            retired: Mutex::new(Vec::new()),
            lifecycle: Mutex::new(None),
        }
    }

    /// Whether an exporter is installed (an endpoint is configured and start ran).
    pub fn is_exporting(&self) -> bool {
        self.exporting.load(Ordering::Relaxed)
    }

    /// The switch behind [`is_exporting`](Self::is_exporting), for a server
    /// that asks per request (a reload turns it).
    #[cfg(feature = "http")]
    pub(crate) fn exporting_switch(&self) -> Arc<AtomicBool> {
        self.exporting.clone()
    }

    /// Installs a provider for `config` (or none, without an endpoint) and
    /// returns the one it replaces.
    async fn install(&self, config: &TracingConfig) -> Result<Option<SdkTracerProvider>, TracingError> {
        if config.endpoint.is_empty() {
            self.exporting.store(false, Ordering::Relaxed);
            return Ok(self.provider.lock().take());
        }
        let built = config.clone();
        // The blocking client owns a runtime of its own; build it off the async threads.
        let provider = tokio::task::spawn_blocking(move || build_provider(built))
            .await
            .map_err(|_| TracingError::Task("start"))??;
        global::set_text_map_propagator(TraceContextPropagator::new());
        global::set_tracer_provider(provider.clone());
        let replaced = self.provider.lock().replace(provider);
        self.exporting.store(true, Ordering::Relaxed);
        Ok(replaced)
    }
}

fn build_provider(config: TracingConfig) -> Result<SdkTracerProvider, TracingError> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(config.endpoint.clone())
        .with_timeout(config.export_timeout)
        .build()
        .map_err(|source| TracingError::Exporter { endpoint: config.endpoint.clone(), source })?;
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampler_ratio))))
        .with_resource(Resource::builder().with_service_name(config.service_name).build())
        .build())
}

#[orderly::component]
impl Component for Tracing {
    /// Each run installs a provider of its own; the flush shuts it down.
    fn restartable(&self) -> bool {
        true
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let config = self.config.lock().clone();
        *self.lifecycle.lock() = Some(ctx.lifecycle());
        self.install(&config).await?;
        match config.endpoint.as_str() {
            "" => slog::info!(ctx.logger(), "tracing is off (no tracing.endpoint)"),
            endpoint => {
                slog::info!(ctx.logger(), "exporting traces"; "endpoint" => endpoint, "sampler_ratio" => config.sampler_ratio)
            }
        }
        Ok(())
    }

    /// Every key applies at once: a new provider (endpoint, sampler ratio,
    /// service name) takes over for new spans; the one it replaces exports
    /// the spans still open on it (requests that began before) and shuts
    /// down in phase 4. No endpoint turns exporting off.
    async fn reload(&self, ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        let Some(new) = ctx.replacement::<Tracing>() else { return Ok(Reloaded::NeedsRestart) };
        let new = new.config.lock().clone();
        if let Some(old) = self.install(&new).await? {
            self.retired.lock().push(old);
        }
        slog::info!(ctx.logger(), "reloaded in place"; "endpoint" => &new.endpoint, "sampler_ratio" => new.sampler_ratio);
        *self.config.lock() = new;
        Ok(Reloaded::Applied)
    }

    async fn flush(&self, ctx: &StopContext) -> Result<(), BoxError> {
        let current = self.provider.lock().take();
        let providers: Vec<SdkTracerProvider> =
            current.into_iter().chain(std::mem::take(&mut *self.retired.lock())).collect();
        let Some(newest) = providers.first() else {
            return Ok(());
        };
        self.exporting.store(false, Ordering::Relaxed);
        // The app's lifecycle as spans once, at the shutdown, not per restart.
        let lifecycle = self.lifecycle.lock().clone().filter(|l| l.health().is_shutting_down());
        if self.config.lock().lifecycle_spans {
            if let Some(lifecycle) = lifecycle {
                lifecycle_spans::record(&newest.tracer("orderly-lifecycle"), &lifecycle);
            }
        }
        let work = tokio::task::spawn_blocking(move || -> Result<(), TracingError> {
            for provider in providers {
                provider.force_flush().map_err(|source| TracingError::Provider { what: "flushing", source })?;
                provider.shutdown().map_err(|source| TracingError::Provider { what: "shutting down", source })?;
            }
            Ok(())
        });
        match tokio::time::timeout_at(ctx.deadline().into(), work).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(TracingError::Task("flush").into()),
            Err(_) => return Err(TracingError::Timeout.into()),
        }
        slog::info!(ctx.logger(), "traces flushed");
        Ok(())
    }
}

orderly::register!(Tracing: TracingConfig => Tracing::new);
