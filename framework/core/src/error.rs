//! The error vocabulary every layer shares: what a hook returns
//! ([`BoxError`]), how a start error says "do not retry" ([`Permanent`]),
//! and how errors and panics become the one-line text that events,
//! reports and logs carry ([`error_chain`], [`panic_message`]).
//!
//! Part of the model: it names nothing else in the crate.

use std::any::Any;

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
/// assert_eq!(orderly_core::panic_message(payload.as_ref()), "disk 3 is full");
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
