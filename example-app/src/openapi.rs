//! The OpenAPI 3 document of the orders API, generated from the handlers'
//! annotations and the model's types (utoipa), served at
//! `GET /api/v1/openapi.json`. It is public, unlike the rest of `/api/v1`:
//! a client needs it to learn how to authenticate.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::orders::model::{ErrorBody, ErrorDetail, FieldError, NewItem, NewOrder, Order, OrderPage, OrderStatus};
use crate::orders::routes;

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "example-app orders API", description = "Orders with idempotent creates, cursor pages and durable confirmations."),
    paths(routes::create_order, routes::get_order, routes::list_orders),
    components(schemas(NewOrder, NewItem, Order, OrderStatus, OrderPage, ErrorBody, ErrorDetail, FieldError)),
    modifiers(&BearerKey),
    tags((name = "orders", description = "Create and read orders")),
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key from api.key or api.key_file"))
                    .build(),
            ),
        );
    }
}

/// The document as JSON text, built once.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DOCUMENT.get_or_init(|| ApiDoc::openapi().to_pretty_json().unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_every_route_with_its_security() {
        let doc: serde_json::Value = serde_json::from_str(document()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths["/api/v1/orders"]["post"]["responses"]["201"].is_object());
        assert!(paths["/api/v1/orders"]["get"]["parameters"].as_array().unwrap().len() == 2);
        assert!(paths["/api/v1/orders/{id}"]["get"]["responses"]["404"].is_object());
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
        assert!(doc["components"]["schemas"]["NewOrder"]["properties"]["items"].is_object());
    }
}
