//! Lifecycle settings: start timeouts and retries per component, and the
//! shutdown deadline split into phase budgets. All come from config
//! (`[start]`, `[shutdown]`, `[components.<name>]`) and are honoured everywhere.
//!
//! Part of the model: plain settings with their checks; it names the policies
//! and the config vocabulary, nothing that runs.

pub use crate::failure::RestartSettings;
pub use crate::retry::RetryPolicy;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::config::Validation;
use crate::failure::{OnFailure, Restart};
use crate::phase::StopPhase;

/// The per-component lifecycle settings the runtime applies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ComponentSettings {
    /// Whether the component runs at all.
    pub enabled: bool,
    /// How long `start`, all retries included, may take.
    pub start_timeout: Duration,
    /// How long `ready` may take to report ready after `start` returned.
    pub ready_timeout: Duration,
    /// The most any one stop hook of this component may take. `None`: the phase budget.
    pub stop_cap: Option<Duration>,
    /// How to retry a failing `start`.
    pub retry: RetryPolicy,
    /// What a failure while running does. `None`: the component's own
    /// [`Component::on_failure`](crate::Component::on_failure).
    pub on_failure: Option<OnFailure>,
    /// Which ends of its background work restart it. `None`: the
    /// component's own [`Component::restart`](crate::Component::restart).
    pub restart: Option<Restart>,
    /// Backoff and intensity limit of its restarts.
    pub restarts: RestartSettings,
}

impl Default for ComponentSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            start_timeout: StartDefaults::default().timeout,
            ready_timeout: StartDefaults::default().ready_timeout,
            stop_cap: None,
            retry: RetryPolicy::none(),
            on_failure: None,
            restart: None,
            restarts: RestartSettings::default(),
        }
    }
}

/// `[components.<name>]`: overrides of one component's lifecycle settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentOverrides {
    /// `enabled = false` removes the component; depending on it is a graph error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Overrides `[start].timeout` for this component.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub start_timeout: Option<Duration>,
    /// Overrides `[start].ready_timeout` for this component.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub ready_timeout: Option<Duration>,
    /// Caps each of this component's stop hooks.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub stop_cap: Option<Duration>,
    /// Retries for a failing `start`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// Overrides the component's policy for failures while running:
    /// `"shutdown"`, `"restart"` or `"ignore"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// Overrides the component's restart type: `"temporary"`,
    /// `"transient"` or `"permanent"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart: Option<Restart>,
    /// Restarts allowed within `restart_period` before the app gives up (default 5).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_restarts: Option<u32>,
    /// The window restarts are counted in (default 10 s).
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub restart_period: Option<Duration>,
    /// The backoff cap before the first restart in a period (default 100 ms); it doubles per restart.
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub restart_backoff: Option<Duration>,
    /// The largest restart backoff (default 5 s).
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub restart_backoff_max: Option<Duration>,
}

impl ComponentOverrides {
    /// Checks the restart limits; `key` is `components.<name>`.
    pub fn validate(&self, key: &str, v: &mut Validation) {
        if let Some(period) = self.restart_period {
            v.check(!period.is_zero(), &format!("{key}.restart_period"), "must be greater than zero");
        }
        if let (Some(first), Some(max)) = (self.restart_backoff, self.restart_backoff_max) {
            v.check(
                first <= max,
                &format!("{key}.restart_backoff"),
                format!(
                    "({}) must not exceed restart_backoff_max ({})",
                    humantime::format_duration(first),
                    humantime::format_duration(max)
                ),
            );
        }
    }

