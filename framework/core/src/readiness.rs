//! What a component answers when asked whether it can take traffic.
//!
//! Part of the model: plain data that the start polls and probes report.
//! It names nothing else in the crate.

/// What a component's [`ready`](crate::Component::ready) reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", content = "reason", rename_all = "snake_case")]
pub enum Readiness {
    /// Able to take traffic.
    Ready,
    /// Taking traffic with reduced function (for example a cache serving
    /// misses while its backend is down). Counts as ready.
    Degraded(String),
    /// Not able to take traffic yet, with the reason.
    NotReady(String),
}

impl Readiness {
    /// True for [`Readiness::Ready`] and [`Readiness::Degraded`].
    pub fn is_ready(&self) -> bool {
        !matches!(self, Readiness::NotReady(_))
    }
}
