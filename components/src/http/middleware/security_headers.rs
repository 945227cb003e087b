//! Conservative security headers on every response, unless the handler set
//! its own value.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;

use super::ErrorWithHeaders;

const HEADERS: [(&str, &str); 4] = [
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("content-security-policy", "default-src 'none'; frame-ancestors 'none'"),
];

/// The headers, as name/value pairs, validated once: `from_static` checks
/// every byte on each call, which showed in per-request profiles.
fn prepared() -> &'static [(HeaderName, HeaderValue)] {
    static PREPARED: std::sync::OnceLock<Vec<(HeaderName, HeaderValue)>> = std::sync::OnceLock::new();
    PREPARED.get_or_init(|| {
        HEADERS
            .into_iter()
            .map(|(name, value)| (HeaderName::from_static(name), HeaderValue::from_static(value)))
            .collect()
    })
}

/// The headers, as name/value pairs.
pub(crate) fn all() -> impl Iterator<Item = (HeaderName, HeaderValue)> {
    prepared().iter().cloned()
}

/// Adds the headers the handler did not set itself.
pub(crate) fn add(headers: &mut HeaderMap) {
    for (name, value) in prepared() {
        if !headers.contains_key(name) {
            headers.insert(name.clone(), value.clone());
        }
    }
}

/// The middleware on its own (the server applies it inside `observe`).
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) async fn security_headers<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    match next.call(req).await {
        Ok(mut response) => {
            add(response.headers_mut());
            Ok(response)
        }
        Err(error) => Err(ErrorWithHeaders::add(error, all())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::middleware::from_fn;
    use actix_web::{test, web, App, HttpResponse};

    #[actix_web::test]
    async fn adds_headers_without_overriding_the_handlers() {
        let app = test::init_service(App::new().wrap(from_fn(security_headers)).route(
            "/",
            web::get().to(|| async { HttpResponse::Ok().insert_header(("x-frame-options", "SAMEORIGIN")).finish() }),
        ))
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(res.headers().get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(res.headers().get("x-frame-options").unwrap(), "SAMEORIGIN");
        assert!(res.headers().contains_key("content-security-policy"));
    }
}
