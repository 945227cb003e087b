//! What a component may see of the app's lifecycle as a whole: the health
//! that probes report, the timeline of events, and the dependency graph.
//! The management server and the tracing exporter are built on it.

use std::sync::{Arc, Weak};
use std::time::SystemTime;

use crate::graph::{Graph, GraphFormat};
use crate::health::Health;
use crate::runtime::Shared;
use crate::timeline::Timeline;

/// A cheap, cloneable view of the app's lifecycle.
///
/// It holds the graph weakly, so a component may keep one without keeping
/// the runtime (and itself) alive.
#[derive(Clone)]
pub struct Lifecycle {
    health: Health,
    timeline: Timeline,
    epoch: SystemTime,
    graph: Weak<Graph>,
}

impl Lifecycle {
    pub(crate) fn of(shared: &Shared) -> Self {
        Self {
            health: shared.health.clone(),
            timeline: shared.events.timeline().clone(),
            epoch: shared.events.epoch_wall(),
            graph: Arc::downgrade(&shared.graph),
        }
    }

    /// State, startup and readiness, as probes see them.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Every lifecycle event so far.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The wall-clock time that events' `at` is measured from.
    pub fn epoch(&self) -> SystemTime {
        self.epoch
    }

    /// The dependency graph as Mermaid or DOT; `None` once the runtime is gone.
    pub fn render_graph(&self, format: GraphFormat) -> Option<String> {
        self.graph.upgrade().map(|graph| graph.render(format))
    }
}
