//! Declared dependencies between components: by type (checked by the
//! compiler) or by name (for several instances of one type).

use std::any::TypeId;
use std::fmt;

use crate::component::{default_name, Component};

/// One declared dependency of a component.
///
/// ```
/// use orderly::{async_trait, Component, Dependency};
/// struct Database;
/// #[async_trait] impl Component for Database {}
/// struct Api;
/// #[async_trait]
/// impl Component for Api {
///     fn dependencies(&self) -> Vec<Dependency> {
///         vec![Dependency::on::<Database>()]
///     }
/// }
/// assert_eq!(Api.dependencies()[0].to_string(), "database");
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Dependency {
    pub(crate) target: Target,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub(crate) enum Target {
    /// The one component of this concrete type.
    Type { id: TypeId, type_name: &'static str, default_name: &'static str },
    /// The component with this name.
    Name(String),
}

impl Dependency {
    /// A dependency on the single component of type `T`. Exactly one
    /// component of that type must exist; the graph check says so otherwise.
    pub fn on<T: Component>() -> Self {
        Self {
            target: Target::Type {
                id: TypeId::of::<T>(),
                type_name: std::any::type_name::<T>(),
                default_name: default_name::<T>(),
            },
        }
    }

    /// A dependency on the component with this name.
    pub fn named(name: impl Into<String>) -> Self {
        Self { target: Target::Name(name.into()) }
    }
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Type { default_name, .. } => f.write_str(default_name),
            Target::Name(name) => f.write_str(name),
        }
    }
}

impl fmt::Debug for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            Target::Type { type_name, .. } => write!(f, "Dependency::on::<{type_name}>()"),
            Target::Name(name) => write!(f, "Dependency::named({name:?})"),
        }
    }
}
