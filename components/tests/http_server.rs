//! The HTTP server against a real socket: routes from a component, the
//! middleware stack, bad input, limits, and start failures.

mod support;

use std::time::Duration;

use orderly::{events::EventKind, runtime::StartError, settings::ShutdownSettings};
use orderly_components::http::HttpConfig;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_contributed_routes_with_request_id_and_security_headers() {
    let svc = start().await;
    let client = client();
    let res = client.get(format!("{}/hello", svc.base)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["x-request-id"].len(), 32, "generated id echoed");
    assert_eq!(res.text().await.unwrap(), "hello");

    let res = client.get(format!("{}/whoami", svc.base)).header("x-request-id", "trace-me-1").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-me-1");
    assert_eq!(res.text().await.unwrap(), "trace-me-1", "the handler sees the same id");
    assert!(svc.runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_json_4xx_and_never_a_500() {
    let http = HttpConfig { max_body_bytes: 1024, ..http_config() };
    let svc = start_with(http, admin_config(), ShutdownSettings::default()).await;
    let client = client();
    let echo = format!("{}/echo", svc.base);
    let cases: Vec<(&str, reqwest::RequestBuilder, u16)> = vec![
        ("malformed JSON", client.post(&echo).header("content-type", "application/json").body("{\"a\": "), 400),
        ("wrong content type", client.post(&echo).header("content-type", "text/plain").body("{}"), 415),
        (
            "oversized body",
            client.post(&echo).header("content-type", "application/json").body(format!("\"{}\"", "x".repeat(4096))),
            413,
        ),
        ("bad path parameter", client.get(format!("{}/users/not-a-number", svc.base)), 404),
        ("unknown route", client.get(format!("{}/nope", svc.base)), 404),
        ("wrong method", client.delete(format!("{}/hello", svc.base)), 404),
    ];
    for (what, request, expected) in cases {
        let res = request.send().await.unwrap_or_else(|e| panic!("{what}: {e}"));
        let status = res.status().as_u16();
        let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let body: serde_json::Value = res.json().await.unwrap_or_else(|e| panic!("{what}: body is not JSON: {e}"));
        assert!(status == expected || (what == "bad path parameter" && status == 400), "{what}: {status} {body}");
        assert_eq!(content_type.as_deref(), Some("application/json"), "{what}");
        assert_eq!(body["error"]["status"], status, "{what}: {body}");
    }
    // Valid JSON still works after all that.
    let res = client.post(&echo).json(&serde_json::json!({"ok": true})).send().await.unwrap();
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["ok"], true);
    assert!(svc.runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_and_panics_answer_500_without_internals() {
    let svc = start().await;
    let client = client();
    for path in ["/fail", "/panic"] {
        let res = client.get(format!("{}{path}", svc.base)).send().await.unwrap();
        assert_eq!(res.status(), 500, "{path}");
        let text = res.text().await.unwrap();
        assert!(!text.contains("10.1.2.3") && !text.contains("handler bug"), "{path} leaked: {text}");
        assert!(text.contains("internal error"), "{text}");
    }
    // The worker survived the panic.
    assert_eq!(client.get(format!("{}/hello", svc.base)).send().await.unwrap().status(), 200);
    assert!(svc.runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_is_cancelled_with_504() {
    let http = HttpConfig { request_timeout: Duration::from_millis(200), ..http_config() };
    let svc = start_with(http, admin_config(), ShutdownSettings::default()).await;
    let res = client().get(format!("{}/hang", svc.base)).send().await.unwrap();
    assert_eq!(res.status(), 504);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"]["code"], "timeout");
    assert_eq!(svc.http.in_flight(), 0, "the cancelled request is no longer counted");
    assert!(svc.runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_concurrency_limit_requests_get_503_with_retry_after() {
    let http = HttpConfig { max_concurrent_requests: 2, ..http_config() };
    let svc = start_with(http, admin_config(), ShutdownSettings::default()).await;
    let client = client();
    let busy: Vec<_> = (0..2).map(|_| tokio::spawn(client.get(format!("{}/slow?ms=1500", svc.base)).send())).collect();
    while svc.accepted.count() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let res = client.get(format!("{}/hello", svc.base)).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    for request in busy {
        assert_eq!(request.await.unwrap().unwrap().status(), 200, "the admitted requests are unaffected");
    }
    assert_eq!(client.get(format!("{}/hello", svc.base)).send().await.unwrap().status(), 200);
    assert!(svc.runtime.shutdown(reason()).await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_fails_start_and_rolls_back() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let http = HttpConfig { bind: addr.to_string(), ..http_config() };
    let (runtime, _, _, _) = build(http, admin_config(), ShutdownSettings::default());
    let outcome = runtime.start().await.expect_err("the port is taken");
    let StartError::Failed { failure, rollback } = *outcome else { panic!("expected a start failure") };
    assert_eq!(failure.component, "http");
    assert!(failure.error.contains(&addr.to_string()) && failure.error.contains("in use"), "{}", failure.error);
    assert!(rollback.is_clean());
    let rolled_back: Vec<_> =
        runtime.timeline().of_kind(EventKind::RolledBack).into_iter().filter_map(|e| e.component).collect();
    assert!(rolled_back.iter().any(|c| &**c == "metrics"), "what had started is stopped again: {rolled_back:?}");
    assert!(runtime.timeline().position("test_routes", EventKind::Starting, None).is_none(), "dependents never start");
}
