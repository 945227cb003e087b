//! The limits driven through the stack the server ships.

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderMap;
use actix_web::http::StatusCode;
use actix_web::{test, web, HttpResponse};

use super::*;
use crate::http::middleware::test_support::shipped;
use crate::http::rate_limit_config::RateLimitGroup;

fn group(prefix: &str, requests: u32, per: Duration, burst: u32, key: ClientKeyKind) -> RateLimitGroup {
    RateLimitGroup { prefix: prefix.into(), requests, per, burst: Some(burst), key }
}

/// `/api/v1/*` limited to 3 at once and 1 a minute (so nothing comes back
/// during a test), `/health` not limited.
fn config(trusted_proxies: &[&str]) -> RateLimitConfig {
    let mut config = RateLimitConfig {
        trusted_proxies: trusted_proxies.iter().map(|p| p.to_string()).collect(),
        ..RateLimitConfig::default()
    };
    config.groups.insert("api".into(), group("/api/v1", 1, Duration::from_secs(60), 3, ClientKeyKind::Bearer));
    config
}

/// The shipped stack with `config`'s limits and its own registry.
fn stack(config: &RateLimitConfig) -> (crate::http::app_template::AppTemplate, prometheus::Registry) {
    let mut stack = shipped(|cfg| {
        cfg.route("/api/v1/orders/{id}", web::get().to(|| async { HttpResponse::Ok().body("order") }));
        cfg.route("/health", web::get().to(|| async { HttpResponse::Ok().finish() }));
    });
    let registry = prometheus::Registry::new();
    stack.metrics = crate::http::middleware::metrics::HttpMetrics::register(&registry).unwrap();
    stack.live.update(|settings| settings.rate_limits = RateLimits::from_config(config));
    (stack, registry)
}

fn from(peer: &str, path: &str) -> test::TestRequest {
    test::TestRequest::get().uri(path).peer_addr(peer.parse::<SocketAddr>().unwrap())
}

/// Status, headers and body as the client would see them.
async fn call<S, B, R>(app: &S, req: R) -> (StatusCode, HeaderMap, String)
where
    S: Service<R, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: actix_web::body::MessageBody + 'static,
{
    let response = match app.call(req).await {
        Ok(response) => response.into_parts().1.map_into_boxed_body(),
        Err(error) => error.error_response(),
    };
    let (status, headers) = (response.status(), response.headers().clone());
    let body = actix_web::body::to_bytes(response.into_body()).await.unwrap_or_default();
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} in {headers:?}"))
}

#[actix_web::test]
async fn a_noisy_client_gets_429_while_another_is_served() {
    let (stack, registry) = stack(&config(&[]));
    let app = test::init_service(stack.app()).await;
    for left in (0..3).rev() {
        let (status, headers, _) = call(&app, from("198.51.100.1:1000", "/api/v1/orders/1").to_request()).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "ratelimit-policy"), "\"api\";q=3;w=180");
        assert!(header(&headers, "ratelimit").starts_with(&format!("\"api\";r={left};t=")), "{headers:?}");
    }
    let (status, headers, body) = call(&app, from("198.51.100.1:1001", "/api/v1/orders/2").to_request()).await;
    assert_eq!(status, 429);
    let retry_after: u64 = header(&headers, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&headers, "ratelimit"), format!("\"api\";r=0;t={retry_after}"));
    assert_eq!(header(&headers, "ratelimit-policy"), "\"api\";q=3;w=180");
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff", "a 429 is a response like any other");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    // Another client, and another group-less path for the noisy one, are untouched.
    let (status, _, _) = call(&app, from("198.51.100.2:1000", "/api/v1/orders/1").to_request()).await;
    assert_eq!(status, 200);
    let (status, headers, _) = call(&app, from("198.51.100.1:1002", "/health").to_request()).await;
    assert_eq!(status, 200);
    assert!(headers.get("ratelimit").is_none(), "no headers outside a group");

    let text = crate::metrics::render(&registry).unwrap();
    assert!(text.contains("http_rate_limited_total{route=\"/api/v1/orders/{id}\"} 1"), "{text}");
}

#[actix_web::test]
async fn bearer_keys_have_their_own_buckets() {
    let app = test::init_service(stack(&config(&[])).0.app()).await;
    let with_key = |key: &str| {
        from("198.51.100.1:1000", "/api/v1/orders/1").insert_header(("authorization", format!("Bearer {key}")))
    };
    for _ in 0..3 {
        assert_eq!(call(&app, with_key("alice").to_request()).await.0, 200);
    }
    assert_eq!(call(&app, with_key("alice").to_request()).await.0, 429);
    assert_eq!(call(&app, with_key("bob").to_request()).await.0, 200, "same address, another key");
}

