//! The fan-out of lifecycle events: stamps each event with the clock every
//! sink shares, hands it to each sink, and keeps it in the timeline.
//!
//! The engine, supervision and the runtime emit through it; it names only
//! the event vocabulary and the timeline below it.

use std::sync::Arc;
use std::time::Instant;

use crate::event::{EventBuilder, EventSink, LifecycleEvent};
use crate::timeline::Timeline;

/// The fan-out of events to every sink, with the clock they share.
#[derive(Clone)]
pub(crate) struct Events {
    epoch: Instant,
    /// The wall-clock time of `epoch`, so exporters can place events in time.
    epoch_wall: std::time::SystemTime,
    sinks: Arc<[Arc<dyn EventSink>]>,
    /// Served last, by value: it keeps the event, so it need not copy it.
    timeline: Timeline,
}

impl Events {
    pub(crate) fn new(sinks: Vec<Arc<dyn EventSink>>, timeline: Timeline) -> Self {
        Self { epoch: Instant::now(), epoch_wall: std::time::SystemTime::now(), sinks: sinks.into(), timeline }
    }

    pub(crate) fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    pub(crate) fn epoch_wall(&self) -> std::time::SystemTime {
        self.epoch_wall
    }

    pub(crate) fn emit(&self, builder: EventBuilder) {
        let event = LifecycleEvent {
            at: builder.at.unwrap_or_else(Instant::now).saturating_duration_since(self.epoch),
            component: builder.component,
            phase: builder.phase,
            event: builder.event,
            elapsed: builder.elapsed,
            error: builder.error,
            detail: builder.detail,
        };
        for sink in self.sinks.iter() {
            sink.on_event(&event);
        }
        self.timeline.record(event);
    }
}
