//! systemd integration (`Type=notify`): the service manager learns the
//! lifecycle from the same event stream as the logs and metrics.
//!
//! | when | sent |
//! |---|---|
//! | every component has started and was ready | `READY=1`, `STATUS=running` |
//! | a component starts | `STATUS=starting <component>` |
//! | the shutdown begins | `STOPPING=1`, `STATUS=stopping: <reason>` |
//! | a stop phase begins | `STATUS=phase N <name>`, `EXTEND_TIMEOUT_USEC=<its budget + 1 s>` |
//! | a component restarts | `STATUS=restarting <component>: <cause>`, then `STATUS=running` |
//! | SIGHUP (`sighup.rs`) | `RELOADING=1`, `STATUS=reloading`, `MONOTONIC_USEC=<now>`; then `READY=1`, `STATUS=running` |
//! | every half `WATCHDOG_USEC` | `WATCHDOG=1`, from a task on the service's own runtime |
//!
//! The watchdog pings come from an ordinary task, so they stop when the
//! runtime is wedged (every worker thread blocked): exactly when systemd
//! should restart the service. Pings go on during the shutdown, which has
//! its own deadline and watchdog.
//!
//! Everything here is a no-op without `NOTIFY_SOCKET`, and a failed send
//! is ignored: systemd's absence never affects the service. The protocol
//! itself is the `sd-notify` crate's.

use std::time::Duration;

use sd_notify::NotifyState;

use orderly_core::events::{EventKind, EventSink, LifecycleEvent};
use orderly_core::health::Health;
use orderly_core::phase::Phase;
use orderly_core::settings::PhaseBudgets;

/// Room beyond a phase's budget that `EXTEND_TIMEOUT_USEC` grants: the
/// budget is a cap, and the next message must come before systemd's timer.
const EXTEND_MARGIN: Duration = Duration::from_secs(1);

/// Sends lifecycle notifications to systemd when run under it.
pub(crate) struct SystemdNotify {
    budgets: PhaseBudgets,
}

impl SystemdNotify {
    /// A notifier if the process runs under systemd (`NOTIFY_SOCKET` set), else `None`.
    pub(crate) fn from_env(budgets: PhaseBudgets) -> Option<Self> {
        std::env::var_os("NOTIFY_SOCKET").map(|_| Self { budgets })
    }

    pub(crate) fn send(states: &[NotifyState<'_>]) {
        // Best effort: a lost notification must never fail the service.
        let _ = sd_notify::notify(states);
    }

    /// Sends `READY=1` once the app has started (or nothing, if it never does).
    pub(crate) async fn ready_when_started(health: Health) {
        if health.started().await {
            Self::send(&[NotifyState::Ready, NotifyState::Status("running")]);
        }
    }

    /// Pings the watchdog every half of `WATCHDOG_USEC`, if systemd asked for it, forever.
    pub(crate) async fn watchdog() {
        let Some(timeout) = sd_notify::watchdog_enabled().filter(|t| !t.is_zero()) else { return };
        let mut every = tokio::time::interval(timeout / 2);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            Self::send(&[NotifyState::Watchdog]);
        }
    }
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl EventSink for SystemdNotify {
    fn on_event(&self, e: &LifecycleEvent) {
        match (e.event, e.phase) {
            (EventKind::Starting, _) => {
                let status = format!("starting {}", e.component.as_deref().unwrap_or("app"));
                Self::send(&[NotifyState::Status(&status)]);
            }
            (EventKind::ShutdownRequested, _) => {
                let status = format!("stopping: {}", e.detail.as_deref().unwrap_or("requested"));
                Self::send(&[NotifyState::Stopping, NotifyState::Status(&status)]);
            }
            (EventKind::Restarting, _) => {
                let status = format!(
                    "restarting {}: {}",
                    e.component.as_deref().unwrap_or("app"),
                    e.error.as_deref().unwrap_or("failed")
                );
                Self::send(&[NotifyState::Status(&status)]);
            }
            (EventKind::Restarted, _) => Self::send(&[NotifyState::Status("running")]),
            (EventKind::PhaseStarted, Some(Phase::Stop(phase))) => {
                let status = format!("phase {} {}", phase.number(), phase.as_str());
                let extend = micros(self.budgets.get(phase) + EXTEND_MARGIN);
                Self::send(&[NotifyState::Status(&status), NotifyState::ExtendTimeoutUsec(extend)]);
            }
            _ => {}
        }
    }
}
