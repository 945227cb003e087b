//! The metrics component: the runtime's Prometheus registry as a typed
//! dependency, with the process's own metrics registered on it.
//!
//! There is one registry per runtime, not a process-global: two apps (or
//! two tests) in one process never see each other's series. The framework's
//! lifecycle metrics already live there; this component adds
//! `process_*` (CPU, memory, file descriptors) and hands the registry to the
//! components that declare `Dependency::on::<Metrics>()`.

use std::sync::OnceLock;

use orderly::{BoxError, Component, FromConfig, StartContext, Validate, Validation};
use prometheus::{Encoder, Registry, TextEncoder};
use serde::Deserialize;

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Register `process_*` metrics (CPU seconds, resident memory, open file descriptors).
    pub process: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self { process: true }
    }
}

impl Validate for MetricsConfig {
    fn validate(&self, _: &mut Validation) {}
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
    config: MetricsConfig,
    registry: OnceLock<Registry>,
}

impl Metrics {
    /// The runtime's registry (a cheap handle; clones share the same metrics).
    pub fn registry(&self) -> Result<Registry, MetricsError> {
        self.registry.get().cloned().ok_or(MetricsError::NotStarted)
    }

    /// Every metric in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, MetricsError> {
        render(&self.registry()?)
    }
}

/// Encodes a registry in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> Result<String, MetricsError> {
    let mut out = Vec::with_capacity(16 * 1024);
    TextEncoder::new().encode(&registry.gather(), &mut out).map_err(MetricsError::Encode)?;
    // The text encoder writes only UTF-8 (names, labels and numbers).
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The content type of [`render`]'s output.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

#[orderly::component]
impl Component for Metrics {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let registry = ctx.metrics_registry().clone();
        if self.config.process {
            let collector = prometheus::process_collector::ProcessCollector::for_self();
            registry
                .register(Box::new(collector))
                .map_err(|source| MetricsError::Register { what: "process metrics", source })?;
        }
        // A second start of the same component (a retry) finds it already set.
        let _ = self.registry.set(registry);
        Ok(())
    }
}

impl FromConfig for Metrics {
    type Config = MetricsConfig;
    fn from_config(config: MetricsConfig) -> Result<Self, BoxError> {
        Ok(Self { config, registry: OnceLock::new() })
    }
}

orderly::register!(Metrics);

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
