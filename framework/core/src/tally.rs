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

/// One component's numbers, side by side: a component's events come
/// together (started, then ready), so the second finds the first's entry
/// at hand instead of looking in a second table.
#[derive(Debug, Clone, Default)]
struct ComponentTally {
    start: Histogram,
    ready: Histogram,
    stop: BTreeMap<StopPhase, Histogram>,
    failures: u64,
    restarts: u64,
}

impl ComponentTally {
    fn merge(&mut self, other: &ComponentTally) {
        self.start.merge(&other.start);
        self.ready.merge(&other.ready);
        for (phase, histogram) in &other.stop {
            self.stop.entry(*phase).or_default().merge(histogram);
        }
        self.failures += other.failures;
        self.restarts += other.restarts;
    }
}

/// Every component's numbers, found by the address of its name.
#[derive(Debug, Clone, Default)]
struct Components {
    entries: Vec<(Arc<str>, ComponentTally)>,
    /// A name's address to its entry.
    index: HashMap<usize, usize, BuildHasherDefault<AddressHasher>>,
    /// The address and entry found last: events of one component come
    /// in a run, so most look-ups stop here.
    last: Option<(usize, usize)>,
}

impl Components {
    fn entry(&mut self, name: &Arc<str>) -> &mut ComponentTally {
        let key = Arc::as_ptr(name) as *const u8 as usize;
        let at = match self.last {
            Some((last, at)) if last == key => at,
            _ => {
                let entries = &mut self.entries;
                let at = *self.index.entry(key).or_insert_with(|| {
                    entries.push((name.clone(), ComponentTally::default()));
                    entries.len() - 1
                });
                self.last = Some((key, at));
                at
            }
        };
        &mut self.entries[at].1
    }

    /// One value per component name, merged where two `Arc`s share a name,
    /// in name order; components `f` gives nothing for are left out.
    fn by_name<'a, T: Default>(
        &'a self,
        f: impl Fn(&'a ComponentTally) -> Option<T>,
        merge: impl Fn(&mut T, T),
    ) -> BTreeMap<&'a str, T> {
        let mut out: BTreeMap<&str, T> = BTreeMap::new();
        for (name, tally) in &self.entries {
            if let Some(value) = f(tally) {
                merge(out.entry(name).or_default(), value);
            }
        }
        out
    }
}

/// Everything the lifecycle metrics report, added up over some events.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tally {
    components: Components,
    phase: BTreeMap<StopPhase, Histogram>,
    events: [u64; EventKind::ALL.len()],
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
            (EventKind::Failed, None, Some(component)) => self.components.entry(component).failures += 1,
            (EventKind::Restarting, _, Some(component)) => self.components.entry(component).restarts += 1,
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
            (EventKind::Started, _) => self.components.entry(component).start.observe(seconds),
            (EventKind::Ready, _) => self.components.entry(component).ready.observe(seconds),
            (EventKind::PhaseFinished, Some(Phase::Stop(p))) => self.phase.entry(p).or_default().observe(seconds),
            (
                EventKind::Stopped | EventKind::Failed | EventKind::TimedOut | EventKind::Panicked,
                Some(Phase::Stop(p)),
            ) => self.components.entry(component).stop.entry(p).or_default().observe(seconds),
            _ => {}
        }
    }

    /// Adds another tally's numbers to this one's.
    pub(crate) fn merge(&mut self, other: &Tally) {
        for (name, tally) in &other.components.entries {
            self.components.entry(name).merge(tally);
        }
        for (phase, histogram) in &other.phase {
            self.phase.entry(*phase).or_default().merge(histogram);
        }
        for (count, other) in self.events.iter_mut().zip(&other.events) {
            *count += other;
        }
    }

    /// `start` histograms by component name, in name order.
    pub(crate) fn start(&self) -> BTreeMap<&str, Histogram> {
        self.components.by_name(|c| (c.start.count > 0).then(|| c.start.clone()), |into, h| into.merge(&h))
    }

    /// `ready` histograms by component name, in name order.
    pub(crate) fn ready(&self) -> BTreeMap<&str, Histogram> {
        self.components.by_name(|c| (c.ready.count > 0).then(|| c.ready.clone()), |into, h| into.merge(&h))
    }

    /// Stop-phase histograms, in phase order.
    pub(crate) fn phases(&self) -> &BTreeMap<StopPhase, Histogram> {
        &self.phase
    }

    /// Stop-hook histograms by component name and phase, in that order.
    pub(crate) fn stop(&self) -> BTreeMap<(&str, StopPhase), Histogram> {
        let mut out: BTreeMap<(&str, StopPhase), Histogram> = BTreeMap::new();
        for (name, tally) in &self.components.entries {
            for (phase, histogram) in &tally.stop {
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
        self.components.by_name(|c| (c.failures > 0).then_some(c.failures), |into, n| *into += n)
    }

    /// Restarts begun, by component name.
    pub(crate) fn restarts(&self) -> BTreeMap<&str, u64> {
        self.components.by_name(|c| (c.restarts > 0).then_some(c.restarts), |into, n| *into += n)
    }
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
    fn interleaved_components_are_each_counted_under_their_own_name() {
        let (db, api): (Arc<str>, Arc<str>) = (Arc::from("db"), Arc::from("api"));
        let mut failed = event(&api, EventKind::Failed, 0);
        failed.phase = None;
        failed.elapsed = None;
        let events = vec![
            event(&db, EventKind::Started, 3),
            event(&api, EventKind::Started, 700),
            event(&db, EventKind::Ready, 1),
            event(&db, EventKind::Restarting, 0),
            failed,
            event(&db, EventKind::Started, 4),
        ];
        let tally = Tally::of(&events);
        let start = tally.start();
        assert_eq!((start["db"].count, start["api"].count), (2, 1));
        assert_eq!(start["api"].cumulative()[6], 0, "api's 700 ms is above 500 ms");
        assert_eq!(tally.ready().keys().collect::<Vec<_>>(), [&"db"], "api was never ready");
        assert_eq!(tally.restarts(), BTreeMap::from([("db", 1)]));
        assert_eq!(tally.failures(), BTreeMap::from([("api", 1)]));
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
