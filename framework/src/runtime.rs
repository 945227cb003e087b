//! [`Runtime`]: a validated set of components, started and stopped as one.
//!
//! Most apps use [`App`](crate::App), which adds the command line, config,
//! logging and signals around a `Runtime`. Tests and apps that prefer
//! explicit wiring build a `Runtime` directly.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::component::Component;
use crate::context::Resources;
use crate::events::{EventSink, Events};
use crate::graph::{Graph, GraphErrors, GraphFormat, Node};
use crate::health::Health;
use crate::lifecycle::Lifecycle;
use crate::metrics::LifecycleMetrics;
use crate::settings::{ComponentSettings, RuntimeSettings, ShutdownSettings};
use crate::shutdown::{shut_down, ShutdownReport};
use crate::start::{start_all, StartEnd, StartFailure};
use crate::timeline::Timeline;
use crate::trigger::{Shutdown, ShutdownReason};

/// Building a runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The dependency graph is invalid; every problem is listed.
    #[error(transparent)]
    Graph(#[from] GraphErrors),
    /// The lifecycle metrics could not be registered (a name clash on a shared registry).
    #[error("registering lifecycle metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// How a run ended.
#[derive(Debug)]
pub enum RunOutcome {
    /// Start failed and was rolled back.
    StartFailed {
        /// The root cause.
        failure: StartFailure,
        /// The rollback of the components that had started.
        rollback: ShutdownReport,
    },
    /// A shutdown was requested before start completed; what had started was stopped.
    Interrupted(ShutdownReport),
    /// The app ran and then shut down.
    ShutDown(ShutdownReport),
}

/// A component added to a builder: an explicit name, the component, explicit settings.
type PendingNode = (Option<String>, Arc<dyn Component>, Option<ComponentSettings>);

/// Assembles a [`Runtime`] from components and settings.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use orderly::{async_trait, Component, Dependency, Runtime};
/// struct Db;
/// #[async_trait] impl Component for Db {}
/// struct Api;
/// #[async_trait] impl Component for Api {
///     fn dependencies(&self) -> Vec<Dependency> { vec![Dependency::on::<Db>()] }
/// }
/// let runtime = Runtime::builder().component(Db).component(Api).build().unwrap();
/// runtime.start().await.unwrap();
/// let report = runtime.shutdown(orderly::ShutdownReason::Signal("SIGTERM")).await;
/// assert!(report.is_clean());
/// # });
/// ```
#[derive(Default)]
pub struct RuntimeBuilder {
    nodes: Vec<PendingNode>,
    settings: RuntimeSettings,
    disabled: BTreeSet<String>,
    logger: Option<slog::Logger>,
    sinks: Vec<Arc<dyn EventSink>>,
    registry: Option<prometheus::Registry>,
    shutdown: Option<Shutdown>,
}

impl RuntimeBuilder {
    /// Adds a component under its own [`name`](Component::name).
    pub fn component(self, component: impl Component) -> Self {
        self.component_arc(Arc::new(component))
    }

    /// Adds a shared component.
    pub fn component_arc(mut self, component: Arc<dyn Component>) -> Self {
        self.nodes.push((None, component, None));
        self
    }

    /// Adds a component under an explicit name, with explicit settings
    /// (which `[components.<name>]` in config still overrides).
    pub fn component_named(
        mut self,
        name: &str,
        component: Arc<dyn Component>,
        settings: Option<ComponentSettings>,
    ) -> Self {
        self.nodes.push((Some(name.to_string()), component, settings));
        self
    }

    /// Lifecycle settings: start defaults, shutdown budgets, per-component overrides.
    pub fn settings(mut self, settings: RuntimeSettings) -> Self {
        self.settings = settings;
        self
    }

    /// Shutdown budgets only.
    pub fn shutdown_settings(mut self, shutdown: ShutdownSettings) -> Self {
        self.settings.shutdown = shutdown;
        self
    }

    /// Names of components config disabled, so depending on them is reported as such.
    pub fn disabled(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.disabled.extend(names);
        self
    }

    /// The root logger; components get children with a `component` key.
    pub fn logger(mut self, logger: slog::Logger) -> Self {
        self.logger = Some(logger);
        self
    }

    /// Another consumer of lifecycle events.
    pub fn event_sink(mut self, sink: Arc<dyn EventSink>) -> Self {
        self.sinks.push(sink);
        self
    }

    /// The Prometheus registry to register lifecycle metrics on (default: a new one).
    pub fn metrics_registry(mut self, registry: prometheus::Registry) -> Self {
        self.registry = Some(registry);
        self
    }

    /// The shutdown handle to use (default: a new one).
    pub fn shutdown_handle(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Validates the graph and builds the runtime. Nothing starts yet.
    pub fn build(self) -> Result<Runtime, BuildError> {
        let nodes = self
            .nodes
            .into_iter()
            .map(|(name, component, settings)| {
                let name: Arc<str> = name.as_deref().unwrap_or_else(|| component.name()).into();
                let settings = self.settings.for_component(&name, settings);
                Node { name, component, settings, failed: Default::default() }
            })
            .filter(|node| node.settings.enabled)
            .collect();
        let mut disabled = self.disabled;
        disabled.extend(self.settings.components.keys().filter(|n| self.settings.is_disabled(n)).cloned());
        let graph = Arc::new(Graph::build(nodes, &disabled)?);

        let registry = self.registry.unwrap_or_default();
        // A clean start and stop emits about three events per component and
        // a dozen for the phases; reserving them keeps growth off that path.
        let timeline = Timeline::with_capacity(3 * graph.len() + 16);
        let logger = self.logger.unwrap_or_else(|| slog::Logger::root(slog::Discard, slog::o!()));
        let mut sinks: Vec<Arc<dyn EventSink>> = vec![
            Arc::new(LifecycleMetrics::register(&registry, graph.len())?),
            Arc::new(crate::events::LogEvents::new(logger.clone())),
        ];
        sinks.extend(self.sinks);
        let loggers = graph.nodes.iter().map(|n| logger.new(slog::o!("component" => n.name.to_string()))).collect();
        let graph_len = graph.len();
        let shared = Arc::new(Shared {
            health: Health::new(&graph),
            graph,
            events: Events::new(sinks, timeline.clone()),
            loggers,
            shutdown: self.shutdown.unwrap_or_default(),
            resources: Resources::default(),
            start_returned: (0..graph_len).map(|_| AtomicBool::new(false)).collect(),
            registry,
            settings: self.settings.shutdown,
        });
        Ok(Runtime { shared, timeline, started: Mutex::new(None) })
    }
}

/// What the start and shutdown sequences share.
pub(crate) struct Shared {
    pub(crate) graph: Arc<Graph>,
    pub(crate) events: Events,
    pub(crate) loggers: Vec<slog::Logger>,
    pub(crate) shutdown: Shutdown,
    pub(crate) resources: Resources,
    /// Set when a component's `start` returns `Ok`, even if the task is later
    /// cancelled or panics while waiting for readiness: it must be rolled back.
    pub(crate) start_returned: Vec<AtomicBool>,
    pub(crate) registry: prometheus::Registry,
    pub(crate) settings: ShutdownSettings,
    pub(crate) health: Health,
}

/// A validated set of components with everything needed to start and stop them.
pub struct Runtime {
    shared: Arc<Shared>,
    timeline: Timeline,
    /// Which components started; `None` before `start` ran.
    started: Mutex<Option<Vec<bool>>>,
}

impl Runtime {
    /// An empty builder.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Starts every component along the graph. On failure, the components
    /// that had started are already rolled back when this returns.
    ///
    /// A runtime starts once: call this once, then [`shutdown`](Self::shutdown)
    /// once (or use [`run`](Self::run), which does both).
    pub async fn start(&self) -> Result<(), Box<RunOutcome>> {
        let (started, end) = start_all(&self.shared).await;
        match end {
            StartEnd::Complete => {
                *self.started.lock() = Some(started);
                self.shared.health.set_running();
                Ok(())
            }
            StartEnd::Failed(failure) => {
                let reason = ShutdownReason::ComponentFailed {
                    component: failure.component.clone(),
                    error: failure.error.clone(),
                };
                let rollback = self.roll_back(&started, reason).await;
                Err(Box::new(RunOutcome::StartFailed { failure, rollback }))
            }
            StartEnd::Interrupted(reason) => {
                Err(Box::new(RunOutcome::Interrupted(self.roll_back(&started, reason).await)))
            }
        }
    }

    async fn roll_back(&self, started: &[bool], reason: ShutdownReason) -> ShutdownReport {
        self.shared.shutdown.trigger(reason.clone());
        let report = shut_down(&self.shared, started, reason).await;
        for (i, _) in started.iter().enumerate().filter(|(_, s)| **s) {
            self.shared.events.emit(crate::EventKind::RolledBack.build().component(&self.shared.graph.nodes[i].name));
        }
        *self.started.lock() = Some(vec![false; started.len()]);
        report
    }

    /// Runs the five-phase shutdown for every component that started.
    /// Calling it again stops nothing twice.
    pub async fn shutdown(&self, reason: ShutdownReason) -> ShutdownReport {
        self.shared.shutdown.trigger(reason.clone());
        let started = self.started.lock().replace(vec![false; self.shared.graph.len()]).unwrap_or_default();
        let started = if started.is_empty() { vec![false; self.shared.graph.len()] } else { started };
        shut_down(&self.shared, &started, reason).await
    }

    /// Starts, waits for a shutdown request, and shuts down.
    pub async fn run(&self) -> RunOutcome {
        if let Err(outcome) = self.start().await {
            return *outcome;
        }
        let reason = self.shared.shutdown.requested().await;
        RunOutcome::ShutDown(self.shutdown(reason).await)
    }

    /// The shutdown handle: request a shutdown from anywhere.
    pub fn shutdown_handle(&self) -> Shutdown {
        self.shared.shutdown.clone()
    }

    /// Every lifecycle event so far.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The registry holding the lifecycle metrics.
    pub fn metrics_registry(&self) -> &prometheus::Registry {
        &self.shared.registry
    }

    /// State and readiness for probes.
    pub fn health(&self) -> Health {
        self.shared.health.clone()
    }

    /// The view of the lifecycle that components get: health, timeline, graph.
    pub fn lifecycle(&self) -> Lifecycle {
        Lifecycle::of(&self.shared)
    }

    /// The dependency graph as Mermaid or DOT.
    pub fn render_graph(&self, format: GraphFormat) -> String {
        self.shared.graph.render(format)
    }

    /// The overall shutdown deadline in force.
    pub fn shutdown_deadline(&self) -> std::time::Duration {
        self.shared.settings.deadline
    }

    /// The component names, in graph order (sorted).
    pub fn component_names(&self) -> Vec<&str> {
        self.shared.graph.nodes.iter().map(|n| &*n.name).collect()
    }

    /// The lifecycle settings applied to `name`.
    pub fn component_settings(&self, name: &str) -> Option<&ComponentSettings> {
        self.shared.graph.index_of(name).map(|i| &self.shared.graph.nodes[i].settings)
    }
}
