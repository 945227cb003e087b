//! [`Runtime`]: a validated set of components, started and stopped as one.
//!
//! Most apps use `orderly::app::App`, which adds the command line, config,
//! logging and signals around a `Runtime`. Tests and apps that prefer
//! explicit wiring build a `Runtime` directly.
//!
//! The top floor of the core: it owns the state and drives the engine and
//! supervision. It still never exits the process, installs signal handlers or
//! owns a tokio runtime: that is the `orderly` shell's.

use std::collections::BTreeSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::component::Component;
use crate::emitter::Events;
use crate::error::StartFailure;
use crate::event::{EventKind, EventSink, LogEvents};
use crate::failure::Supervision;
use crate::graph::{Graph, GraphErrors, GraphFormat, Node};
use crate::health::Health;
use crate::host::{Host, TaskEnd};
use crate::metric_sets::MetricSets;
use crate::metrics::LifecycleMetrics;
use crate::nodeset::NodeSet;
use crate::resources::{AnyArc, Resources};
use crate::restart::Consequence;
use crate::run_tasks::RunTasks;
use crate::settings::{ComponentSettings, RuntimeSettings, ShutdownSettings};
use crate::shutdown::shut_down;
use crate::start::{start_all, StartEnd};
use crate::state::{Shared, Stage};
use crate::supervised::Condition;
use crate::timeline::Timeline;
use crate::trigger::{Shutdown, ShutdownReason};
use crate::view::ComponentsView;
use crate::walks::Walks;

// What a run of the runtime reports and offers, beside the runtime itself.
pub use crate::lifecycle::{DebugPage, Lifecycle};
pub use crate::reload::{ReloadChange, ReloadReport};
pub use crate::shutdown::ShutdownReport;

/// Building a runtime failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The dependency graph is invalid; every problem is listed.
    #[error(transparent)]
    Graph(#[from] GraphErrors),
    /// The lifecycle metrics could not be registered (a name clash on a shared registry).
    #[error("registering lifecycle metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// Failure policies contradict each other, or a component that may be
    /// started again cannot be; every problem is listed.
    #[error("invalid restart settings: {}", .0.join("; "))]
    Supervision(Vec<String>),
}

/// Why [`Runtime::start`] did not complete. What had started is already
/// stopped (rolled back) when it is returned.
#[derive(Debug)]
pub enum StartError {
    /// A component failed to start.
    Failed {
        /// The root cause.
        failure: StartFailure,
        /// The rollback of the components that had started.
        rollback: ShutdownReport,
    },
    /// A shutdown was requested before start completed.
    Interrupted(ShutdownReport),
    /// `start` was called before on this runtime; nothing was started again.
    AlreadyStarted,
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Failed { failure, .. } => write!(f, "start failed: {failure}"),
            StartError::Interrupted(report) => write!(f, "start interrupted: {}", report.reason),
            StartError::AlreadyStarted => f.write_str("start was already called on this runtime"),
        }
    }
}

impl std::error::Error for StartError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StartError::Failed { failure, .. } => Some(failure),
            StartError::Interrupted(_) | StartError::AlreadyStarted => None,
        }
    }
}

