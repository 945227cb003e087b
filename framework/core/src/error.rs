//! The error vocabulary every layer shares: what a hook returns
//! ([`BoxError`]), how a start error says "do not retry" ([`Permanent`]),
//! and how errors and panics become the one-line text that events,
//! reports and logs carry ([`error_chain`], [`panic_message`]).
//!
//! [`Problem`] is what went wrong with one component in one phase, for a
//! start and for a stop alike.
//!
//! Part of the model: it names only the phase and event vocabularies.

use std::any::Any;
use std::fmt;

use crate::event::EventKind;
use crate::phase::{Phase, StopPhase};

/// The error type component hooks return. Any error converts into it with `?`.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Marks a start error as permanent: the runtime does not retry it even when
/// the component has a retry policy (a wrong password will not fix itself).
///
/// ```
/// use orderly_core::{BoxError, Permanent};
/// fn check(password_ok: bool) -> Result<(), BoxError> {
///     if !password_ok {
///         return Err(Permanent::new("authentication failed").into());
///     }
///     Ok(())
/// }
/// assert!(check(false).unwrap_err().is::<Permanent>());
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct Permanent {
    source: BoxError,
}

impl Permanent {
    /// Wraps an error so that start retries stop at once.
    pub fn new(source: impl Into<BoxError>) -> Self {
        Self { source: source.into() }
    }
}

/// Renders an error with its whole `source()` chain: `outer: middle: root`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Wrappers that print their source would repeat it; skip those echoes.
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Renders a boxed hook error with its chain.
pub(crate) fn box_error_chain(error: &BoxError) -> String {
    error_chain(error.as_ref())
}

/// The message a panic was raised with (`panic!("…")` gives a `&str` or a
/// `String`), for logs and error reports; anything else is described.
///
/// ```
/// let payload = std::panic::catch_unwind(|| panic!("disk {} is full", 3)).unwrap_err();
/// assert_eq!(orderly_core::error::panic_message(payload.as_ref()), "disk 3 is full");
/// ```
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        return (*s).to_owned();
    }
    match payload.downcast_ref::<String>() {
        Some(s) => s.clone(),
        None => "a panic with a non-string payload".to_owned(),
    }
}

/// What went wrong with one component in one phase: a start that failed
/// ([`StartFailure`]) or a stop hook that did not end cleanly
/// ([`StopProblem`]). One type for both, so reports, logs and tests read
/// them alike; `P` is the kind of phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem<P> {
    /// The component.
    pub component: String,
    /// The phase: `start` or `ready` for a start, one of the five for a stop.
    pub phase: P,
    /// `failed`, `timed_out` or `panicked`; a stop also has `skipped`
    /// (`timed_out` there means abandoned).
    pub event: EventKind,
    /// The error chain, panic message, or what was overrun.
    pub error: String,
}

/// Why a start did not complete: the root cause, never a cancellation.
pub type StartFailure = Problem<Phase>;

/// A component that did not stop cleanly in a phase.
pub type StopProblem = Problem<StopPhase>;

impl fmt::Display for StartFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.event {
            EventKind::TimedOut => "timed out",
            EventKind::Panicked => "panicked",
            _ => "failed",
        };
        write!(f, "component `{}` {verb} in phase {}: {}", self.component, self.phase, self.error)
    }
}

impl fmt::Display for StopProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (component, event, phase, error) = (&self.component, self.event, self.phase, &self.error);
        write!(f, "component `{component}` {event} in phase {} ({phase}): {error}", phase.number())
    }
}

impl std::error::Error for StartFailure {}
impl std::error::Error for StopProblem {}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connecting to db")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn error_chain_joins_every_source() {
        let e = Outer(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused"));
        assert_eq!(error_chain(&e), "connecting to db: connection refused");
    }
}
