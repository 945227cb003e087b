//! Layered configuration, highest precedence first:
//!
//! 1. command-line flags (`--set section.key=value`, `--log-level`);
//! 2. environment variables, `APP__SECTION__KEY` (the prefix is the app's);
//! 3. config files: `--config FILE`, then `config/<profile>.toml`, then `config/default.toml`;
//! 4. defaults embedded in the binary, then each type's `Default`.
//!
//! Each component owns one typed section named after it; unknown keys and
//! unknown sections are errors, and every problem is reported at once.
//!
//! The process shell: the vocabulary it builds on (`Validate`, `Secret`, the
//! issues) is the core's `config`; this module adds the loading.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use config::{Config, Environment, File, FileFormat};
use serde::de::DeserializeOwned;
use serde::Deserialize;

mod from_config;

pub use from_config::FromConfig;
pub use orderly_core::config::{ConfigErrors, ConfigIssue, Secret, Validate, Validation};

use orderly_core::settings::{
    ComponentOverrides, RuntimeSettings, ShutdownSettings, StartDefaults, SupervisionSettings,
};

/// The profiles every app has, with or without config of their own: `dev`
/// (the default of a debug build) and `prod` (of a release build).
pub const BUILT_IN_PROFILES: [&str; 2] = ["dev", "prod"];

/// Where configuration comes from. Build one, then [`load`](ConfigSources::load) it.
///
/// ```
/// use orderly::config::ConfigSources;
/// let sources = ConfigSources::new("APP")
///     .embedded_defaults("[shutdown]\ndeadline = \"20s\"\n")
///     .env_vars([("APP__SHUTDOWN__PROPAGATION_DELAY", "2s")])
///     .set("shutdown.deadline", "45s");
/// let config = sources.load().unwrap();
/// let settings = config.runtime_settings(&[]).unwrap();
/// assert_eq!(settings.shutdown.deadline.as_secs(), 45);
/// assert_eq!(settings.shutdown.propagation_delay.as_secs(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct ConfigSources {
    env_prefix: String,
    dir: PathBuf,
    profile: Option<String>,
    default_profile: Option<String>,
    file: Option<PathBuf>,
    embedded: Vec<String>,
    embedded_profiles: Vec<(String, String)>,
    env: Option<HashMap<String, String>>,
    overrides: Vec<(String, String)>,
}

impl ConfigSources {
    /// Sources for an app whose environment variables start with `env_prefix__`.
    pub fn new(env_prefix: &str) -> Self {
        Self {
            env_prefix: env_prefix.to_string(),
            dir: PathBuf::from("config"),
            profile: None,
            default_profile: None,
            file: None,
            embedded: Vec::new(),
            embedded_profiles: Vec::new(),
            env: None,
            overrides: Vec::new(),
        }
    }

