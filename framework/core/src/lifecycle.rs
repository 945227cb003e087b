//! What a component may see of the app's lifecycle as a whole: the health
//! that probes report, the timeline of events, and the dependency graph.
//! The management server and the tracing exporter are built on it.
//!
//! Part of the model's view of the running app: it holds the components
//! through [`ComponentsView`], never the graph or the runtime.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::SystemTime;

pub use crate::debug_page::DebugPage;
use crate::health::Health;
use crate::timeline::Timeline;
use crate::view::{ComponentsView, GraphFormat};

/// A cheap, cloneable view of the app's lifecycle.
///
/// It holds the components weakly, so a component may keep one without
/// keeping the runtime (and itself) alive.
#[derive(Clone)]
pub struct Lifecycle {
    health: Health,
    timeline: Timeline,
    epoch: SystemTime,
    components: Weak<dyn ComponentsView>,
}

impl Lifecycle {
    pub(crate) fn new(
        health: Health,
        timeline: Timeline,
        epoch: SystemTime,
        components: Weak<dyn ComponentsView>,
    ) -> Self {
        Self { health, timeline, epoch, components }
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

    /// Says where the app serves `what` (`"api"`, `"probes"`), for the one
    /// line the app logs once it is ready: a person starting it reads there
    /// where to point a browser or a probe.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let runtime = orderly_core::Runtime::builder().build().unwrap();
    /// runtime.lifecycle().announce_endpoint("api", "http://127.0.0.1:8080");
    /// assert_eq!(runtime.health().endpoints(), [("api".to_string(), "http://127.0.0.1:8080".to_string())]);
    /// # });
    /// ```
    pub fn announce_endpoint(&self, what: &str, url: impl Into<String>) {
        self.health.announce_endpoint(what, url.into());
    }

    /// Adds (or, from a component's next run, replaces) the page
    /// `/debug/<name>` of the management server, which shows what `page`
    /// returns, behind the same gate as `/debug/lifecycle`: a component's
    /// own state for the operator who is looking into it.
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let runtime = orderly_core::Runtime::builder().build().unwrap();
    /// let lifecycle = runtime.lifecycle();
    /// lifecycle.add_debug_page("jobs", || async { serde_json::json!({ "ready": 3 }) });
    /// assert_eq!(lifecycle.debug_pages(), ["jobs"]);
    /// let page = lifecycle.debug_page("jobs").unwrap();
    /// assert_eq!(page().await["ready"], 3);
    /// # });
    /// ```
    pub fn add_debug_page<F, Fut>(&self, name: &str, page: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = serde_json::Value> + Send + 'static,
    {
        let page: DebugPage = Arc::new(move || Box::pin(page()));
        self.health.add_debug_page(name, page);
    }

    /// The page `/debug/<name>`, if a component added one.
    pub fn debug_page(&self, name: &str) -> Option<DebugPage> {
        self.health.debug_page(name)
    }

    /// The names of the pages components added, in order.
    pub fn debug_pages(&self) -> Vec<String> {
        self.health.debug_page_names()
    }

    /// The dependency graph as Mermaid or DOT; `None` once the runtime is gone.
    pub fn render_graph(&self, format: GraphFormat) -> Option<String> {
        self.components.upgrade().map(|components| components.render(format))
    }
}
