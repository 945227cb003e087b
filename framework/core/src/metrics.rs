//! Lifecycle metrics, on the runtime's own Prometheus registry (never the
//! process-global one, so parallel tests do not collide).
//!
//! Recording costs nothing on the lifecycle's path: the runtime's timeline
//! already keeps the events, so the metrics are computed from it each time
//! the registry is gathered: its events, plus the tally of those it no
//! longer keeps (it is bounded). A scrape reads at most the timeline's bound.

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Bucket, Counter, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::Registry;
use std::collections::BTreeMap;

use crate::event::EventKind;
use crate::tally::{Histogram, BUCKETS};
use crate::timeline::Timeline;

/// Turns the timeline's lifecycle events into Prometheus metrics:
///
/// - `orderly_component_start_seconds{component}`: `start`, retries included;
/// - `orderly_component_ready_seconds{component}`: from `start` returning to ready;
/// - `orderly_shutdown_phase_seconds{phase}`: each stop phase;
/// - `orderly_component_stop_seconds{component,phase}`: each stop hook, also when it failed or was abandoned;
/// - `orderly_lifecycle_events_total{event}`: every transition;
/// - `orderly_component_failures_total{component}`: failures while running
///   that the component's policy let the app survive (`on_failure = "ignore"`);
/// - `orderly_component_restarts_total{component}`: restarts begun.
pub(crate) struct LifecycleMetrics {
    timeline: Timeline,
    descs: [Desc; 7],
}

impl LifecycleMetrics {
    /// Registers on `registry` the metrics of the events `timeline` keeps.
    pub(crate) fn register(registry: &Registry, timeline: Timeline) -> Result<(), prometheus::Error> {
        let desc = |name: &str, help: &str, labels: &[&str]| {
            Desc::new(name.into(), help.into(), labels.iter().map(|l| l.to_string()).collect(), Default::default())
        };
        let descs = [
            desc(
                "orderly_component_start_seconds",
                "Time a component's start took, retries included.",
                &["component"],
            )?,
            desc(
                "orderly_component_ready_seconds",
                "Time from a component's start returning to it reporting ready.",
                &["component"],
            )?,
            desc("orderly_shutdown_phase_seconds", "Time each stop phase took.", &["phase"])?,
            desc(
                "orderly_component_stop_seconds",
                "Time a component's stop hook took, per phase.",
                &["component", "phase"],
            )?,
            desc("orderly_lifecycle_events_total", "Lifecycle transitions, by event.", &["event"])?,
            desc(
                "orderly_component_failures_total",
                "Failures of a component while running that the app survived (on_failure = ignore).",
                &["component"],
            )?,
            desc(
                "orderly_component_restarts_total",
                "Restarts of a component after it failed while running (its dependents restart with it).",
                &["component"],
            )?,
        ];
        registry.register(Box::new(Self { timeline, descs }))
    }
}

impl Collector for LifecycleMetrics {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let s = self.timeline.tally();
        let by_component = |histograms: BTreeMap<&str, Histogram>| {
            histograms.into_iter().map(|(c, h)| histogram(&[("component", c.to_string())], &h)).collect()
        };
        let start = by_component(s.start());
        let ready = by_component(s.ready());
        let phase = s.phases().iter().map(|(p, h)| histogram(&[("phase", p.as_str().to_string())], h)).collect();
        let stop = s
            .stop()
            .into_iter()
            .map(|((c, p), h)| histogram(&[("component", c.to_string()), ("phase", p.as_str().to_string())], &h))
            .collect();
        let events: Vec<Metric> = EventKind::ALL
            .iter()
            .zip(s.events())
            .map(|(kind, &count)| counter(&[("event", kind.as_str().to_string())], count))
            .collect();
        let per_component = |counts: BTreeMap<&str, u64>| {
            counts.into_iter().map(|(c, n)| counter(&[("component", c.to_string())], n)).collect()
        };
        let failures = per_component(s.failures());
        let restarts = per_component(s.restarts());
        let d = &self.descs;
        vec![
            family(&d[0], MetricType::HISTOGRAM, start),
            family(&d[1], MetricType::HISTOGRAM, ready),
            family(&d[2], MetricType::HISTOGRAM, phase),
            family(&d[3], MetricType::HISTOGRAM, stop),
            family(&d[4], MetricType::COUNTER, events),
            family(&d[5], MetricType::COUNTER, failures),
            family(&d[6], MetricType::COUNTER, restarts),
        ]
    }
}

