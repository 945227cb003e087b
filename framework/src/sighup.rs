//! Reload on SIGHUP: the config layers are read again, exactly as at
//! start, and validated in full; an invalid reload is reported with every
//! problem and changes nothing. A valid one applies what can change while
//! running:
//!
//! - `[log] level` at once (the `--log-level` flag still wins);
//! - each component section that changed: the component is rebuilt from
//!   the new config and handed to the runtime (`reload.rs`), which has the
//!   running one apply it in place or restarts it along the graph.
//!
//! What needs a new process is said so in the log: `[log] format`,
//! `[start]`, `[shutdown]`, `[components.*]`, `[lifecycle]`, and
//! components enabled or disabled. Under systemd, `RELOADING=1` (with
//! `MONOTONIC_USEC`) comes first and `READY=1` last.
//!
//! The process shell: it reads config through `layers.rs` and hands the
//! result to the core's `Runtime::reload`, never to the runtime's internals.

use std::collections::BTreeMap;
use std::sync::Arc;

use sd_notify::NotifyState;

use orderly_core::settings::RuntimeSettings;
use orderly_core::{runtime::ReloadReport, Component, Runtime};

use crate::config::{ConfigErrors, LoadedConfig};
use crate::layers::{check_sections, noting, read_components, Layers, LifecycleOutput};
use crate::logging::{LevelSwitch, LogSettings};
use crate::registry::Registration;
use crate::systemd::{micros, reload_extension, Notifier};

/// A section as read, for telling whether it changed (secrets included,
/// which a printed dump would hide).
fn raw_section(config: &LoadedConfig, name: &str) -> Option<serde_json::Value> {
    config.section::<serde_json::Value>(name).ok()
}

/// What the running process was configured with, and how to read it again.
pub(crate) struct Reloader {
    pub(crate) layers: Layers,
    pub(crate) registrations: Vec<&'static Registration>,
    pub(crate) names: Vec<String>,
    pub(crate) settings: RuntimeSettings,
    pub(crate) log: LogSettings,
    pub(crate) level: LevelSwitch,
    /// Each running registered component's section, as it was last applied.
    pub(crate) sections: BTreeMap<String, Option<serde_json::Value>>,
    pub(crate) logger: slog::Logger,
}

/// A validated reload, ready to hand to the runtime.
pub(crate) struct Prepared {
    changes: Vec<(String, Arc<dyn Component>)>,
    sections: BTreeMap<String, Option<serde_json::Value>>,
}

impl Reloader {
    /// Records the sections of the components the app runs, as started.
    pub(crate) fn remember(&mut self, config: &LoadedConfig, running: &[&str]) {
        self.sections = running.iter().map(|&name| (name.to_string(), raw_section(config, name))).collect();
    }

    /// Reads and validates every layer again; applies the log level; says
    /// what waits for a restart; returns the components to hand over.
    pub(crate) fn prepare(&mut self) -> Result<Prepared, ConfigErrors> {
        let config = self.layers.load()?;
        let names: Vec<&str> = self.names.iter().map(String::as_str).collect();
        let mut issues = Vec::new();
        let settings = noting(config.runtime_settings(&names), &mut issues);
        let log = noting(config.section::<LogSettings>("log"), &mut issues);
        noting(config.section::<LifecycleOutput>("lifecycle"), &mut issues);
        check_sections(&config, &names, &mut issues);
        let built = read_components(&config, &self.registrations, &settings, &mut issues);
        if !issues.is_empty() {
            return Err(ConfigErrors(issues));
        }

        let level = self.layers.cli.log_level.unwrap_or(log.level);
        if level != self.log.level {
            self.level.set(level);
            slog::info!(self.logger, "log level changed"; "from" => format!("{:?}", self.log.level), "to" => format!("{level:?}"));
            self.log.level = level;
        }
        if self.layers.cli.log_format.is_none() && log.format != self.log.format {
            slog::warn!(self.logger, "the log format changes at the next start"; "format" => format!("{:?}", log.format));
        }
        if settings != self.settings {
            slog::warn!(self.logger, "[start], [shutdown] and [components.*] changes take effect at the next start");
        }

        slog::debug!(self.logger, "reload: configuration read and valid"; "components" => built.len());
        let mut prepared = Prepared { changes: Vec::new(), sections: BTreeMap::new() };
        for (name, built) in built {
            let section = raw_section(&config, name);
            match self.sections.get(name) {
                Some(old) if *old != section => {
                    prepared.changes.push((name.to_string(), built.component));
                    prepared.sections.insert(name.to_string(), section);
                }
                Some(_) => {}
                None => {
                    slog::warn!(self.logger, "a component enabled by the reload starts at the next start"; "component" => name)
                }
            }
        }
        Ok(prepared)
    }

    /// Remembers what the runtime took.
    fn commit(&mut self, mut prepared: Prepared, report: &ReloadReport) {
        for name in report.applied.iter().chain(&report.restarted) {
            if let Some(section) = prepared.sections.remove(name) {
                self.sections.insert(name.clone(), section);
            }
        }
    }
}

fn notify(systemd: &Option<Arc<Notifier>>, states: &[NotifyState<'_>]) {
    if let Some(notifier) = systemd {
        notifier.send(states);
    }
}

/// Reloads on every SIGHUP until a shutdown begins. A SIGHUP that arrives
/// while the app starts waits until it has started (and is applied then):
/// systemd hears `READY=1` only once startup is complete.
pub(crate) async fn reload_on_sighup(
    app: &'static str,
    mut hangups: tokio::signal::unix::Signal,
    runtime: Runtime,
    mut reloader: Reloader,
    systemd: Option<Arc<Notifier>>,
) {
    while hangups.recv().await.is_some() {
        if !runtime.health().started().await || runtime.shutdown_handle().is_requested() {
            return;
        }
        if let Some(notifier) = &systemd {
            notifier.told_ready().await;
        }
        let extend = micros(reload_extension(&reloader.settings));
        let mut reloading =
            vec![NotifyState::Reloading, NotifyState::Status("reloading"), NotifyState::ExtendTimeoutUsec(extend)];
        reloading.extend(NotifyState::monotonic_usec_now().ok());
        notify(&systemd, &reloading);
        let logger = reloader.logger.clone();
        slog::info!(logger, "reloading the configuration (SIGHUP)");
        match reloader.prepare() {
            Err(ConfigErrors(problems)) => {
                for problem in &problems {
                    slog::error!(logger, "reload rejected"; "key" => &problem.key, "problem" => &problem.message);
                }
                slog::error!(logger, "reload rejected: the configuration is invalid; nothing changed"; "problems" => problems.len());
                eprintln!("{app}: reload rejected, nothing changed: {}", ConfigErrors(problems));
            }
            Ok(prepared) => {
                let report = runtime.reload(prepared.changes.clone()).await;
                slog::info!(logger, "reloaded";
                    "applied" => report.applied.join(", "),
                    "restarted" => report.restarted.join(", "),
                    "failed" => report.failed.join("; "));
                for failure in &report.failed {
                    eprintln!("{app}: reload: {failure}");
                }
                reloader.commit(prepared, &report);
            }
        }
        notify(&systemd, &[NotifyState::Ready, NotifyState::Status("running")]);
    }
}
