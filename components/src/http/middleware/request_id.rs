//! `X-Request-ID`: taken from the client when it is a sane token, generated
//! otherwise, echoed in the response, and kept in the request's extensions
//! for logs ([`RequestContext`](crate::http::RequestContext)).

use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::HttpMessage;

use super::ErrorWithHeaders;
use crate::http::RequestId;

/// The header's name.
pub(crate) const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// A client's id is reused only if it is short and plain: it ends up in logs.
fn acceptable(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
}

/// 128 random bits as 32 lowercase hex digits (by hand: `format!` costs
/// more than the rest of this module together, per request).
fn generate() -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bits = fastrand::u128(..);
    let mut digits = [0u8; 32];
    for digit in digits.iter_mut().rev() {
        *digit = HEX[(bits & 0xf) as usize];
        bits >>= 4;
    }
    HeaderValue::from_bytes(&digits).unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// Gives the request its id, kept in its extensions, and returns it.
pub(crate) fn assign(req: &ServiceRequest) -> RequestId {
    let id = req.headers().get(&HEADER).filter(|v| v.to_str().is_ok_and(acceptable)).cloned().unwrap_or_else(generate);
    req.extensions_mut().insert(RequestId(id.clone()));
    RequestId(id)
}

/// Puts the id on the response, or on the error actix will render.
pub(crate) fn echo<B>(
    result: Result<ServiceResponse<B>, actix_web::Error>,
    id: RequestId,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    match result {
        Ok(mut response) => {
            response.headers_mut().insert(HEADER, id.0);
            Ok(response)
        }
        Err(error) => Err(ErrorWithHeaders::add(error, [(HEADER, id.0)])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::middleware::test_support::shipped;
    use actix_web::{test, web, HttpResponse};

    async fn echo(req: actix_web::HttpRequest) -> HttpResponse {
        let id = req.extensions().get::<RequestId>().map(|id| id.as_str().to_owned()).unwrap_or_default();
        HttpResponse::Ok().body(id)
    }

    #[actix_web::test]
    async fn keeps_a_valid_client_id_and_echoes_it() {
        let app = test::init_service(
            shipped(|cfg| {
                cfg.route("/", web::get().to(echo));
            })
            .app(),
        )
        .await;
        let req = test::TestRequest::get().uri("/").insert_header(("x-request-id", "abc-123")).to_request();
        let res = test::call_service(&app, req).await;
        assert_eq!(res.headers().get("x-request-id").unwrap(), "abc-123");
        assert_eq!(test::read_body(res).await, "abc-123");
    }

    #[actix_web::test]
    async fn replaces_a_missing_or_unsafe_id() {
        let app = test::init_service(
            shipped(|cfg| {
                cfg.route("/", web::get().to(echo));
            })
            .app(),
        )
        .await;
        for header in [None, Some("has spaces\tand tabs"), Some(&*"x".repeat(200))] {
            let mut req = test::TestRequest::get().uri("/");
            if let Some(h) = header {
                req = req.insert_header(("x-request-id", h));
            }
            let res = test::call_service(&app, req.to_request()).await;
            let echoed = res.headers().get("x-request-id").unwrap().to_str().unwrap().to_owned();
            assert_eq!(echoed.len(), 32, "generated: {echoed}");
            assert_eq!(test::read_body(res).await, echoed.as_bytes());
        }
    }
}
