//! [`ComponentsView`]: what probes and the lifecycle view may ask of the
//! running components (their readiness, the graph's drawing) without
//! naming the graph that holds them. The graph implements it
//! (`graph.rs`); [`Health`](crate::health::Health) and
//! [`Lifecycle`](crate::Lifecycle) hold it weakly.
//!
//! Part of the model: it names only [`Readiness`].

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::readiness::Readiness;

/// A text format for drawing the graph. Edges point from a component to
/// what it depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphFormat {
    /// Mermaid flowchart (renders on GitHub and in most docs tools).
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

impl std::str::FromStr for GraphFormat {
    type Err = String;

    /// `mermaid` or `dot`, as the command line spells them.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mermaid" => Ok(GraphFormat::Mermaid),
            "dot" => Ok(GraphFormat::Dot),
            other => Err(format!("unknown graph format `{other}`; expected `mermaid` or `dot`")),
        }
    }
}

/// Each component's answer to a readiness probe, in graph order.
pub(crate) type Answers<'a> = Pin<Box<dyn Future<Output = Vec<(String, Readiness)>> + Send + 'a>>;

/// Each component that is not alive, with why, in graph order.
pub(crate) type Dead<'a> = Pin<Box<dyn Future<Output = Vec<(String, String)>> + Send + 'a>>;

/// The running components, as probes and the lifecycle view see them.
pub(crate) trait ComponentsView: Send + Sync {
    /// Asks every component's `ready` concurrently, each within
    /// `per_component` (one being restarted is not asked).
    fn readiness(&self, per_component: Duration) -> Answers<'_>;

    /// Asks every component's `live` concurrently, each within
    /// `per_component` (one being restarted is not asked); those that are
    /// not alive, with why.
    fn dead(&self, per_component: Duration) -> Dead<'_> {
        let _ = per_component;
        Box::pin(async { Vec::new() })
    }

    /// The dependency graph as text.
    fn render(&self, format: GraphFormat) -> String;
}
