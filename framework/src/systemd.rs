//! systemd integration (`Type=notify`): the service manager learns the
//! lifecycle from the same event stream as the logs and metrics.
//!
//! | when | sent |
//! |---|---|
//! | a component starts | `STATUS=starting <component>`, `EXTEND_TIMEOUT_USEC=<its start + ready timeouts + 1 s>` |
//! | every component has started and was ready | `READY=1`, `STATUS=running` |
//! | the shutdown begins | `STOPPING=1`, `STATUS=stopping: <what happened>` |
//! | a stop phase begins | `STATUS=phase N <name>`, `EXTEND_TIMEOUT_USEC=<its budget + 1 s>` |
//! | a component restarts | `STATUS=restarting <component>`, then `STATUS=running` |
//! | SIGHUP (`sighup.rs`), once the app is ready | `RELOADING=1`, `STATUS=reloading`, `MONOTONIC_USEC=<now>`, `EXTEND_TIMEOUT_USEC=<what a reload may take>`; then `READY=1`, `STATUS=running` |
//! | every half `WATCHDOG_USEC` | `WATCHDOG=1`, from a task on the service's own runtime; with `[systemd] watchdog = "liveness"`, only while every component is alive |
//!
//! Notifications can never hurt the service: they leave from one
//! non-blocking socket, so a manager that does not read (its queue full)
//! costs a dropped message, counted in
//! `orderly_systemd_notifications_dropped_total`, never a blocked runtime.
//! `NOTIFY_SOCKET` may be a path or an abstract socket (`@name`). A
//! `STATUS=` is one line that says what happened, never an error's text
//! (which can hold anything, a password included; it is in the log).
//!
//! The watchdog pings come from an ordinary task, so they stop when the
//! runtime is wedged (every worker thread blocked): exactly when systemd
//! should restart the service. Pings go on during the shutdown, which has
//! its own deadline and watchdog. Without `NOTIFY_SOCKET` nothing here runs.

use std::fmt::Write as _;
use std::os::linux::net::SocketAddrExt as _;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sd_notify::NotifyState;

use orderly_core::events::{EventKind, EventSink, LifecycleEvent};
use orderly_core::health::Health;
use orderly_core::phase::Phase;
use orderly_core::settings::RuntimeSettings;

/// Room beyond a phase's budget that `EXTEND_TIMEOUT_USEC` grants: the
/// budget is a cap, and the next message must come before systemd's timer.
const EXTEND_MARGIN: Duration = Duration::from_secs(1);

/// How long a reload hook may take (the core's limit), for `EXTEND_TIMEOUT_USEC`.
const RELOAD_HOOK: Duration = Duration::from_secs(30);

/// The longest `STATUS=` text: one line that `systemctl status` shows whole.
const STATUS_CHARS: usize = 120;

/// `[systemd]`: what the service manager is told beyond the lifecycle.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct SystemdSettings {
    /// When `WATCHDOG=1` is sent (if systemd set `WatchdogSec=`).
    pub(crate) watchdog: WatchdogGate,
}

/// What the watchdog pings say.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WatchdogGate {
    /// The runtime schedules tasks (the default): a wedged runtime stops pinging.
    #[default]
    Always,
    /// That, and every component is alive (`Component::live`, as `/healthz`
    /// answers): a component stuck for good stops the pings too, and
    /// systemd restarts the service.
    Liveness,
}

/// Where notifications go.
enum Target {
    Path(PathBuf),
    Abstract(SocketAddr),
}

/// The one place notifications leave from: an unbound, non-blocking
/// datagram socket and the manager's address.
pub(crate) struct Notifier {
    socket: UnixDatagram,
    target: Target,
    dropped: prometheus::IntCounter,
    /// Whether the first `READY=1` is out: a reload's `RELOADING=1` waits for it.
    told_ready: tokio::sync::watch::Sender<bool>,
}

impl Notifier {
    /// A notifier if the process runs under systemd (`NOTIFY_SOCKET` set)
    /// and a socket could be made, else `None`. Its drops count on `registry`.
    pub(crate) fn from_env(registry: &prometheus::Registry) -> Option<Arc<Self>> {
        let value = std::env::var_os("NOTIFY_SOCKET")?;
        let target = match value.as_bytes().strip_prefix(b"@") {
            Some(name) => Target::Abstract(SocketAddr::from_abstract_name(name).ok()?),
            None => Target::Path(PathBuf::from(value)),
        };
        let socket = UnixDatagram::unbound().ok()?;
        socket.set_nonblocking(true).ok()?;
        let dropped = prometheus::IntCounter::new(
            "orderly_systemd_notifications_dropped_total",
            "systemd notifications dropped because the manager's socket could not take them at once.",
        )
        .ok()?;
        // Counting is a courtesy: a name clash on a shared registry must not cost the notifications.
        let _ = registry.register(Box::new(dropped.clone()));
        let told_ready = tokio::sync::watch::Sender::new(false);
        Some(Arc::new(Self { socket, target, dropped, told_ready }))
    }

