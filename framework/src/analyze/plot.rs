//! `analyze plot`: one SVG over every run. One row per component, in the
//! order they began: a bar from when its start began to when it was ready
//! (medians), and a whisker across the runs' spread of its ready time.
//! Below, one row per stop phase: its median length, the whisker to its
//! worst run.

use std::fmt::Write as _;

use super::figures::Report;
use super::text::time;
use crate::timeline_svg::escape;

const ROW: f64 = 22.0;
const LABEL: f64 = 170.0;
const WIDTH: f64 = 900.0;

/// A horizontal line across a row: the runs' spread.
fn whisker(out: &mut String, from: f64, to: f64, row_top: f64) {
    let y = row_top + 8.0;
    let _ = writeln!(out, r#"<line x1="{from:.1}" x2="{to:.1}" y1="{y}" y2="{y}" stroke="black"/>"#);
}

/// The SVG document.
pub(crate) fn svg(report: &Report) -> String {
    // Each component's (name, median began, median ready at, best and worst ready at).
    let mut rows: Vec<(&str, f64, f64, f64, f64)> = report
        .startup
        .iter()
        .map(|(name, s)| {
            let ready_at: Vec<f64> =
                s.began.runs_ms.iter().zip(&s.start_to_ready.runs_ms).map(|(began, took)| began + took).collect();
            let best = ready_at.iter().copied().fold(f64::INFINITY, f64::min);
            let worst = ready_at.iter().copied().fold(0.0, f64::max);
            (name.as_str(), s.began.median_ms, s.began.median_ms + s.start_to_ready.median_ms, best.min(worst), worst)
        })
        .collect();
    rows.sort_by(|a, b| a.1.total_cmp(&b.1).then_with(|| a.0.cmp(b.0)));
    let phases: Vec<(&String, f64, f64)> =
        report.phases.iter().map(|(phase, s)| (phase, s.median_ms, s.worst_ms)).collect();
    let span = rows.iter().map(|r| r.4).chain(phases.iter().map(|p| p.2)).fold(1.0, f64::max);
    let x = |ms: f64| LABEL + (ms / span) * (WIDTH - LABEL - 20.0);
    let height = 60.0 + ROW * (rows.len() + phases.len() + 2) as f64;

    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<text x="10" y="20" font-size="14">{}: {} runs, time to ready {} (worst {}); bars are medians, whiskers the spread</text>"#,
        escape(&report.app),
        report.completed,
        time(report.time_to_ready.median_ms),
        time(report.time_to_ready.worst_ms)
    );
    let mut y = 40.0;
    for (name, began, ready_at, best, worst) in &rows {
        let _ = writeln!(out, r#"<text x="10" y="{}">{}</text>"#, y + 14.0, escape(name));
        let _ = writeln!(
            out,
            r##"<rect x="{:.1}" y="{y}" width="{:.1}" height="16" fill="#4c8bf5"><title>{}: began @{}, ready +{}</title></rect>"##,
            x(*began),
            (x(*ready_at) - x(*began)).max(1.0),
            escape(name),
            time(*began),
            time(ready_at - began)
        );
        whisker(&mut out, x(*best), x(*worst), y);
        y += ROW;
    }
    y += ROW;
    for (phase, median, worst) in &phases {
        let _ = writeln!(out, r#"<text x="10" y="{}">phase {}</text>"#, y + 14.0, escape(phase));
        let _ = writeln!(
            out,
            r##"<rect x="{LABEL}" y="{y}" width="{:.1}" height="16" fill="#e8833a"><title>{}: {} (worst {})</title></rect>"##,
            (x(*median) - LABEL).max(1.0),
            escape(phase),
            time(*median),
            time(*worst)
        );
        whisker(&mut out, x(*median), x(*worst), y);
        y += ROW;
    }
    out.push_str("</svg>\n");
    out
}
