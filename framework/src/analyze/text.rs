//! `analyze blame` and `analyze critical-chain` for people: aligned text,
//! slowest first, in the forms `systemd-analyze` users know.

use std::fmt::Write as _;

use super::chain::Link;
use super::figures::{Report, Stat};

/// `1.234s` or `12.3ms`, as systemd-analyze prints times.
pub(crate) fn time(ms: f64) -> String {
    if ms >= 1000.0 {
        format!("{:.3}s", ms / 1000.0)
    } else {
        format!("{ms:.1}ms")
    }
}

fn summary(report: &Report) -> String {
    let mut out = format!(
        "{}: {} of {} runs completed; time to ready {} (worst {}), shutdown {} (worst {})\n",
        report.app,
        report.completed,
        report.runs,
        time(report.time_to_ready.median_ms),
        time(report.time_to_ready.worst_ms),
        time(report.shutdown.median_ms),
        time(report.shutdown.worst_ms),
    );
    for failure in &report.failures {
        let _ = writeln!(out, "  {failure}");
    }
    out
}

/// Rows of (median, worst, what), slowest median first.
fn table(out: &mut String, rows: &mut [(&Stat, String)]) {
    rows.sort_by(|a, b| b.0.median_ms.total_cmp(&a.0.median_ms).then_with(|| a.1.cmp(&b.1)));
    let _ = writeln!(out, "{:>10} {:>10}  what", "median", "worst");
    for (stat, what) in rows.iter() {
        let _ = writeln!(out, "{:>10} {:>10}  {what}", time(stat.median_ms), time(stat.worst_ms));
    }
}

/// Every component's start and readiness, and every stop hook.
pub(crate) fn blame(report: &Report) -> String {
    let mut out = summary(report);
    out.push_str("\nstartup (start + ready, per component):\n");
    let details: Vec<String> = report
        .startup
        .iter()
        .map(|(name, s)| format!("{name} (start {}, ready {})", time(s.start.median_ms), time(s.ready.median_ms)))
        .collect();
    let mut rows: Vec<(&Stat, String)> = report.startup.values().map(|s| &s.start_to_ready).zip(details).collect();
    table(&mut out, &mut rows);
    if !report.stop_hooks.is_empty() {
        out.push_str("\nshutdown (each stop hook):\n");
        let mut rows: Vec<(&Stat, String)> = report
            .stop_hooks
            .iter()
            .flat_map(|(name, phases)| phases.iter().map(move |(phase, stat)| (stat, format!("{name} {phase}"))))
            .collect();
        table(&mut out, &mut rows);
    }
    out
}

fn draw(out: &mut String, chain: &[Link]) {
    for (depth, link) in chain.iter().enumerate() {
        let indent = if depth == 0 { String::new() } else { format!("{}└─", "  ".repeat(depth - 1)) };
        let _ = writeln!(
            out,
            "{indent}{} @{} +{} ({:.0}%)",
            link.component,
            time(link.at_ms),
            time(link.took_ms),
            link.share * 100.0
        );
    }
}

/// The startup's chain, then each stop phase's, from the median run.
pub(crate) fn critical_chain(report: &Report) -> String {
    let mut out = summary(report);
    let _ = writeln!(
        out,
        "\nThe time when a component began is after \"@\", how long it took after \"+\" (run {} of {}, the median).",
        report.median_run, report.runs
    );
    let _ = writeln!(
        out,
        "\nstartup, ready after {}:",
        time(report.time_to_ready.runs_ms.get(report.median_index()).copied().unwrap_or_default())
    );
    draw(&mut out, &report.critical_chain);
    let in_order = orderly_core::phase::StopPhase::ALL.iter().map(|p| p.as_str());
    for (phase, chain) in in_order.filter_map(|p| report.shutdown_chains.get_key_value(p)) {
        let length =
            report.phases.get(phase).map_or(0.0, |s| s.runs_ms.get(report.median_index()).copied().unwrap_or_default());
        let _ = writeln!(out, "\nstop phase {phase}, {}:", time(length));
        draw(&mut out, chain);
    }
    out
}

impl Report {
    /// The median run's position among the completed runs' values.
    fn median_index(&self) -> usize {
        let failed_before = self.failures.iter().filter(|f| run_of(f).is_some_and(|k| k < self.median_run)).count();
        (self.median_run as usize).saturating_sub(1 + failed_before)
    }
}

/// The run number a failure line names ("run 3: …").
fn run_of(failure: &str) -> Option<u32> {
    failure.strip_prefix("run ")?.split(':').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_systemd_prints_them() {
        assert_eq!(time(12.34), "12.3ms");
        assert_eq!(time(1234.5), "1.234s");
        assert_eq!(run_of("run 3: start failed"), Some(3));
    }
}
