//! Where a group's limiter keeps each client's state: governor's GCRA
//! decides, this only remembers, and never more than a fixed number of
//! clients. governor's own keyed stores grow with every new key until a
//! sweep finds keys whose buckets are full again; a flood of distinct
//! clients within one bucket's refill time would grow them without bound.

use std::hash::{BuildHasher, Hash};

use governor::nanos::Nanos;
use governor::state::keyed::ShrinkableKeyedStateStore;
use governor::state::StateStore;
use indexmap::IndexMap;
use parking_lot::Mutex;

/// Shards, so workers rarely wait on each other's lock.
const SHARDS: usize = 16;
/// Entries looked at to choose one to forget.
const EVICTION_SAMPLE: usize = 8;

/// A hasher seeded at random per store (client keys are chosen by
/// clients), and fast: it runs on every limited request.
type Hasher = foldhash::fast::RandomState;

/// A bounded keyed state store: per key, the GCRA's theoretical arrival
/// time. When a shard is full, a new key displaces the sampled key whose
/// arrival time is earliest: its bucket is the fullest, so forgetting it
/// (it starts again with a full bucket) gives away the least.
pub(crate) struct BoundedStore<K> {
    shards: Box<[Mutex<IndexMap<K, Nanos, Hasher>>]>,
    per_shard: usize,
    hasher: Hasher,
}

impl<K: Hash + Eq + Clone> BoundedStore<K> {
    /// A store that holds at most `capacity` keys (rounded down to a
    /// multiple of the shard count, at least one per shard).
    pub(crate) fn new(capacity: usize) -> Self {
        let per_shard = (capacity / SHARDS).max(1);
        let hasher = Hasher::default();
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(IndexMap::with_hasher(hasher.clone()))).collect(),
            per_shard,
            hasher,
        }
    }

    fn shard(&self, key: &K) -> &Mutex<IndexMap<K, Nanos, Hasher>> {
        let index = self.hasher.hash_one(key) as usize % SHARDS;
        &self.shards[index]
    }

    fn make_room(&self, map: &mut IndexMap<K, Nanos, Hasher>) {
        let len = map.len();
        if len == 0 {
            return;
        }
        // A run of distinct entries from a random place: a busy client is
        // chosen only if every entry in the run is busier.
        let start = fastrand::usize(..len);
        let victim = (0..EVICTION_SAMPLE.min(len))
            .map(|step| (start + step) % len)
            .min_by_key(|&index| map.get_index(index).map(|(_, tat)| *tat));
        if let Some(index) = victim {
            map.swap_remove_index(index);
        }
    }
}

impl<K: Hash + Eq + Clone> StateStore for BoundedStore<K> {
    type Key = K;

    fn measure_and_replace<T, F, E>(&self, key: &K, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        // The shard's lock makes read-decide-write one step, so the
        // compare-and-swap loop governor's atomic stores need is not.
        let mut map = self.shard(key).lock();
        if let Some(tat) = map.get_mut(key) {
            let (outcome, next) = f(Some(*tat))?;
            *tat = next;
            return Ok(outcome);
        }
        let (outcome, next) = f(None)?;
        if map.len() >= self.per_shard {
            self.make_room(&mut map);
        }
        map.insert(key.clone(), next);
        Ok(outcome)
    }
}

impl<K: Hash + Eq + Clone> ShrinkableKeyedStateStore<K> for BoundedStore<K> {
    fn retain_recent(&self, drop_below: Nanos) {
        for shard in self.shards.iter() {
            shard.lock().retain(|_, tat| *tat > drop_below);
        }
    }

    fn shrink_to_fit(&self) {
        for shard in self.shards.iter() {
            shard.lock().shrink_to_fit();
        }
    }

    fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().len()).sum()
    }

    fn is_empty(&self) -> bool {
        self.shards.iter().all(|shard| shard.lock().is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(store: &BoundedStore<u32>, key: u32, tat: u64) {
        store.measure_and_replace(&key, |_| Ok::<_, ()>(((), Nanos::new(tat)))).unwrap();
    }

    #[test]
    fn never_holds_more_than_its_capacity() {
        let store = BoundedStore::new(1_600);
        for key in 0..100_000 {
            touch(&store, key, u64::from(key));
            assert!(store.len() <= 1_600, "grew to {} at key {key}", store.len());
        }
    }

    #[test]
    fn forgets_the_fullest_bucket_first() {
        // One shard's worth: a key whose bucket is far from full (late
        // arrival time) outlives thousands of newcomers.
        let store = BoundedStore::new(16 * 4);
        touch(&store, 7, u64::MAX / 2);
        for key in 1_000..20_000 {
            touch(&store, key, 1);
        }
        let seen = store.measure_and_replace(&7, |old| Ok::<_, ()>((old, old.unwrap_or_default()))).unwrap();
        assert_eq!(seen, Some(Nanos::new(u64::MAX / 2)), "the busy client's state was kept");
    }

    #[test]
    fn a_refused_first_request_stores_nothing() {
        let store = BoundedStore::<u32>::new(64);
        let refused = store.measure_and_replace(&1, |_| Err::<((), Nanos), _>("limited"));
        assert_eq!(refused, Err("limited"));
        assert!(store.is_empty());
    }

    #[test]
    fn sweeping_drops_full_buckets_only() {
        let store = BoundedStore::new(64);
        touch(&store, 1, 10);
        touch(&store, 2, 1_000);
        store.retain_recent(Nanos::new(500));
        assert_eq!(store.len(), 1);
    }
}
