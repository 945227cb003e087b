//! Reload on SIGHUP: the config layers are read again, exactly as at
//! start, and validated in full; an invalid reload is reported with every
//! problem and changes nothing. A valid one applies what can change while
//! running:
//!
//! - each component section that changed: the component is rebuilt from
//!   the new config, and again from the config in force (for a rollback),
//!   and handed to the runtime (`reload.rs`), which has the running one
//!   apply it in place or restarts it along the graph, all or nothing;
//! - `[log] level` (the `--log-level` flag still wins), last, and only if
//!   every component took its change: a reload that fails part way leaves
//!   everything as it was, the level included;
//! - `[start]` and `[components.<name>]` lifecycle settings of running
//!   components (timeouts, the stop cap, retries, the failure policy, the
//!   restart type and limits): checked with the rest before anything is
//!   applied, put in force once every component took its change.
//!
//! - `[components.<name>] enabled`: a component disabled by the reload
//!   stops (with its running dependents, which must have declared it
//!   optional or be disabled too, and which start again without it); one
//!   enabled is built from the new config and starts along the graph. All
//!   of them together, last, and undone if one fails to start.
//!
//! What needs a new process is said so in the log: `[log] format`,
//! `[shutdown]`, `[supervision]`, `[lifecycle]`, and enabling or disabling
//! a component the app added in code (it cannot be built again). Under systemd, `RELOADING=1` (with `MONOTONIC_USEC`) comes
//! first and `READY=1` last.
//!
//! Each SIGHUP counts once in `orderly_reloads_total{result}`: `applied`
//! (everything took, or nothing had changed), `rolled_back` (a step failed
//! and the steps before it were undone) or `rejected` (the configuration
//! was invalid, or its changes could not hold, such as enabling again a
//! component that cannot start twice; nothing was tried).
//!
//! The process shell: it reads config through `layers.rs` and hands the
//! result to the core's `Runtime::reload`, never to the runtime's internals.

use std::collections::BTreeMap;
use std::sync::Arc;

use sd_notify::NotifyState;

use orderly_core::runtime::{ReloadChange, ReloadReport};
use orderly_core::settings::{ComponentSettings, RuntimeSettings};
use orderly_core::Runtime;

use crate::config::{ConfigErrors, LoadedConfig};
use crate::layers::{check_sections, noting, read_components, Layers, LifecycleOutput};
use crate::logging::{LevelSwitch, LogSettings};
use crate::registry::{ReadMode, Registration};
use crate::systemd::{micros, reload_extension, Notifier};
use orderly_core::config::ConfigIssue;

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
    /// The components the app runs, by name.
    pub(crate) running: Vec<String>,
    pub(crate) log: LogSettings,
    pub(crate) level: LevelSwitch,
    /// Each running registered component's section, as it was last applied.
    pub(crate) sections: BTreeMap<String, Option<serde_json::Value>>,
    /// The config in force: the one started with, or the last reload that took whole.
    pub(crate) in_force: LoadedConfig,
    pub(crate) logger: slog::Logger,
}

/// A validated reload, ready to hand to the runtime.
pub(crate) struct Prepared {
    changes: Vec<ReloadChange>,
    /// New lifecycle settings, `enabled` included.
    lifecycle: Vec<(String, ComponentSettings)>,
    /// Running components the reload disables.
    disabled: Vec<String>,
    settings: RuntimeSettings,
    sections: BTreeMap<String, Option<serde_json::Value>>,
    config: LoadedConfig,
    log: LogSettings,
}

impl Reloader {
    /// Records the sections of the components the app runs, as started.
    pub(crate) fn remember(&mut self, config: &LoadedConfig, running: &[&str]) {
        self.sections = running.iter().map(|&name| (name.to_string(), raw_section(config, name))).collect();
        self.in_force = config.clone();
    }

    /// Reads and validates every layer again; says what waits for a
    /// restart; returns the components to hand over, each with a fresh copy
    /// of the config in force. Changes nothing.
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

