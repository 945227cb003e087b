//! The command line every orderly app shares.
//!
//! The process shell: flags only; reading config is `layers.rs`'s.

use std::path::PathBuf;

use clap::Parser;

use crate::logging::{LogFormat, LogLevel};
use orderly_core::graph::GraphFormat;

/// The flags every app built on [`App`](crate::app::App) understands.
#[derive(Debug, Clone, Parser)]
#[command(disable_version_flag = true)]
// The field docs are also `--help` text, where `<profile>` reads as meant.
#[allow(rustdoc::invalid_html_tags)]
pub struct Cli {
    /// Print version, git commit, build date and the default profile.
    #[arg(short = 'V', long)]
    pub version: bool,

    /// A config file read over config/default.toml and config/<profile>.toml.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The config profile: its embedded config and config/<PROFILE>.toml are
    /// read over the defaults (default: dev in a debug build, prod in a release build).
    #[arg(long, value_name = "PROFILE")]
    pub profile: Option<String>,

    /// Override one config key, highest precedence (repeatable): --set shutdown.deadline=20s
    #[arg(short = 's', long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,

    /// Override log.level.
    #[arg(long, value_enum)]
    pub log_level: Option<LogLevel>,

    /// Override log.format.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,

    /// Validate config and the dependency graph, start nothing; exit 0, 65 or 78.
    #[arg(long)]
    pub check: bool,

    /// Print the dependency graph and exit.
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, default_missing_value = "mermaid", value_parser = graph_format())]
    pub print_graph: Option<GraphFormat>,

    /// Print the effective config of every component (secrets redacted) and exit.
    #[arg(long)]
    pub print_config: bool,
}

/// `--print-graph`'s values, listed in `--help` (the core's `GraphFormat`
/// knows nothing of clap).
fn graph_format() -> impl clap::builder::TypedValueParser<Value = GraphFormat> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(["mermaid", "dot"]).map(|name| {
        if name == "dot" {
            GraphFormat::Dot
        } else {
            GraphFormat::Mermaid
        }
    })
}

/// Facts about the binary, captured at build time by [`app_info!`](crate::app_info).
#[derive(Debug, Clone)]
pub struct AppInfo {
    /// The package name.
    pub name: &'static str,
    /// The package version.
    pub version: &'static str,
    /// The git commit, if the build script provided `ORDERLY_GIT_COMMIT`.
    pub git_commit: Option<&'static str>,
    /// The build date, if the build script provided `ORDERLY_BUILD_DATE`.
    pub build_date: Option<&'static str>,
    /// Built with debug assertions (a `cargo run` or `cargo test` build):
    /// the default config profile is then `dev`, else `prod`.
    pub debug_build: bool,
}

impl AppInfo {
    /// The profile used when none is named: `dev` in a debug build, `prod`
    /// in a release build (as Rocket does), so development defaults never
    /// reach a release binary by accident.
    pub fn default_profile(&self) -> &'static str {
        if self.debug_build {
            "dev"
        } else {
            "prod"
        }
    }

    /// `name 0.1.0 (commit abc1234, built 2026-11-21, profile prod)`.
    pub fn long_version(&self) -> String {
        format!(
            "{} {} (commit {}, built {}, profile {})",
            self.name,
            self.version,
            self.git_commit.unwrap_or("unknown"),
            self.build_date.unwrap_or("unknown"),
            self.default_profile()
        )
    }
}

/// The calling package's [`AppInfo`]. Git commit and build date come from
/// `ORDERLY_GIT_COMMIT` and `ORDERLY_BUILD_DATE`, which a build script sets
/// with `cargo:rustc-env` (see `example-app/build.rs`).
#[macro_export]
macro_rules! app_info {
    () => {
        $crate::cli::AppInfo {
            name: ::core::env!("CARGO_PKG_NAME"),
            version: ::core::env!("CARGO_PKG_VERSION"),
            git_commit: ::core::option_env!("ORDERLY_GIT_COMMIT"),
            build_date: ::core::option_env!("ORDERLY_BUILD_DATE"),
            debug_build: ::core::cfg!(debug_assertions),
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_build_defaults_to_prod_and_a_debug_build_to_dev() {
        let info =
            |debug_build| AppInfo { name: "svc", version: "1.0.0", git_commit: None, build_date: None, debug_build };
        assert_eq!(info(false).default_profile(), "prod");
        assert_eq!(info(true).default_profile(), "dev");
        assert!(info(false).long_version().ends_with("profile prod)"));
        // This test binary is a debug build: what `cargo run` gets.
        assert!(crate::app_info!().debug_build);
    }
}
