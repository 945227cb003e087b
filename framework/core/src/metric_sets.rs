//! Metric sets registered once per runtime.
//!
//! The runtime's Prometheus registry outlives every run of a component:
//! a restart, a retried start and a reload's replacement value all
//! register the same metrics again, which Prometheus refuses
//! (`AlreadyReg`). And a counter must not fall back to zero when its
//! component restarts: `rate()` would read that as a reset. So a
//! component's metrics are a set, registered the first time any run asks
//! for it and handed, the same handles, to every later run and value
//! ([`StartContext::metric_set`](crate::StartContext::metric_set)).

use std::any::{Any, TypeId};
use std::collections::HashMap;

use parking_lot::Mutex;

/// The metric sets registered on one runtime's registry, by type.
#[derive(Default)]
pub(crate) struct MetricSets {
    by_type: Mutex<HashMap<TypeId, Box<dyn Any + Send + Sync>>>,
}

impl MetricSets {
    /// The set of type `T`, registered with `register` the first time.
    /// A registration that fails is not kept: the next call tries again.
    pub(crate) fn get_or_register<T, E>(
        &self,
        registry: &prometheus::Registry,
        register: impl FnOnce(&prometheus::Registry) -> Result<T, E>,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + 'static,
    {
        // Held across `register`: two runs asking at once register it once.
        let mut sets = self.by_type.lock();
        if let Some(set) = sets.get(&TypeId::of::<T>()).and_then(|set| set.downcast_ref::<T>()) {
            return Ok(set.clone());
        }
        let set = register(registry)?;
        sets.insert(TypeId::of::<T>(), Box::new(set.clone()));
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone)]
    struct Counted(prometheus::IntCounter);

    fn register(registry: &prometheus::Registry) -> Result<Counted, prometheus::Error> {
        let counter = prometheus::IntCounter::new("things_total", "Things.")?;
        registry.register(Box::new(counter.clone()))?;
        Ok(Counted(counter))
    }

    #[test]
    fn a_set_is_registered_once_and_its_counts_carry_over() {
        let (sets, registry) = (MetricSets::default(), prometheus::Registry::new());
        let first = sets.get_or_register(&registry, register).unwrap();
        first.0.inc();
        let again = sets.get_or_register(&registry, register).unwrap();
        again.0.inc();
        assert_eq!(first.0.get(), 2, "the same counter");
        assert_eq!(registry.gather().len(), 1);
        // Without the store, the second registration is refused.
        assert!(register(&registry).is_err());
    }
}
