//! Reading the configuration the way a start does, so that a SIGHUP reload
//! reads it exactly the same way: the layers ([`Layers`]), every registered
//! component's section, the runtime's own sections, and every problem
//! collected rather than the first. `app.rs` uses it at start and
//! `sighup.rs` on every reload.
//!
//! The process shell, below `app.rs` and `sighup.rs`, which both use it; it
//! never applies what it reads.

use orderly_core::graph::RESERVED_NAMES;
use orderly_core::settings::RuntimeSettings;

use crate::cli::Cli;
use crate::config::{ConfigErrors, ConfigIssue, ConfigSources, LoadedConfig};
use crate::logging::LogSettings;
use crate::registry::{Built, ReadMode, Registration};
use crate::systemd::SystemdSettings;

/// `[lifecycle]`: what the process keeps of its lifecycle once it exits.
#[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LifecycleOutput {
    /// Where to write the timeline as an SVG chart on exit; empty: nowhere.
    pub(crate) timeline_path: String,
}

/// The sections the runtime and the shell read themselves, as in force.
pub(crate) struct RuntimeSections<'a> {
    pub(crate) log: LogSettings,
    pub(crate) settings: &'a RuntimeSettings,
    pub(crate) lifecycle: &'a LifecycleOutput,
    pub(crate) systemd: &'a SystemdSettings,
}

/// The whole configuration in force as TOML (`--print-config`): every
/// section, the runtime's included, defaults filled in. A secret is a
/// comment (set, not shown), so the output read back as a `--config` file
/// leaves each secret to the layer that set it.
pub(crate) fn config_toml(runtime: &RuntimeSections<'_>, components: toml::Table) -> String {
    let mut doc = components;
    let mut put = |name: &str, value: Result<toml::Table, toml::ser::Error>| {
        doc.insert(name.to_string(), toml::Value::Table(value.unwrap_or_default()));
    };
    put("log", toml::Table::try_from(&runtime.log));
    put("start", toml::Table::try_from(runtime.settings.start));
    put("shutdown", toml::Table::try_from(&runtime.settings.shutdown));
    put("supervision", toml::Table::try_from(runtime.settings.supervision));
    put("lifecycle", toml::Table::try_from(runtime.lifecycle));
    put("systemd", toml::Table::try_from(runtime.systemd));
    if !runtime.settings.components.is_empty() {
        put("components", toml::Table::try_from(&runtime.settings.components));
    }
    let text = toml::to_string(&doc).unwrap_or_default();
    text.lines()
        .map(|line| match line.split_once(" = ") {
            Some((key, "\"[redacted]\"")) => format!("# {key} = \"[redacted]\"  (a secret: set, not shown)"),
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

/// The config layers of this process: what reading them again needs.
pub(crate) struct Layers {
    pub(crate) env_prefix: String,
    pub(crate) embedded: Vec<String>,
    /// Config compiled in per profile: (profile, TOML).
    pub(crate) embedded_profiles: Vec<(String, String)>,
    /// The profile when none is named (`dev` or `prod` by build kind).
    pub(crate) default_profile: &'static str,
    pub(crate) cli: Cli,
}

impl Layers {
    /// The profile in force: `--profile`, else `<PREFIX>_PROFILE`, else the build's default.
    pub(crate) fn profile(&self) -> String {
        self.named_profile().unwrap_or_else(|| self.default_profile.to_string())
    }

    fn named_profile(&self) -> Option<String> {
        self.cli.profile.clone().or_else(|| std::env::var(format!("{}_PROFILE", self.env_prefix)).ok())
    }

    /// Flags > env > `--config` file > profile file > default file >
    /// embedded profile > embedded defaults.
    pub(crate) fn load(&self) -> Result<LoadedConfig, ConfigErrors> {
        let cli = &self.cli;
        let mut sources = ConfigSources::new(&self.env_prefix)
            .profile(self.named_profile())
            .default_profile(self.default_profile)
            .file(cli.config.clone());
        for toml in &self.embedded {
            sources = sources.embedded_defaults(toml);
        }
        for (profile, toml) in &self.embedded_profiles {
            sources = sources.embedded_profile(profile, toml);
        }
        let mut bad = Vec::new();
        for pair in &cli.set {
            match pair.split_once('=') {
                Some((key, value)) => sources = sources.set(key.trim(), value.trim()),
                None => bad.push(ConfigIssue { key: pair.clone(), message: "--set takes KEY=VALUE".into() }),
            }
        }
        match (sources.load(), bad.is_empty()) {
            (Ok(config), true) => Ok(config),
            (Ok(_), false) => Err(ConfigErrors(bad)),
            (Err(ConfigErrors(mut issues)), _) => {
                issues.extend(bad);
                Err(ConfigErrors(issues))
            }
        }
    }
}

/// The value read, or its default with the problems added to `issues`: all
/// problems are reported together, not just the first section's.
pub(crate) fn noting<T: Default>(read: Result<T, ConfigErrors>, issues: &mut Vec<ConfigIssue>) -> T {
    read.unwrap_or_else(|ConfigErrors(found)| {
        issues.extend(found);
        T::default()
    })
}

/// Reports sections that belong to no component and are not the runtime's own.
pub(crate) fn check_sections(config: &LoadedConfig, names: &[&str], issues: &mut Vec<ConfigIssue>) {
    for section in config.sections() {
        if !names.contains(&section.as_str()) && !RESERVED_NAMES.contains(&section.as_str()) {
            issues.push(ConfigIssue {
                key: section,
                message: format!("unknown section; components are: {}", names.join(", ")),
            });
        }
    }
}

/// Reads and builds every registered component's section, the disabled
/// ones too (they stay in the graph, not started, for a reload to enable),
/// each with whether it is enabled.
pub(crate) fn read_components(
    config: &LoadedConfig,
    registrations: &[&'static Registration],
    settings: &RuntimeSettings,
    issues: &mut Vec<ConfigIssue>,
) -> Vec<(&'static str, Built, bool)> {
    let mut built = Vec::new();
    for registration in registrations {
        let name = registration.section();
        let enabled = !settings.is_disabled(name);
        let mode = if enabled { ReadMode::Build } else { ReadMode::Disabled };
        match registration.read(config, mode) {
            Ok(Some(component)) => built.push((name, component, enabled)),
            Ok(None) => {}
            Err(found) => issues.extend(found),
        }
    }
    built
}
