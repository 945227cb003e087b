//! `analyze compare before.json after.json`: which figures moved beyond
//! the noise.
//!
//! A figure changed when its medians differ by more than the larger of
//! the two reports' spreads (its worst run minus its best, in either) and
//! by more than 2 ms: a difference the runs themselves did not show
//! between each other. More runs make the medians steadier, not the
//! spread smaller, so the rule stays conservative on a noisy machine.

use std::fmt::Write as _;

use super::figures::{Report, Stat};
use super::text::time;

/// Below this, a difference is never reported: timer and scheduler noise.
const FLOOR_MS: f64 = 2.0;

/// One figure that moved.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Change {
    pub(crate) what: String,
    pub(crate) before_ms: f64,
    pub(crate) after_ms: f64,
    pub(crate) noise_ms: f64,
}

/// Whether `after` differs from `before` beyond the noise, and by how much.
fn changed(what: String, before: &Stat, after: &Stat) -> Option<Change> {
    let noise = before.spread().max(after.spread()).max(FLOOR_MS);
    let moved = (after.median_ms - before.median_ms).abs() > noise;
    moved.then_some(Change { what, before_ms: before.median_ms, after_ms: after.median_ms, noise_ms: noise })
}

/// Every figure both reports have, compared.
pub(crate) fn changes(before: &Report, after: &Report) -> Vec<Change> {
    let mut found = Vec::new();
    found.extend(changed("time to ready".into(), &before.time_to_ready, &after.time_to_ready));
    found.extend(changed("shutdown".into(), &before.shutdown, &after.shutdown));
    for (name, b) in &before.startup {
        if let Some(a) = after.startup.get(name) {
            found.extend(changed(format!("{name} start + ready"), &b.start_to_ready, &a.start_to_ready));
        }
    }
    for (phase, b) in &before.phases {
        if let Some(a) = after.phases.get(phase) {
            found.extend(changed(format!("stop phase {phase}"), b, a));
        }
    }
    for (name, phases) in &before.stop_hooks {
        for (phase, b) in phases {
            if let Some(a) = after.stop_hooks.get(name).and_then(|p| p.get(phase)) {
                found.extend(changed(format!("{name} {phase}"), b, a));
            }
        }
    }
    found
}

/// The comparison for people.
pub(crate) fn text(before: &Report, after: &Report) -> String {
    let found = changes(before, after);
    let mut out = format!(
        "{} → {}: {} and {} runs; a figure counts as changed when its medians differ by more than both reports' spread and {FLOOR_MS} ms\n",
        before.app, after.app, before.completed, after.completed
    );
    if found.is_empty() {
        out.push_str("no change beyond the noise\n");
    }
    for c in found {
        let word = if c.after_ms > c.before_ms { "slower" } else { "faster" };
        let _ = writeln!(
            out,
            "{word}: {} {} → {} ({:+.1}ms; noise {})",
            c.what,
            time(c.before_ms),
            time(c.after_ms),
            c.after_ms - c.before_ms,
            time(c.noise_ms)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_counts_only_beyond_both_spreads_and_the_floor() {
        let base = Stat::of(vec![100.0, 103.0, 101.0]);
        assert!(changed("x".into(), &base, &Stat::of(vec![150.0, 152.0, 151.0])).is_some(), "50 ms slower");
        assert!(changed("x".into(), &base, &Stat::of(vec![102.0, 104.0, 100.0])).is_none(), "within the spread");
        assert!(changed("x".into(), &Stat::of(vec![0.1]), &Stat::of(vec![1.5])).is_none(), "below the floor");
        let wide = Stat::of(vec![100.0, 190.0]);
        assert!(changed("x".into(), &wide, &Stat::of(vec![160.0, 161.0])).is_none(), "the noisy run hides it");
    }
}
