//! `http_requests_total{method,route,status}` and
//! `http_request_duration_seconds{method,route}`, labelled by route
//! template (`/users/{id}`), never by raw path, so cardinality is bounded.

use std::time::Duration;

use actix_web::http::{Method, StatusCode};
use std::cell::RefCell;
use std::collections::HashMap;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::metrics::{register, MetricsError};

/// The server's metrics, registered on the runtime's registry.
#[derive(Clone)]
pub(crate) struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
    pub(crate) cut_off: IntCounter,
    rate_limited: IntCounterVec,
}

impl HttpMetrics {
    pub(crate) fn register(registry: &Registry) -> Result<Self, MetricsError> {
        Ok(Self {
            requests: register(
                registry,
                "http_requests_total",
                IntCounterVec::new(
                    Opts::new("http_requests_total", "HTTP requests answered, by method, route template and status."),
                    &["method", "route", "status"],
                ),
            )?,
            duration: register(
                registry,
                "http_request_duration_seconds",
                HistogramVec::new(
                    HistogramOpts::new(
                        "http_request_duration_seconds",
                        "Time to the response head, by method and route template.",
                    )
                    .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
                    &["method", "route"],
                ),
            )?,
            in_flight: register(
                registry,
                "http_requests_in_flight",
                IntGauge::new("http_requests_in_flight", "HTTP requests being served."),
            )?,
            cut_off: register(
                registry,
                "http_requests_cut_off_total",
                IntCounter::new(
                    "http_requests_cut_off_total",
                    "Requests still running when the drain's budget ran out, answered 503.",
                ),
            )?,
            rate_limited: register(
                registry,
                "http_rate_limited_total",
                IntCounterVec::new(
                    Opts::new(
                        "http_rate_limited_total",
                        "Requests answered 429 because their client was over its rate limit, by route template.",
                    ),
                    &["route"],
                ),
            )?,
        })
    }

    /// Counts a request answered 429 by the rate limits.
    pub(crate) fn rate_limited(&self, route: &str) {
        self.rate_limited.with_label_values(&[route]).inc();
    }
}

/// Methods outside the standard set share one label value.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// One worker's handles to the labelled series it has used, so a request
/// costs one local lookup instead of two lookups in the shared vectors.
/// Bounded: label values are bounded, and past the cap it just stops caching.
#[derive(Default)]
pub(crate) struct LocalSeries {
    series: RefCell<HashMap<SeriesKey, (IntCounter, Histogram)>>,
}

/// Method label, route template, status.
type SeriesKey = (&'static str, String, u16);

const LOCAL_SERIES_CAP: usize = 4096;

struct InFlight(IntGauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl HttpMetrics {
    /// Counts a request as in flight until the guard is dropped.
    pub(crate) fn in_flight(&self) -> impl Drop {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Records one answered request, through a worker's cache of series:
    /// looking a series up by its labels costs a hash and a lock per request.
    pub(crate) fn observe(
        &self,
        local: &LocalSeries,
        method: &Method,
        route: String,
        status: StatusCode,
        took: Duration,
    ) {
        let method = method_label(method);
        let key = (method, route, status.as_u16());
        let mut series = local.series.borrow_mut();
        if let Some((requests, duration)) = series.get(&key) {
            duration.observe(took.as_secs_f64());
            requests.inc();
            return;
        }
        let duration = self.duration.with_label_values(&[method, &key.1]);
        let requests = self.requests.with_label_values(&[method, &key.1, status.as_str()]);
        duration.observe(took.as_secs_f64());
        requests.inc();
        if series.len() < LOCAL_SERIES_CAP {
            series.insert(key, (requests, duration));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::middleware::test_support::shipped;
    use actix_web::{test, web, HttpResponse};

    #[actix_web::test]
    async fn labels_use_the_route_template() {
        let registry = Registry::new();
        let mut stack = shipped(|cfg| {
            cfg.route("/users/{id}", web::get().to(HttpResponse::Ok));
        });
        stack.metrics = HttpMetrics::register(&registry).unwrap();
        let app = test::init_service(stack.app()).await;
        for path in ["/users/1", "/users/2", "/nope"] {
            test::call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        }
        let text = crate::metrics::render(&registry).unwrap();
        assert!(text.contains(r#"http_requests_total{method="GET",route="/users/{id}",status="200"} 2"#), "{text}");
        assert!(text.contains(r#"http_requests_total{method="GET",route="unmatched",status="404"} 1"#), "{text}");
        assert!(text.contains(r#"http_request_duration_seconds_count{method="GET",route="/users/{id}"} 2"#), "{text}");
        assert!(!text.contains("/users/1"), "raw paths never become labels");
        assert!(text.contains("http_requests_in_flight 0"), "{text}");
    }

    async fn boom() -> HttpResponse {
        panic!("handler panicked")
    }

    #[actix_web::test]
    async fn requests_that_end_in_an_error_keep_their_route_template() {
        let registry = Registry::new();
        let mut stack = shipped(|cfg| {
            cfg.route("/slow/{id}", web::get().to(std::future::pending::<HttpResponse>));
            cfg.route("/boom/{id}", web::get().to(boom));
        });
        stack.metrics = HttpMetrics::register(&registry).unwrap();
        stack.live.update(|settings| settings.request_timeout = Duration::from_millis(20));
        let app = test::init_service(stack.app()).await;
        // The first request a worker sees ends in an error: the route still has a name.
        for path in ["/slow/1", "/boom/2", "/slow/3"] {
            let _ = test::try_call_service(&app, test::TestRequest::get().uri(path).to_request()).await;
        }
        let text = crate::metrics::render(&registry).unwrap();
        assert!(text.contains(r#"http_requests_total{method="GET",route="/slow/{id}",status="504"} 2"#), "{text}");
        assert!(text.contains(r#"http_requests_total{method="GET",route="/boom/{id}",status="500"} 1"#), "{text}");
        assert!(!text.contains("unmatched"), "{text}");
    }

    #[core::prelude::v1::test]
    fn the_cached_and_the_first_lookup_record_the_same_series() {
        let registry = Registry::new();
        let metrics = HttpMetrics::register(&registry).unwrap();
        let local = LocalSeries::default();
        for _ in 0..3 {
            metrics.observe(&local, &Method::GET, "/a/{id}".into(), StatusCode::OK, Duration::from_millis(1));
        }
        // Another worker's first request for the series goes through the lookup.
        metrics.observe(
            &LocalSeries::default(),
            &Method::GET,
            "/a/{id}".into(),
            StatusCode::OK,
            Duration::from_millis(1),
        );
        let text = crate::metrics::render(&registry).unwrap();
        assert!(text.contains(r#"http_requests_total{method="GET",route="/a/{id}",status="200"} 4"#), "{text}");
        assert!(text.contains(r#"http_request_duration_seconds_count{method="GET",route="/a/{id}"} 4"#), "{text}");
    }
}