        if self.layers.cli.log_format.is_none() && log.format != self.log.format {
            slog::warn!(self.logger, "the log format changes at the next start"; "format" => format!("{:?}", log.format));
        }
        if settings.shutdown != self.settings.shutdown || settings.supervision != self.settings.supervision {
            slog::warn!(self.logger, "[shutdown] and [supervision] changes take effect at the next start");
        }
        let lifecycle = self.lifecycle_changes(&settings);

        slog::debug!(self.logger, "reload: configuration read and valid"; "components" => built.len());
        let mut changes = Vec::new();
        let mut sections = BTreeMap::new();
        let mut disabled = Vec::new();
        // Those to disable first, then the changed sections and those to
        // enable: the runtime applies the sections in order, and every
        // component enabled or disabled together, last.
        for name in self.running.iter().filter(|&name| self.is_registered(name) && settings.is_disabled(name)) {
            changes.push(ReloadChange::disable(name, self.in_force_copy(name)?));
            disabled.push(name.clone());
        }
        for (name, built, _) in built.into_iter().filter(|(_, _, enabled)| *enabled) {
            let section = raw_section(&config, name);
            match self.sections.get(name) {
                Some(old) if *old != section => {
                    let current = self.in_force_copy(name)?;
                    changes.push(ReloadChange::new(name, built.component, current));
                    sections.insert(name.to_string(), section);
                }
                Some(_) => {}
                None => {
                    changes.push(ReloadChange::enable(name, built.component));
                    sections.insert(name.to_string(), section);
                }
            }
        }
        Ok(Prepared { changes, lifecycle, settings, sections, disabled, config, log })
    }

    /// Whether `name` is a registered component (built from config, so a
    /// reload can build it again), not one the app added in code.
    fn is_registered(&self, name: &str) -> bool {
        self.registrations.iter().any(|r| r.section() == name)
    }

    /// The components whose lifecycle settings (`[start]`,
    /// `[components.<name>]`) change with `new`, each with its new
    /// settings, `enabled` included. A component the app added in code
    /// cannot be built again, so enabling or disabling it waits for the
    /// next start (said so in the log).
    fn lifecycle_changes(&self, new: &RuntimeSettings) -> Vec<(String, ComponentSettings)> {
        let mut changes = Vec::new();
        for name in &self.names {
            let (old, mut now) = (self.settings.for_component(name, None), new.for_component(name, None));
            if now.enabled != old.enabled && !self.is_registered(name) {
                slog::warn!(self.logger, "enabling or disabling a component added in code takes effect at the next start"; "component" => name);
                now.enabled = old.enabled;
            }
            if now != old {
                changes.push((name.clone(), now));
            }
        }
        changes
    }

    /// Component `name` built again from the config in force: what a
    /// rollback hands back. It was built from it once, so this fails only
    /// if its constructor does not build the same config twice.
    fn in_force_copy(&self, name: &str) -> Result<Arc<dyn orderly_core::Component>, ConfigErrors> {
        let registration = self.registrations.iter().find(|r| r.section() == name);
        let built = registration.map(|r| r.read(&self.in_force, ReadMode::Build));
        match built {
            Some(Ok(Some(built))) => Ok(built.component),
            Some(Err(issues)) => Err(ConfigErrors(issues)),
            None | Some(Ok(None)) => Err(ConfigErrors(vec![ConfigIssue {
                key: name.to_string(),
                message: "cannot be built again from the config in force, so its change could not be rolled back"
                    .into(),
            }])),
        }
    }

    /// The reload took whole: the new config is in force, and the log level
    /// changes now, last. A reload that did not take changes nothing here.
    fn commit(&mut self, prepared: Prepared, report: &ReloadReport) {
        if !report.is_complete() {
            return;
        }
        let changed = prepared.sections.len();
        for name in &prepared.disabled {
            self.sections.remove(name);
            self.running.retain(|running| running != name);
        }
        self.running.extend(report.enabled.iter().cloned());
        self.running.sort();
        self.sections.extend(prepared.sections);
        self.in_force = prepared.config;
        self.settings = prepared.settings;
        let level = self.layers.cli.log_level.unwrap_or(prepared.log.level);
        if level != self.log.level {
            self.level.set(level);
            slog::info!(self.logger, "log level changed"; "from" => format!("{:?}", self.log.level), "to" => format!("{level:?}"));
            self.log.level = level;
        }
        slog::debug!(self.logger, "the reloaded configuration is in force"; "components_changed" => changed);
    }
}