    /// The directory holding `default.toml` and `<profile>.toml` (default `config`).
    pub fn dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.dir = dir.into();
        self
    }

    /// The profile named by the operator (`--profile`, `<PREFIX>_PROFILE`):
    /// its embedded config and `<dir>/<profile>.toml` are read over the
    /// defaults. A named profile must exist, embedded or as a file, unless
    /// it is one of the [`BUILT_IN_PROFILES`] (a typo is an error, not a
    /// silent fallback to the defaults).
    pub fn profile(mut self, profile: Option<String>) -> Self {
        self.profile = profile;
        self
    }

    /// The profile used when none is named (`dev` or `prod` by build kind):
    /// read as a named one, but neither its embedded config nor its file
    /// has to exist.
    pub fn default_profile(mut self, profile: &str) -> Self {
        self.default_profile = Some(profile.to_string());
        self
    }

    /// The profile in force: the named one, else the default.
    pub fn active_profile(&self) -> Option<&str> {
        self.profile.as_deref().or(self.default_profile.as_deref())
    }

    /// TOML compiled into the binary for `profile`, read over the embedded
    /// defaults (and below every file) when that profile is in force.
    pub fn embedded_profile(mut self, profile: &str, toml: &str) -> Self {
        self.embedded_profiles.push((profile.to_string(), toml.to_string()));
        self
    }

    /// An explicit config file (`--config FILE`); it must exist.
    pub fn file(mut self, file: Option<PathBuf>) -> Self {
        self.file = file;
        self
    }

    /// TOML compiled into the binary, below every file.
    pub fn embedded_defaults(mut self, toml: &str) -> Self {
        self.embedded.push(toml.to_string());
        self
    }

    /// Use these variables instead of the process environment (for tests,
    /// which must not share the process environment).
    pub fn env_vars<K: Into<String>, V: Into<String>>(mut self, vars: impl IntoIterator<Item = (K, V)>) -> Self {
        self.env = Some(vars.into_iter().map(|(k, v)| (k.into(), v.into())).collect());
        self
    }

    /// A command-line override, `key` dotted (`shutdown.deadline`).
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.overrides.push((key.to_string(), value.to_string()));
        self
    }

    /// Reads every layer. Syntax errors in any file are reported together.
    pub fn load(&self) -> Result<LoadedConfig, ConfigErrors> {
        let mut issues = Vec::new();
        let mut builder = Config::builder();
        let active = self.active_profile();
        let embedded_profile = self.embedded_profiles.iter().filter(|(name, _)| Some(name.as_str()) == active);
        let embedded = self.embedded.iter().enumerate().map(|(i, toml)| (format!("<embedded defaults #{i}>"), toml));
        let embedded =
            embedded.chain(embedded_profile.map(|(name, toml)| (format!("<embedded profile {name}>"), toml)));
        for (layer, toml) in embedded {
            match parse_layer(File::from_str(toml, FileFormat::Toml)) {
                Ok(()) => builder = builder.add_source(File::from_str(toml, FileFormat::Toml)),
                Err(message) => issues.push(ConfigIssue { key: layer, message }),
            }
        }
        let mut files = vec![(self.dir.join("default.toml"), false)];
        if let Some(profile) = active {
            // A profile the operator named must exist somewhere; a default one need not.
            let named = self.profile.is_some();
            let known =
                BUILT_IN_PROFILES.contains(&profile) || self.embedded_profiles.iter().any(|(n, _)| n == profile);
            files.push((self.dir.join(format!("{profile}.toml")), named && !known));
        }
        if let Some(file) = &self.file {
            files.push((file.clone(), true));
        }
        for (path, required) in files {
            if !path.exists() {
                if required {
                    issues.push(ConfigIssue { key: path.display().to_string(), message: "file not found".into() });
                }
                continue;
            }
            match parse_layer(file_source(&path)) {
                Ok(()) => builder = builder.add_source(file_source(&path)),
                Err(message) => issues.push(ConfigIssue { key: path.display().to_string(), message }),
            }
        }
        let env = Environment::with_prefix(&self.env_prefix)
            .prefix_separator("__")
            .separator("__")
            .try_parsing(true)
            .source(self.env.clone());
        builder = builder.add_source(env);
        for (key, value) in &self.overrides {
            builder = match builder.clone().set_override(key.as_str(), value.as_str()) {
                Ok(b) => b,
                Err(e) => {
                    issues.push(ConfigIssue { key: key.clone(), message: e.to_string() });
                    builder
                }
            };
        }
        if !issues.is_empty() {
            return Err(ConfigErrors(issues));
        }
        builder
            .build()
            .map(|inner| LoadedConfig { inner })
            .map_err(|e| ConfigErrors(vec![ConfigIssue { key: "<config>".into(), message: e.to_string() }]))
    }
}

fn file_source(path: &Path) -> File<config::FileSourceFile, FileFormat> {
    File::from(path).format(FileFormat::Toml).required(true)
}

/// Parses one layer alone, so a syntax error names its file.
fn parse_layer<S: config::Source + Send + Sync + 'static>(source: S) -> Result<(), String> {
    Config::builder().add_source(source).build().map(|_| ()).map_err(|e| e.to_string())
}

/// The merged configuration, from which each section is read.
#[derive(Debug, Clone, Default)]
pub struct LoadedConfig {
    inner: Config,
}

impl LoadedConfig {
    /// Reads one section into its type. A missing section reads as an empty
    /// table, so a type whose fields all have defaults needs no config at all.
    ///
    /// Every bad key in the section is reported, not just the first: a key
    /// that fails is set aside (its default applies) and the rest is read again.
    pub fn section<T: DeserializeOwned>(&self, key: &str) -> Result<T, ConfigErrors> {
        match self.section_lenient(key) {
            (Some(value), issues) if issues.is_empty() => Ok(value),
            (_, issues) => Err(ConfigErrors(issues)),
        }
    }

