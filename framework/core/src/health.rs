//! The app's state as probes see it: started, ready, shutting down.
//!
//! Readiness flips to not-ready on the first moment of shutdown, before any
//! phase runs, and stays answerable through the whole drain.
//!
//! Above the model, beside the graph: it reaches the components only through
//! `ComponentsView`, never the graph or the runtime.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::Serialize;

use crate::readiness::Readiness;
use crate::trigger::Shutdown;
use crate::view::ComponentsView;

/// Where the app is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AppState {
    /// Components are starting; not ready, startup probe fails.
    Starting = 0,
    /// Every component started and was ready once.
    Running = 1,
    /// A shutdown began; not ready, but alive.
    ShuttingDown = 2,
    /// The shutdown finished.
    Stopped = 3,
}

/// A cheap, cloneable view of the app's state for probes.
///
/// It holds the components weakly: components keep a `Health` (the
/// management server does), and the graph holds the components.
#[derive(Clone)]
pub struct Health {
    state: Arc<State>,
    components: Weak<dyn ComponentsView>,
    /// Readiness is withdrawn the moment a shutdown is requested (by the
    /// signal task itself), before the shutdown sequence gets to run.
    shutdown: Shutdown,
}

#[derive(Default)]
struct State {
    value: AtomicU8,
    changed: tokio::sync::Notify,
    /// Where the app serves, as its components announced it: (what, URL).
    endpoints: parking_lot::Mutex<Vec<(String, String)>>,
    /// `/debug/<name>` pages added by components (`Lifecycle::add_debug_page`).
    debug_pages: parking_lot::Mutex<std::collections::BTreeMap<String, crate::debug_page::DebugPage>>,
}

/// The answer to a liveness probe.
#[derive(Debug, Clone, Serialize)]
pub struct LivenessReport {
    /// Whether the process is worth keeping: every component is alive.
    pub alive: bool,
    /// The app's state.
    pub state: AppState,
    /// Each component that is not alive, with why (empty when alive).
    pub dead: Vec<(String, String)>,
}

/// The answer to a readiness probe.
#[derive(Debug, Clone, Serialize)]
pub struct ReadinessReport {
    /// Whether the app as a whole takes traffic.
    pub ready: bool,
    /// The app's state.
    pub state: AppState,
    /// Each component's own answer (empty unless the app is running).
    pub components: Vec<(String, Readiness)>,
}

impl Health {
    pub(crate) fn new(components: Weak<dyn ComponentsView>, shutdown: Shutdown) -> Self {
        Self { state: Arc::default(), components, shutdown }
    }

    /// The state as a probe must see it: shutting down once one is requested.
    fn probed_state(&self) -> AppState {
        match self.state() {
            AppState::Running if self.shutdown.is_requested() => AppState::ShuttingDown,
            state => state,
        }
    }

    /// The current state.
    pub fn state(&self) -> AppState {
        match self.state.value.load(Ordering::Acquire) {
            0 => AppState::Starting,
            1 => AppState::Running,
            2 => AppState::ShuttingDown,
            _ => AppState::Stopped,
        }
    }

