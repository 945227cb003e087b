//! The lifecycle drawn as an SVG Gantt chart: one row per component, bars
//! for its start, its wait to become ready and each stop phase it joined.
//!
//! Startup and shutdown usually lie minutes or days apart, so the chart
//! has two panels with a time scale each: startup on the left (from the
//! first event to the last component ready), shutdown on the right (from
//! the request to the end). The shutdown panel marks each phase's
//! boundaries and the propagation delay; a hook that failed, panicked or
//! overran its budget is drawn in red, and a skipped one as a red tick.
//! Restarts belong to the left panel ("startup and restarts"): a dashed red
//! mark where a component began restarting (its title names why and the
//! members), then the stop and start bars of the components it took down
//! with it. A reload that took is a dashed green mark on each component it
//! changed, titled with how (in place, or which restart).
//!
//! The output is self-contained SVG 1.1 with no scripts or external
//! references, so a browser, an image viewer or a README can show it.
//!
//! The process shell: the core keeps the timeline as data, this draws it; it
//! names only the event vocabulary.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use orderly_core::events::{EventKind, LifecycleEvent, Timeline};
use orderly_core::{phase::Phase, StopPhase};

const LABEL_WIDTH: f64 = 150.0;
const PANEL_WIDTH: f64 = 420.0;
const PANEL_GAP: f64 = 60.0;
const ROW_HEIGHT: f64 = 22.0;
const TOP: f64 = 64.0;
const LEGEND_HEIGHT: f64 = 40.0;

const START_COLOR: &str = "#4c78a8";
const READY_COLOR: &str = "#9ecae9";
const PROBLEM_COLOR: &str = "#d62728";
const DELAY_COLOR: &str = "#eeeeee";
const RELOAD_COLOR: &str = "#2ca02c";

fn phase_color(phase: StopPhase) -> &'static str {
    match phase {
        StopPhase::StopAccepting => "#f58518",
        StopPhase::Drain => "#54a24b",
        StopPhase::StopWorkers => "#b279a2",
        StopPhase::Flush => "#72b7b2",
        StopPhase::Close => "#9d755d",
    }
}

/// One bar on a component's row.
struct Bar {
    from: f64,
    to: f64,
    phase: Phase,
    problem: bool,
    title: String,
}

/// The share of the shutdown panel the propagation delay gets, whatever
/// its length: it is usually seconds, the phases milliseconds, and a linear
/// scale would leave the phases a sliver.
const DELAY_SHARE: f64 = 0.25;

/// A time window drawn at a given x offset. With a `split`, times before
/// it take `DELAY_SHARE` of the width and times after it the rest, each
/// part linear.
#[derive(Clone, Copy)]
struct Panel {
    from: f64,
    to: f64,
    x: f64,
    split: Option<f64>,
}

impl Panel {
    fn x_of(&self, t: f64) -> f64 {
        let linear =
            |from: f64, to: f64, x: f64, width: f64| x + ((t - from) / (to - from).max(1e-6)).clamp(0.0, 1.0) * width;
        match self.split {
            None => linear(self.from, self.to, self.x, PANEL_WIDTH),
            Some(split) if t <= split => linear(self.from, split, self.x, PANEL_WIDTH * DELAY_SHARE),
            Some(split) => {
                linear(split, self.to, self.x + PANEL_WIDTH * DELAY_SHARE, PANEL_WIDTH * (1.0 - DELAY_SHARE))
            }
        }
    }

    /// Where the linear part with the axis ticks begins.
    fn axis_from(&self) -> f64 {
        self.split.unwrap_or(self.from)
    }

    fn contains(&self, t: f64) -> bool {
        t >= self.from - 1e-9 && t <= self.to + 1e-9
    }
}

/// `text` safe inside an SVG element or attribute (the analyze plot uses it too).
pub(crate) fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A bar's tooltip, in words: "start took 3.1 ms", "ready after 0.2 ms",
/// "phase drain took 120 ms", "phase close failed after 3.0 ms".
fn step(phase: Phase, kind: EventKind, took: f64) -> String {
    let what = match phase {
        Phase::Start => "start".to_string(),
        Phase::Ready => return format!("ready after {}", ms(took)),
        Phase::Stop(p) => format!("phase {}", p.as_str()),
    };
    let how = match kind {
        EventKind::Failed => "failed after",
        EventKind::Panicked => "panicked after",
        EventKind::TimedOut => "abandoned after",
        _ => "took",
    };
    format!("{what} {how} {}", ms(took))
}

