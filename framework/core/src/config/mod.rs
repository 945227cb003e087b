//! What a component's config section may say and how problems with it are
//! reported: [`Validate`] and [`Validation`], the issue types, and
//! [`Secret`] for values that must never be printed.
//!
//! Reading the layers (files, environment, flags) is the process shell's
//! job (`orderly_core::config`); this module holds only the vocabulary that
//! components and the runtime's settings share.

mod secret;
mod validation;

pub use secret::Secret;
pub use validation::{ConfigErrors, ConfigIssue, Validate, Validation};
