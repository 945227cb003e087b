//! Conservative security headers on every response, unless the handler set
//! its own value.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

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

#[cfg(test)]
mod tests {
    use crate::http::middleware::test_support::shipped;
    use actix_web::{test, web, HttpResponse};

    #[actix_web::test]
    async fn adds_headers_without_overriding_the_handlers() {
        let app = test::init_service(
            shipped(|cfg| {
                cfg.route(
                    "/",
                    web::get()
                        .to(|| async { HttpResponse::Ok().insert_header(("x-frame-options", "SAMEORIGIN")).finish() }),
                );
            })
            .app(),
        )
        .await;
        let res = test::call_service(&app, test::TestRequest::get().uri("/").to_request()).await;
        assert_eq!(res.headers().get("x-content-type-options").unwrap(), "nosniff");
        assert_eq!(res.headers().get("x-frame-options").unwrap(), "SAMEORIGIN");
        assert!(res.headers().contains_key("content-security-policy"));
    }
}
