//! A component library that only registers components, and that nothing
//! else in a test binary mentions — the case where the linker drops
//! registrations unless the app links the crate with `orderly::link!`.

use orderly::Component;

/// A component registered from this crate.
#[derive(Default)]
pub struct FixtureClock;

#[orderly::component]
impl Component for FixtureClock {}

orderly::register_default!(FixtureClock);
