//! Registration: components announce themselves with [`register!`], and the
//! app collects them with [`App::link`](crate::app::App::new).
//!
//! The linker drops a library's registrations when the binary never
//! mentions that library. So an app must name, in [`link!`], every crate
//! whose components it runs; [`App`](crate::app::App) cannot run without a
//! [`Linked`] value, which only `link!` makes. A linked crate that turns out
//! to register nothing is reported, and an app with no components at all
//! refuses to start.

use std::fmt::Debug;
use std::sync::Arc;

use crate::config::{ConfigIssue, FromConfig, LoadedConfig, NoConfig, Validate, Validation};
use orderly_core::events::error_chain;
use orderly_core::{default_name, Component};

/// A component built from config, with its config for `--print-config`.
pub(crate) struct Built {
    pub(crate) component: Arc<dyn Component>,
    /// Its section as it is in force (defaults filled in, secrets
    /// redacted), for `--print-config`.
    pub(crate) config_dump: toml::Table,
}

/// One registered component type. Made by [`register!`](crate::register); read by [`App`](crate::app::App).
pub struct Registration {
    section: fn() -> &'static str,
    module_path: &'static str,
    /// Reads and validates the section; builds the component when asked to.
    read: ReadFn,
}

/// Reads one registration's section: `None` when only checking it.
type ReadFn = fn(&LoadedConfig, &str, ReadMode) -> Result<Option<Built>, Vec<ConfigIssue>>;

/// Whether reading a registration's config also builds the component.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadMode {
    /// Check and build it: the component runs.
    Build,
    /// The component is disabled: its config is checked (a typo in its
    /// section should not wait until someone enables it) and it is built,
    /// to stay in the graph, not started, for a reload to enable. A
    /// constructor that fails leaves it out (then enabling it takes a new
    /// process); that is no error while it is disabled.
    Disabled,
}

impl Registration {
    /// The registration of `T`, submitted from `module_path`. Use [`register!`].
    #[doc(hidden)]
    pub const fn of<T: FromConfig>(module_path: &'static str) -> Self {
        Self { section: T::section, module_path, read: read_from_config::<T> }
    }

    /// The registration of a `Default` component with no config, submitted
    /// from `module_path`. Use [`register_default!`](crate::register_default).
    #[doc(hidden)]
    pub const fn of_default<T: Component + Default>(module_path: &'static str) -> Self {
        Self { section: default_name::<T>, module_path, read: read_default::<T> }
    }

    /// The component's name and config section.
    pub fn section(&self) -> &'static str {
        (self.section)()
    }

    /// The crate that registered it.
    pub fn crate_name(&self) -> &'static str {
        self.module_path.split("::").next().unwrap_or(self.module_path)
    }

    /// Checks the component's config section and builds it (`None`: a
    /// disabled one whose constructor failed).
    pub(crate) fn read(&self, config: &LoadedConfig, mode: ReadMode) -> Result<Option<Built>, Vec<ConfigIssue>> {
        (self.read)(config, self.section(), mode)
    }

    /// Every registration linked into this binary.
    #[doc(hidden)] // for the linking tests; apps use `App`
    pub fn all() -> impl Iterator<Item = &'static Registration> {
        inventory::iter::<Registration>.into_iter()
    }
}

inventory::collect!(Registration);

fn read_from_config<T: FromConfig>(
    config: &LoadedConfig,
    section: &str,
    mode: ReadMode,
) -> Result<Option<Built>, Vec<ConfigIssue>> {
    // A key that fails to parse does not hide the other problems of the section.
    let (typed, mut issues) = config.section_lenient::<T::Config>(section);
    let mut v = Validation::for_section(section);
    if let Some(typed) = &typed {
        typed.validate(&mut v);
    }
    issues.extend(v.issues().iter().cloned());
    let typed = match typed {
        Some(typed) if issues.is_empty() => typed,
        _ => return Err(issues),
    };
    // A section that does not serialize to a table (it always does for a
    // struct) prints as empty rather than failing the start.
    let config_dump = toml::Table::try_from(&typed).unwrap_or_default();
    match (T::from_config(typed), mode) {
        (Ok(component), _) => Ok(Some(Built { component: Arc::new(component), config_dump })),
        (Err(_), ReadMode::Disabled) => Ok(None),
        (Err(e), ReadMode::Build) => {
            Err(vec![ConfigIssue { key: section.to_string(), message: error_chain(e.as_ref()) }])
        }
    }
}

