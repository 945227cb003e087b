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
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// The config profile: its embedded config and config/<PROFILE>.toml are
    /// read over the defaults (default: dev in a debug build, prod in a release build).
    #[arg(long, value_name = "PROFILE", global = true)]
    pub profile: Option<String>,

    /// Override one config key, highest precedence (repeatable): --set shutdown.deadline=20s
    #[arg(short = 's', long = "set", value_name = "KEY=VALUE", global = true)]
    pub set: Vec<String>,

    /// Override log.level.
    #[arg(long, value_enum, global = true)]
    pub log_level: Option<LogLevel>,

    /// Override log.format.
    #[arg(long, value_enum, global = true)]
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

    /// What to do instead of running the service.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Start and stop the app several times and report how its startup and
    /// shutdown spend their time (like systemd-analyze, for components).
    Analyze(AnalyzeArgs),
}

/// `analyze`: trial runs of the real app with its real configuration.
#[derive(Debug, Clone, clap::Args)]
pub struct AnalyzeArgs {
    /// The report.
    #[command(subcommand)]
    pub report: Analysis,

    /// Trial runs: start, wait until ready, shut down at once.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000), global = true)]
    pub runs: u32,

    /// Keep the shutdown's propagation delay (skipped by default: nothing routes to a trial run).
    #[arg(long, global = true)]
    pub propagation_delay: bool,

    /// Run even when the profile is `prod`: trial runs start and stop the real components.
    #[arg(long, global = true)]
    pub yes: bool,

    /// `text` for people, `json` for every figure (stable keys, for `analyze compare`).
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub format: ReportFormat,

    /// Write the report here instead of standard output (where the app's log goes too).
    #[arg(short, long, value_name = "FILE", global = true)]
    pub output: Option<PathBuf>,
}

/// What `analyze` reports.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Analysis {
    /// Each component's start and time to ready, and each stop hook per phase: median and worst run, slowest first.
    Blame,
    /// The chain of components that decided the time to ready, and each stop phase's length.
    CriticalChain,
    /// One SVG over all runs: each component's start-to-ready bar at its median, with the spread.
    Plot,
    /// What got slower or faster between two saved `--format json` reports, beyond the noise between runs.
    Compare {
        /// The earlier report.
        before: PathBuf,
        /// The later report.
        after: PathBuf,
    },
}

/// `analyze --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned text.
    Text,
    /// JSON.
    Json,
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
    /// The package description (`description` in its `Cargo.toml`), the
    /// first line of `--help`; may be empty.
    pub description: &'static str,
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
            description: ::core::env!("CARGO_PKG_DESCRIPTION"),
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
        let info = |debug_build| AppInfo {
            name: "svc",
            version: "1.0.0",
            description: "",
            git_commit: None,
            build_date: None,
            debug_build,
        };
        assert_eq!(info(false).default_profile(), "prod");
        assert_eq!(info(true).default_profile(), "dev");
        assert!(info(false).long_version().ends_with("profile prod)"));
        // This test binary is a debug build: what `cargo run` gets.
        assert!(crate::app_info!().debug_build);
    }
}
