//! [`Secret`]: a config value that never shows in `Debug`, logs or dumps.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value redacted everywhere it could leak: `Debug`, `Display` and
/// `Serialize` all print `[redacted]`. Read it with [`Secret::expose`].
///
/// ```
/// use orderly_core::config::Secret;
/// #[derive(Debug, serde::Deserialize)]
/// struct Database { url: Secret<String> }
/// let db: Database = serde_json::from_str(r#"{"url":"postgres://u:hunter2@h/db"}"#).unwrap();
/// assert!(!format!("{db:?}").contains("hunter2"));
/// assert_eq!(db.url.expose(), "postgres://u:hunter2@h/db");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The value itself. Every use is a place where the secret can leak; keep them few.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

const REDACTED: &str = "[redacted]";

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(REDACTED)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_in_debug_display_and_serialize() {
        let s = Secret::new("hunter2".to_string());
        assert_eq!(format!("{s:?}"), "[redacted]");
        assert_eq!(s.to_string(), "[redacted]");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
        assert_eq!(s.expose(), "hunter2");
    }
}
