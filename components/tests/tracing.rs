//! Traces reach a real OTLP/HTTP receiver, including the span of a request
//! served during the drain, and the lifecycle phases.

mod support;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use orderly::{settings::ShutdownSettings, Runtime};
use orderly_components::admin::Admin;
use orderly_components::http::{HttpConfig, HttpServer};
use orderly_components::metrics::Metrics;
use orderly_components::tracing::{Tracing, TracingConfig};
use parking_lot::Mutex;
use prost::Message;
use support::*;

/// An OTLP/HTTP receiver: accepts `POST /v1/traces` (protobuf) and keeps
/// every span it decodes, with its service name.
struct Receiver {
    spans: Arc<Mutex<Vec<(String, Span)>>>,
    url: String,
    _server: actix_web::dev::ServerHandle,
}

async fn receive(body: web::Bytes, spans: web::Data<Mutex<Vec<(String, Span)>>>) -> HttpResponse {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else {
        return HttpResponse::BadRequest().finish();
    };
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| r.attributes.iter())
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            spans.lock().extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
        }
    }
    HttpResponse::Ok().content_type("application/x-protobuf").body(Vec::<u8>::new())
}

fn start_receiver() -> Receiver {
    let spans: Arc<Mutex<Vec<(String, Span)>>> = Arc::default();
    let data = web::Data::from(spans.clone());
    let server = actix_web::HttpServer::new(move || {
        actix_web::App::new().app_data(data.clone()).route("/v1/traces", web::post().to(receive))
    })
    .workers(1)
    .disable_signals()
    .bind("127.0.0.1:0")
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    tokio::spawn(server);
    Receiver { spans, url: format!("http://{addr}/v1/traces"), _server: handle }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_of_requests_served_during_the_drain_are_exported() {
    let receiver = start_receiver();
    let tracing =
        TracingConfig { endpoint: receiver.url.clone(), service_name: "drain-test".into(), ..TracingConfig::default() };
    let http = Arc::new(HttpServer::new(http_config()));
    let admin = Arc::new(Admin::new(admin_config()));
    let accepted = Arc::new(Accepted::default());
    let runtime = Runtime::builder()
        .component(Metrics::default())
        .component(Tracing::new(tracing))
        .component_arc(http.clone())
        .component_arc(admin)
        .component(TestRoutes { accepted: accepted.clone() })
        .shutdown_settings(ShutdownSettings::default())
        .build()
        .unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    assert!(http.serving().await);
    let base = format!("http://{}", http.local_addr().unwrap());

    // A request that is still running when the shutdown begins, continuing a caller's trace.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let in_flight = tokio::spawn(
        fresh_connection_client()
            .get(format!("{base}/slow?ms=300"))
            .header("traceparent", format!("00-{caller_trace}-00f067aa0ba902b7-01"))
            .send(),
    );
    while accepted.count() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = runtime.shutdown(reason()).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(in_flight.await.unwrap().unwrap().status(), 200);

    let spans = receiver.spans.lock();
    let names: Vec<&str> = spans.iter().map(|(_, s)| s.name.as_str()).collect();
    let request =
        spans.iter().find(|(_, s)| s.name == "GET /slow").unwrap_or_else(|| panic!("request span missing: {names:?}"));
    assert!(request.0.contains("drain-test"), "service name: {}", request.0);
    assert_eq!(hex(&request.1.trace_id), caller_trace, "the caller's trace continues");
    assert_eq!(hex(&request.1.parent_span_id), "00f067aa0ba902b7");
    let status =
        request.1.attributes.iter().find(|kv| kv.key == "http.response.status_code").expect("status attribute");
    assert!(format!("{:?}", status.value).contains("200"), "{status:?}");
    // Named and given its route when it ended, after routing.
    let route = request.1.attributes.iter().find(|kv| kv.key == "http.route").expect("route attribute");
    assert!(format!("{:?}", route.value).contains("\"/slow\""), "{route:?}");
    for lifecycle in ["startup", "start http", "shutdown", "phase stop_accepting", "phase drain", "stop http"] {
        assert!(names.contains(&lifecycle), "lifecycle span {lifecycle} missing: {names:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_tracing_is_off() {
    let tracing = Arc::new(Tracing::new(TracingConfig::default()));
    let runtime = Runtime::builder().component_arc(tracing.clone()).build().unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    assert!(!tracing.is_exporting());
    assert!(runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_and_a_new_endpoint_export_every_finished_requests_span_once() {
    let (first, second) = (start_receiver(), start_receiver());
    let old =
        TracingConfig { endpoint: first.url.clone(), service_name: "restarts".into(), ..TracingConfig::default() };
    let http_settings =
        HttpConfig { bind: format!("127.0.0.1:{}", orderly_test_services::free_port()), ..http_config() };
    let http = Arc::new(HttpServer::new(http_settings.clone()));
    let accepted = Arc::new(Accepted::default());
    let runtime = Runtime::builder()
        .component(Metrics::default())
        .component(Tracing::new(old.clone()))
        .component_arc(http.clone())
        .component(TestRoutes { accepted: accepted.clone() })
        .build()
        .unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    assert!(http.serving().await);
    let url = format!("http://{}/slow?ms=2", http_settings.bind);
    let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ask = |n: usize| {
        let (url, answered) = (url.clone(), answered.clone());
        async move {
            let client = fresh_connection_client();
            for _ in 0..n {
                if client.get(&url).send().await.is_ok_and(|r| r.status() == 200) {
                    answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
    };
    for _ in 0..3 {
        ask(10).await;
        // Tracing restarts with the server, which depends on it.
        runtime.restart("tracing", "a test").await.unwrap();
    }
    ask(10).await;
    let new = TracingConfig { endpoint: second.url.clone(), ..old.clone() };
    let change =
        orderly::runtime::ReloadChange::new("tracing", Arc::new(Tracing::new(new)), Arc::new(Tracing::new(old)));
    assert_eq!(runtime.reload(vec![change]).await.applied, ["tracing"]);
    ask(10).await;
    assert!(runtime.shutdown(reason()).await.is_clean());

    let requests = |receiver: &Receiver| receiver.spans.lock().iter().filter(|(_, s)| s.name == "GET /slow").count();
    let answered = answered.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(answered, 50, "no request failed between restarts");
    assert_eq!(requests(&first), 40, "every span before the reload, once, at the first endpoint");
    assert_eq!(requests(&second), 10, "every span after it at the new one");
    let ids: std::collections::HashSet<Vec<u8>> = first
        .spans
        .lock()
        .iter()
        .chain(second.spans.lock().iter())
        .filter(|(_, s)| s.name == "GET /slow")
        .map(|(_, s)| s.span_id.clone())
        .collect();
    assert_eq!(ids.len(), 50, "no span exported twice");
}
