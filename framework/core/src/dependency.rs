//! Declared dependencies between components: by type (checked by the
//! compiler) or by name (for several instances of one type).
//!
//! Part of the model: it names only `Component` (for the typed form).

use std::any::TypeId;
use std::fmt;

use crate::component::{default_name, Component};

/// One declared dependency of a component.
///
/// ```
/// use orderly_core::{async_trait, Component, Dependency};
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
    /// Whether the graph may lack the target (see [`Dependency::optional`]).
    pub(crate) optional: bool,
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
            optional: false,
        }
    }

    /// A dependency on the component with this name.
    pub fn named(name: impl Into<String>) -> Self {
        Self { target: Target::Name(name.into()), optional: false }
    }

    /// The same dependency, kept only if the target is in the graph: when
    /// no such component is linked, or it is `disabled`, there is no edge
    /// and no error, and [`StartContext::dependency`](crate::StartContext::dependency)
    /// answers [`AccessError::NotFound`](crate::AccessError::NotFound).
    /// When it is there, it starts first and stops after, as any other.
    /// An ambiguous type is still an error.
    ///
    /// ```
    /// use orderly_core::{async_trait, Component, Dependency, Runtime};
    /// struct Tracer;
    /// #[async_trait] impl Component for Tracer {}
    /// struct Api;
    /// #[async_trait]
    /// impl Component for Api {
    ///     fn dependencies(&self) -> Vec<Dependency> {
    ///         vec![Dependency::on::<Tracer>().optional()]
    ///     }
    /// }
    /// // Without a `Tracer` the graph is still valid.
    /// assert!(Runtime::builder().component(Api).build().is_ok());
    /// ```
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
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
            Target::Type { type_name, .. } => write!(f, "Dependency::on::<{type_name}>()")?,
            Target::Name(name) => write!(f, "Dependency::named({name:?})")?,
        }
        if self.optional {
            f.write_str(".optional()")?;
        }
        Ok(())
    }
}
