//! One log line per request: method, route template, status, duration and
//! request id. With the JSON log format, that is one JSON object per line.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::HttpMessage;

use super::{route_template, status_of};
use crate::http::RequestId;

pub(crate) async fn access_log<B: MessageBody>(
    logger: slog::Logger,
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    let route = route_template(&req);
    let id = req.extensions().get::<RequestId>().cloned();
    let response = next.call(req).await;
    slog::info!(logger, "request";
        "method" => method.as_str(),
        "route" => route,
        "status" => status_of(&response).as_u16(),
        "duration_ms" => started.elapsed().as_secs_f64() * 1e3,
        "request_id" => id.as_ref().map_or("", |id| id.as_str()),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::middleware::request_id::request_id;
    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, HttpResponse};
    use std::sync::{Arc, Mutex};

    /// Captures JSON lines as the production logger would write them.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[actix_web::test]
    async fn logs_one_json_line_with_the_route_template() {
        let lines = Lines::default();
        let drain = std::sync::Mutex::new(slog_json::Json::default(lines.clone()));
        let logger = slog::Logger::root(slog::Fuse(drain), slog::o!());
        let app = test::init_service(
            App::new()
                .wrap(from_fn(move |req, next| access_log(logger.clone(), req, next)))
                .wrap(from_fn(request_id))
                .route("/users/{id}", web::get().to(HttpResponse::Ok)),
        )
        .await;
        let req = test::TestRequest::get().uri("/users/42").insert_header(("x-request-id", "r1")).to_request();
        test::call_service(&app, req).await;
        let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        let mut records = text.lines();
        let record: serde_json::Value = serde_json::from_str(records.next().unwrap()).unwrap();
        assert!(records.next().is_none(), "exactly one line: {text}");
        assert_eq!(record["route"], "/users/{id}");
        assert_eq!(record["method"], "GET");
        assert_eq!(record["status"], 200);
        assert_eq!(record["request_id"], "r1");
        assert!(record["duration_ms"].as_f64().unwrap() >= 0.0);
    }
}