    /// Like [`section`](Self::section), but also returns the value read once
    /// the bad keys were set aside (when one could be read), so that callers
    /// can validate the rest of the section in the same round.
    pub(crate) fn section_lenient<T: DeserializeOwned>(&self, key: &str) -> (Option<T>, Vec<ConfigIssue>) {
        let mut table = match self.inner.get::<config::Value>(key) {
            Ok(value) => value,
            Err(config::ConfigError::NotFound(_)) => {
                config::Value::new(None, config::Map::<String, config::Value>::new())
            }
            Err(e) => return (None, vec![ConfigIssue { key: key.to_string(), message: e.to_string() }]),
        };
        let mut issues = Vec::new();
        let mut value = None;
        // Bounded: each round removes one key, and sections are small.
        for _ in 0..64 {
            match table.clone().try_deserialize::<T>() {
                Ok(read) => {
                    value = Some(read);
                    break;
                }
                Err(e) => {
                    let culprit = offending_key(&e);
                    let full_key = match &culprit {
                        Some(k) if !k.is_empty() => format!("{key}.{k}"),
                        _ => key.to_string(),
                    };
                    issues.push(ConfigIssue { key: full_key, message: e.to_string() });
                    match culprit {
                        Some(k) if remove_path(&mut table, &k) => continue,
                        _ => break,
                    }
                }
            }
        }
        // Keys come back in the order a hash map chose; sort for stable output.
        issues.sort_by(|a, b| a.key.cmp(&b.key));
        (value, issues)
    }

    /// The top-level section names present in any layer.
    pub fn sections(&self) -> BTreeSet<String> {
        self.inner
            .clone()
            .try_deserialize::<HashMap<String, config::Value>>()
            .map(|m| m.into_keys().collect())
            .unwrap_or_default()
    }

    /// Reads `[start]`, `[shutdown]` and `[components.*]`, collecting every
    /// problem. `component_names` are the names that `[components.<name>]`
    /// may use.
    pub fn runtime_settings(&self, component_names: &[&str]) -> Result<RuntimeSettings, ConfigErrors> {
        let mut v = Validation::default();
        let start = self.section::<StartDefaults>("start").unwrap_or_else(|ConfigErrors(found)| {
            found.into_iter().for_each(|i| v.push(i));
            StartDefaults::default()
        });
        let (shutdown, found) = self.section_lenient::<ShutdownSettings>("shutdown");
        found.into_iter().for_each(|i| v.push(i));
        if let Some(shutdown) = &shutdown {
            shutdown.validate(&mut v);
        }
        let shutdown = shutdown.unwrap_or_default();
        let mut supervision = Validation::for_section("supervision");
        let supervision_settings =
            self.section::<SupervisionSettings>("supervision").unwrap_or_else(|ConfigErrors(found)| {
                found.into_iter().for_each(|i| v.push(i));
                SupervisionSettings::default()
            });
        supervision_settings.validate(&mut supervision);
        supervision.into_issues().into_iter().for_each(|i| v.push(i));
        let mut components = BTreeMap::new();
        let tables =
            self.section::<BTreeMap<String, config::Value>>("components").unwrap_or_else(|ConfigErrors(found)| {
                found.into_iter().for_each(|i| v.push(i));
                BTreeMap::new()
            });
        for (name, value) in tables {
            let key = format!("components.{name}");
            if !component_names.is_empty() && !component_names.contains(&name.as_str()) {
                v.push(ConfigIssue {
                    key,
                    message: format!("no component is named `{name}` (known: {})", component_names.join(", ")),
                });
                continue;
            }
            match value.try_deserialize::<ComponentOverrides>() {
                Ok(o) => {
                    o.validate(&key, &mut v);
                    components.insert(name, o);
                }
                Err(e) => v.push(ConfigIssue { key, message: e.to_string() }),
            }
        }
        let issues = v.into_issues();
        if issues.is_empty() {
            Ok(RuntimeSettings { start, shutdown, supervision: supervision_settings, components })
        } else {
            Err(ConfigErrors(issues))
        }
    }
}

/// The key, relative to the section being read, that an error is about.
fn offending_key(error: &config::ConfigError) -> Option<String> {
    match error {
        config::ConfigError::Type { key: Some(key), .. } => Some(key.clone()),
        config::ConfigError::At { key: Some(key), .. } => Some(key.clone()),
        config::ConfigError::At { error, .. } => offending_key(error),
        config::ConfigError::Message(message) => {
            let rest = message.strip_prefix("unknown field `")?;
            Some(rest[..rest.find('`')?].to_string())
        }
        _ => None,
    }
}

/// Removes the dotted `path` from a table value; false if it is not there.
fn remove_path(value: &mut config::Value, path: &str) -> bool {
    let Ok(mut table) = value.clone().into_table() else { return false };
    let removed = match path.split_once('.') {
        None => table.remove(path).is_some(),
        Some((head, rest)) => match table.get_mut(head) {
            Some(child) => remove_path(child, rest),
            None => false,
        },
    };
    if removed {
        *value = config::Value::new(None, table);
    }
    removed
}

/// A config type for components that have no settings of their own.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}

impl Validate for NoConfig {}
