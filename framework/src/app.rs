//! [`App`]: the process around a [`Runtime`]: command line, layered config,
//! logging, signals, the shutdown watchdog and the exit code; with what an
//! app's `main` names beside it ([`ExitStatus`], [`AppInfo`], and the
//! [`Linked`] crates whose [`Registration`]s it runs).
//!
//! The top of the process shell: the only place that owns the tokio runtime
//! and turns a run into an exit status (through `process.rs`).

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use orderly_core::runtime::{BuildError, Runtime};
use orderly_core::settings::RuntimeSettings;
use orderly_core::{Component, Shutdown};

use crate::cli::{Analysis, AnalyzeArgs, Cli, Command};
use crate::config::{ConfigErrors, ConfigIssue, LoadedConfig};
use crate::layers::{check_sections, noting, read_components, Layers, LifecycleOutput};
use crate::logging::{build_logger, LogLevel, LogSettings};
use crate::process;
use crate::sighup::{reload_on_sighup, Reloader};
use crate::systemd::{Notifier, SystemdNotify, SystemdSettings};

pub use crate::cli::AppInfo;
pub use crate::exit::ExitStatus;
pub use crate::registry::{Linked, Registration};

/// A service: registered components plus any added here, run as one process.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     orderly::app::App::new(orderly::app_info!(), orderly::link![])
///         .embedded_config("[shutdown]\npropagation_delay = \"5s\"\n")
///         .run()
/// }
/// ```
pub struct App {
    info: AppInfo,
    linked: Linked,
    env_prefix: String,
    embedded: Vec<String>,
    embedded_profiles: Vec<(String, String)>,
    extra: Vec<Arc<dyn Component>>,
    args: Option<Vec<OsString>>,
}

impl App {
    /// An app named by `info` that runs the components registered in the
    /// binary and in the crates named by `linked`.
    pub fn new(info: AppInfo, linked: Linked) -> Self {
        Self {
            info,
            linked,
            env_prefix: "APP".into(),
            embedded: Vec::new(),
            embedded_profiles: Vec::new(),
            extra: Vec::new(),
            args: None,
        }
    }

    /// The environment prefix (default `APP`: `APP__SECTION__KEY`).
    pub fn env_prefix(mut self, prefix: &str) -> Self {
        self.env_prefix = prefix.to_string();
        self
    }

    /// Config compiled into the binary, below every file, env var and flag.
    pub fn embedded_config(mut self, toml: &str) -> Self {
        self.embedded.push(toml.to_string());
        self
    }

    /// Config compiled into the binary for one profile, read over the
    /// embedded defaults when that profile is in force. The profile is
    /// `--profile` or `<PREFIX>_PROFILE`, else `dev` in a debug build and
    /// `prod` in a release build: put development conveniences (a local
    /// database, a well-known key) in `dev`, and a release binary never
    /// runs with them unless asked.
    pub fn embedded_profile(mut self, profile: &str, toml: &str) -> Self {
        self.embedded_profiles.push((profile.to_string(), toml.to_string()));
        self
    }

    /// A component added explicitly rather than registered.
    pub fn component(mut self, component: impl Component) -> Self {
        self.extra.push(Arc::new(component));
        self
    }