    /// Applies these overrides on top of `base`.
    pub fn apply(&self, mut base: ComponentSettings) -> ComponentSettings {
        if let Some(v) = self.enabled {
            base.enabled = v;
        }
        if let Some(v) = self.start_timeout {
            base.start_timeout = v;
        }
        if let Some(v) = self.ready_timeout {
            base.ready_timeout = v;
        }
        if let Some(v) = self.stop_cap {
            base.stop_cap = Some(v);
        }
        if let Some(v) = self.retry {
            base.retry = v;
        }
        if let Some(v) = self.on_failure {
            base.on_failure = Some(v);
        }
        if let Some(v) = self.restart {
            base.restart = Some(v);
        }
        let limits = &mut base.restarts;
        limits.max_restarts = self.max_restarts.unwrap_or(limits.max_restarts);
        limits.period = self.restart_period.unwrap_or(limits.period);
        limits.initial_backoff = self.restart_backoff.unwrap_or(limits.initial_backoff);
        limits.max_backoff = self.restart_backoff_max.unwrap_or(limits.max_backoff);
        base
    }
}

/// `[start]`: defaults for every component's start.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StartDefaults {
    /// How long `start` may take, retries included (default 30 s).
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long `ready` may take after `start` (default 30 s).
    #[serde(with = "humantime_serde")]
    pub ready_timeout: Duration,
}

impl Default for StartDefaults {
    fn default() -> Self {
        Self { timeout: Duration::from_secs(30), ready_timeout: Duration::from_secs(30) }
    }
}

/// `[shutdown]`: one deadline, split into a delay and five phase budgets.
///
/// The defaults fit Kubernetes' default `terminationGracePeriodSeconds` of
/// 30 s: the delay plus all phase budgets must fit in the deadline, which is
/// checked when config loads, so a slow phase can never starve a later one.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ShutdownSettings {
    /// The whole shutdown, delay included, ends by then (default 30 s).
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// After readiness flips to not-ready, wait this long before phase 1 so
    /// load balancers stop routing here (default 0 s; see the README).
    #[serde(with = "humantime_serde")]
    pub propagation_delay: Duration,
    /// Caps every stop hook of every component (default: the phase budget).
    #[serde(default, with = "humantime_serde", skip_serializing_if = "Option::is_none")]
    pub component_cap: Option<Duration>,
    /// The budget of each phase.
    pub phases: PhaseBudgets,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            deadline: Duration::from_secs(30),
            propagation_delay: Duration::ZERO,
            component_cap: None,
            phases: PhaseBudgets::default(),
        }
    }
}

impl ShutdownSettings {
    /// Checks that the delay and the phase budgets fit in the deadline.
    pub fn validate(&self, v: &mut Validation) {
        let total = self.propagation_delay + self.phases.total();
        v.check(
            total <= self.deadline,
            "shutdown",
            format!(
                "propagation_delay ({}) plus the phase budgets ({}) must fit in deadline ({})",
                humantime::format_duration(self.propagation_delay),
                humantime::format_duration(self.phases.total()),
                humantime::format_duration(self.deadline)
            ),
        );
        v.check(self.deadline > Duration::ZERO, "shutdown.deadline", "must be greater than zero");
    }
}

/// `[shutdown.phases]`: the budget of each stop phase.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct PhaseBudgets {
    /// Phase 1 (default 2 s).
    #[serde(with = "humantime_serde")]
    pub stop_accepting: Duration,
    /// Phase 2 (default 15 s).
    #[serde(with = "humantime_serde")]
    pub drain: Duration,
    /// Phase 3 (default 5 s).
    #[serde(with = "humantime_serde")]
    pub stop_workers: Duration,
    /// Phase 4 (default 3 s).
    #[serde(with = "humantime_serde")]
    pub flush: Duration,
    /// Phase 5 (default 3 s).
    #[serde(with = "humantime_serde")]
    pub close: Duration,
}

impl Default for PhaseBudgets {
    fn default() -> Self {
        Self {
            stop_accepting: Duration::from_secs(2),
            drain: Duration::from_secs(15),
            stop_workers: Duration::from_secs(5),
            flush: Duration::from_secs(3),
            close: Duration::from_secs(3),
        }
    }
}

impl PhaseBudgets {
    /// Every phase with the same budget.
    pub fn uniform(budget: Duration) -> Self {
        Self { stop_accepting: budget, drain: budget, stop_workers: budget, flush: budget, close: budget }
    }

