//! What happens when a component fails while running: its supervised
//! background task (`StartContext::spawn`) returns an error or panics.
//!
//! Two choices, each made in code and overridable in config
//! (`[components.<name>]`):
//!
//! - [`OnFailure`]: shut the app down (the default), restart the component,
//!   or ignore the failure and report the component degraded;
//! - [`Restart`]: which ends of its background work restart a component
//!   (OTP's restart types), and [`RestartSettings`]: the backoff and the
//!   restart intensity limit.
//!
//! How the two combine is [`Supervision::resolve`]; how a restart runs is
//! in `restart.rs`.
//!
//! Part of the model: policies as data; it names only the retry policy.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::retry::RetryPolicy;

/// The policy for a component that fails while running.
///
/// ```
/// use orderly_core::{async_trait, Component, OnFailure};
///
/// /// A recommendations widget: the service is useful without it.
/// struct Recommendations;
///
/// #[async_trait]
/// impl Component for Recommendations {
///     fn on_failure(&self) -> OnFailure {
///         OnFailure::Ignore
///     }
/// }
/// # assert_eq!(Recommendations.on_failure(), OnFailure::Ignore);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnFailure {
    /// Run the five-phase shutdown and exit 4, for the orchestrator to
    /// restart the process (the default: a failure is never silent).
    #[default]
    Shutdown,
    /// Restart the component along the graph: stop its dependents and it,
    /// back off, start it and then its dependents again. Within the limit of
    /// [`RestartSettings`]; past it, the app shuts down and exits 5. The
    /// same as [`Restart::Transient`] unless `restart` says `permanent`.
    Restart,
    /// Log the failure, count it (`orderly_component_failures_total`), and
    /// report the component `Degraded` with the reason from then on; the
    /// rest of the app keeps serving. For components the service can do
    /// without.
    Ignore,
}

impl OnFailure {
    /// Every policy, in config order.
    const ALL: [OnFailure; 3] = [OnFailure::Shutdown, OnFailure::Restart, OnFailure::Ignore];

    /// The name used in config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Shutdown => "shutdown",
            OnFailure::Restart => "restart",
            OnFailure::Ignore => "ignore",
        }
    }
}

/// Which ends of a component's background work restart it: Erlang/OTP's
/// restart types.
///
/// ```
/// use orderly_core::{async_trait, Component, Restart};
///
/// /// A queue consumer whose loop must run for as long as the app does.
/// struct Consumer;
///
/// #[async_trait]
/// impl Component for Consumer {
///     fn restart(&self) -> Restart {
///         Restart::Permanent // restarted even when its loop returns Ok
///     }
/// }
/// # assert!(Consumer.restartable());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Restart {
    /// Never restarted; a failure does what [`OnFailure`] says (shut down
    /// by default, or be ignored). The default.
    #[default]
    Temporary,
    /// Restarted after a failure (an error or a panic); a background task
    /// that returns `Ok` has simply finished.
    Transient,
    /// Restarted after a failure and also when a background task returns
    /// `Ok`: for loops that must run as long as the app does.
    Permanent,
}

impl Restart {
    const ALL: [Restart; 3] = [Restart::Temporary, Restart::Transient, Restart::Permanent];

    /// The name used in config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::Temporary => "temporary",
            Restart::Transient => "transient",
            Restart::Permanent => "permanent",
        }
    }
}

/// Reads an enum by name, with an error that lists the choices (serde's
/// derive would only say that the variant does not exist).
fn by_name<'de, D: Deserializer<'de>, T: Copy>(
    d: D,
    all: &[T],
    name_of: fn(T) -> &'static str,
    what: &str,
) -> Result<T, D::Error> {
    let name = String::deserialize(d)?;
    all.iter().copied().find(|p| name_of(*p) == name).ok_or_else(|| {
        let choices: Vec<_> = all.iter().map(|p| format!("`{}`", name_of(*p))).collect();
        serde::de::Error::custom(format!("`{name}` is not {what}; use {}", choices.join(", ")))
    })
}

impl<'de> Deserialize<'de> for OnFailure {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        by_name(d, &Self::ALL, Self::as_str, "a failure policy")
    }
}

impl<'de> Deserialize<'de> for Restart {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        by_name(d, &Self::ALL, Self::as_str, "a restart type")
    }
}

