//! [`FromConfig`]: how a registered component is built from its own typed
//! config section.
//!
//! The process shell: it names only the core's `Component` and the config
//! vocabulary.

use std::fmt::Debug;

use serde::de::DeserializeOwned;
use serde::Serialize;

use orderly_core::{default_name, BoxError, Component};

use crate::config::Validate;

/// A component that can be built from its own typed config section.
///
/// ```
/// use orderly::{async_trait, BoxError, Component};
/// use orderly::config::{FromConfig, Validate, Validation};
///
/// #[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
/// #[serde(default, deny_unknown_fields)]
/// pub struct GreeterConfig { pub greeting: String }
///
/// impl Validate for GreeterConfig {
///     fn validate(&self, v: &mut Validation) {
///         v.check(!self.greeting.is_empty(), "greeting", "must not be empty");
///     }
/// }
///
/// pub struct Greeter { greeting: String }
/// #[async_trait] impl Component for Greeter {}
///
/// impl FromConfig for Greeter {
///     type Config = GreeterConfig; // read from `[greeter]`
///     fn from_config(config: GreeterConfig) -> Result<Self, BoxError> {
///         Ok(Greeter { greeting: config.greeting })
///     }
/// }
///
/// orderly::register!(Greeter);
/// ```
pub trait FromConfig: Component + Sized {
    /// The section's type. Use `#[serde(deny_unknown_fields)]` so typos are errors,
    /// and [`Secret`](crate::config::Secret) for anything sensitive.
    /// `Serialize` is what `--print-config` prints it with (a `Secret`
    /// prints as a comment, set but not shown).
    type Config: DeserializeOwned + Serialize + Validate + Debug;

    /// The config section and component name (default: the type's snake_case name).
    fn section() -> &'static str {
        default_name::<Self>()
    }

    /// Builds the component from its validated config. Do no I/O here; that belongs in `start`.
    fn from_config(config: Self::Config) -> Result<Self, BoxError>;
}
