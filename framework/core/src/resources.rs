//! Resources that components provide during `start` (a pool, a client),
//! by type and provider: written by
//! [`StartContext::provide`](crate::StartContext::provide), read by
//! dependents' [`resource`](crate::StartContext::resource), withdrawn when
//! their provider stops for a restart. Part of the model.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

use crate::nodeset::NodeSet;

pub(crate) type AnyArc = Arc<dyn Any + Send + Sync>;

/// Resources that components provide during `start`, by type.
#[derive(Default)]
pub(crate) struct Resources {
    by_type: RwLock<HashMap<TypeId, Vec<(usize, AnyArc)>>>,
}

impl Resources {
    /// Records that component `provider` offers `resource`.
    pub(crate) fn provide(&self, provider: usize, type_id: TypeId, resource: AnyArc) {
        self.by_type.write().entry(type_id).or_default().push((provider, resource));
    }

    /// The providers of `type_id`, each with what it provided, in order.
    pub(crate) fn of_type(&self, type_id: TypeId) -> Vec<(usize, AnyArc)> {
        self.by_type.read().get(&type_id).cloned().unwrap_or_default()
    }

    /// Forgets what the marked components provided: they were stopped for
    /// a restart, and provide anew when they start again.
    pub(crate) fn withdraw(&self, providers: &NodeSet) {
        for provided in self.by_type.write().values_mut() {
            provided.retain(|(j, _)| !providers.contains(*j));
        }
    }
}