/// Written as config spells it (`--print-config`).
impl serde::Serialize for OnFailure {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Written as config spells it (`--print-config`).
impl serde::Serialize for Restart {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How patiently a component is restarted.
///
/// The intensity limit is OTP's: more than `max_restarts` restarts within
/// `period` and the app gives up on the component, runs the five-phase
/// shutdown and exits 5 (`orderly::app::ExitStatus::RestartLimitExceeded`).
/// The defaults are systemd's (`StartLimitBurst=5` in `StartLimitIntervalSec=10s`);
/// OTP's are 1 in 5 s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RestartSettings {
    /// Restarts allowed within `period` (default 5).
    pub max_restarts: u32,
    /// The sliding window the restarts are counted in (default 10 s).
    pub period: Duration,
    /// The backoff before a restart's start: full jitter up to this after
    /// the first failure in the period, doubling per failure (default 100 ms).
    pub initial_backoff: Duration,
    /// The largest backoff (default 5 s).
    pub max_backoff: Duration,
}

impl Default for RestartSettings {
    fn default() -> Self {
        Self {
            max_restarts: 5,
            period: Duration::from_secs(10),
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
        }
    }
}

impl RestartSettings {
    /// The wait before restart number `n` within the period (1-based): the
    /// framework's retry backoff, exponential with full jitter.
    pub fn backoff(&self, n: u32) -> Duration {
        RetryPolicy::new(u32::MAX, self.initial_backoff, self.max_backoff).backoff(n)
    }
}

/// What the runtime does with one component's failures and clean exits,
/// resolved from its code and its config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Supervision {
    /// A failure shuts the app down.
    Shutdown,
    /// A failure is logged and counted; the component is degraded.
    Ignore,
    /// A failure restarts it; with `on_clean_exit`, so does a clean end of a task.
    Restart { on_clean_exit: bool },
}

impl Supervision {
    /// Combines the failure policy and the restart type:
    ///
    /// | on_failure | restart | result |
    /// |---|---|---|
    /// | `shutdown` / `ignore` | `temporary` | as `on_failure` says |
    /// | `restart` | `temporary` or `transient` | restart after failures |
    /// | any not explicitly `shutdown`/`ignore` | `transient` | restart after failures |
    /// | any not explicitly `shutdown`/`ignore` | `permanent` | restart after failures and clean ends |
    ///
    /// `explicit_on_failure` is set when config or code chose `shutdown` or
    /// `ignore` on purpose alongside a restarting type; that contradiction
    /// is an error, named to the operator rather than resolved silently.
    pub(crate) fn resolve(on_failure: OnFailure, explicit_on_failure: bool, restart: Restart) -> Result<Self, String> {
        match (on_failure, restart) {
            (OnFailure::Shutdown, Restart::Temporary) => Ok(Self::Shutdown),
            (OnFailure::Ignore, Restart::Temporary) => Ok(Self::Ignore),
            (OnFailure::Restart, Restart::Temporary | Restart::Transient) => Ok(Self::Restart { on_clean_exit: false }),
            (OnFailure::Restart, Restart::Permanent) => Ok(Self::Restart { on_clean_exit: true }),
            (policy, restart) if explicit_on_failure => Err(format!(
                "on_failure = \"{}\" contradicts restart = \"{}\"; set restart = \"temporary\" or on_failure = \"restart\"",
                policy.as_str(),
                restart.as_str()
            )),
            (_, restart) => Ok(Self::Restart { on_clean_exit: restart == Restart::Permanent }),
        }
    }

    /// Whether the component may be restarted on its own account.
    pub(crate) fn restarts(self) -> bool {
        matches!(self, Self::Restart { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_policies_by_name_and_names_the_choices_otherwise() {
        let read = |s: &str| serde_json::from_str::<OnFailure>(s).map_err(|e| e.to_string());
        assert_eq!(read("\"ignore\""), Ok(OnFailure::Ignore));
        assert_eq!(read("\"shutdown\""), Ok(OnFailure::Shutdown));
        assert_eq!(read("\"restart\""), Ok(OnFailure::Restart));
        let error = read("\"reboot\"").unwrap_err();
        assert!(error.contains("`reboot` is not a failure policy; use `shutdown`, `restart`, `ignore`"), "{error}");
        let error = serde_json::from_str::<Restart>("\"forever\"").unwrap_err().to_string();
        assert!(
            error.contains("`forever` is not a restart type; use `temporary`, `transient`, `permanent`"),
            "{error}"
        );
    }

    #[test]
    fn restart_types_and_failure_policies_combine_as_documented() {
        use Supervision as S;
        let resolve = |policy, explicit, restart| Supervision::resolve(policy, explicit, restart);
        assert_eq!(resolve(OnFailure::Shutdown, false, Restart::Temporary), Ok(S::Shutdown));
        assert_eq!(resolve(OnFailure::Ignore, true, Restart::Temporary), Ok(S::Ignore));
        assert_eq!(resolve(OnFailure::Restart, true, Restart::Temporary), Ok(S::Restart { on_clean_exit: false }));
        assert_eq!(resolve(OnFailure::Shutdown, false, Restart::Transient), Ok(S::Restart { on_clean_exit: false }));
        assert_eq!(resolve(OnFailure::Shutdown, false, Restart::Permanent), Ok(S::Restart { on_clean_exit: true }));
        assert_eq!(resolve(OnFailure::Restart, true, Restart::Permanent), Ok(S::Restart { on_clean_exit: true }));
        let error = resolve(OnFailure::Ignore, true, Restart::Permanent).unwrap_err();
        assert!(error.contains("on_failure = \"ignore\" contradicts restart = \"permanent\""), "{error}");
    }

    #[test]
    fn restart_backoff_grows_and_stays_capped() {
        let s = RestartSettings { initial_backoff: Duration::from_millis(10), ..RestartSettings::default() };
        for _ in 0..50 {
            assert!(s.backoff(1) <= Duration::from_millis(10));
            assert!(s.backoff(3) <= Duration::from_millis(40));
            assert!(s.backoff(40) <= s.max_backoff);
        }
    }
}