    /// Whether a shutdown has been asked for (by a signal, a failure or a
    /// component), even before the runtime's state says so.
    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_requested() || matches!(self.state(), AppState::ShuttingDown | AppState::Stopped)
    }

    /// Resolves once a shutdown has been asked for: work that could delay
    /// the shutdown (a long profile, a slow report) races it and gives up.
    pub async fn shutting_down(&self) {
        self.shutdown.wait().await;
    }

    /// Startup probe: every component started and was ready once.
    pub fn is_started(&self) -> bool {
        self.state() != AppState::Starting
    }

    /// Readiness: asks every component's `ready` concurrently, each within
    /// `per_component`; a component that does not answer in time is not
    /// ready. Not ready at all outside [`AppState::Running`], nor once a
    /// shutdown was requested.
    pub async fn readiness(&self, per_component: Duration) -> ReadinessReport {
        let state = self.probed_state();
        let components = match self.components.upgrade() {
            Some(components) if state == AppState::Running => components,
            _ => return ReadinessReport { ready: false, state, components: Vec::new() },
        };
        let answers = components.readiness(per_component).await;
        // A shutdown may have begun while the components answered; read the
        // state once so the report never says ready while shutting down.
        let state = self.probed_state();
        let ready = state == AppState::Running && answers.iter().all(|(_, r)| r.is_ready());
        ReadinessReport { ready, state, components: answers }
    }

    /// Liveness: asks every component's [`live`](crate::Component::live)
    /// concurrently, each within `per_component`; one that errs or does not
    /// answer in time is dead. Only while the app runs: starting and
    /// shutting down are alive by definition (their own timeouts and
    /// deadline bound them), and the process that answers is alive.
    pub async fn liveness(&self, per_component: Duration) -> LivenessReport {
        let state = self.probed_state();
        let dead = match self.components.upgrade() {
            Some(components) if state == AppState::Running => components.dead(per_component).await,
            _ => Vec::new(),
        };
        LivenessReport { alive: dead.is_empty(), state, dead }
    }

    /// Waits until every component has started and been ready once:
    /// `true`, or `false` if a shutdown began first (start failed, or a
    /// signal came during start). Servers use it to take traffic only once
    /// the whole app is up.
    pub async fn started(&self) -> bool {
        loop {
            // Register interest before reading the state, so a change in
            // between is not missed.
            let changed = self.state.changed.notified();
            let mut changed = std::pin::pin!(changed);
            changed.as_mut().enable();
            match self.state() {
                AppState::Starting => changed.await,
                AppState::Running => return true,
                AppState::ShuttingDown | AppState::Stopped => return false,
            }
        }
    }

    /// Records where the app serves `what` (a component's listener, its
    /// probes), replacing an earlier URL for the same `what` (a restart
    /// that bound again).
    pub(crate) fn announce_endpoint(&self, what: &str, url: String) {
        let mut endpoints = self.state.endpoints.lock();
        match endpoints.iter_mut().find(|(w, _)| w == what) {
            Some(entry) => entry.1 = url,
            None => endpoints.push((what.to_string(), url)),
        }
    }

    pub(crate) fn add_debug_page(&self, name: &str, page: crate::debug_page::DebugPage) {
        self.state.debug_pages.lock().insert(name.to_owned(), page);
    }

    pub(crate) fn debug_page(&self, name: &str) -> Option<crate::debug_page::DebugPage> {
        self.state.debug_pages.lock().get(name).cloned()
    }

    pub(crate) fn debug_page_names(&self) -> Vec<String> {
        self.state.debug_pages.lock().keys().cloned().collect()
    }

    /// Where the app serves, in the order it was announced.
    pub fn endpoints(&self) -> Vec<(String, String)> {
        self.state.endpoints.lock().clone()
    }

    fn set(&self, state: AppState) {
        self.state.value.store(state as u8, Ordering::Release);
        self.state.changed.notify_waiters();
    }

    pub(crate) fn set_running(&self) {
        self.set(AppState::Running);
    }

    pub(crate) fn begin_shutdown(&self) {
        self.set(AppState::ShuttingDown);
    }

    pub(crate) fn finish_shutdown(&self) {
        self.set(AppState::Stopped);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::view::{Answers, GraphFormat};

    /// An app with no components: every probe's answer is the app's state.
    struct NoComponents;

    impl ComponentsView for NoComponents {
        fn readiness(&self, _per_component: Duration) -> Answers<'_> {
            Box::pin(async { Vec::new() })
        }

        fn render(&self, _format: GraphFormat) -> String {
            String::new()
        }
    }

    fn health_with(shutdown: Shutdown) -> (Health, Arc<dyn ComponentsView>) {
        let components: Arc<dyn ComponentsView> = Arc::new(NoComponents);
        (Health::new(Arc::downgrade(&components), shutdown), components)
    }

    fn health() -> (Health, Arc<dyn ComponentsView>) {
        health_with(Shutdown::new())
    }

    #[tokio::test]
    async fn readiness_is_withdrawn_as_soon_as_a_shutdown_is_requested() {
        let shutdown = Shutdown::new();
        let (health, _components) = health_with(shutdown.clone());
        health.set_running();
        assert!(health.readiness(Duration::from_secs(1)).await.ready);
        // Requested, but the shutdown sequence has not begun yet.
        shutdown.request("test", "a signal");
        let report = health.readiness(Duration::from_secs(1)).await;
        assert!(!report.ready);
        assert_eq!(report.state, AppState::ShuttingDown);
    }

    #[tokio::test]
    async fn started_waits_for_running() {
        let (health, _graph) = health();
        let waiter = tokio::spawn({
            let health = health.clone();
            async move { health.started().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "must wait while starting");
        health.set_running();
        assert!(waiter.await.unwrap());
    }

    #[tokio::test]
    async fn started_is_false_when_shutdown_comes_first() {
        let (health, _graph) = health();
        let waiter = tokio::spawn({
            let health = health.clone();
            async move { health.started().await }
        });
        tokio::task::yield_now().await;
        health.begin_shutdown();
        assert!(!waiter.await.unwrap());
    }

    #[tokio::test]
    async fn readiness_is_not_ready_once_the_graph_is_gone() {
        let (health, graph) = health();
        health.set_running();
        drop(graph);
        assert!(!health.readiness(Duration::from_millis(10)).await.ready);
    }
}
