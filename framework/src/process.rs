//! The process around the shutdown sequence: signals in, the watchdog
//! that bounds the whole sequence, and the exit status out.
//!
//! The sequence itself (readiness flip, propagation delay, five phases)
//! lives in `orderly_core`'s `shutdown` module; this file owns only what a
//! process has and a library may not do: install signal handlers, start an
//! OS thread that can end the process, print to stderr and exit.

use std::time::Duration;

use orderly_core::runtime::RunOutcome;
use orderly_core::runtime::ShutdownReport;
use orderly_core::{Shutdown, ShutdownReason};

use crate::exit::ExitStatus;

/// How long past the shutdown deadline the watchdog waits before it ends the
/// process: room for the last log records, not for more work.
const WATCHDOG_GRACE: Duration = Duration::from_secs(1);

/// The first SIGTERM or SIGINT requests a graceful shutdown; a second one,
/// while that signal's shutdown runs, ends the process at once.
pub(crate) fn watch_signals(app: &'static str, shutdown: Shutdown) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            if let Some(ShutdownReason::Signal(first)) = shutdown.reason() {
                report!("{app}: received {name} after {first} during shutdown; exiting immediately");
                std::process::exit(ExitStatus::Forced.code().into());
            }
            shutdown.trigger(ShutdownReason::Signal(name));
        }
    });
    Ok(())
}

/// Once a shutdown begins, an OS thread (which no stuck task can block)
/// ends the process if the shutdown overruns its deadline.
pub(crate) async fn arm_watchdog(app: &'static str, shutdown: Shutdown, deadline: Duration) {
    shutdown.wait().await;
    let limit = deadline + WATCHDOG_GRACE;
    let spawned = std::thread::Builder::new().name("orderly-watchdog".into()).spawn(move || {
        std::thread::sleep(limit);
        report!("{app}: shutdown overran its deadline by {WATCHDOG_GRACE:?}; exiting now");
        std::process::exit(ExitStatus::DeadlineExceeded.code().into());
    });
    if let Err(e) = spawned {
        report!("{app}: cannot start the shutdown watchdog: {e}");
    }
}

/// The last step: the run's outcome as the process's exit status, with
/// every problem printed for whoever reads stderr.
pub(crate) fn exit_status(app: &str, outcome: &RunOutcome, logger: &slog::Logger) -> ExitStatus {
    let print_problems = |report: &ShutdownReport| {
        for problem in &report.problems {
            report!("{app}:   {problem}");
        }
    };
    match outcome {
        RunOutcome::StartFailed { failure, rollback } => {
            slog::crit!(logger, "start failed"; "component" => &failure.component, "phase" => failure.phase.as_str(), "error" => &failure.error);
            report!("{app}: start failed: {failure}");
            if !rollback.is_clean() {
                report!("{app}: the rollback had problems:");
                print_problems(rollback);
            }
            ExitStatus::StartFailed
        }
        RunOutcome::Interrupted(report) | RunOutcome::ShutDown(report) => {
            if !report.is_clean() {
                report!("{app}: shutdown finished with problems:");
                print_problems(report);
                ExitStatus::ShutdownUnclean
            } else if let ShutdownReason::RestartLimitExceeded { .. } = report.reason {
                report!("{app}: {}", report.reason);
                ExitStatus::RestartLimitExceeded
            } else if report.reason.is_failure() {
                report!("{app}: {}", report.reason);
                ExitStatus::ComponentFailed
            } else {
                ExitStatus::Clean
            }
        }
    }
}
