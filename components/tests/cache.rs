//! The cache: in-process and against a real Redis started by the test on a
//! free loopback port, including Redis going away and coming back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orderly::{config::Secret, Component, Readiness, Runtime, ShutdownReason};
use orderly_components::cache::{Cache, CacheBackend, CacheConfig};
use orderly_components::metrics::Metrics;
use orderly_test_services::Redis;

async fn started(config: CacheConfig) -> (Runtime, Arc<Cache>) {
    let cache = Arc::new(Cache::new(config));
    let runtime = Runtime::builder().component(Metrics::default()).component_arc(cache.clone()).build().unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    (runtime, cache)
}

fn redis_config(port: u16) -> CacheConfig {
    CacheConfig {
        backend: CacheBackend::Redis,
        redis_url: Secret::new(format!("redis://127.0.0.1:{port}")),
        breaker_cooldown: Duration::from_millis(200),
        key_prefix: "test:".into(),
        ..CacheConfig::default()
    }
}

fn reason() -> ShutdownReason {
    ShutdownReason::Signal("SIGTERM")
}

async fn get_set_delete_and_ttl(cache: &Cache) {
    cache.set("user:1", &serde_json::json!({ "name": "Ada" }), None).await;
    let got: Option<serde_json::Value> = cache.get("user:1").await;
    assert_eq!(got.unwrap()["name"], "Ada");
    cache.delete("user:1").await;
    assert!(cache.get::<serde_json::Value>("user:1").await.is_none());
    cache.set("short", &1u32, Some(Duration::from_millis(50))).await;
    assert_eq!(cache.get::<u32>("short").await, Some(1));
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(cache.get::<u32>("short").await, None, "expired");
}

async fn loads_are_coalesced(cache: &Cache) {
    let loads = Arc::new(AtomicUsize::new(0));
    let calls = (0..10).map(|_| {
        let loads = loads.clone();
        cache.get_or_load("expensive", None, move || async move {
            loads.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, String>(42u64)
        })
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r == &Ok(42)));
    assert_eq!(loads.load(Ordering::SeqCst), 1, "one load for ten concurrent callers");
    let failed: Result<u64, String> = cache.get_or_load("broken", None, || async { Err("db down".to_owned()) }).await;
    assert_eq!(failed, Err("db down".to_owned()));
    assert!(cache.get::<u64>("broken").await.is_none(), "failures are not cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_get_set_delete_ttl_and_coalescing() {
    let (runtime, cache) = started(CacheConfig::default()).await;
    get_set_delete_and_ttl(&cache).await;
    loads_are_coalesced(&cache).await;
    assert!(runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_get_set_delete_ttl_and_coalescing() {
    let redis = Redis::start();
    let (runtime, cache) = started(redis_config(redis.port())).await;
    get_set_delete_and_ttl(&cache).await;
    loads_are_coalesced(&cache).await;
    assert_eq!(cache.ready().await, Readiness::Ready);
    let text = orderly_components::metrics::render(runtime.metrics_registry()).unwrap();
    assert!(text.contains(r#"cache_requests_total{backend="redis",result="hit"}"#), "{text}");
    assert!(clients_of(redis.port()).await >= 1);
    assert!(runtime.shutdown(reason()).await.is_clean());
    drop(cache);
    let mut left = clients_of(redis.port()).await;
    for _ in 0..100 {
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = clients_of(redis.port()).await;
    }
    assert_eq!(left, 0, "phase 5 closed every connection to redis");
}

/// Redis clients other than the asking one (`CLIENT LIST`, inline protocol).
async fn clients_of(port: u16) -> usize {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(b"CLIENT LIST\r\nQUIT\r\n").await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    reply.lines().filter(|l| l.starts_with("id=") && !l.contains("cmd=client")).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_goes_away_the_cache_degrades_to_misses_and_recovers() {
    let redis = Redis::start();
    let (runtime, cache) = started(redis_config(redis.port())).await;
    cache.set("k", &"v", None).await;
    assert_eq!(cache.get::<String>("k").await.as_deref(), Some("v"));

    let port = redis.stop();
    for _ in 0..5 {
        let started = Instant::now();
        assert_eq!(cache.get::<String>("k").await, None, "a miss, not an error");
        assert!(started.elapsed() < Duration::from_secs(2), "bounded by redis_timeout, never hangs");
    }
    assert!(matches!(cache.ready().await, Readiness::Degraded(_)), "{:?}", cache.ready().await);
    assert!(runtime.health().readiness(Duration::from_secs(1)).await.ready, "degraded still counts as ready");
    let text = orderly_components::metrics::render(runtime.metrics_registry()).unwrap();
    assert!(text.contains("cache_breaker_open 1"), "{text}");

    let _redis = Redis::start_on(port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        cache.set("k2", &"back", None).await;
        if cache.get::<String>("k2").await.as_deref() == Some("back") {
            break;
        }
        assert!(Instant::now() < deadline, "the cache never recovered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cache.ready().await, Readiness::Ready, "recovered by itself");
    assert!(runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_starts_degraded_instead_of_failing() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (runtime, cache) = started(CacheConfig { breaker_failures: 1, ..redis_config(port) }).await;
    assert!(matches!(cache.ready().await, Readiness::Degraded(_)));
    assert_eq!(cache.get_or_load("x", None, || async { Ok::<_, String>(7) }).await, Ok(7), "loads still work");
    assert!(runtime.shutdown(reason()).await.is_clean());
}
