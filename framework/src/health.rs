//! The app's state as probes see it: started, ready, shutting down.
//!
//! Readiness flips to not-ready on the first moment of shutdown, before any
//! phase runs, and stays answerable through the whole drain.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;
use serde::Serialize;

use crate::component::Readiness;
use crate::graph::Graph;

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
#[derive(Clone)]
pub struct Health {
    state: Arc<AtomicU8>,
    graph: Arc<Graph>,
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
    pub(crate) fn new(graph: Arc<Graph>) -> Self {
        Self { state: Arc::new(AtomicU8::new(AppState::Starting as u8)), graph }
    }

    /// The current state.
    pub fn state(&self) -> AppState {
        match self.state.load(Ordering::Acquire) {
            0 => AppState::Starting,
            1 => AppState::Running,
            2 => AppState::ShuttingDown,
            _ => AppState::Stopped,
        }
    }

    /// Startup probe: every component started and was ready once.
    pub fn is_started(&self) -> bool {
        self.state() != AppState::Starting
    }

    /// Readiness: asks every component's `ready` concurrently, each within
    /// `per_component`; a component that does not answer in time is not
    /// ready. Not ready at all outside [`AppState::Running`].
    pub async fn readiness(&self, per_component: Duration) -> ReadinessReport {
        let state = self.state();
        if state != AppState::Running {
            return ReadinessReport { ready: false, state, components: Vec::new() };
        }
        let answers = join_all(self.graph.nodes.iter().map(|node| async move {
            let readiness = tokio::time::timeout(per_component, node.component.ready())
                .await
                .unwrap_or_else(|_| Readiness::NotReady(format!("ready() did not answer within {per_component:?}")));
            (node.name.to_string(), readiness)
        }))
        .await;
        // A shutdown may have begun while the components answered; read the
        // state once so the report never says ready while shutting down.
        let state = self.state();
        let ready = state == AppState::Running && answers.iter().all(|(_, r)| r.is_ready());
        ReadinessReport { ready, state, components: answers }
    }

    pub(crate) fn set_running(&self) {
        self.state.store(AppState::Running as u8, Ordering::Release);
    }

    pub(crate) fn begin_shutdown(&self) {
        self.state.store(AppState::ShuttingDown as u8, Ordering::Release);
    }

    pub(crate) fn finish_shutdown(&self) {
        self.state.store(AppState::Stopped as u8, Ordering::Release);
    }
}
