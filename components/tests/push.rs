//! The metrics flusher against a real Prometheus Pushgateway started by the
//! test on a free loopback port.

mod support;

use std::time::{Duration, Instant};

use orderly::{settings::ShutdownSettings, Runtime};
use orderly_components::metrics::{Metrics, MetricsConfig, PushConfig};
use orderly_test_services::{series_value, Pushgateway};
use support::*;

async fn scrape(gateway: &Pushgateway) -> String {
    client().get(gateway.metrics_url()).send().await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_push_carries_the_last_counts() {
    let gateway = Pushgateway::start();
    let push = PushConfig {
        url: gateway.url.clone(),
        interval: Duration::from_secs(3600),
        job: "push-test".into(),
        instance: "one".into(),
        ..PushConfig::default()
    };
    let (runtime, http, _admin, _) = build_with_metrics(
        Metrics::new(MetricsConfig { push, ..MetricsConfig::default() }),
        http_config(),
        admin_config(),
        ShutdownSettings::default(),
    );
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    assert!(http.serving().await);
    let base = format!("http://{}", http.local_addr().unwrap());
    for _ in 0..7 {
        assert_eq!(client().get(format!("{base}/hello")).send().await.unwrap().status(), 200);
    }
    assert!(
        scrape(&gateway).await.lines().all(|l| !l.starts_with("http_requests_total")),
        "nothing pushed before the end (interval 1 h)"
    );
    assert!(runtime.shutdown(reason()).await.is_clean());

    let text = scrape(&gateway).await;
    let labels = [r#"job="push-test""#, r#"instance="one""#, r#"route="/hello""#, r#"status="200""#];
    assert_eq!(series_value(&text, "http_requests_total", &labels), Some(7.0), "{text}");
    assert!(
        series_value(&text, "push_time_seconds", &[r#"job="push-test""#, r#"instance="one""#]).is_some_and(|t| t > 0.0),
        "{text}"
    );
    assert!(
        series_value(&text, "orderly_component_stop_seconds_count", &[r#"component="http""#, r#"phase="drain""#])
            .is_some(),
        "lifecycle metrics of the drain are in the final push"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_is_down_is_logged_and_counted_never_fatal() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let push = PushConfig {
        url: format!("http://127.0.0.1:{port}"),
        interval: Duration::from_millis(50),
        attempts: 1,
        ..PushConfig::default()
    };
    let metrics = std::sync::Arc::new(Metrics::new(MetricsConfig { push, ..MetricsConfig::default() }));
    let runtime = Runtime::builder().component_arc(metrics.clone()).build().unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = metrics.render().unwrap();
        if series_value(&text, "orderly_metrics_pushes_total", &[r#"result="error""#]).unwrap_or(0.0) >= 2.0 {
            break;
        }
        assert!(Instant::now() < deadline, "failed pushes are counted: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = runtime.shutdown(reason()).await;
    assert!(report.is_clean(), "a failed final push does not fail the shutdown: {report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_pushes_on_its_interval_while_running() {
    let gateway = Pushgateway::start();
    let push = PushConfig {
        url: gateway.url.clone(),
        interval: Duration::from_millis(50),
        job: "periodic".into(),
        ..PushConfig::default()
    };
    let metrics = std::sync::Arc::new(Metrics::new(MetricsConfig { push, ..MetricsConfig::default() }));
    let runtime = Runtime::builder().component_arc(metrics.clone()).build().unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !scrape(&gateway).await.contains(r#"job="periodic""#) {
        assert!(Instant::now() < deadline, "no periodic push arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(runtime.shutdown(reason()).await.is_clean());
}
