//! The cache: get-or-load that coalesces concurrent loads, TTL, delete.
//! With `backend = "redis"` the same code runs against Redis.
//!
//! `cargo run -p orderly-components --example 03_cache`

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orderly::{BoxError, Runtime, ShutdownReason};
use orderly_components::cache::{Cache, CacheConfig};
use orderly_components::metrics::Metrics;

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let cache = Arc::new(Cache::new(CacheConfig::default()));
    let runtime = Runtime::builder().component(Metrics::default()).component_arc(cache.clone()).build()?;
    runtime.start().await.map_err(|e| format!("{e:?}"))?;

    let loads = Arc::new(AtomicUsize::new(0));
    let readers = (0..8).map(|_| {
        let loads = loads.clone();
        cache.get_or_load("report:today", Some(Duration::from_secs(60)), move || async move {
            loads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await; // an expensive query
            Ok::<_, String>(vec![3, 1, 4, 1, 5])
        })
    });
    let results = futures::future::join_all(readers).await;
    println!("8 readers got {:?}; loads run: {}", results[0], loads.load(Ordering::SeqCst));

    cache.set("session:42", &"ada", Some(Duration::from_millis(100))).await;
    println!("session now: {:?}", cache.get::<String>("session:42").await);
    tokio::time::sleep(Duration::from_millis(150)).await;
    println!("session after its TTL: {:?}", cache.get::<String>("session:42").await);

    let report = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    println!("shutdown clean: {}", report.is_clean());
    Ok(())
}
