//! Collecting every config problem before reporting, so an operator fixes
//! them in one round instead of one per restart.

use std::fmt;

/// One problem with one config key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// The dotted key, such as `shutdown.deadline` or `http.bind`.
    pub key: String,
    /// What is wrong, in words an operator can act on.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Every config problem found, reported together. The process exits with
/// code 78 (`EX_CONFIG`) on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration ({} problem{}):\n{}",
    .0.len(),
    if .0.len() == 1 { "" } else { "s" },
    .0.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigErrors(pub Vec<ConfigIssue>);

/// An accumulator of [`ConfigIssue`]s.
///
/// ```
/// use orderly_core::{config::Validate, config::Validation};
/// struct Http { workers: usize, bind: String }
/// impl Validate for Http {
///     fn validate(&self, v: &mut Validation) {
///         v.check(self.workers > 0, "workers", "must be at least 1");
///         v.check(self.bind.contains(':'), "bind", "must be host:port");
///     }
/// }
/// let mut v = Validation::for_section("http");
/// Http { workers: 0, bind: "nope".into() }.validate(&mut v);
/// assert_eq!(v.issues().len(), 2);
/// assert_eq!(v.issues()[0].key, "http.workers");
/// ```
#[derive(Debug, Default)]
pub struct Validation {
    section: String,
    issues: Vec<ConfigIssue>,
}

impl Validation {
    /// A validation whose keys are prefixed with `section.`.
    pub fn for_section(section: &str) -> Self {
        Self { section: section.to_string(), issues: Vec::new() }
    }

    /// Records `message` for `key` unless `ok`.
    pub fn check(&mut self, ok: bool, key: &str, message: impl Into<String>) {
        if !ok {
            self.error(key, message);
        }
    }

    /// Records `message` for `key`.
    pub fn error(&mut self, key: &str, message: impl Into<String>) {
        let key = match (self.section.is_empty(), key.is_empty()) {
            (true, _) => key.to_string(),
            (false, true) => self.section.clone(),
            (false, false) => format!("{}.{key}", self.section),
        };
        self.issues.push(ConfigIssue { key, message: message.into() });
    }

    /// The problems recorded so far.
    pub fn issues(&self) -> &[ConfigIssue] {
        &self.issues
    }

    /// Records an issue found elsewhere (a nested section's own check).
    pub fn push(&mut self, issue: ConfigIssue) {
        self.issues.push(issue);
    }

    /// Every issue found, to report together with other sections'.
    pub fn into_issues(self) -> Vec<ConfigIssue> {
        self.issues
    }
}

/// Checks a config section beyond what its types enforce. The default
/// accepts everything; implement it for cross-field rules and ranges.
pub trait Validate {
    /// Records every problem in `v`; never stop at the first.
    fn validate(&self, v: &mut Validation) {
        let _ = v;
    }
}

impl Validate for () {}