/// One counter with these labels.
fn counter(label_values: &[(&'static str, String)], count: u64) -> Metric {
    let mut counter = Counter::default();
    counter.set_value(count as f64);
    let mut metric = Metric::default();
    metric.set_label(labels(label_values));
    metric.set_counter(counter);
    metric
}

/// One histogram with these labels.
fn histogram(label_values: &[(&'static str, String)], h: &Histogram) -> Metric {
    let mut histogram = prometheus::proto::Histogram::default();
    histogram.set_sample_count(h.count);
    histogram.set_sample_sum(h.sum);
    histogram.set_bucket(
        BUCKETS
            .iter()
            .zip(h.cumulative())
            .map(|(&upper, count)| {
                let mut bucket = Bucket::default();
                bucket.set_upper_bound(upper);
                bucket.set_cumulative_count(count);
                bucket
            })
            .collect(),
    );
    let mut metric = Metric::default();
    metric.set_label(labels(label_values));
    metric.set_histogram(histogram);
    metric
}

fn labels(pairs: &[(&'static str, String)]) -> Vec<LabelPair> {
    pairs
        .iter()
        .map(|(name, value)| {
            let mut pair = LabelPair::default();
            pair.set_name(name.to_string());
            pair.set_value(value.clone());
            pair
        })
        .collect()
}

fn family(desc: &Desc, kind: MetricType, metrics: Vec<Metric>) -> MetricFamily {
    let mut family = MetricFamily::default();
    family.set_name(desc.fq_name.clone());
    family.set_help(desc.help.clone());
    family.set_field_type(kind);
    family.set_metric(metrics);
    family
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use prometheus::{Encoder, TextEncoder};

    use super::*;
    use crate::event::LifecycleEvent;
    use crate::phase::{Phase, StopPhase};

    fn event(component: &str, event: EventKind, phase: Option<Phase>, ms: u64) -> LifecycleEvent {
        LifecycleEvent {
            at: Duration::ZERO,
            component: Some(component.into()),
            phase,
            event,
            elapsed: Some(Duration::from_millis(ms)),
            error: None,
            detail: None,
        }
    }

    #[test]
    fn events_become_histograms_and_counters_in_the_text_format() {
        let registry = Registry::new();
        let timeline = Timeline::new();
        LifecycleMetrics::register(&registry, timeline.clone()).unwrap();
        timeline.record(event("db", EventKind::Started, Some(Phase::Start), 20));
        timeline.record(event("db", EventKind::Stopped, Some(Phase::Stop(StopPhase::Close)), 3));
        timeline.record(event("api", EventKind::TimedOut, Some(Phase::Stop(StopPhase::Drain)), 2000));
        let mut text = Vec::new();
        TextEncoder::new().encode(&registry.gather(), &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        for expected in [
            "orderly_component_start_seconds_bucket{component=\"db\",le=\"0.01\"} 0",
            "orderly_component_start_seconds_bucket{component=\"db\",le=\"0.05\"} 1",
            "orderly_component_start_seconds_count{component=\"db\"} 1",
            "orderly_component_stop_seconds_sum{component=\"api\",phase=\"drain\"} 2",
            "orderly_component_stop_seconds_count{component=\"db\",phase=\"close\"} 1",
            "orderly_lifecycle_events_total{event=\"timed_out\"} 1",
            "# TYPE orderly_component_stop_seconds histogram",
        ] {
            assert!(text.contains(expected), "missing {expected} in:\n{text}");
        }
    }

    #[test]
    fn two_runtimes_never_share_metrics() {
        let (a, b) = (Registry::new(), Registry::new());
        let timeline = Timeline::new();
        LifecycleMetrics::register(&a, timeline.clone()).unwrap();
        timeline.record(event("x", EventKind::Started, None, 1));
        LifecycleMetrics::register(&b, Timeline::new()).unwrap();
        let names: Vec<String> = b.gather().iter().map(|f| f.name().to_string()).collect();
        assert_eq!(names, vec!["orderly_lifecycle_events_total"], "b saw a's start sample");
    }
}
