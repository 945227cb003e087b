//! What happens when a component fails while running: its supervised
//! background task (`StartContext::spawn`) returns an error or panics.
//!
//! A component chooses with [`Component::on_failure`](crate::Component::on_failure);
//! an operator overrides it with `[components.<name>] on_failure = "…"`.

use serde::{Deserialize, Deserializer};

/// The policy for a component that fails while running.
///
/// ```
/// use orderly::{async_trait, Component, OnFailure};
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
    /// Log the failure, count it (`orderly_component_failures_total`), and
    /// report the component `Degraded` with the reason from then on; the
    /// rest of the app keeps serving. For components the service can do
    /// without.
    Ignore,
}

impl OnFailure {
    /// Every policy, in config order.
    const ALL: [OnFailure; 2] = [OnFailure::Shutdown, OnFailure::Ignore];

    /// The name used in config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            OnFailure::Shutdown => "shutdown",
            OnFailure::Ignore => "ignore",
        }
    }
}

/// By name, with an error that lists the choices (serde's derive would
/// only say that the variant does not exist).
impl<'de> Deserialize<'de> for OnFailure {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Self::ALL.into_iter().find(|p| p.as_str() == name).ok_or_else(|| {
            let choices: Vec<_> = Self::ALL.iter().map(|p| format!("`{}`", p.as_str())).collect();
            serde::de::Error::custom(format!("`{name}` is not a failure policy; use {}", choices.join(" or ")))
        })
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
        let error = read("\"restart\"").unwrap_err();
        assert!(error.contains("`restart` is not a failure policy; use `shutdown` or `ignore`"), "{error}");
    }
}
