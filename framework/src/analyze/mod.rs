//! `<app> analyze`: how the app's own startup and shutdown spend their
//! time, over repeated trial runs, as `systemd-analyze` answers it for a
//! machine's boot.
//!
//! Each trial builds the app afresh from its real configuration (every
//! registered component constructed again), starts it, waits until every
//! component is ready, shuts it down at once (without the propagation
//! delay unless asked: nothing routes to a trial run) and reads its
//! lifecycle events. The components do their real work, as in production,
//! which is why a `prod` profile is refused without `--yes`.
//!
//! - `blame`: every component's start and readiness, every stop hook;
//! - `critical-chain`: what decided the time to ready and each stop phase;
//! - `plot`: one SVG over every run;
//! - `compare`: what moved between two saved `--format json` reports.
//!
//! The process shell: it drives `Runtime`s through their public API only.

mod chain;
mod compare;
mod figures;
mod plot;
mod text;
mod trial;

use std::path::Path;

use orderly_core::{Runtime, ShutdownReason};

use crate::cli::{Analysis, AnalyzeArgs, ReportFormat};
use crate::exit::ExitStatus;

pub(crate) use chain::Graph;
use figures::Report;
use trial::Trial;

/// Runs the trials and prints the report `args` asks for. `build` makes a
/// fresh, unstarted runtime of the app each time it is called.
pub(crate) fn run(
    app: &str,
    args: &AnalyzeArgs,
    graph: &Graph,
    mut build: impl FnMut() -> Result<Runtime, String>,
) -> ExitStatus {
    // `compare` reads two saved reports; it runs no trials.
    if let Analysis::Compare { before, after } = &args.report {
        return compare_files(app, before, after);
    }
    let tokio = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("orderly").build() {
        Ok(tokio) => tokio,
        Err(e) => {
            report!("{app}: cannot build the tokio runtime: {e}");
            return ExitStatus::Internal;
        }
    };
    // Ctrl-C (or SIGTERM) ends the trial under way through its normal
    // shutdown (a dev database is stopped and removed with it) and stops
    // the analysis: the report covers the runs that completed.
    let stop = tokio.block_on(async { stop_signal() });
    let mut trials = Vec::new();
    let mut failures = Vec::new();
    let mut interrupted = false;
    for run in 1..=args.runs {
        if stop.is_requested() {
            interrupted = true;
            failures.push(format!("interrupted before run {run}"));
            break;
        }
        report!("{app}: analyze: trial run {run} of {}", args.runs);
        let runtime = match build() {
            Ok(runtime) => runtime,
            Err(e) => {
                report!("{app}: {e}");
                return ExitStatus::Internal;
            }
        };
        let trial = tokio.block_on(async {
            // The signal reaches this trial through its own shutdown handle.
            let (handle, stop) = (runtime.shutdown_handle(), stop.clone());
            let relay = tokio::spawn(async move {
                let reason = stop.wait().await;
                handle.trigger(reason);
            });
            let started = runtime.start().await;
            relay.abort();
            if let Err(e) = started {
                return Err(format!("run {run}: {e}"));
            }
            let reason = ShutdownReason::Requested { by: "analyze".into(), reason: format!("trial run {run}") };
            let report = runtime.shutdown(reason).await;
            let trial = Trial::of(&runtime.timeline().events());
            match report.is_clean() {
                true => Ok((trial, None)),
                false => Ok((trial, Some(format!("run {run}: the shutdown had {} problem(s)", report.problems.len())))),
            }
        });
        match trial {
            Ok((trial, note)) => {
                trials.push(Some(trial));
                failures.extend(note);
            }
            Err(failure) => {
                trials.push(None);
                failures.push(failure);
            }
        }
    }
    if stop.is_requested() && !interrupted {
        interrupted = true;
        failures.push("interrupted during the last run".into());
    }
    let report = Report::of(app, &trials, failures, graph);
    let output = match (&args.report, args.format) {
        (_, ReportFormat::Json) => json(&report),
        (Analysis::Blame, ReportFormat::Text) => text::blame(&report),
        (Analysis::CriticalChain, ReportFormat::Text) => text::critical_chain(&report),
        (Analysis::Plot, ReportFormat::Text) => plot::svg(&report),
        (Analysis::Compare { .. }, ReportFormat::Text) => String::new(), // answered above
    };
    let written = match &args.output {
        Some(path) => std::fs::write(path, &output).map_err(|e| (path.clone(), e)),
        None => {
            print!("{output}");
            Ok(())
        }
    };
    if let Err((path, e)) = written {
        report!("{app}: cannot write {}: {e}", path.display());
        return ExitStatus::Internal;
    }
    match (interrupted, report.completed) {
        (true, _) => ExitStatus::Forced,
        (false, 0) => ExitStatus::StartFailed,
        (false, _) => ExitStatus::Clean,
    }
}

/// A shutdown handle that SIGINT or SIGTERM triggers (installed on the
/// current tokio runtime); if the handlers cannot be installed, the signals
/// keep their default action.
fn stop_signal() -> orderly_core::Shutdown {
    use tokio::signal::unix::{signal, SignalKind};
    let stop = orderly_core::Shutdown::new();
    if let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) {
        let trigger = stop.clone();
        tokio::spawn(async move {
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            };
            trigger.trigger(ShutdownReason::Signal(name));
        });
    }
    stop
}

fn json(report: &Report) -> String {
    match serde_json::to_string_pretty(report) {
        Ok(text) => text + "\n",
        Err(e) => format!("{{\"error\": \"{e}\"}}\n"),
    }
}

/// `analyze compare`: reads two saved reports and prints what moved.
pub(crate) fn compare_files(app: &str, before: &Path, after: &Path) -> ExitStatus {
    let read = |path: &Path| -> Result<Report, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("{} is not an `analyze --format json` report: {e}", path.display()))
    };
    match (read(before), read(after)) {
        (Ok(before), Ok(after)) => {
            print!("{}", compare::text(&before, &after));
            ExitStatus::Clean
        }
        (Err(e), _) | (_, Err(e)) => {
            report!("{app}: {e}");
            ExitStatus::InvalidConfig
        }
    }
}
