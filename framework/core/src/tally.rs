//! [`Tally`]: the lifecycle metrics' numbers, added up from events. The
//! metrics are computed from the timeline when scraped; the events the
//! timeline no longer keeps (it is bounded) live on here, added up, so a
//! counter never goes down and a histogram never loses a sample.
//!
//! Events as data: it names only the event vocabulary.

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

use crate::event::{EventKind, LifecycleEvent};
use crate::phase::{Phase, StopPhase};

/// Buckets from 1 ms to 30 s: hooks span connection set-up to full drains.
pub(crate) const BUCKETS: [f64; 12] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// One histogram's samples, added up.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Histogram {
    pub(crate) count: u64,
    pub(crate) sum: f64,
    /// Per bucket, how many samples were at most its bound and above the
    /// bound before it: one count per sample, made cumulative when read.
    within: [u64; BUCKETS.len()],
}

impl Histogram {
    fn observe(&mut self, value: f64) {
        self.count += 1;
        self.sum += value;
        // Above the last bound: counted in `count` (the +Inf bucket) only.
        if let Some(bucket) = BUCKETS.iter().position(|&upper| value <= upper) {
            self.within[bucket] += 1;
        }
    }

    fn merge(&mut self, other: &Histogram) {
        self.count += other.count;
        self.sum += other.sum;
        for (count, other) in self.within.iter_mut().zip(&other.within) {
            *count += other;
        }
    }

    /// Per bucket, how many samples were at most its bound (Prometheus's
    /// cumulative counts).
    pub(crate) fn cumulative(&self) -> [u64; BUCKETS.len()] {
        let mut total = 0;
        self.within.map(|count| {
            total += count;
            total
        })
    }
}

/// Hashes a component's name by its address: every event of one component
/// shares its name's `Arc`, so adding an event costs no string comparison.
#[derive(Default)]
struct AddressHasher(u64);

impl Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 << 8 | u64::from(byte)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, value: usize) {
        self.0 = (value as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// Per component (keyed by the name's address, the name kept beside it).
type ByComponent<T> = HashMap<usize, (Arc<str>, T), BuildHasherDefault<AddressHasher>>;

fn entry<'a, T: Default>(map: &'a mut ByComponent<T>, name: &Arc<str>) -> &'a mut T {
    let key = Arc::as_ptr(name) as *const u8 as usize;
    &mut map.entry(key).or_insert_with(|| (name.clone(), T::default())).1
}

/// Everything the lifecycle metrics report, added up over some events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    start: ByComponent<Histogram>,
    ready: ByComponent<Histogram>,
    phase: BTreeMap<StopPhase, Histogram>,
    stop: ByComponent<BTreeMap<StopPhase, Histogram>>,
    events: [u64; EventKind::ALL.len()],
    failures: ByComponent<u64>,
    restarts: ByComponent<u64>,
}

