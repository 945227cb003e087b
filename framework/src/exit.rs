//! Exit codes: each way a run can end has its own, so an orchestrator or a
//! script can tell a bad config from a failed start from an unclean stop.
//!
//! The process shell: it names nothing else.

use std::process::ExitCode;

/// How the process ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// 0: ran and shut down cleanly, or `--check` passed.
    Clean = 0,
    /// 1: a component failed to start; what had started was rolled back.
    StartFailed = 1,
    /// 3: the shutdown finished, but some hook failed, panicked, overran or was skipped.
    ShutdownUnclean = 3,
    /// 4: a component failed while running; the shutdown that followed was clean.
    ComponentFailed = 4,
    /// 5: a component failed more often than its restart limit allows; the
    /// shutdown that followed was clean.
    RestartLimitExceeded = 5,
    /// 65 (`EX_DATAERR`): the dependency graph is invalid.
    InvalidGraph = 65,
    /// 70 (`EX_SOFTWARE`): the runtime itself could not run (no components, no tokio runtime).
    Internal = 70,
    /// 78 (`EX_CONFIG`): the configuration is invalid.
    InvalidConfig = 78,
    /// 124: the shutdown overran its deadline and the watchdog ended the process.
    DeadlineExceeded = 124,
    /// 130: a second signal forced an immediate exit.
    Forced = 130,
}

impl ExitStatus {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(status.code())
    }
}