/// A tick step of 1, 2 or 5 times a power of ten (in seconds) giving about
/// `ticks` intervals over `span`: the axis reads +0, +50 ms, +100 ms, …
fn nice_step(span: f64, ticks: u32) -> f64 {
    let raw = (span / f64::from(ticks)).max(1e-6);
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|&s| s >= raw).unwrap_or(10.0 * power);
    step.max(1e-6)
}

fn ms(seconds: f64) -> String {
    let ms = seconds * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Rows (in order of first appearance), their bars, and the marks.
struct Chart {
    rows: Vec<String>,
    bars: HashMap<String, Vec<Bar>>,
    skipped: Vec<(String, f64, StopPhase)>,
    /// Where a component began restarting, and why.
    restarts: Vec<(String, f64, String)>,
    /// Components a reload changed: when, and how.
    reloads: Vec<(String, f64, String)>,
    phases: Vec<(StopPhase, f64, Option<f64>)>,
    shutdown: Option<(f64, f64)>,
    startup_end: f64,
}

impl Chart {
    /// Gives `name` a row, in the order components first appear.
    fn row(&mut self, name: &str) {
        if !self.rows.iter().any(|r| r == name) {
            self.rows.push(name.to_owned());
        }
    }
}

fn collect(events: &[LifecycleEvent]) -> Chart {
    let mut chart = Chart {
        rows: Vec::new(),
        bars: HashMap::new(),
        skipped: Vec::new(),
        restarts: Vec::new(),
        reloads: Vec::new(),
        phases: Vec::new(),
        shutdown: None,
        startup_end: 0.0,
    };
    let mut open: HashMap<(String, Phase), f64> = HashMap::new();
    let mut shutdown_from = None;
    for e in events {
        let at = secs(e.at);
        // Before the shutdown, every component event is startup or a restart.
        if shutdown_from.is_none() && (e.phase.is_some() || e.event == EventKind::Restarted) && e.component.is_some() {
            chart.startup_end = chart.startup_end.max(at);
        }
        match (e.event, e.component.as_deref(), e.phase) {
            (EventKind::Restarting, Some(name), _) => {
                chart.row(name);
                chart.startup_end = chart.startup_end.max(at);
                let mut why = e.error.clone().unwrap_or_default();
                if let Some(detail) = &e.detail {
                    let _ = write!(why, " ({detail})");
                }
                chart.restarts.push((name.to_owned(), at, why));
            }
            (EventKind::Reloaded, Some(name), _) if shutdown_from.is_none() => {
                chart.row(name);
                chart.startup_end = chart.startup_end.max(at);
                chart.reloads.push((name.to_owned(), at, e.detail.clone().unwrap_or_default()));
            }
            (EventKind::ShutdownRequested, _, _) => shutdown_from = Some(at),
            (EventKind::ShutdownFinished, _, _) => chart.shutdown = shutdown_from.map(|from| (from, at)),
            (EventKind::PhaseStarted, None, Some(Phase::Stop(p))) => chart.phases.push((p, at, None)),
            (EventKind::PhaseFinished, None, Some(Phase::Stop(p))) => {
                if let Some(entry) = chart.phases.iter_mut().rev().find(|(q, _, end)| *q == p && end.is_none()) {
                    entry.2 = Some(at);
                }
            }
            (kind, Some(name), Some(phase)) => {
                chart.row(name);
                let key = (name.to_owned(), phase);
                match kind {
                    EventKind::Starting | EventKind::Stopping => {
                        open.insert(key, at);
                    }
                    EventKind::Skipped => {
                        if let Phase::Stop(p) = phase {
                            chart.skipped.push((name.to_owned(), at, p));
                        }
                    }
                    EventKind::Started
                    | EventKind::Ready
                    | EventKind::Stopped
                    | EventKind::Failed
                    | EventKind::Panicked
                    | EventKind::TimedOut => {
                        let began = open.remove(&key).or(e.elapsed.map(|d| at - secs(d))).unwrap_or(at);
                        let took = e.elapsed.map_or(at - began, secs);
                        let mut title = format!("{name}: {}", step(phase, kind, took));
                        if let Some(error) = &e.error {
                            let _ = write!(title, ": {error}");
                        }
                        chart.bars.entry(name.to_owned()).or_default().push(Bar {
                            from: began,
                            to: at,
                            phase,
                            problem: kind.is_problem(),
                            title,
                        });
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
    // A shutdown still running when drawn: up to the last event.
    if chart.shutdown.is_none() {
        if let Some(from) = shutdown_from {
            let last = events.last().map_or(from, |e| secs(e.at));
            chart.shutdown = Some((from, last.max(from)));
        }
    }
    chart
}

/// The timeline as an SVG Gantt chart titled `title`: a row per
/// component, bars for start, ready and each stop phase it joined, the
/// phase boundaries and the propagation delay marked, problems in red.
///
/// ```
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use orderly::{async_trait, Component, Runtime, ShutdownReason};
/// struct Db;
/// #[async_trait] impl Component for Db {}
/// let runtime = Runtime::builder().component(Db).build().unwrap();
/// runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
/// runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
/// let svg = orderly::events::to_svg(runtime.timeline(), "my-service");
/// assert!(svg.starts_with("<svg") && svg.contains(">db</text>"));
/// # });
/// ```
pub fn to_svg(timeline: &Timeline, title: &str) -> String {
    render(&timeline.events(), title)
}

/// Renders `events` (a [`Timeline`]'s) as an SVG document.
fn render(events: &[LifecycleEvent], title: &str) -> String {
    let chart = collect(events);
    let startup = Panel { from: 0.0, to: chart.startup_end.max(1e-3), x: LABEL_WIDTH, split: None };
    let shutdown = chart.shutdown.map(|(from, to)| {
        let first_phase = chart.phases.first().map(|(_, at, _)| *at).filter(|at| at - from > 1e-3);
        Panel {
            from,
            to: to.max(first_phase.unwrap_or(from) + 1e-3),
            x: LABEL_WIDTH + PANEL_WIDTH + PANEL_GAP,
            split: first_phase,
        }
    });
    let width = LABEL_WIDTH + PANEL_WIDTH + PANEL_GAP + PANEL_WIDTH + 20.0;
    let rows_height = ROW_HEIGHT * chart.rows.len().max(1) as f64;
    let height = TOP + rows_height + 30.0 + LEGEND_HEIGHT;
    let mut svg = String::with_capacity(4096 + chart.rows.len() * 512);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(svg, r#"<rect width="{width}" height="{height}" fill="white"/>"#);
    let _ = write!(svg, r#"<text x="10" y="18" font-size="14" font-weight="bold">{}</text>"#, escape(title));

    // Panel headings and axes.
    let mut panels = vec![("startup", startup)];
    match shutdown {
        Some(shutdown) => panels.push(("shutdown", shutdown)),
        // Drawn while the app runs: say so, rather than leave the panel blank.
        None => {
            let _ = write!(
                svg,
                r##"<text class="panel" x="{}" y="40" font-weight="bold">shutdown</text><text class="not-yet" x="{}" y="{}" fill="#555">not yet: the app is running</text>"##,
                startup.x + PANEL_WIDTH + PANEL_GAP,
                startup.x + PANEL_WIDTH + PANEL_GAP,
                TOP + 14.0
            );
        }
    }
    let axis_y = TOP + rows_height + 4.0;
    for (name, panel) in &panels {
        let span = panel.to - panel.from;
        let axis_span = panel.to - panel.axis_from();
        let name = if *name == "startup" && !chart.restarts.is_empty() { "startup and restarts" } else { name };
        let _ = write!(
            svg,
            r#"<text class="panel" x="{}" y="40" font-weight="bold">{name} ({})</text>"#,
            panel.x,
            ms(span)
        );
        let _ = write!(
            svg,
            r##"<line x1="{x}" y1="{axis_y}" x2="{x2}" y2="{axis_y}" stroke="#888"/>"##,
            x = panel.x,
            x2 = panel.x + PANEL_WIDTH
        );
        // Fewer ticks on a split axis: its labels count from the signal and
        // are long. Ticks fall on round values from the axis's start.
        let step = nice_step(axis_span, if panel.split.is_some() { 3 } else { 4 });
        // Labels count from the panel's start; the first tick on the axis is a round one.
        let first = panel.from + ((panel.axis_from() - panel.from) / step - 1e-9).ceil() * step;
        let count = ((panel.to - first) / step + 1e-9).floor().max(0.0) as u32;
        for tick in 0..=count {
            let t = first + step * f64::from(tick);
            let x = panel.x_of(t);
            let anchor = match tick {
                0 => "start",
                t if t == count && x > panel.x + PANEL_WIDTH - 30.0 => "end",
                _ => "middle",
            };
            let _ = write!(
                svg,
                r##"<line x1="{x}" y1="{axis_y}" x2="{x}" y2="{}" stroke="#888"/><text x="{x}" y="{}" text-anchor="{anchor}" fill="#555">+{}</text>"##,
                axis_y + 4.0,
                axis_y + 16.0,
                ms(t - panel.from)
            );
        }
    }

    // The propagation delay, the phase strip and boundaries, behind the bars.
    if let Some(panel) = shutdown {
        if let Some(split) = panel.split {
            let (x1, x2) = (panel.x_of(panel.from), panel.x_of(split));
            let _ = write!(
                svg,
                r#"<rect class="propagation-delay" x="{x1}" y="{}" width="{}" height="{}" fill="{DELAY_COLOR}"><title>propagation delay: {}</title></rect>"#,
                TOP - 16.0,
                x2 - x1,
                rows_height + 16.0,
                ms(split - panel.from)
            );
            let _ = write!(
                svg,
                r##"<text x="{}" y="{}" fill="#555" text-anchor="middle">delay {}</text>"##,
                (x1 + x2) / 2.0,
                TOP - 6.0,
                ms(split - panel.from)
            );
        }
        for (phase, began, ended) in &chart.phases {
            let (x1, x2) = (panel.x_of(*began), panel.x_of(ended.unwrap_or(panel.to)));
            let took = ended.map_or(String::new(), |end| format!(" ({})", ms(end - began)));
            let color = phase_color(*phase);
            let _ = write!(
                svg,
                r#"<rect class="phase" x="{x1}" y="{}" width="{}" height="12" fill="{color}"><title>phase {} {}{took}</title></rect>"#,
                TOP - 16.0,
                (x2 - x1).max(1.0),
                phase.number(),
                phase.as_str()
            );
            if x2 - x1 >= 9.0 {
                let _ = write!(
                    svg,
                    r#"<text x="{}" y="{}" fill="white" font-size="9" text-anchor="middle" font-weight="bold">{}</text>"#,
                    (x1 + x2) / 2.0,
                    TOP - 7.0,
                    phase.number()
                );
            }
            let _ = write!(
                svg,
                r##"<line class="phase-boundary" x1="{x1}" y1="{}" x2="{x1}" y2="{}" stroke="{color}" stroke-dasharray="3,2"/>"##,
                TOP - 4.0,
                TOP + rows_height
            );
        }
    }

    // One row per component.
    for (row, name) in chart.rows.iter().enumerate() {
        let y = TOP + ROW_HEIGHT * row as f64;
        if row % 2 == 1 {
            let _ = write!(
                svg,
                r##"<rect x="0" y="{y}" width="{width}" height="{ROW_HEIGHT}" fill="#f7f7f7" fill-opacity="0.6"/>"##
            );
        }
        let _ = write!(
            svg,
            r#"<text class="row" x="{}" y="{}" text-anchor="end">{}</text>"#,
            LABEL_WIDTH - 8.0,
            y + ROW_HEIGHT * 0.68,
            escape(name)
        );
        for bar in chart.bars.get(name).into_iter().flatten() {
            let panel = match bar.phase {
                Phase::Start | Phase::Ready => Some(startup),
                // A stop before the shutdown was a restart's.
                Phase::Stop(_) => {
                    shutdown.filter(|p| p.contains(bar.to)).or(Some(startup).filter(|p| p.contains(bar.to)))
                }
            };
            let Some(panel) = panel else { continue };
            let (x1, x2) = (panel.x_of(bar.from), panel.x_of(bar.to));
            let color = match (bar.problem, bar.phase) {
                (true, _) => PROBLEM_COLOR,
                (false, Phase::Start) => START_COLOR,
                (false, Phase::Ready) => READY_COLOR,
                (false, Phase::Stop(p)) => phase_color(p),
            };
            let class = if bar.problem { "bar problem" } else { "bar" };
            let _ = write!(
                svg,
                r#"<rect class="{class}" data-component="{}" data-phase="{}" x="{x1}" y="{}" width="{}" height="{}" fill="{color}"><title>{}</title></rect>"#,
                escape(name),
                bar.phase.as_str(),
                y + 4.0,
                (x2 - x1).max(1.5),
                ROW_HEIGHT - 8.0,
                escape(&bar.title)
            );
        }
        let restarts = chart
            .restarts
            .iter()
            .filter(|(n, ..)| n == name)
            .map(|(_, at, why)| ("restart", PROBLEM_COLOR, "restarting", *at, why));
        let reloads = chart
            .reloads
            .iter()
            .filter(|(n, ..)| n == name)
            .map(|(_, at, how)| ("reload", RELOAD_COLOR, "reloaded", *at, how));
        for (class, color, verb, at, text) in restarts.chain(reloads) {
            let x = startup.x_of(at);
            let _ = write!(
                svg,
                r#"<line class="{class}" data-component="{}" x1="{x}" y1="{}" x2="{x}" y2="{}" stroke="{color}" stroke-width="2" stroke-dasharray="3,2"><title>{}: {verb} at +{}: {}</title></line>"#,
                escape(name),
                y + 1.0,
                y + ROW_HEIGHT - 1.0,
                escape(name),
                ms(at),
                escape(text)
            );
        }
        for (_, at, phase) in chart.skipped.iter().filter(|(n, ..)| n == name) {
            if let Some(panel) = shutdown {
                let x = panel.x_of(*at);
                let _ = write!(
                    svg,
                    r#"<rect class="bar problem skipped" data-component="{}" data-phase="{}" x="{}" y="{}" width="3" height="{}" fill="{PROBLEM_COLOR}"><title>{}: {} skipped (its phase ran out of budget)</title></rect>"#,
                    escape(name),
                    phase.as_str(),
                    x - 1.5,
                    y + 2.0,
                    ROW_HEIGHT - 4.0,
                    escape(name),
                    phase.as_str()
                );
            }
        }
    }

    // Legend.
    let legend_y = axis_y + 30.0;
    let mut items: Vec<(&str, String)> = vec![(START_COLOR, "start".into()), (READY_COLOR, "until ready".into())];
    items.extend(StopPhase::ALL.iter().map(|p| (phase_color(*p), format!("{} {}", p.number(), p.as_str()))));
    items.push((PROBLEM_COLOR, "failed / overran / skipped".into()));
    items.push((DELAY_COLOR, "propagation delay".into()));
    if !chart.restarts.is_empty() {
        items.push((PROBLEM_COLOR, "restart (dashed mark)".into()));
    }
    if !chart.reloads.is_empty() {
        items.push((RELOAD_COLOR, "reload (dashed mark)".into()));
    }
    let mut x = 10.0;
    for (color, label) in items {
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="{}" width="10" height="10" fill="{color}" stroke="#999" stroke-width="0.5"/><text x="{}" y="{}">{}</text>"##,
            legend_y - 9.0,
            x + 14.0,
            legend_y,
            escape(&label)
        );
        x += 24.0 + 6.2 * label.len() as f64;
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn event(
        at_ms: u64,
        component: Option<&str>,
        phase: Option<Phase>,
        event: EventKind,
        elapsed_ms: Option<u64>,
    ) -> LifecycleEvent {
        LifecycleEvent {
            at: Duration::from_millis(at_ms),
            component: component.map(Arc::from),
            phase,
            event,
            elapsed: elapsed_ms.map(Duration::from_millis),
            error: None,
            detail: None,
        }
    }

    fn sample() -> Vec<LifecycleEvent> {
        use EventKind::*;
        let drain = Some(Phase::Stop(StopPhase::Drain));
        let close = Some(Phase::Stop(StopPhase::Close));
        let mut hung = event(2300, Some("http"), drain, TimedOut, Some(200));
        hung.error = Some("abandoned: ran past its cap <of> 200ms".into());
        vec![
            event(0, Some("db"), Some(Phase::Start), Starting, None),
            event(40, Some("db"), Some(Phase::Start), Started, Some(40)),
            event(50, Some("db"), Some(Phase::Ready), Ready, Some(10)),
            event(50, Some("http"), Some(Phase::Start), Starting, None),
            event(60, Some("http"), Some(Phase::Start), Started, Some(10)),
            event(60, Some("http"), Some(Phase::Ready), Ready, Some(0)),
            event(2000, None, None, ShutdownRequested, None),
            event(2100, None, Some(Phase::Stop(StopPhase::StopAccepting)), PhaseStarted, None),
            event(2100, None, Some(Phase::Stop(StopPhase::StopAccepting)), PhaseFinished, Some(0)),
            event(2100, None, drain, PhaseStarted, None),
            event(2100, Some("http"), drain, Stopping, None),
            hung,
            event(2300, None, drain, PhaseFinished, Some(200)),
            event(2300, None, close, PhaseStarted, None),
            event(2300, Some("db"), close, Stopping, None),
            event(2350, Some("db"), close, Stopped, Some(50)),
            event(2350, None, close, PhaseFinished, Some(50)),
            event(2350, None, None, ShutdownFinished, Some(350)),
        ]
    }

    #[test]
    fn draws_a_restart_as_a_mark_and_its_bars_beside_the_startup() {
        use EventKind::*;
        let close = Some(Phase::Stop(StopPhase::Close));
        let mut events = sample();
        let mut restarting = event(500, Some("db"), None, Restarting, None);
        restarting.error = Some("connection reset".into());
        let restart = vec![
            restarting,
            event(500, Some("http"), Some(Phase::Stop(StopPhase::Drain)), Stopping, None),
            event(510, Some("http"), Some(Phase::Stop(StopPhase::Drain)), Stopped, Some(10)),
            event(510, Some("db"), close, Stopping, None),
            event(520, Some("db"), close, Stopped, Some(10)),
            event(530, Some("db"), Some(Phase::Start), Starting, None),
            event(540, Some("db"), Some(Phase::Start), Started, Some(10)),
            event(540, Some("db"), Some(Phase::Ready), Ready, Some(0)),
            event(550, Some("http"), Some(Phase::Start), Starting, None),
            event(560, Some("http"), Some(Phase::Start), Started, Some(10)),
            event(560, Some("http"), Some(Phase::Ready), Ready, Some(0)),
            event(560, Some("db"), None, Restarted, Some(60)),
        ];
        let at = events.iter().position(|e| e.event == ShutdownRequested).unwrap();
        events.splice(at..at, restart);
        let mut reloaded = event(600, Some("http"), None, Reloaded, None);
        reloaded.detail = Some("applied in place".into());
        let at = events.iter().position(|e| e.event == ShutdownRequested).unwrap();
        events.insert(at, reloaded);
        let svg = render(&events, "restart");
        assert!(svg.contains(">startup and restarts ("), "{svg}");
        assert!(svg.contains("http: reloaded at +600 ms: applied in place"), "{svg}");
        assert!(svg.contains("reload (dashed mark)"));
        assert_eq!(svg.matches("class=\"restart\" data-component=\"db\"").count(), 1);
        assert!(svg.contains("db: restarting at +500 ms: connection reset"), "{svg}");
        // Each start, ready and stop bar is drawn, the restart's too: db starts twice and closes twice.
        assert_eq!(svg.matches("data-component=\"db\" data-phase=\"start\"").count(), 2);
        assert_eq!(svg.matches("data-component=\"db\" data-phase=\"close\"").count(), 2);
        assert_eq!(svg.matches("data-component=\"http\" data-phase=\"drain\"").count(), 2);
        assert!(svg.contains("restart (dashed mark)"));
    }

    #[test]
    fn draws_a_row_per_component_with_its_bars() {
        let svg = render(&sample(), "a & b");
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.contains(">a &amp; b<"), "titles are escaped");
        let rows: Vec<_> = svg.match_indices("class=\"row\"").collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(svg.matches("data-component=\"db\"").count(), 3, "start, ready, close");
        assert_eq!(svg.matches("data-component=\"http\"").count(), 3, "start, ready, drain");
        assert_eq!(svg.matches("class=\"bar problem\"").count(), 1, "the overrun, in red");
        assert!(svg.contains("&lt;of&gt;"), "error text is escaped");
        assert_eq!(svg.matches("class=\"phase-boundary\"").count(), 3);
        assert!(svg.contains("class=\"propagation-delay\""));
        assert!(svg.contains("propagation delay: 100 ms"));
    }

    #[test]
    fn startup_only_has_no_shutdown_panel() {
        let svg = render(&sample()[..6], "up");
        assert!(!svg.contains("shutdown ("));
        assert!(svg.contains("startup ("));
    }

    #[test]
    fn nothing_yet_is_still_a_picture() {
        let svg = render(&[], "empty");
        assert!(svg.ends_with("</svg>\n"));
    }
}