impl Tally {
    /// The tally of `events`.
    pub(crate) fn of<'a>(events: impl IntoIterator<Item = &'a LifecycleEvent>) -> Self {
        let mut tally = Tally::default();
        events.into_iter().for_each(|event| tally.add(event));
        tally
    }

    /// Adds one event.
    pub(crate) fn add(&mut self, e: &LifecycleEvent) {
        self.events[e.event.index()] += 1;
        match (e.event, e.phase, &e.component) {
            (EventKind::Failed, None, Some(component)) => *entry(&mut self.failures, component) += 1,
            (EventKind::Restarting, _, Some(component)) => *entry(&mut self.restarts, component) += 1,
            _ => {}
        }
        let Some(seconds) = e.elapsed.map(|d| d.as_secs_f64()) else { return };
        let app: Arc<str>;
        let component = match &e.component {
            Some(component) => component,
            None => {
                app = Arc::from("app");
                &app
            }
        };
        match (e.event, e.phase) {
            (EventKind::Started, _) => entry(&mut self.start, component).observe(seconds),
            (EventKind::Ready, _) => entry(&mut self.ready, component).observe(seconds),
            (EventKind::PhaseFinished, Some(Phase::Stop(p))) => self.phase.entry(p).or_default().observe(seconds),
            (
                EventKind::Stopped | EventKind::Failed | EventKind::TimedOut | EventKind::Panicked,
                Some(Phase::Stop(p)),
            ) => entry(&mut self.stop, component).entry(p).or_default().observe(seconds),
            _ => {}
        }
    }

    /// Adds another tally's numbers to this one's.
    pub(crate) fn merge(&mut self, other: &Tally) {
        fn merge_by<T: Default>(into: &mut ByComponent<T>, from: &ByComponent<T>, f: impl Fn(&mut T, &T)) {
            for (name, value) in from.values() {
                f(entry(into, name), value);
            }
        }
        merge_by(&mut self.start, &other.start, Histogram::merge);
        merge_by(&mut self.ready, &other.ready, Histogram::merge);
        merge_by(&mut self.stop, &other.stop, |into, from| {
            for (phase, histogram) in from {
                into.entry(*phase).or_default().merge(histogram);
            }
        });
        merge_by(&mut self.failures, &other.failures, |into, from| *into += from);
        merge_by(&mut self.restarts, &other.restarts, |into, from| *into += from);
        for (phase, histogram) in &other.phase {
            self.phase.entry(*phase).or_default().merge(histogram);
        }
        for (count, other) in self.events.iter_mut().zip(&other.events) {
            *count += other;
        }
    }

    /// `start` histograms by component name, in name order.
    pub(crate) fn start(&self) -> BTreeMap<&str, Histogram> {
        by_name(&self.start)
    }

    /// `ready` histograms by component name, in name order.
    pub(crate) fn ready(&self) -> BTreeMap<&str, Histogram> {
        by_name(&self.ready)
    }

    /// Stop-phase histograms, in phase order.
    pub(crate) fn phases(&self) -> &BTreeMap<StopPhase, Histogram> {
        &self.phase
    }

    /// Stop-hook histograms by component name and phase, in that order.
    pub(crate) fn stop(&self) -> BTreeMap<(&str, StopPhase), Histogram> {
        let mut out: BTreeMap<(&str, StopPhase), Histogram> = BTreeMap::new();
        for (name, phases) in self.stop.values() {
            for (phase, histogram) in phases {
                out.entry((name, *phase)).or_default().merge(histogram);
            }
        }
        out
    }

    /// Events by kind, in [`EventKind::ALL`] order.
    pub(crate) fn events(&self) -> &[u64; EventKind::ALL.len()] {
        &self.events
    }

    /// Failures survived, by component name.
    pub(crate) fn failures(&self) -> BTreeMap<&str, u64> {
        counts_by_name(&self.failures)
    }

    /// Restarts begun, by component name.
    pub(crate) fn restarts(&self) -> BTreeMap<&str, u64> {
        counts_by_name(&self.restarts)
    }
}

/// Merges entries of equal names (two `Arc`s of one name) into name order.
fn by_name(map: &ByComponent<Histogram>) -> BTreeMap<&str, Histogram> {
    let mut out: BTreeMap<&str, Histogram> = BTreeMap::new();
    for (name, histogram) in map.values() {
        out.entry(name).or_default().merge(histogram);
    }
    out
}

fn counts_by_name(map: &ByComponent<u64>) -> BTreeMap<&str, u64> {
    let mut out: BTreeMap<&str, u64> = BTreeMap::new();
    for (name, count) in map.values() {
        *out.entry(name).or_default() += count;
    }
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn event(component: &Arc<str>, kind: EventKind, ms: u64) -> LifecycleEvent {
        LifecycleEvent {
            at: Duration::ZERO,
            component: Some(component.clone()),
            phase: Some(Phase::Start),
            event: kind,
            elapsed: Some(Duration::from_millis(ms)),
            error: None,
            detail: None,
        }
    }

    #[test]
    fn a_histogram_counts_each_sample_in_its_bucket_and_reads_them_cumulatively() {
        let mut h = Histogram::default();
        for seconds in [0.0005, 0.001, 0.003, 0.2, 60.0] {
            h.observe(seconds);
        }
        let cumulative = h.cumulative();
        // ≤ 1 ms: two (a bound is inclusive); ≤ 5 ms: three; ≤ 250 ms on: four;
        // the minute above 30 s is in the count (+Inf) only.
        assert_eq!(&cumulative[..3], [2, 3, 3]);
        assert_eq!(&cumulative[5..], [4; 7]);
        assert_eq!((h.count, h.sum), (5, 0.0005 + 0.001 + 0.003 + 0.2 + 60.0));
    }

    #[test]
    fn a_tally_split_in_two_and_merged_equals_the_whole() {
        let (db, other_db): (Arc<str>, Arc<str>) = (Arc::from("db"), Arc::from("db"));
        let events = vec![
            event(&db, EventKind::Started, 3),
            event(&other_db, EventKind::Started, 700),
            event(&db, EventKind::Ready, 1),
            event(&db, EventKind::Restarting, 0),
        ];
        let whole = Tally::of(&events);
        let mut merged = Tally::of(&events[..2]);
        merged.merge(&Tally::of(&events[2..]));
        assert_eq!(merged.start(), whole.start());
        assert_eq!(merged.events(), whole.events());
        let start = &whole.start()["db"];
        assert_eq!((start.count, start.cumulative()[2], start.cumulative()[7]), (2, 1, 2), "one name, two Arcs");
        assert_eq!(whole.restarts()["db"], 1);
    }
}
