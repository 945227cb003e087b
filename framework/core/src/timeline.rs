//! An in-memory record of every lifecycle event, for tests and for the
//! admin endpoint that draws the lifecycle.
//!
//! Events as data: it names only the event vocabulary; it never renders (the
//! SVG is the process shell's).

use std::sync::Arc;

use parking_lot::Mutex;

use crate::event::{EventKind, EventSink, LifecycleEvent};
use crate::phase::Phase;

/// Every lifecycle event, in the order it was emitted. Cheap to clone; all
/// clones share one record.
#[derive(Clone, Default, Debug)]
pub struct Timeline {
    events: Arc<Mutex<Vec<LifecycleEvent>>>,
}

impl Timeline {
    /// An empty timeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty timeline with room for `events` events before it grows.
    pub fn with_capacity(events: usize) -> Self {
        Self { events: Arc::new(Mutex::new(Vec::with_capacity(events))) }
    }

    /// A copy of every event so far.
    pub fn events(&self) -> Vec<LifecycleEvent> {
        self.events.lock().clone()
    }

    /// The timeline as a JSON array.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(&*self.events.lock()).unwrap_or(serde_json::Value::Null)
    }

    /// The index of the first event matching `component`, `event` and `phase`.
    pub fn position(&self, component: &str, event: EventKind, phase: Option<Phase>) -> Option<usize> {
        self.events.lock().iter().position(|e| {
            e.component.as_deref() == Some(component) && e.event == event && (phase.is_none() || e.phase == phase)
        })
    }

    /// Every event of one kind, in order.
    pub fn of_kind(&self, event: EventKind) -> Vec<LifecycleEvent> {
        self.events.lock().iter().filter(|e| e.event == event).cloned().collect()
    }
}

impl Timeline {
    /// Runs `f` on every event so far, under the lock (no copy).
    pub(crate) fn read<R>(&self, f: impl FnOnce(&[LifecycleEvent]) -> R) -> R {
        f(&self.events.lock())
    }

    /// Keeps an event the runtime has finished delivering.
    pub(crate) fn record(&self, event: LifecycleEvent) {
        self.events.lock().push(event);
    }
}

/// A timeline can also be attached as an extra sink (for example a second
/// one kept by a test); the runtime's own is fed by value.
impl EventSink for Timeline {
    fn on_event(&self, event: &LifecycleEvent) {
        self.record(event.clone());
    }
}
