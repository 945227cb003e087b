//! Reloads applied in place while the components serve: nothing stops, no
//! dependent restarts, and the new value is in force for the next request,
//! connection or job. What cannot change in place restarts the component
//! along the graph instead (the graph's own tests cover that path).

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orderly::events::EventKind;
use orderly::runtime::{ReloadChange, ReloadReport};
use orderly::{config::Secret, Component, Runtime};
use orderly_components::cache::{Cache, CacheConfig};
use orderly_components::http::{HttpConfig, HttpServer};
use orderly_components::metrics::{Metrics, MetricsConfig, PushConfig};
use orderly_components::postgres::{Database, DatabaseConfig, DbError, DevDatabase};
use orderly_test_services::{free_port, series_value, Pushgateway};
use support::*;

/// Hands `name` its new value, with a fresh copy of the old one for a rollback.
async fn reload<C: Component>(runtime: &Runtime, name: &str, new: C, old: C) -> ReloadReport {
    runtime.reload(vec![ReloadChange::new(name, Arc::new(new), Arc::new(old))]).await
}

/// No component stopped, in any phase, since the app started.
fn nothing_stopped(runtime: &Runtime) -> bool {
    runtime.timeline().of_kind(EventKind::Stopping).is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_settings_change_for_the_next_request_without_a_restart() {
    let old = HttpConfig { request_timeout: Duration::from_secs(5), max_body_bytes: 1 << 20, ..http_config() };
    let svc = start_with(old.clone(), admin_config(), Default::default()).await;
    let client = client();
    let slow = format!("{}/slow?ms=300", svc.base);
    assert_eq!(client.get(&slow).send().await.unwrap().status(), 200);
    let body = serde_json::json!({ "pad": "x".repeat(4096) });
    assert_eq!(client.post(format!("{}/echo", svc.base)).json(&body).send().await.unwrap().status(), 200);

    let new = HttpConfig {
        request_timeout: Duration::from_millis(100),
        max_body_bytes: 1024,
        max_concurrent_requests: 1,
        ..old.clone()
    };
    let report = reload(&svc.runtime, "http", HttpServer::new(new), HttpServer::new(old)).await;
    assert_eq!(report.applied, ["http"], "{report:?}");
    assert_eq!(client.get(&slow).send().await.unwrap().status(), 504, "the new timeout");
    let res = client.post(format!("{}/echo", svc.base)).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 413, "the new body limit, on a worker built with the old one");
    // One request at a time now: a second one at once is shed.
    let held = tokio::spawn(fresh_connection_client().get(format!("{}/slow?ms=80", svc.base)).send());
    while svc.accepted.count() < 3 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert_eq!(client.get(format!("{}/hello", svc.base)).send().await.unwrap().status(), 503);
    assert_eq!(held.await.unwrap().unwrap().status(), 200);
    assert!(nothing_stopped(&svc.runtime), "applied in place");
    assert_eq!(svc.runtime.timeline().of_kind(EventKind::Reloaded).len(), 1);
    assert!(svc.runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_worker_count_is_taken_over_on_the_same_socket_with_no_request_failed_and_a_new_address_bound_first() {
    let old = HttpConfig { bind: format!("127.0.0.1:{}", free_port()), workers: 2, ..http_config() };
    let svc = start_with(old.clone(), admin_config(), Default::default()).await;
    let (stop, ok) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)));
    let failed = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, ok, failed, url) =
                (stop.clone(), ok.clone(), failed.clone(), format!("{}/slow?ms=20", svc.base));
            tokio::spawn(async move {
                let client = fresh_connection_client();
                while !stop.load(Ordering::Relaxed) {
                    match client.get(&url).send().await {
                        Ok(res) if res.status() == 200 => {
                            ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(res) => failed.lock().push(format!("status {}", res.status())),
                        Err(error) => failed.lock().push(format!("{error:?}")),
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The same address, one worker: the new server accepts from the same socket.
    let fewer = HttpConfig { workers: 1, ..old.clone() };
    let report = reload(&svc.runtime, "http", HttpServer::new(fewer.clone()), HttpServer::new(old.clone())).await;
    assert_eq!(report.applied, ["http"], "{report:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    assert!(failed.lock().is_empty(), "no request failed across the same-address hand-over: {:?}", failed.lock());
    let (before, moved_to) = (ok.load(Ordering::Relaxed), free_port());
    // A new address: bound before the old one closes. Clients of the old
    // address are turned away from then on; that is what moving it means.
    let moved = HttpConfig { bind: format!("127.0.0.1:{moved_to}"), ..fewer.clone() };
    let report = reload(&svc.runtime, "http", HttpServer::new(moved), HttpServer::new(fewer)).await;
    assert_eq!(report.applied, ["http"], "{report:?}");
    assert!(before > 0);
    assert_eq!(svc.http.local_addr().map(|a| a.port()), Some(moved_to));
    let res = client().get(format!("http://127.0.0.1:{moved_to}/hello")).send().await.unwrap();
    assert_eq!(res.status(), 200, "the routes are served at the new address");
    assert!(client().get(format!("{}/hello", svc.base)).send().await.is_err(), "the old address is closed");
    assert!(nothing_stopped(&svc.runtime), "applied in place");
    assert!(svc.runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pool_resizes_and_takes_a_new_statement_timeout_in_place() {
    let server = DevDatabase::start().await.expect("a throwaway postgres");
    let old = DatabaseConfig {
        url: Secret::new(server.url()),
        migrations: String::new(),
        pool_size: 2,
        wait_timeout: Duration::from_millis(200),
        ..DatabaseConfig::default()
    };
    let database = Arc::new(Database::new(old.clone()));
    let runtime = Runtime::builder().component_arc(database.clone()).build().unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    let held = (database.get().await.unwrap(), database.get().await.unwrap());
    assert!(matches!(database.get().await, Err(DbError::Unavailable(_))), "two connections at most");
    held.0.query_one("SELECT pg_sleep(0.3)", &[]).await.expect("no statement timeout yet");

    let new = DatabaseConfig { pool_size: 4, statement_timeout: Duration::from_millis(100), ..old.clone() };
    let report = reload(&runtime, "database", Database::new(new), Database::new(old)).await;
    assert_eq!(report.applied, ["database"], "{report:?}");
    let (third, fourth) = (database.get().await.unwrap(), database.get().await.unwrap());
    assert_eq!(database.pool().unwrap().status().max_size, 4);
    let error = fourth.query_one("SELECT pg_sleep(0.3)", &[]).await.unwrap_err();
    assert_eq!(error.code(), Some(&tokio_postgres::error::SqlState::QUERY_CANCELED), "{error:?}");
    drop((held, third, fourth));
    // A connection made before the change is replaced, not reused with the old timeout.
    for _ in 0..4 {
        let client = database.get().await.unwrap();
        let shown: String = client.query_one("SHOW statement_timeout", &[]).await.unwrap().get(0);
        assert_eq!(shown, "100ms");
    }
    assert!(nothing_stopped(&runtime));
    assert!(runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_takes_a_new_ttl_in_place() {
    let old = CacheConfig { default_ttl: Duration::from_secs(60), ..CacheConfig::default() };
    let cache = Arc::new(Cache::new(old.clone()));
    let runtime = Runtime::builder().component(Metrics::default()).component_arc(cache.clone()).build().unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    cache.set("kept", &1, None).await;
    let new = CacheConfig { default_ttl: Duration::from_millis(50), ..old.clone() };
    let report = reload(&runtime, "cache", Cache::new(new), Cache::new(old)).await;
    assert_eq!(report.applied, ["cache"], "{report:?}");
    cache.set("short", &2, None).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(cache.get::<u32>("short").await, None, "set after the reload: the new TTL");
    assert_eq!(cache.get::<u32>("kept").await, Some(1), "set before: the TTL it was set with");
    assert!(nothing_stopped(&runtime));
    assert!(runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_turns_metrics_push_on_without_a_restart() {
    let gateway = Pushgateway::start();
    let old = MetricsConfig::default();
    let (runtime, http, _admin, _) =
        build_with_metrics(Metrics::new(old.clone()), http_config(), admin_config(), Default::default());
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    assert!(http.serving().await);
    let push = PushConfig {
        url: gateway.url.clone(),
        interval: Duration::from_millis(50),
        job: "reload".into(),
        instance: "one".into(),
        ..PushConfig::default()
    };
    let new = MetricsConfig { push, ..old.clone() };
    let report = reload(&runtime, "metrics", Metrics::new(new), Metrics::new(old)).await;
    assert_eq!(report.applied, ["metrics"], "{report:?}");
    let pushed = async {
        loop {
            let text = client().get(gateway.metrics_url()).send().await.unwrap().text().await.unwrap();
            if series_value(&text, "push_time_seconds", &[r#"job="reload""#]).is_some() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), pushed).await.expect("pushes began after the reload");
    assert!(nothing_stopped(&runtime), "no restart of metrics nor of its dependents");
    assert!(runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_fails_undoes_the_ones_applied_before_it() {
    let server = DevDatabase::start().await.expect("a throwaway postgres");
    let old_db = DatabaseConfig {
        url: Secret::new(server.url()),
        migrations: String::new(),
        pool_size: 2,
        ..DatabaseConfig::default()
    };
    let old_http = http_config();
    let database = Arc::new(Database::new(old_db.clone()));
    let http = Arc::new(HttpServer::new(old_http.clone()));
    let runtime = Runtime::builder()
        .component(Metrics::default())
        .component_arc(database.clone())
        .component_arc(http.clone())
        .build()
        .unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    assert!(http.serving().await);
    let addr = http.local_addr().unwrap();
    // Taken by someone else: the new server cannot bind it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let new_http = HttpConfig { bind: taken.local_addr().unwrap().to_string(), ..old_http.clone() };
    let new_db = DatabaseConfig { pool_size: 9, ..old_db.clone() };
    let report = runtime
        .reload(vec![
            ReloadChange::new("database", Arc::new(Database::new(new_db)), Arc::new(Database::new(old_db))),
            ReloadChange::new("http", Arc::new(HttpServer::new(new_http)), Arc::new(HttpServer::new(old_http))),
        ])
        .await;
    assert_eq!(report.rolled_back, ["database"], "{report:?}");
    assert!(report.failed[0].contains("http") && report.failed[0].contains("in use"), "{report:?}");
    assert_eq!(database.pool().unwrap().status().max_size, 2, "the pool is back to its old size");
    assert_eq!(http.local_addr(), Some(addr), "the server stayed where it was");
    assert_eq!(client().get(format!("http://{addr}/")).send().await.unwrap().status(), 404, "and serves");
    assert!(runtime.timeline().of_kind(EventKind::Reloaded).is_empty(), "no reload took");
    assert!(nothing_stopped(&runtime));
    drop(taken);
    assert!(runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_of_another_http_key_keeps_the_clients_rate_limit_buckets() {
    use orderly_components::http::{ClientKeyKind, RateLimitConfig, RateLimitGroup};
    let group = RateLimitGroup {
        prefix: "/hello".into(),
        requests: 2,
        per: Duration::from_secs(3600),
        burst: Some(2),
        key: ClientKeyKind::default(),
    };
    let rate_limit = RateLimitConfig { groups: [("hello".to_string(), group)].into(), ..RateLimitConfig::default() };
    let old = HttpConfig { rate_limit, ..http_config() };
    let svc = start_with(old.clone(), admin_config(), Default::default()).await;
    let hello = format!("{}/hello", svc.base);
    let statuses = |n: usize| {
        let hello = hello.clone();
        async move {
            let mut seen = Vec::new();
            for _ in 0..n {
                seen.push(client().get(&hello).send().await.unwrap().status().as_u16());
            }
            seen
        }
    };
    assert_eq!(statuses(3).await, [200, 200, 429], "the burst of 2, then limited");
    let new = HttpConfig { request_timeout: Duration::from_secs(7), ..old.clone() };
    let report = reload(&svc.runtime, "http", HttpServer::new(new), HttpServer::new(old)).await;
    assert_eq!(report.applied, ["http"], "{report:?}");
    assert_eq!(statuses(1).await, [429], "the bucket survived a reload of the request timeout");
    assert!(svc.runtime.shutdown(reason()).await.is_clean());
}
