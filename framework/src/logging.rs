//! Structured logs: JSON lines when stdout is not a terminal (or when asked),
//! readable text on a terminal. Records go through an async drain that
//! blocks rather than drops, and is flushed before the process exits.
//!
//! The process shell: it names only the config vocabulary; the core logs
//! through the slog logger it is handed.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Deserialize;
use slog::Drain;

use crate::config::{Validate, Validation};

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// The lowest level written (default `info`).
    pub level: LogLevel,
    /// `auto` (JSON unless stdout is a terminal), `json` or `text`.
    pub format: LogFormat,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self { level: LogLevel::Info, format: LogFormat::Auto }
    }
}

impl Validate for LogSettings {
    fn validate(&self, _v: &mut Validation) {}
}

/// A log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation, including every lifecycle transition.
    Info,
    /// Problems that did not stop anything.
    #[serde(alias = "warn")]
    Warning,
    /// Failures.
    Error,
    /// Only what precedes a crash.
    Critical,
}

impl LogLevel {
    fn to_slog(self) -> slog::Level {
        match self {
            LogLevel::Trace => slog::Level::Trace,
            LogLevel::Debug => slog::Level::Debug,
            LogLevel::Info => slog::Level::Info,
            LogLevel::Warning => slog::Level::Warning,
            LogLevel::Error => slog::Level::Error,
            LogLevel::Critical => slog::Level::Critical,
        }
    }
}

/// The log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON unless stdout is a terminal.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// Flushes the async log drain when dropped. Keep it alive until the end of `main`.
pub(crate) struct LogGuard {
    _guard: Option<slog_async::AsyncGuard>,
    level: Arc<AtomicUsize>,
}

impl LogGuard {
    /// A handle that changes the lowest level written, at once, for every
    /// logger made from this root (a reload uses it).
    pub(crate) fn switch(&self) -> LevelSwitch {
        LevelSwitch(self.level.clone())
    }
}

/// A handle on the root logger's level, for the reload task.
#[derive(Clone)]
pub(crate) struct LevelSwitch(Arc<AtomicUsize>);

impl LevelSwitch {
    pub(crate) fn set(&self, level: LogLevel) {
        self.0.store(level.to_slog().as_usize(), Ordering::Relaxed);
    }
}

/// Passes records at or above a level that can change while the app runs.
struct SwitchedLevel<D> {
    drain: D,
    level: Arc<AtomicUsize>,
}

impl<D: Drain> Drain for SwitchedLevel<D> {
    type Ok = Option<D::Ok>;
    type Err = D::Err;

    fn log(&self, record: &slog::Record<'_>, values: &slog::OwnedKVList) -> Result<Self::Ok, Self::Err> {
        // slog's levels count up from Critical (1) to Trace (6).
        if record.level().as_usize() <= self.level.load(Ordering::Relaxed) {
            self.drain.log(record, values).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Builds the root logger for `app`. JSON records carry `app` and
/// `version` (a log store needs them on every line); text for a terminal
/// says them once, in the first line, and keeps every other line short.
pub(crate) fn build_logger(settings: &LogSettings, app: &str, version: &str) -> (slog::Logger, LogGuard) {
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let level = settings.level.to_slog();
    let (drain, guard) = if json {
        async_drain(slog_json::Json::new(WholeLines::default()).add_default_keys().build().fuse())
    } else {
        // Plain text, written a whole line at a time like JSON: a terminal
        // that also shows stderr never gets a message in the middle of a line.
        let decorator = slog_term::PlainDecorator::new(WholeLines::default());
        async_drain(slog_term::FullFormat::new(decorator).build().fuse())
    };
    // Filter before the channel: a record below the level costs a comparison,
    // not a copy of its fields and a trip to the log thread.
    let level = Arc::new(AtomicUsize::new(level.as_usize()));
    let drain = SwitchedLevel { drain, level: level.clone() }.fuse();
    let logger = if json {
        slog::Logger::root(drain, slog::o!("app" => app.to_string(), "version" => version.to_string()))
    } else {
        let logger = slog::Logger::root(drain, slog::o!());
        slog::info!(logger, "{app} {version}");
        logger
    };
    (logger, LogGuard { _guard: Some(guard), level })
}

fn async_drain<D>(drain: D) -> (slog::Fuse<slog_async::Async>, slog_async::AsyncGuard)
where
    D: Drain<Ok = (), Err = slog::Never> + Send + 'static,
{
    let (drain, guard) = slog_async::Async::new(drain)
        .chan_size(1024)
        // Losing the last records of a shutdown is worse than a short stall.
        .overflow_strategy(slog_async::OverflowStrategy::Block)
        .thread_name("orderly-log".into())
        .build_with_guard();
    (drain.fuse(), guard)
}

/// Hands log output to stdout one whole line at a time, under the stdout
/// lock. slog-json writes a record in many small writes; without this, a
/// `println!` from another thread can land inside a JSON record and break
/// both lines.
#[derive(Default)]
struct WholeLines {
    pending: Vec<u8>,
}

impl Write for WholeLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if let Some(end) = self.pending.iter().rposition(|&b| b == b'\n') {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(&self.pending[..=end])?;
            stdout.flush()?;
            self.pending.drain(..=end);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(&self.pending)?;
        self.pending.clear();
        stdout.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_can_change_while_loggers_exist() {
        let counted = Arc::new(AtomicUsize::new(0));
        struct Count(Arc<AtomicUsize>);
        impl Drain for Count {
            type Ok = ();
            type Err = slog::Never;
            fn log(&self, _: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
                self.0.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
        }
        let level = Arc::new(AtomicUsize::new(slog::Level::Info.as_usize()));
        let logger = slog::Logger::root(
            SwitchedLevel { drain: Count(counted.clone()), level: level.clone() }.fuse(),
            slog::o!(),
        );
        let child = logger.new(slog::o!("component" => "db"));
        slog::debug!(child, "hidden");
        slog::info!(child, "shown");
        LevelSwitch(level).set(LogLevel::Debug);
        slog::debug!(child, "shown now");
        slog::trace!(child, "still hidden");
        assert_eq!(counted.load(Ordering::Relaxed), 2);
    }
}