/// How a whole run ([`Runtime::run`], `orderly::app::App`) ended.
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
/// use orderly_core::{async_trait, Component, Dependency, Runtime};
/// struct Db;
/// #[async_trait] impl Component for Db {}
/// struct Api;
/// #[async_trait] impl Component for Api {
///     fn dependencies(&self) -> Vec<Dependency> { vec![Dependency::on::<Db>()] }
/// }
/// let runtime = Runtime::builder().component(Db).component(Api).build().unwrap();
/// runtime.start().await.unwrap();
/// let report = runtime.shutdown(orderly_core::ShutdownReason::Signal("SIGTERM")).await;
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

    /// The root logger; components get children with a `component` key,
    /// and every lifecycle event is logged to it ([`LogEvents`]). Without
    /// one, nothing is logged.
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
        let mut policy_problems = Vec::new();
        let nodes = self
            .nodes
            .into_iter()
            .map(|(name, component, settings)| {
                let name: Arc<str> = name.as_deref().unwrap_or_else(|| component.name()).into();
                let settings = self.settings.for_component(&name, settings);
                let supervision = crate::graph::supervision_of(&*component, &settings).unwrap_or_else(|problem| {
                    policy_problems.push(format!("component `{name}`: {problem}"));
                    Supervision::Shutdown
                });
                Node::new(name, component, settings, supervision)
            })
            .collect();
        let mut disabled = self.disabled;
        disabled.extend(self.settings.components.keys().filter(|n| self.settings.is_disabled(n)).cloned());
        let graph = Arc::new(Graph::build(nodes, &disabled)?);
        policy_problems.extend(graph.restart_problems());
        if !policy_problems.is_empty() {
            return Err(BuildError::Supervision(policy_problems));
        }

        let registry = self.registry.unwrap_or_default();
        // A clean start and stop emits three events per component, two per
        // stop hook it joins and a dozen for the phases; reserving them keeps
        // growth (copying every event so far) off the shutdown path.
        let hooks: usize = graph.nodes.iter().map(|node| node.component().joined_phases().iter().count()).sum();
        let timeline = Timeline::with_capacity(3 * graph.len() + 2 * hooks + 16);
        // The lifecycle metrics read the timeline when scraped: no sink of their own.
        LifecycleMetrics::register(&registry, timeline.clone())?;
        // Events are logged only where a logger was given: formatting them
        // for a logger that discards everything is a cost on every
        // transition with nothing to show for it.
        let mut sinks: Vec<Arc<dyn EventSink>> = Vec::with_capacity(self.sinks.len() + 1);
        if let Some(logger) = &self.logger {
            sinks.push(Arc::new(LogEvents::new(logger.clone())));
        }
        sinks.extend(self.sinks);
        let logger = self.logger.unwrap_or_else(|| slog::Logger::root(slog::Discard, slog::o!()));
        let loggers = graph.nodes.iter().map(|n| logger.new(slog::o!("component" => n.name.to_string()))).collect();
        let graph_len = graph.len();
        let shutdown = self.shutdown.unwrap_or_default();
        let components: std::sync::Weak<dyn ComponentsView> = Arc::downgrade(&graph) as _;
        let shared = Arc::new(Shared {
            health: Health::new(components, shutdown.clone()),
            graph,
            events: Events::new(sinks, timeline.clone()),
            loggers,
            shutdown,
            resources: Resources::default(),
            start_returned: (0..graph_len).map(|_| AtomicBool::new(false)).collect(),
            registry,
            settings: self.settings.shutdown,
            supervision: self.settings.supervision,
            app_restarts: Mutex::default(),
            spawned: (0..graph_len).map(|_| AtomicBool::new(false)).collect(),
            stopped: (0..graph_len).map(|_| std::sync::atomic::AtomicU8::new(0)).collect(),
            announced: (0..graph_len).map(|_| std::sync::atomic::AtomicU8::new(0)).collect(),
            stage: Mutex::new(Stage::NotStarted),
            parked: Mutex::new(NodeSet::empty(graph_len)),
            restart_turn: tokio::sync::Mutex::new(()),
            walks: Walks::default(),
            metric_sets: MetricSets::default(),
        });
        Ok(Runtime { shared, timeline })
    }
}

/// A validated set of components with everything needed to start and stop them.
///
/// Cloning is cheap and gives another handle to the same runtime (the
/// process shell keeps one for its SIGHUP reloads).
#[derive(Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
    timeline: Timeline,
}

impl Runtime {
    /// An empty builder.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// Starts every component along the graph. On failure, the components
    /// that had started are already rolled back when this returns.
    ///
    /// A runtime starts once: a second call returns
    /// [`StartError::AlreadyStarted`] and starts nothing. Then call
    /// [`shutdown`](Self::shutdown) (or use [`run`](Self::run), which does both).
    pub async fn start(&self) -> Result<(), Box<StartError>> {
        {
            let mut stage = self.shared.stage.lock();
            if !matches!(*stage, Stage::NotStarted) {
                return Err(Box::new(StartError::AlreadyStarted));
            }
            *stage = Stage::Starting;
        }
        let enabled = self.shared.enabled();
        let (started, end) = start_all(&self.shared, &enabled).await;
        match end {
            StartEnd::Complete => {
                // `start_all` marked the app running already, before anything
                // waiting for the start woke (a restart may have begun since).
                self.shared.health.set_running();
                Ok(())
            }
            StartEnd::Failed(failure) => {
                let reason = ShutdownReason::ComponentFailed {
                    component: failure.component.clone(),
                    error: failure.error.clone(),
                };
                let rollback = self.roll_back(&started, reason).await;
                Err(Box::new(StartError::Failed { failure, rollback }))
            }
            StartEnd::Interrupted(reason) => {
                Err(Box::new(StartError::Interrupted(self.roll_back(&started, reason).await)))
            }
        }
    }

    async fn roll_back(&self, started: &NodeSet, reason: ShutdownReason) -> ShutdownReport {
        self.shared.shutdown.trigger(reason.clone());
        *self.shared.stage.lock() = Stage::StartFailed(started.clone());
        let report = shut_down(&self.shared, reason).await;
        for i in started.iter() {
            self.shared.events.emit(EventKind::RolledBack.build().component(&self.shared.graph.nodes[i].name));
        }
        report
    }

