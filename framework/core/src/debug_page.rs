//! A page a component adds to the management server's `/debug/<name>`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A page of `/debug/<name>` on the management server: JSON made afresh
/// for each request (see [`Lifecycle::add_debug_page`](crate::runtime::Lifecycle::add_debug_page)).
pub type DebugPage = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = serde_json::Value> + Send>> + Send + Sync>;