/// `orderly_reloads_total{result}` on the runtime's registry, or `None`
/// (logged) if it cannot be registered: reloads still work without it.
fn reload_counter(runtime: &Runtime, logger: &slog::Logger) -> Option<prometheus::IntCounterVec> {
    let opts = prometheus::Opts::new(
        "orderly_reloads_total",
        "Configuration reloads (SIGHUP), by result: applied, rolled_back, rejected.",
    );
    let counter = prometheus::IntCounterVec::new(opts, &["result"])
        .and_then(|counter| runtime.metrics_registry().register(Box::new(counter.clone())).map(|()| counter));
    match counter {
        Ok(counter) => {
            // Every result from the first scrape on, so a rate() has a start.
            for result in ["applied", "rolled_back", "rejected"] {
                counter.with_label_values(&[result]);
            }
            Some(counter)
        }
        Err(error) => {
            slog::warn!(logger, "orderly_reloads_total could not be registered; reloads are not counted"; "error" => %error);
            None
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
    let reloads = reload_counter(&runtime, &reloader.logger);
    let count = |result: &str| {
        if let Some(reloads) = &reloads {
            reloads.with_label_values(&[result]).inc();
        }
    };
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
                // Counted before it is told, so whoever reads the log sees the count.
                count("rejected");
                for problem in &problems {
                    slog::error!(logger, "reload rejected"; "key" => &problem.key, "problem" => &problem.message);
                }
                slog::error!(logger, "reload rejected: the configuration is invalid; nothing changed"; "problems" => problems.len());
                report!("{app}: reload rejected, nothing changed: {}", ConfigErrors(problems));
            }
            Ok(prepared) if runtime.check_settings(&prepared.lifecycle).is_err() => {
                count("rejected");
                let problems = runtime.check_settings(&prepared.lifecycle).err().unwrap_or_default();
                for problem in &problems {
                    slog::error!(logger, "reload rejected"; "problem" => problem);
                }
                slog::error!(logger, "reload rejected: the lifecycle settings cannot apply; nothing changed"; "problems" => problems.len());
                report!("{app}: reload rejected, nothing changed: {}", problems.join("; "));
            }
            Ok(mut prepared) => {
                let changes = std::mem::take(&mut prepared.changes);
                let mut report = runtime.reload(changes).await;
                // Checked above, and applied only once every component took its change.
                let mut lifecycle = std::mem::take(&mut prepared.lifecycle);
                // `enabled` was applied by the reload itself: only the rest is news.
                lifecycle.retain(|(name, now)| {
                    let old = reloader.settings.for_component(name, None);
                    ComponentSettings { enabled: old.enabled, ..*now } != old
                });
                if report.is_complete() && !lifecycle.is_empty() {
                    let names: Vec<String> = lifecycle.iter().map(|(name, _)| name.clone()).collect();
                    match runtime.reload_settings(lifecycle).await {
                        Ok(()) => report.applied.extend(names.into_iter().map(|n| format!("[components.{n}]"))),
                        Err(problems) => report.failed.extend(problems),
                    }
                }
                count(match (report.is_complete(), report.refused) {
                    (true, _) => "applied",
                    (false, true) => "rejected",
                    (false, false) => "rolled_back",
                });
                slog::info!(logger, "reloaded";
                    "applied" => report.applied.join(", "),
                    "restarted" => report.restarted.join(", "),
                    "enabled" => report.enabled.join(", "),
                    "disabled" => report.disabled.join(", "),
                    "failed" => report.failed.join("; "),
                    "rolled_back" => report.rolled_back.join(", "));
                for failure in &report.failed {
                    report!("{app}: reload: {failure}");
                }
                reloader.commit(prepared, &report);
            }
        }
        notify(&systemd, &[NotifyState::Ready, NotifyState::Status("running")]);
    }
}
