//! Routes contributed by other components. The server knows nothing of
//! their types: each contribution is a closure over `ServiceConfig`, run on
//! every worker when the server starts serving.

use std::sync::Arc;

use actix_web::web::ServiceConfig;
use parking_lot::Mutex;

/// One contribution.
pub(crate) type Configure = Arc<dyn Fn(&mut ServiceConfig) + Send + Sync>;

/// The contributions so far; sealed once the server serves.
#[derive(Default)]
pub(crate) struct RouteTable {
    inner: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    routes: Vec<Configure>,
    sealed: bool,
}

impl RouteTable {
    /// Adds a contribution; `false` if the server already serves.
    pub(crate) fn add(&self, configure: Configure) -> bool {
        let mut table = self.inner.lock();
        if table.sealed {
            return false;
        }
        table.routes.push(configure);
        true
    }

    /// Every contribution, and no more from now on.
    pub(crate) fn seal(&self) -> Arc<[Configure]> {
        let mut table = self.inner.lock();
        table.sealed = true;
        table.routes.clone().into()
    }
}