    /// Runs the five-phase shutdown for every component that runs (a
    /// restart in progress first reaches a point where that is exact).
    /// Calling it again stops nothing twice.
    pub async fn shutdown(&self, reason: ShutdownReason) -> ShutdownReport {
        self.shared.shutdown.trigger(reason.clone());
        shut_down(&self.shared, reason).await
    }

    /// Gives components new config while they run, all or nothing. Each
    /// [`ReloadChange`] is applied in order, in place by the component's
    /// [`reload`](Component::reload) hook or by restarting it with its
    /// dependents. If one cannot be applied, those applied before it are
    /// undone (with the change's copy of the config in force) and the
    /// report names the step that failed. Components enabled or disabled
    /// ([`ReloadChange::enable`], [`ReloadChange::disable`]) start or stop
    /// last, together, along the graph; every problem with them is found
    /// before any step applies. Runs one at a time with restarts, and not
    /// during a shutdown.
    pub async fn reload(&self, changes: Vec<ReloadChange>) -> ReloadReport {
        crate::reload::reload(&self.shared, changes).await
    }

    /// Restarts the component called `name` now, with its dependents,
    /// along the graph, as a failure of it would (but counting against no
    /// limit): they stop through their phases, dependents first, and start
    /// again in order. For an operator who wants a component to reconnect
    /// afresh, and for tests of restartability. Every member must be
    /// [restartable](Component::restartable). Returns the members' names.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// use orderly_core::{BoxError, Component, Restart, Runtime, ShutdownReason, StartContext};
    ///
    /// struct Cache;
    ///
    /// #[orderly_core::component]
    /// impl Component for Cache {
    ///     fn restartable(&self) -> bool { true }
    ///     async fn start(&self, _ctx: &StartContext) -> Result<(), BoxError> { Ok(()) }
    /// }
    ///
    /// let runtime = Runtime::builder().component(Cache).build().unwrap();
    /// runtime.start().await.unwrap();
    /// assert_eq!(runtime.restart("cache", "a test").await.unwrap(), "`cache`");
    /// runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    /// # });
    /// ```
    pub async fn restart(&self, name: &str, why: &str) -> Result<String, String> {
        let i = self.shared.graph.index_of(name).ok_or_else(|| format!("no component is called `{name}`"))?;
        crate::restart::restart_on_request(&self.shared, i, why).await
    }

    /// Starts, waits for a shutdown request, and shuts down.
    pub async fn run(&self) -> RunOutcome {
        if let Err(error) = self.start().await {
            match *error {
                StartError::Failed { failure, rollback } => return RunOutcome::StartFailed { failure, rollback },
                StartError::Interrupted(report) => return RunOutcome::Interrupted(report),
                // Started by an earlier `start`: run waits for its shutdown request.
                StartError::AlreadyStarted => {}
            }
        }
        let reason = self.shared.shutdown.wait().await;
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
        self.shared.lifecycle()
    }

    /// The dependency graph as Mermaid or DOT.
    pub fn render_graph(&self, format: GraphFormat) -> String {
        self.shared.graph.render(format)
    }

    /// The overall shutdown deadline in force.
    pub fn shutdown_deadline(&self) -> std::time::Duration {
        self.shared.settings.deadline
    }

    /// The names of the components the app runs (the enabled ones), in
    /// graph order (sorted). A reload that enables or disables one changes it.
    pub fn component_names(&self) -> Vec<&str> {
        self.shared.graph.nodes.iter().filter(|n| n.enabled()).map(|n| &*n.name).collect()
    }

    /// The names of the components config disabled that a reload could
    /// enable, in graph order.
    pub fn disabled_components(&self) -> Vec<&str> {
        self.shared.graph.nodes.iter().filter(|n| !n.enabled()).map(|n| &*n.name).collect()
    }

    /// The components `name` depends on that are enabled (its edges in
    /// the graph, optional ones that are present included), in name order;
    /// `None` if there is no such component.
    pub fn dependencies_of(&self, name: &str) -> Option<Vec<&str>> {
        let graph = &self.shared.graph;
        let i = graph.index_of(name)?;
        Some(
            graph.dependencies[i]
                .iter()
                .filter(|&&j| graph.nodes[j].enabled())
                .map(|&j| &*graph.nodes[j].name)
                .collect(),
        )
    }

    /// The lifecycle settings applied to `name` now.
    pub fn component_settings(&self, name: &str) -> Option<ComponentSettings> {
        self.shared.graph.index_of(name).map(|i| self.shared.graph.nodes[i].settings())
    }