    /// Command-line arguments to use instead of the process's own.
    pub fn args<I: IntoIterator<Item = T>, T: Into<OsString>>(mut self, args: I) -> Self {
        self.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Parses the command line, loads config, starts every component, waits
    /// for SIGTERM/SIGINT (or a shutdown request), shuts down, and returns
    /// the exit code. See [`ExitStatus`] for the codes.
    pub fn run(self) -> ExitCode {
        self.run_to_status().into()
    }

    fn run_to_status(self) -> ExitStatus {
        let (name, prefix, default_profile) = (self.info.name, &self.env_prefix, self.info.default_profile());
        let command = <Cli as clap::CommandFactory>::command()
            .name(name)
            .about(match self.info.description {
                "" => format!("{name} {}: a service of orderly components", self.info.version),
                description => format!("{name} {}: {description}", self.info.version),
            })
            .mut_arg("profile", |arg| {
                arg.help(format!(
                    "The config profile (or set {prefix}_PROFILE): its embedded config and \
                     config/<PROFILE>.toml are read over the defaults [default: {default_profile}]"
                ))
            });
        let matches = match &self.args {
            Some(args) => command.try_get_matches_from(args),
            None => command.try_get_matches(),
        };
        let cli = match matches.and_then(|m| <Cli as clap::FromArgMatches>::from_arg_matches(&m)) {
            Ok(cli) => cli,
            Err(e) => e.exit(), // prints help or usage; exit 0 or 2 as clap decides
        };
        if cli.version {
            println!("{}", self.info.long_version());
            return ExitStatus::Clean;
        }
        if let Some(Command::Analyze(AnalyzeArgs { report: Analysis::Compare { before, after }, .. })) = &cli.command {
            return crate::analyze::compare_files(self.info.name, before, after);
        }

        let layers = Layers {
            env_prefix: self.env_prefix.clone(),
            embedded: self.embedded.clone(),
            embedded_profiles: self.embedded_profiles.clone(),
            default_profile: self.info.default_profile(),
            cli: cli.clone(),
        };
        let (config, mut issues) = match layers.load() {
            Ok(config) => (config, Vec::new()),
            Err(ConfigErrors(issues)) => (LoadedConfig::default(), issues),
        };
        let mut log_settings = noting(config.section::<LogSettings>("log"), &mut issues);
        log_settings.level = cli.log_level.unwrap_or(log_settings.level);
        log_settings.format = cli.log_format.unwrap_or(log_settings.format);
        // `analyze` and the printing flags write to standard output, where the
        // log goes too: only problems are logged there, unless asked otherwise.
        let prints = cli.print_config || cli.print_graph.is_some() || matches!(cli.command, Some(Command::Analyze(_)));
        if prints && cli.log_level.is_none() {
            log_settings.level = LogLevel::Warning;
        }
        let (logger, log_guard) = build_logger(&log_settings, self.info.name, self.info.version);
        slog::info!(logger, "configuration read"; "profile" => layers.profile());
        let reloader = Reloader {
            layers,
            registrations: Vec::new(),
            names: Vec::new(),
            settings: Default::default(),
            running: Vec::new(),
            log: log_settings,
            level: log_guard.switch(),
            sections: Default::default(),
            in_force: LoadedConfig::default(),
            logger: logger.clone(),
        };
        let status = self.assemble_and_run(&cli, &config, issues, reloader);
        drop(logger);
        drop(log_guard); // flushes every record before the process exits
        status
    }

    fn assemble_and_run(
        self,
        cli: &Cli,
        config: &LoadedConfig,
        mut issues: Vec<ConfigIssue>,
        mut reloader: Reloader,
    ) -> ExitStatus {
        let logger = &reloader.logger.clone();
        let registrations: Vec<&'static Registration> = Registration::all().collect();
        let mut owned_names: Vec<String> = registrations.iter().map(|r| r.section().to_string()).collect();
        owned_names.extend(self.extra.iter().map(|c| c.name().to_string()));
        let names: Vec<&str> = owned_names.iter().map(String::as_str).collect();

        let settings = noting(config.runtime_settings(&names), &mut issues);
        let output = noting(config.section::<LifecycleOutput>("lifecycle"), &mut issues);
        let systemd_settings = noting(config.section::<SystemdSettings>("systemd"), &mut issues);
        check_sections(config, &names, &mut issues);

        let registry = prometheus::Registry::new();
        let mut builder = Runtime::builder()
            .logger(logger.clone())
            .shutdown_handle(Shutdown::new())
            .metrics_registry(registry.clone());
        let systemd = Notifier::from_env(&registry);
        if let Some(notifier) = &systemd {
            builder = builder.event_sink(Arc::new(SystemdNotify::new(notifier.clone(), settings.clone())));
        } else if std::env::var_os("NOTIFY_SOCKET").is_some() {
            slog::warn!(logger, "NOTIFY_SOCKET is set but no notification socket could be made; systemd will not hear from this service");
        }
        let mut dumps = toml::Table::new();
        let mut running = Vec::new();
        for (name, built, enabled) in read_components(config, &registrations, &settings, &mut issues) {
            if enabled {
                dumps.insert(name.to_string(), toml::Value::Table(built.config_dump));
                running.push(name);
            }
            builder = builder.component_named(name, built.component, None);
        }
        for component in self.extra.iter().cloned() {
            builder = builder.component_arc(component);
        }
        if !issues.is_empty() {
            let error = ConfigErrors(issues);
            slog::crit!(logger, "invalid configuration"; "problems" => error.0.len());
            report!("{}: {error}", self.info.name);
            return ExitStatus::InvalidConfig;
        }
        if names.is_empty() {
            report!(
                "{}: no components to run. Register components with orderly::register! and link their crates with orderly::link![...]",
                self.info.name
            );
            return ExitStatus::Internal;
        }
        for krate in self.linked.silent_crates() {
            slog::warn!(logger, "linked crate registers no components"; "crate" => krate);
        }

        let runtime = match builder.settings(settings.clone()).build() {
            Ok(runtime) => runtime,
            Err(BuildError::Graph(errors)) => {
                report!("{}: {errors}", self.info.name);
                return ExitStatus::InvalidGraph;
            }
            Err(BuildError::Supervision(problems)) => {
                report!("{}: invalid restart settings:", self.info.name);
                for problem in problems {
                    report!("  {problem}");
                }
                return ExitStatus::InvalidConfig;
            }
            Err(e) => {
                report!("{}: {e}", self.info.name);
                return ExitStatus::Internal;
            }
        };

        if let Some(format) = cli.print_graph {
            print!("{}", runtime.render_graph(format));
            return ExitStatus::Clean;
        }
        if cli.print_config {
            let runtime_sections = crate::layers::RuntimeSections {
                log: config.section::<LogSettings>("log").unwrap_or_default(),
                settings: &settings,
                lifecycle: &output,
                systemd: &systemd_settings,
            };
            print!("{}", crate::layers::config_toml(&runtime_sections, dumps));
            return ExitStatus::Clean;
        }
        if cli.check {
            println!(
                "{}: config and dependency graph are valid ({} components)",
                self.info.name,
                runtime.component_names().len()
            );
            return ExitStatus::Clean;
        }
        if let Some(Command::Analyze(args)) = &cli.command {
            return self.analyze(args, &runtime, config, &settings, &reloader);
        }
        let timeline = runtime.timeline().clone();
        reloader.remember(config, &running);
        reloader.registrations = registrations;
        reloader.names = owned_names;
        reloader.settings = settings;
        reloader.running = runtime.component_names().into_iter().map(str::to_owned).collect();
        let systemd = systemd.map(|notifier| (notifier, systemd_settings));
        let status = run_process(self.info.name, runtime, reloader, systemd);
        if !output.timeline_path.is_empty() {
            write_timeline(&timeline, &output.timeline_path, self.info.name, logger);
        }
        status
    }
}

/// Writes the timeline's picture; a failure is reported, never fatal: the
/// service has already done its work.
fn write_timeline(timeline: &orderly_core::events::Timeline, path: &str, app: &str, logger: &slog::Logger) {
    match std::fs::write(path, crate::events::to_svg(timeline, app)) {
        Ok(()) => slog::info!(logger, "lifecycle timeline written"; "path" => path),
        Err(e) => {
            slog::error!(logger, "cannot write the lifecycle timeline"; "path" => path, "error" => %e);
            report!("{app}: cannot write the lifecycle timeline to {path}: {e}");
        }
    }
}

impl App {
    /// `analyze`: trial runs of this app, each built afresh from `config`.
    fn analyze(
        &self,
        args: &AnalyzeArgs,
        validated: &Runtime,
        config: &LoadedConfig,
        settings: &RuntimeSettings,
        reloader: &Reloader,
    ) -> ExitStatus {
        let profile = reloader.layers.profile();
        if profile == "prod" && !args.yes {
            report!(
                "{}: analyze starts and stops the real components, and the profile is `prod`: \
                 run it against a development or staging configuration, or pass --yes",
                self.info.name
            );
            return ExitStatus::InvalidConfig;
        }
        let graph: crate::analyze::Graph = validated
            .component_names()
            .into_iter()
            .map(|name| {
                let deps = validated.dependencies_of(name).unwrap_or_default();
                (name.to_string(), deps.into_iter().map(str::to_string).collect())
            })
            .collect();
        let mut settings = settings.clone();
        if !args.propagation_delay {
            settings.shutdown.propagation_delay = std::time::Duration::ZERO;
        }
        let registrations: Vec<&'static Registration> = Registration::all().collect();
        let build = || {
            let mut issues = Vec::new();
            let mut builder = Runtime::builder()
                .logger(reloader.logger.clone())
                .shutdown_handle(Shutdown::new())
                .metrics_registry(prometheus::Registry::new());
            for (name, built, _) in read_components(config, &registrations, &settings, &mut issues) {
                builder = builder.component_named(name, built.component, None);
            }
            for component in self.extra.iter().cloned() {
                builder = builder.component_arc(component);
            }
            if !issues.is_empty() {
                return Err(ConfigErrors(issues).to_string());
            }
            builder.settings(settings.clone()).build().map_err(|e| e.to_string())
        };
        crate::analyze::run(self.info.name, args, &graph, build)
    }
}

/// Once every component is ready, one line for the person who started the
/// app: how long it took and where it serves (what the components
/// announced through `Lifecycle::announce_endpoint`).
async fn say_where_it_serves(
    health: orderly_core::health::Health,
    timeline: orderly_core::events::Timeline,
    logger: slog::Logger,
) {
    if !health.started().await {
        return;
    }
    let took = timeline.events().iter().map(|e| e.at).max().unwrap_or_default();
    let serving: Vec<String> = health.endpoints().iter().map(|(what, url)| format!("{what} {url}")).collect();
    let serving = if serving.is_empty() { "(no endpoints announced)".to_string() } else { serving.join(", ") };
    slog::info!(logger, "ready"; "serving" => serving, "elapsed_ms" => took.as_secs_f64() * 1000.0);
}

/// Runs the lifecycle on a fresh tokio runtime and maps the outcome to an exit status.
fn run_process(
    app: &'static str,
    runtime: Runtime,
    reloader: Reloader,
    systemd: Option<(Arc<Notifier>, SystemdSettings)>,
) -> ExitStatus {
    let logger = &reloader.logger.clone();
    let tokio = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("orderly").build() {
        Ok(rt) => rt,
        Err(e) => {
            report!("{app}: cannot build the tokio runtime: {e}");
            return ExitStatus::Internal;
        }
    };
    let shutdown = runtime.shutdown_handle();
    let deadline = runtime.shutdown_deadline();
    let outcome = tokio.block_on(async {
        if let Err(e) = process::watch_signals(app, shutdown.clone()) {
            report!("{app}: cannot install signal handlers: {e}");
            return None;
        }
        // Installed before anything starts: SIGHUP's default action ends the process.
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(hangups) => {
                let notifier = systemd.as_ref().map(|(notifier, _)| notifier.clone());
                tokio::spawn(reload_on_sighup(app, hangups, runtime.clone(), reloader, notifier));
            }
            Err(e) => {
                report!("{app}: cannot install the SIGHUP handler: {e}");
                return None;
            }
        }
        tokio::spawn(process::arm_watchdog(app, shutdown, deadline));
        tokio::spawn(say_where_it_serves(runtime.health(), runtime.timeline().clone(), logger.clone()));
        if let Some((notifier, settings)) = &systemd {
            tokio::spawn(notifier.clone().ready_when_started(runtime.health()));
            tokio::spawn(notifier.clone().watchdog(runtime.health(), settings.watchdog, logger.clone()));
        }
        Some(runtime.run().await)
    });
    // Leave stray tasks and blocking threads behind rather than wait on them.
    tokio.shutdown_timeout(Duration::from_millis(100));
    let Some(outcome) = outcome else { return ExitStatus::Internal };
    process::exit_status(app, &outcome, logger)
}