fn read_default<T: Component + Default>(
    config: &LoadedConfig,
    section: &str,
    mode: ReadMode,
) -> Result<Option<Built>, Vec<ConfigIssue>> {
    // No settings of its own, but a section in config is still checked, so a
    // stray key is an error rather than silently ignored.
    let _: NoConfig = config.section(section).map_err(|errors| errors.0)?;
    let _ = mode; // built either way: a disabled one stays in the graph for a reload to enable
    Ok(Some(Built { component: Arc::new(T::default()), config_dump: toml::Table::new() }))
}

/// Registers a component type that has no settings of its own and
/// implements `Default`; its config section, if present, must be empty.
///
/// ```
/// use orderly::{BoxError, Component, StopContext};
///
/// #[derive(Default)]
/// pub struct Janitor;
///
/// #[orderly::component]
/// impl Component for Janitor {
///     async fn close(&self, _: &StopContext) -> Result<(), BoxError> { Ok(()) }
/// }
///
/// orderly::register_default!(Janitor);
/// ```
#[macro_export]
macro_rules! register_default {
    ($component:ty) => {
        $crate::__private::inventory::submit! {
            $crate::app::Registration::of_default::<$component>(::core::module_path!())
        }
    };
}

/// Registers a component type so that every app linking this crate runs
/// it, built from its own config section. See [`link!`](crate::link) for
/// the app's side.
///
/// - `register!(T)`: `T` implements [`FromConfig`] itself.
/// - `register!(T: Config => constructor)`: the common case, with the
///   `FromConfig` impl written for you: the section `[t]` (the type's
///   snake_case name, as [`Component::name`] defaults to) is read as
///   `Config` and handed to `constructor`, a `fn(Config) -> T`.
/// - `register!(T: Config => constructor, section = "name")`: another
///   section name. A component named differently from its type returns
///   `<Self as FromConfig>::section()` from its `name()`, so the name is
///   written once.
///
/// ```
/// use orderly::config::{Validate, Validation};
///
/// #[derive(Debug, Default, serde::Deserialize, serde::Serialize)]
/// #[serde(default, deny_unknown_fields)]
/// pub struct GreeterConfig { pub greeting: String }
/// impl Validate for GreeterConfig {}
///
/// pub struct Greeter { greeting: String }
/// impl Greeter {
///     pub fn new(config: GreeterConfig) -> Self { Self { greeting: config.greeting } }
/// }
/// #[orderly::component]
/// impl orderly::Component for Greeter {}
///
/// orderly::register!(Greeter: GreeterConfig => Greeter::new); // reads [greeter]
/// ```
#[macro_export]
macro_rules! register {
    ($component:ty) => {
        $crate::__private::inventory::submit! {
            $crate::app::Registration::of::<$component>(::core::module_path!())
        }
    };
    ($component:ty : $config:ty => $constructor:expr $(, section = $section:literal)? $(,)?) => {
        impl $crate::config::FromConfig for $component {
            type Config = $config;
            $(
                fn section() -> &'static str {
                    $section
                }
            )?
            fn from_config(config: $config) -> ::core::result::Result<Self, $crate::BoxError> {
                ::core::result::Result::Ok(($constructor)(config))
            }
        }
        $crate::register!($component);
    };
}

/// The crates whose registered components an app runs. Made only by [`link!`](crate::link).
#[derive(Debug, Clone)]
pub struct Linked {
    crates: &'static [&'static str],
}

impl Linked {
    #[doc(hidden)]
    pub const fn __new(crates: &'static [&'static str]) -> Self {
        Self { crates }
    }

    /// The crate names named in `link!`.
    pub fn crates(&self) -> &'static [&'static str] {
        self.crates
    }

    /// Named crates that registered no component: probably a mistake.
    pub fn silent_crates(&self) -> Vec<&'static str> {
        self.crates.iter().copied().filter(|c| !Registration::all().any(|r| r.crate_name() == *c)).collect()
    }
}

/// Links component crates into the binary, so that their registrations are
/// never silently dropped by the linker. Name every library crate whose
/// components the app runs; the binary's own crate needs no mention.
///
/// ```no_run
/// // In a real binary: orderly::link![my_service, orderly_components]
/// fn main() -> std::process::ExitCode {
///     orderly::app::App::new(orderly::app_info!(), orderly::link![]).run()
/// }
/// ```
#[macro_export]
macro_rules! link {
    ($($krate:ident),* $(,)?) => {{
        $(
            // Naming the crate makes rustc link it, and with it the statics
            // that `register!` submitted.
            #[allow(unused_imports)]
            use $krate as _;
        )*
        $crate::app::Linked::__new(&[$(::core::stringify!($krate)),*])
    }};
}
