//! An in-memory record of every lifecycle event, for tests and for the
//! admin endpoint that draws the lifecycle.
//!
//! Events as data: it names only the event vocabulary; it never renders (the
//! SVG is the process shell's).

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::event::{EventKind, EventSink, LifecycleEvent};
use crate::phase::Phase;
use crate::tally::Tally;

/// How many events past the kept start a timeline holds by default.
const RECENT: usize = 16_384;

/// The lifecycle events, in the order they were emitted. Cheap to clone;
/// all clones share one record.
///
/// Bounded, so that a long run of restarts and reloads cannot grow it
/// without end: it keeps its first events (the start, by the runtime's
/// sizing) and the latest ones. When it is full, each new event drops the
/// oldest one after the start; the metrics computed from the timeline keep
/// counting those (they are added up first), and [`dropped`](Self::dropped)
/// says how many went.
#[derive(Clone, Debug)]
pub struct Timeline {
    record: Arc<Mutex<Record>>,
}

#[derive(Debug, Default)]
struct Record {
    /// The first events, never dropped.
    head: Vec<LifecycleEvent>,
    /// How many events `head` keeps.
    head_limit: usize,
    /// The events after the head, the oldest first: a ring, so that
    /// dropping one moves nothing and costs every event the same.
    recent: VecDeque<LifecycleEvent>,
    /// How many events `recent` keeps.
    recent_limit: usize,
    /// What the dropped events added up to.
    dropped: Tally,
    dropped_count: u64,
}

impl Default for Timeline {
    fn default() -> Self {
        Self::bounded(0, RECENT)
    }
}

impl Timeline {
    /// An empty timeline with the default bound.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty timeline with room for `events` events before it grows,
    /// keeping those first `events` for good and up to the default number
    /// of later ones.
    pub fn with_capacity(events: usize) -> Self {
        Self::bounded(events, RECENT)
    }

    /// An empty timeline that keeps its first `head` events and, after
    /// them, up to `recent` more.
    pub fn bounded(head: usize, recent: usize) -> Self {
        let record = Record {
            head: Vec::with_capacity(head),
            head_limit: head,
            recent: VecDeque::new(),
            recent_limit: recent.max(1),
            dropped: Tally::default(),
            dropped_count: 0,
        };
        Self { record: Arc::new(Mutex::new(record)) }
    }

    /// A copy of every event kept.
    pub fn events(&self) -> Vec<LifecycleEvent> {
        self.record.lock().iter().cloned().collect()
    }

    /// How many events were dropped to keep it within its bound.
    pub fn dropped(&self) -> u64 {
        self.record.lock().dropped_count
    }

    /// The timeline as a JSON array.
    pub fn to_json(&self) -> serde_json::Value {
        let record = self.record.lock();
        serde_json::to_value(record.iter().collect::<Vec<_>>()).unwrap_or(serde_json::Value::Null)
    }

    /// The index of the first event matching `component`, `event` and `phase`.
    pub fn position(&self, component: &str, event: EventKind, phase: Option<Phase>) -> Option<usize> {
        self.record.lock().iter().position(|e| {
            e.component.as_deref() == Some(component) && e.event == event && (phase.is_none() || e.phase == phase)
        })
    }

    /// Every event of one kind, in order.
    pub fn of_kind(&self, event: EventKind) -> Vec<LifecycleEvent> {
        self.record.lock().iter().filter(|e| e.event == event).cloned().collect()
    }
}

impl Timeline {
    /// What every event so far adds up to, those dropped included.
    pub(crate) fn tally(&self) -> Tally {
        let record = self.record.lock();
        let mut tally = Tally::of(record.iter());
        tally.merge(&record.dropped);
        tally
    }

    /// Keeps an event the runtime has finished delivering.
    pub(crate) fn record(&self, event: LifecycleEvent) {
        let dropped = self.record.lock().push(event);
        // Freed outside the lock.
        drop(dropped);
    }
}

impl Record {
    /// Keeps `event`; returns the one it drops, if the timeline is full,
    /// added up first.
    fn push(&mut self, event: LifecycleEvent) -> Option<LifecycleEvent> {
        if self.head.len() < self.head_limit {
            self.head.push(event);
            return None;
        }
        let dropped = if self.recent.len() >= self.recent_limit { self.recent.pop_front() } else { None };
        if let Some(old) = &dropped {
            self.dropped.add(old);
            self.dropped_count += 1;
        }
        self.recent.push_back(event);
        dropped
    }

    /// Every event kept, in order.
    fn iter(&self) -> impl Iterator<Item = &LifecycleEvent> {
        self.head.iter().chain(self.recent.iter())
    }
}

/// A timeline can also be attached as an extra sink (for example a second
/// one kept by a test); the runtime's own is fed by value.
impl EventSink for Timeline {
    fn on_event(&self, event: &LifecycleEvent) {
        self.record(event.clone());
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn event(n: u64) -> LifecycleEvent {
        LifecycleEvent {
            at: Duration::from_millis(n),
            component: Some(Arc::from("db")),
            phase: Some(Phase::Start),
            event: EventKind::Started,
            elapsed: Some(Duration::from_millis(1)),
            error: None,
            detail: None,
        }
    }

    #[test]
    fn it_keeps_the_start_and_the_latest_events_and_counts_the_dropped_ones() {
        let timeline = Timeline::bounded(3, 10);
        for n in 0..100 {
            timeline.record(event(n));
        }
        let kept: Vec<u64> = timeline.events().iter().map(|e| e.at.as_millis() as u64).collect();
        let latest: Vec<u64> = (90..100).collect();
        assert_eq!(&kept[..3], [0, 1, 2], "the head is kept");
        assert_eq!(&kept[3..], latest, "the latest ten are kept, in order");
        assert_eq!(timeline.dropped() as usize + kept.len(), 100);
        assert_eq!(timeline.tally().start()["db"].count, 100, "the metrics still count every event");
    }
}
