//! Routes contributed by other components. The server knows nothing of
//! their types: each contribution is a closure over `ServiceConfig`, run on
//! every worker when a server of this run starts serving.
//!
//! Each contribution is kept with its owner and the owner's run. A
//! contributor that restarts on its own (while the server keeps serving)
//! contributes again from its new start: its old routes are dropped, and
//! the server hands over to a new server with the new table once that
//! start is complete.

use std::sync::Arc;

use actix_web::web::ServiceConfig;
use parking_lot::Mutex;

/// One contribution.
pub(crate) type Configure = Arc<dyn Fn(&mut ServiceConfig) + Send + Sync>;

/// The contributions of one run of the server.
#[derive(Default)]
pub(crate) struct RouteTable {
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    routes: Vec<Contribution>,
    /// Whether a server serves the table (the run's first one does once the app's start is complete).
    sealed: bool,
    /// Bumped by every change; what a server was built from is `served`.
    version: u64,
    served: u64,
}

struct Contribution {
    owner: Arc<str>,
    run: u64,
    configure: Configure,
}

/// What adding a contribution did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    /// Collected before the server serves: the first server takes it.
    Collected,
    /// Changed the table of a server that serves: a new one must take over.
    Changed,
}

impl RouteTable {
    /// Adds `owner`'s contribution from its run `run`; what `owner`
    /// contributed in an earlier run is dropped.
    pub(crate) fn add(&self, owner: &str, run: u64, configure: Configure) -> Added {
        let mut table = self.inner.lock();
        table.routes.retain(|c| &*c.owner != owner || c.run == run);
        table.routes.push(Contribution { owner: owner.into(), run, configure });
        table.version += 1;
        if table.sealed {
            Added::Changed
        } else {
            Added::Collected
        }
    }

    /// Every contribution, for a server that serves them from now on.
    pub(crate) fn seal(&self) -> Arc<[Configure]> {
        let mut table = self.inner.lock();
        table.sealed = true;
        table.served = table.version;
        table.routes.iter().map(|c| c.configure.clone()).collect()
    }

    /// Whether the table changed since a server was last built from it.
    pub(crate) fn changed_since_served(&self) -> bool {
        let table = self.inner.lock();
        table.sealed && table.version != table.served
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> Configure {
        Arc::new(|_: &mut ServiceConfig| {})
    }

    #[test]
    fn a_contributors_new_run_replaces_its_routes_and_only_its_own() {
        let table = RouteTable::default();
        assert_eq!(table.add("orders", 1, noop()), Added::Collected);
        assert_eq!(table.add("orders", 1, noop()), Added::Collected, "two calls in one start");
        assert_eq!(table.add("admin_api", 1, noop()), Added::Collected);
        assert_eq!(table.seal().len(), 3);
        assert!(!table.changed_since_served());
        assert_eq!(table.add("orders", 2, noop()), Added::Changed, "orders restarted alone");
        assert!(table.changed_since_served());
        assert_eq!(table.seal().len(), 2, "orders' two old contributions are gone, admin_api's stays");
    }
}