    /// The budget of one phase.
    pub fn get(&self, phase: StopPhase) -> Duration {
        match phase {
            StopPhase::StopAccepting => self.stop_accepting,
            StopPhase::Drain => self.drain,
            StopPhase::StopWorkers => self.stop_workers,
            StopPhase::Flush => self.flush,
            StopPhase::Close => self.close,
        }
    }

    /// The sum of all five budgets.
    pub fn total(&self) -> Duration {
        StopPhase::ALL.iter().map(|&p| self.get(p)).sum()
    }
}

/// `[supervision]`: the app-wide restart intensity, beside each
/// component's own limit (an OTP supervisor's intensity): more than
/// `max_restarts` restarts of any components within `restart_period`, and
/// the app shuts down in five phases and exits 5, naming every component
/// that restarted. A crash loop spread across components escalates too.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SupervisionSettings {
    /// Restarts of any components allowed within `restart_period` (default 20).
    pub max_restarts: u32,
    /// The sliding window they are counted in (default 60 s).
    #[serde(with = "humantime_serde")]
    pub restart_period: Duration,
    /// How long a failure waits before its policy runs (default 50 ms), so
    /// that a dependency failing just after its dependent is still seen as
    /// the cause: the dependency restarts with the dependent as its member,
    /// and the dependent's own failure counts for nothing. `0` acts at once.
    #[serde(with = "humantime_serde")]
    pub coalesce_window: Duration,
}

impl Default for SupervisionSettings {
    fn default() -> Self {
        Self { max_restarts: 20, restart_period: Duration::from_secs(60), coalesce_window: Duration::from_millis(50) }
    }
}

impl SupervisionSettings {
    /// Checks that the window is not empty.
    pub fn validate(&self, v: &mut Validation) {
        v.check(!self.restart_period.is_zero(), "restart_period", "must be greater than 0");
    }
}

/// Everything the runtime itself reads from config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuntimeSettings {
    /// `[start]`.
    pub start: StartDefaults,
    /// `[shutdown]`.
    pub shutdown: ShutdownSettings,
    /// `[supervision]`.
    pub supervision: SupervisionSettings,
    /// `[components.<name>]`, by component name.
    pub components: BTreeMap<String, ComponentOverrides>,
}

impl RuntimeSettings {
    /// The settings for the component called `name`: `[start]` defaults,
    /// then the component's own `base`, then `[components.<name>]`.
    pub fn for_component(&self, name: &str, base: Option<ComponentSettings>) -> ComponentSettings {
        let base = base.unwrap_or(ComponentSettings {
            start_timeout: self.start.timeout,
            ready_timeout: self.start.ready_timeout,
            ..ComponentSettings::default()
        });
        match self.components.get(name) {
            Some(overrides) => overrides.apply(base),
            None => base,
        }
    }

    /// Whether config disables the component called `name`.
    pub fn is_disabled(&self, name: &str) -> bool {
        self.components.get(name).and_then(|o| o.enabled) == Some(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_budgets_fit_kubernetes_default_grace_period() {
        let s = ShutdownSettings::default();
        let mut v = Validation::default();
        s.validate(&mut v);
        assert!(v.issues().is_empty(), "{:?}", v.issues());
        assert!(s.propagation_delay + s.phases.total() <= Duration::from_secs(30));
    }

    #[test]
    fn budgets_that_overflow_the_deadline_are_rejected() {
        let s = ShutdownSettings { deadline: Duration::from_secs(5), ..ShutdownSettings::default() };
        let mut v = Validation::default();
        s.validate(&mut v);
        assert_eq!(v.issues().len(), 1);
        assert!(v.issues()[0].to_string().contains("must fit in deadline (5s)"));
    }

    #[test]
    fn component_overrides_win_over_start_defaults() {
        let mut rs = RuntimeSettings::default();
        rs.components.insert(
            "db".into(),
            ComponentOverrides { start_timeout: Some(Duration::from_secs(3)), ..Default::default() },
        );
        assert_eq!(rs.for_component("db", None).start_timeout, Duration::from_secs(3));
        assert_eq!(rs.for_component("other", None).start_timeout, Duration::from_secs(30));
    }
}
