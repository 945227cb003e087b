//! A component library that only registers components, and that nothing
//! else in a test binary mentions — the case where the linker drops
//! registrations unless the app links the crate with `orderly::link!`.

use orderly::{async_trait, BoxError, Component, FromConfig, NoConfig};

/// A component registered from this crate.
pub struct FixtureClock;

#[async_trait]
impl Component for FixtureClock {}

impl FromConfig for FixtureClock {
    type Config = NoConfig;
    fn from_config(_: NoConfig) -> Result<Self, BoxError> {
        Ok(FixtureClock)
    }
}

orderly::register!(FixtureClock);