#[actix_web::test]
async fn forwarded_for_counts_only_from_a_trusted_proxy() {
    // Untrusted peer: every made-up X-Forwarded-For is the same client (the peer).
    let app = test::init_service(stack(&config(&[])).0.app()).await;
    for n in 0..3 {
        let req =
            from("198.51.100.1:1000", "/api/v1/orders/1").insert_header(("x-forwarded-for", format!("10.9.9.{n}")));
        assert_eq!(call(&app, req.to_request()).await.0, 200);
    }
    let req = from("198.51.100.1:1000", "/api/v1/orders/1").insert_header(("x-forwarded-for", "10.9.9.200"));
    assert_eq!(call(&app, req.to_request()).await.0, 429, "a spoofed header does not buy a new bucket");

    // Behind a trusted proxy: the forwarded client is the key.
    let app = test::init_service(stack(&config(&["127.0.0.0/8"])).0.app()).await;
    for _ in 0..3 {
        let req = from("127.0.0.1:4000", "/api/v1/orders/1").insert_header(("x-forwarded-for", "203.0.113.5"));
        assert_eq!(call(&app, req.to_request()).await.0, 200);
    }
    let req = from("127.0.0.1:4000", "/api/v1/orders/1").insert_header(("x-forwarded-for", "203.0.113.5"));
    assert_eq!(call(&app, req.to_request()).await.0, 429);
    let req = from("127.0.0.1:4000", "/api/v1/orders/1").insert_header(("x-forwarded-for", "203.0.113.6"));
    assert_eq!(call(&app, req.to_request()).await.0, 200, "another client behind the same proxy");
}

#[actix_web::test]
async fn memory_stays_bounded_under_100_000_clients() {
    let mut config = config(&[]);
    config.max_clients = 10_000;
    let limits = RateLimits::from_config(&config).unwrap();
    let noisy = || test::TestRequest::get().uri("/api/v1/x").peer_addr("192.0.2.1:1".parse().unwrap()).to_srv_request();
    for _ in 0..3 {
        assert!(matches!(limits.check(&noisy()), Some(Verdict::Allowed(_))));
    }
    for n in 0u32..100_000 {
        let peer = SocketAddr::from((std::net::Ipv4Addr::from(0x0a00_0000 + n), 1));
        let req = test::TestRequest::get().uri("/api/v1/x").peer_addr(peer).to_srv_request();
        assert!(matches!(limits.check(&req), Some(Verdict::Allowed(_))), "client {n} is new");
        if n % 10_000 == 0 {
            assert!(limits.clients() <= 10_000, "{} clients kept", limits.clients());
            assert!(matches!(limits.check(&noisy()), Some(Verdict::Limited(_))), "the noisy client was forgotten");
        }
    }
    assert!(limits.clients() <= 10_000, "{} clients kept", limits.clients());
    assert!(matches!(limits.check(&noisy()), Some(Verdict::Limited(_))), "the noisy client stays limited");
}

#[actix_web::test]
async fn prefixes_match_whole_segments_and_the_longest_wins() {
    assert!(covers("/api/v1", "/api/v1"));
    assert!(covers("/api/v1", "/api/v1/orders"));
    assert!(!covers("/api/v1", "/api/v10"));
    let mut config = config(&[]);
    config.groups.insert("login".into(), group("/api/v1/login/", 1, Duration::from_secs(60), 1, ClientKeyKind::Client));
    let limits = RateLimits::from_config(&config).unwrap();
    let req =
        |path: &str| test::TestRequest::get().uri(path).peer_addr("192.0.2.1:1".parse().unwrap()).to_srv_request();
    assert!(matches!(limits.check(&req("/api/v1/login")), Some(Verdict::Allowed(_))));
    assert!(matches!(limits.check(&req("/api/v1/login")), Some(Verdict::Limited(_))), "login allows 1");
    assert!(matches!(limits.check(&req("/api/v1/orders")), Some(Verdict::Allowed(_))), "api has its own bucket");
    assert!(limits.check(&req("/metrics")).is_none());
    assert!(RateLimits::from_config(&RateLimitConfig::default()).is_none(), "off by default");
}
