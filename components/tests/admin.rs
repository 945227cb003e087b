//! The management server: probes from the first moment of startup to the
//! last of the drain, metrics names and labels, and debug endpoints.

mod support;

use std::sync::Arc;

use orderly::{settings::ShutdownSettings, BoxError, Component, Runtime, StartContext};
use orderly_components::admin::{Admin, AdminConfig};
use orderly_components::metrics::Metrics;
use support::*;
use tokio::sync::Notify;

/// Starts only when the test says so.
struct Gate(Arc<Notify>);

#[orderly::component]
impl Component for Gate {
    async fn start(&self, _: &StartContext) -> Result<(), BoxError> {
        self.0.notified().await;
        Ok(())
    }
}

async fn status(url: String) -> u16 {
    client().get(url).send().await.expect("admin answers").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_while_the_app_is_still_starting() {
    let gate = Arc::new(Notify::new());
    let admin = Arc::new(Admin::new(admin_config()));
    let runtime = Arc::new(
        Runtime::builder()
            .component(Metrics::default())
            .component_arc(admin.clone())
            .component(Gate(gate.clone()))
            .build()
            .unwrap(),
    );
    let starting = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.start().await.is_ok() }
    });
    let addr = loop {
        if let Some(addr) = admin.local_addr() {
            break addr;
        }
        tokio::task::yield_now().await;
    };
    let base = format!("http://{addr}");
    assert_eq!(status(format!("{base}/healthz")).await, 200);
    assert_eq!(status(format!("{base}/startupz")).await, 503);
    assert_eq!(status(format!("{base}/readyz")).await, 503);
    gate.notify_one();
    assert!(starting.await.unwrap());
    assert_eq!(status(format!("{base}/startupz")).await, 200);
    assert_eq!(status(format!("{base}/readyz")).await, 200);
    assert!(runtime.shutdown(reason()).await.is_clean());
}

/// Alive until told otherwise.
struct Heart(Arc<std::sync::atomic::AtomicBool>);

#[orderly::component]
impl Component for Heart {
    async fn live(&self) -> Result<(), BoxError> {
        match self.0.load(std::sync::atomic::Ordering::SeqCst) {
            true => Ok(()),
            false => Err("its loop stopped making progress".into()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_503_naming_a_component_that_is_not_alive() {
    let beating = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let admin = Arc::new(Admin::new(admin_config()));
    let runtime = Runtime::builder()
        .component(Metrics::default())
        .component_arc(admin.clone())
        .component(Heart(beating.clone()))
        .build()
        .unwrap();
    runtime.start().await.unwrap();
    let url = format!("http://{}/healthz", admin.local_addr().unwrap());
    assert_eq!(status(url.clone()).await, 200);
    beating.store(false, std::sync::atomic::Ordering::SeqCst);
    let res = client().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["status"], "dead");
    assert_eq!(body["dead"]["heart"], "its loop stopped making progress", "{body}");
    // Not ready is not dead: readiness is its own question.
    assert_eq!(status(url.replace("healthz", "readyz")).await, 200);
    assert!(runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_lists_every_component() {
    let svc = start().await;
    let res = client().get(format!("{}/readyz", svc.admin_base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["ready"], true);
    assert_eq!(body["state"], "running");
    for component in ["admin", "http", "metrics", "test_routes"] {
        assert_eq!(body["components"][component]["state"], "ready", "{component}: {body}");
    }
    assert!(svc.runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_use_route_templates_and_include_lifecycle_and_process_metrics() {
    let svc = start().await;
    let client = client();
    for path in ["/users/1", "/users/2", "/users/3", "/nope/123"] {
        client.get(format!("{}{path}", svc.base)).send().await.unwrap();
    }
    let res = client.get(format!("{}/metrics", svc.admin_base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let text = res.text().await.unwrap();
    for expected in [
        r#"http_requests_total{method="GET",route="/users/{id}",status="200"} 3"#,
        r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        r#"http_request_duration_seconds_bucket{method="GET",route="/users/{id}",le="0.005"}"#,
        r#"http_request_duration_seconds_count{method="GET",route="/users/{id}"} 3"#,
        "http_requests_in_flight 0",
        r#"orderly_component_start_seconds_count{component="http"} 1"#,
        "process_resident_memory_bytes",
    ] {
        assert!(text.contains(expected), "missing {expected}\n{text}");
    }
    assert!(!text.contains("/users/1") && !text.contains("/nope/123"), "raw paths never become labels");
    assert!(svc.runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_endpoints_are_off_by_default_and_loopback_only_when_on() {
    let svc = start().await;
    assert_eq!(status(format!("{}/debug/lifecycle", svc.admin_base)).await, 404);
    assert!(svc.runtime.shutdown(reason()).await.is_clean());

    let admin = AdminConfig { debug: true, ..admin_config() };
    let svc = start_with(http_config(), admin, ShutdownSettings::default()).await;
    let body: serde_json::Value =
        client().get(format!("{}/debug/lifecycle", svc.admin_base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["state"], "running");
    assert!(body["timeline"].as_array().is_some_and(|t| t.iter().any(|e| e["event"] == "ready")), "{body}");
    assert!(body["graph"]["mermaid"].as_str().unwrap().contains("test_routes"), "{body}");
    assert!(svc.runtime.shutdown(reason()).await.is_clean());
}

#[test]
fn debug_remote_without_debug_is_a_config_error() {
    let config = AdminConfig { debug_remote: true, ..AdminConfig::default() };
    let mut v = orderly::config::Validation::default();
    orderly::config::Validate::validate(&config, &mut v);
    assert!(format!("{v:?}").contains("debug_remote"));
}