    /// Checks new lifecycle settings (a reload of `[components.<name>]` or
    /// `[start]`) without applying them: every problem, each naming its
    /// component. `enabled` is checked too, the new set of enabled
    /// components as a whole (each one's required dependencies enabled, the
    /// restart policies holding over it); enabling or disabling is done by
    /// [`reload`](Self::reload) with [`ReloadChange::enable`] and
    /// [`ReloadChange::disable`].
    pub fn check_settings(&self, changes: &[(String, ComponentSettings)]) -> Result<(), Vec<String>> {
        crate::reload::resolve_settings(&self.shared, changes).map(drop)
    }

    /// Puts new lifecycle settings in force, all or none: start and ready
    /// timeouts, the stop cap, start retries, the failure policy, the
    /// restart type and limits. A start, stop or restart that has begun
    /// keeps the settings it began with; the next one takes the new. Checked
    /// first as [`check_settings`](Self::check_settings) does; each change
    /// is a `reloaded` event. Whether a component is enabled is left as it
    /// is: [`reload`](Self::reload) starts or stops it.
    pub async fn reload_settings(&self, changes: Vec<(String, ComponentSettings)>) -> Result<(), Vec<String>> {
        crate::reload::reload_settings(&self.shared, &changes).await
    }
}

/// What a component's contexts ask of the running app, answered from the
/// shared state; a background task's end is where supervision begins.
impl Host for Shared {
    fn name(&self, i: usize) -> &Arc<str> {
        &self.graph.nodes[i].name
    }

    fn logger(&self, i: usize) -> &slog::Logger {
        &self.loggers[i]
    }

    fn metrics_registry(&self) -> &prometheus::Registry {
        &self.registry
    }

    fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    fn lifecycle(&self) -> Lifecycle {
        Shared::lifecycle(self)
    }

    fn len(&self) -> usize {
        self.graph.len()
    }

    fn declared(&self, i: usize) -> &[usize] {
        &self.graph.dependencies[i]
    }

    fn enabled(&self, j: usize) -> bool {
        self.graph.nodes[j].enabled()
    }

    fn starts_again(&self, i: usize) -> bool {
        self.graph.nodes[i].supervised.starts_again.load(std::sync::atomic::Ordering::Acquire)
            && !self.shutdown.is_requested()
    }

    fn instance(&self, j: usize) -> AnyArc {
        self.graph.nodes[j].component()
    }

    fn resources(&self) -> &Resources {
        &self.resources
    }

    fn run_of(&self, i: usize) -> u64 {
        self.graph.nodes[i].supervised.generation()
    }

    fn run_tasks(&self, i: usize) -> &Arc<RunTasks> {
        // Its run now has something to end (a task, or a token a task may watch).
        self.spawned[i].store(true, std::sync::atomic::Ordering::Release);
        &self.graph.nodes[i].supervised.tasks
    }

    fn announce_stop(&self, i: usize, phase: crate::phase::StopPhase, began: std::time::Instant) {
        Shared::announce_stop(self, i, phase, began);
    }

    fn walks(&self) -> &Walks {
        &self.walks
    }

    fn metric_sets(&self) -> &MetricSets {
        &self.metric_sets
    }

    /// Applies component `i`'s failure policy to the end of one of its
    /// background tasks, started in its run `run`.
    fn task_ended(self: Arc<Self>, i: usize, run: u64, end: TaskEnd) {
        let node = &self.graph.nodes[i];
        // A task of an earlier run ended with it (a restart, a retry, the
        // shutdown): its end is no failure of the component's.
        if run != node.supervised.generation() {
            return;
        }
        let (error, restart) = match (end, node.supervision()) {
            (TaskEnd::Finished, Supervision::Restart { on_clean_exit: true }) => {
                ("its background task returned, and it is permanent".to_string(), true)
            }
            (TaskEnd::Finished, _) => return,
            (TaskEnd::Failed(error), supervision) => (error, supervision.restarts()),
        };
        // During start, a failure fails the start at once; once the app
        // runs, a failure is attributed along the graph first (`restart.rs`).
        let running = self.is_running();
        match node.supervision() {
            Supervision::Ignore => {
                *node.supervised.condition.lock() =
                    Some(Condition::Degraded(format!("failed while running (ignored): {error}")));
                self.events.emit(
                    EventKind::Failed
                        .build()
                        .component(&node.name)
                        .error(error)
                        .detail("on_failure = ignore: the app goes on, the component is degraded"),
                );
            }
            _ if running => {
                let consequence = if restart { Consequence::Restart } else { Consequence::Shutdown };
                crate::restart::request(&self, i, run, error, consequence);
            }
            _ => {
                self.shutdown.trigger(ShutdownReason::ComponentFailed { component: node.name.to_string(), error });
            }
        }
    }
}