    /// Sends one datagram of `KEY=value` lines; never waits. A message the
    /// socket cannot take now (full queue, no listener) is dropped and counted.
    pub(crate) fn send(&self, states: &[NotifyState<'_>]) {
        let mut message = String::new();
        for state in states {
            let _ = writeln!(message, "{state}");
        }
        let sent = match &self.target {
            Target::Path(path) => self.socket.send_to(message.as_bytes(), path),
            Target::Abstract(address) => self.socket.send_to_addr(message.as_bytes(), address),
        };
        if sent.is_err() {
            self.dropped.inc();
        }
    }

    /// Sends `READY=1` once the app has started (or nothing, if it never does).
    pub(crate) async fn ready_when_started(self: Arc<Self>, health: Health) {
        if health.started().await {
            self.send(&[NotifyState::Ready, NotifyState::Status("running")]);
            self.told_ready.send_replace(true);
        }
    }

    /// Waits until the first `READY=1` is out, so that nothing about a
    /// reload reaches systemd before it.
    pub(crate) async fn told_ready(&self) {
        let mut told = self.told_ready.subscribe();
        // The sender lives as long as `self`: waiting cannot fail here.
        let _ = told.wait_for(|told| *told).await;
    }

    /// Pings the watchdog every half of `WATCHDOG_USEC`, if systemd asked
    /// for it, forever; with [`WatchdogGate::Liveness`], only while every
    /// component is alive (each asked within a quarter of the interval).
    pub(crate) async fn watchdog(self: Arc<Self>, health: Health, gate: WatchdogGate, logger: slog::Logger) {
        let Some(timeout) = sd_notify::watchdog_enabled().filter(|t| !t.is_zero()) else { return };
        let mut every = tokio::time::interval(timeout / 2);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut was_alive = true;
        loop {
            every.tick().await;
            if gate == WatchdogGate::Liveness {
                let report = health.liveness(timeout / 8).await;
                if !report.alive {
                    if was_alive {
                        let (who, why) = report.dead.first().cloned().unwrap_or_default();
                        slog::error!(logger, "a component is not alive: the systemd watchdog is no longer pinged";
                            "component" => &who, "error" => &why);
                        self.send(&[NotifyState::Status(&status(&format!("not alive: {who}")))]);
                    }
                    was_alive = false;
                    continue;
                }
                if !was_alive {
                    slog::info!(logger, "every component is alive again: the systemd watchdog is pinged");
                    self.send(&[NotifyState::Status("running")]);
                }
                was_alive = true;
            }
            self.send(&[NotifyState::Watchdog]);
        }
    }
}

/// `text` as a `STATUS=` value: up to its first `": "` (what happened, not
/// the error text after it), one line, at most [`STATUS_CHARS`] characters.
pub(crate) fn status(text: &str) -> String {
    let what = text.split(": ").next().unwrap_or_default();
    let mut line: String = what.chars().map(|c| if c.is_control() { ' ' } else { c }).take(STATUS_CHARS).collect();
    line.truncate(line.trim_end().len());
    line
}

/// `EXTEND_TIMEOUT_USEC`'s value for `d` (saturating).
pub(crate) fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// What a reload may take at most: its hook, then a restart of its
/// component's part of the graph (the stop phases, then the starts).
pub(crate) fn reload_extension(settings: &RuntimeSettings) -> Duration {
    RELOAD_HOOK + settings.shutdown.deadline + settings.start.timeout + settings.start.ready_timeout + EXTEND_MARGIN
}

/// The lifecycle events as notifications.
pub(crate) struct SystemdNotify {
    notifier: Arc<Notifier>,
    settings: RuntimeSettings,
}

impl SystemdNotify {
    pub(crate) fn new(notifier: Arc<Notifier>, settings: RuntimeSettings) -> Self {
        Self { notifier, settings }
    }
}

impl EventSink for SystemdNotify {
    fn on_event(&self, e: &LifecycleEvent) {
        let component = e.component.as_deref().unwrap_or("app");
        match (e.event, e.phase) {
            (EventKind::Starting, _) => {
                let limits = self.settings.for_component(component, None);
                let extend = micros(limits.start_timeout + limits.ready_timeout + EXTEND_MARGIN);
                let text = status(&format!("starting {component}"));
                self.notifier.send(&[NotifyState::Status(&text), NotifyState::ExtendTimeoutUsec(extend)]);
            }
            (EventKind::ShutdownRequested, _) => {
                // The detail is one line once `status` has it; "stopping: " goes in front.
                let text = format!("stopping: {}", status(e.detail.as_deref().unwrap_or("requested")));
                self.notifier.send(&[NotifyState::Stopping, NotifyState::Status(&text)]);
            }
            (EventKind::Restarting, _) => {
                let text = status(&format!("restarting {component}"));
                self.notifier.send(&[NotifyState::Status(&text)]);
            }
            (EventKind::Restarted, _) => self.notifier.send(&[NotifyState::Status("running")]),
            (EventKind::PhaseStarted, Some(Phase::Stop(phase))) => {
                let text = format!("phase {} {}", phase.number(), phase.as_str());
                let extend = micros(self.settings.shutdown.phases.get(phase) + EXTEND_MARGIN);
                self.notifier.send(&[NotifyState::Status(&text), NotifyState::ExtendTimeoutUsec(extend)]);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_one_line_without_the_error_text() {
        assert_eq!(status("component `db` failed: password=x\nWATCHDOG=trigger"), "component `db` failed");
        assert_eq!(status("signal SIGTERM"), "signal SIGTERM");
        assert_eq!(status("a\nb\rc"), "a b c");
        assert_eq!(status(&"x".repeat(500)).len(), STATUS_CHARS);
    }
}
