//! What the orders API accepts and answers, and the rules a new order must
//! meet. The request body is checked field by field from raw JSON, so one
//! 400 names every problem at once instead of the first one serde meets.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// The longest customer name, in characters.
pub const MAX_CUSTOMER_CHARS: usize = 200;
/// Items in one order.
pub const MAX_ITEMS: usize = 100;
/// The longest SKU, in characters.
pub const MAX_SKU_CHARS: usize = 32;
/// The largest quantity of one item.
pub const MAX_QUANTITY: i64 = 10_000;
/// The highest unit price, in cents (one million in the currency).
pub const MAX_UNIT_PRICE_CENTS: i64 = 100_000_000;
/// The highest order total, in cents (ten million in the currency): far
/// below `i64::MAX`, so totals never overflow anywhere downstream either.
pub const MAX_TOTAL_CENTS: i64 = 1_000_000_000;

/// A new order, as `POST /api/v1/orders` takes it.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// Who ordered: 1 to 200 characters, no control characters.
    #[schema(min_length = 1, max_length = 200, example = "ada@example.com")]
    pub customer: String,
    /// What was ordered: 1 to 100 items.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<NewItem>,
}

/// One line of a new order.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewItem {
    /// Upper-case letters, digits and dashes, 1 to 32 characters, starting with a letter or digit.
    #[schema(pattern = "^[A-Z0-9][A-Z0-9-]{0,31}$", example = "A-1")]
    pub sku: String,
    /// 1 to 10,000.
    #[schema(minimum = 1, maximum = 10000, example = 2)]
    pub quantity: i64,
    /// 0 to 100,000,000 cents.
    #[schema(minimum = 0, maximum = 100000000, example = 150)]
    pub unit_price_cents: i64,
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Stored; its confirmation job has not run yet.
    Pending,
    /// The confirmation job ran: the customer was notified.
    Confirmed,
}

impl OrderStatus {
    /// The status as stored in the `orders` table.
    pub fn parse(stored: &str) -> Option<Self> {
        match stored {
            "pending" => Some(Self::Pending),
            "confirmed" => Some(Self::Confirmed),
            _ => None,
        }
    }
}

/// An order as the API returns it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, ToSchema)]
pub struct Order {
    /// The order's id.
    #[schema(example = 42)]
    pub id: i64,
    /// Who ordered.
    pub customer: String,
    /// Where the order is.
    pub status: OrderStatus,
    /// The sum of quantity × unit price over the items, in cents.
    pub total_cents: i64,
    /// The items, in the order they were given.
    pub items: Vec<NewItem>,
    /// When it was stored (RFC 3339, UTC).
    #[schema(example = "2026-12-02T14:03:11.412Z")]
    pub created_at: String,
    /// When it was confirmed, once it is.
    pub confirmed_at: Option<String>,
}

/// One page of orders, newest first.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
pub struct OrderPage {
    /// Up to `limit` orders.
    pub orders: Vec<Order>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The JSON body of every error.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The HTTP status, repeated.
    pub status: u16,
    /// A stable, machine-readable word (`validation_failed`, `unauthorized`, …).
    pub code: String,
    /// For people.
    pub message: String,
    /// For `validation_failed`: every invalid field.
    pub details: Option<Vec<FieldError>>,
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's path, such as `items[2].quantity`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// A new order that passed every check, with its total.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidOrder {
    /// Trimmed customer.
    pub customer: String,
    /// The items.
    pub items: Vec<NewItem>,
    /// Their total, in cents.
    pub total_cents: i64,
}

impl ValidOrder {
    /// The canonical text of the request, stored with an idempotency key so
    /// that a reused key with a different order is told apart from a retry.
    pub fn fingerprint(&self) -> String {
        serde_json::json!({ "customer": self.customer, "items": self.items }).to_string()
    }
}

struct Problems(Vec<FieldError>);

impl Problems {
    fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), message: message.into() });
    }
}

/// A float without a fraction, within the range where f64 holds integers exactly.
fn whole(v: &Value) -> Option<i64> {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    v.as_f64().filter(|f| f.fract() == 0.0 && f.abs() <= EXACT).map(|f| f as i64)
}

fn integer_in(value: Option<&Value>, field: &str, min: i64, max: i64, problems: &mut Problems) -> Option<i64> {
    let message = format!("must be an integer from {min} to {max}");
    match value {
        None | Some(Value::Null) => problems.add(field, format!("is required ({message})")),
        // JSON has one number type: 2.0 is an integer too (JSON Schema agrees).
        Some(v) => match v.as_i64().or_else(|| whole(v)).filter(|n| (min..=max).contains(n)) {
            Some(n) => return Some(n),
            None => problems.add(field, message),
        },
    }
    None
}

fn valid_sku(sku: &str) -> bool {
    let mut chars = sku.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-')
        && sku.len() <= MAX_SKU_CHARS
}

fn item(index: usize, value: &Value, problems: &mut Problems) -> Option<NewItem> {
    let at = |name: &str| format!("items[{index}].{name}");
    let Some(fields) = value.as_object() else {
        problems.add(format!("items[{index}]"), "must be an object with sku, quantity and unit_price_cents");
        return None;
    };
    for key in fields.keys().filter(|k| !["sku", "quantity", "unit_price_cents"].contains(&k.as_str())) {
        problems.add(at(key), "unknown field");
    }
    let sku = match fields.get("sku") {
        Some(Value::String(s)) if valid_sku(s) => Some(s.clone()),
        Some(Value::String(_)) => {
            problems.add(
                at("sku"),
                "must be 1 to 32 upper-case letters, digits or dashes, starting with a letter or digit",
            );
            None
        }
        None | Some(Value::Null) => {
            problems.add(at("sku"), "is required");
            None
        }
        Some(_) => {
            problems.add(at("sku"), "must be a string");
            None
        }
    };
    let quantity = integer_in(fields.get("quantity"), &at("quantity"), 1, MAX_QUANTITY, problems);
    let price = integer_in(fields.get("unit_price_cents"), &at("unit_price_cents"), 0, MAX_UNIT_PRICE_CENTS, problems);
    Some(NewItem { sku: sku?, quantity: quantity?, unit_price_cents: price? })
}

/// Checks a new order from its raw JSON; every problem is reported.
///
/// ```
/// use example_app::orders::model::validate;
/// let problems = validate(&serde_json::json!({"customer": "", "items": [{"sku": "a", "quantity": 0}]})).unwrap_err();
/// let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
/// assert_eq!(fields, ["customer", "items[0].sku", "items[0].quantity", "items[0].unit_price_cents"]);
/// ```
pub fn validate(body: &Value) -> Result<ValidOrder, Vec<FieldError>> {
    let mut problems = Problems(Vec::new());
    let Some(fields) = body.as_object() else {
        problems.add("", "the body must be a JSON object with customer and items");
        return Err(problems.0);
    };
    for key in fields.keys().filter(|k| !["customer", "items"].contains(&k.as_str())) {
        problems.add(key.as_str(), "unknown field");
    }
    let customer = match fields.get("customer") {
        Some(Value::String(s)) => {
            let trimmed = s.trim();
            if trimmed.is_empty() || trimmed.chars().count() > MAX_CUSTOMER_CHARS {
                problems.add("customer", format!("must be 1 to {MAX_CUSTOMER_CHARS} characters"));
            } else if trimmed.chars().any(char::is_control) {
                problems.add("customer", "must not contain control characters");
            }
            Some(trimmed.to_owned())
        }
        None | Some(Value::Null) => {
            problems.add("customer", "is required");
            None
        }
        Some(_) => {
            problems.add("customer", "must be a string");
            None
        }
    };
    let items: Vec<NewItem> = match fields.get("items") {
        Some(Value::Array(items)) if items.is_empty() => {
            problems.add("items", "must have at least one item");
            Vec::new()
        }
        Some(Value::Array(items)) if items.len() > MAX_ITEMS => {
            problems.add("items", format!("must have at most {MAX_ITEMS} items"));
            Vec::new()
        }
        Some(Value::Array(items)) => items.iter().enumerate().filter_map(|(i, v)| item(i, v, &mut problems)).collect(),
        None | Some(Value::Null) => {
            problems.add("items", "is required");
            Vec::new()
        }
        Some(_) => {
            problems.add("items", "must be an array");
            Vec::new()
        }
    };
    // Checked arithmetic: with the bounds above it cannot overflow, and it
    // stays right if the bounds are ever raised.
    let total = items.iter().try_fold(0_i64, |sum, item| {
        item.quantity.checked_mul(item.unit_price_cents).and_then(|line| sum.checked_add(line))
    });
    match total {
        Some(total) if total <= MAX_TOTAL_CENTS => {}
        _ => problems.add("items", format!("the total must be at most {MAX_TOTAL_CENTS} cents")),
    }
    match (problems.0.is_empty(), customer, total) {
        (true, Some(customer), Some(total_cents)) => Ok(ValidOrder { customer, items, total_cents }),
        _ => Err(problems.0),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn fields(body: Value) -> Vec<String> {
        validate(&body).unwrap_err().into_iter().map(|p| p.field).collect()
    }

    #[test]
    fn accepts_a_valid_order_and_totals_it() {
        let order = validate(&json!({
            "customer": "  ada@example.com ",
            "items": [{"sku": "A-1", "quantity": 2, "unit_price_cents": 150}, {"sku": "B2", "quantity": 1, "unit_price_cents": 0}]
        }))
        .unwrap();
        assert_eq!(order.customer, "ada@example.com");
        assert_eq!(order.total_cents, 300);
        assert_eq!(order.items.len(), 2);
    }

    #[test]
    fn lists_every_field_error_at_once() {
        let found = fields(json!({
            "customer": 7,
            "items": [{"sku": "ok-lower", "quantity": -1, "unit_price_cents": 1.5}, "x", {"sku": "A", "quantity": 1, "unit_price_cents": 1, "color": "red"}],
            "coupon": "FREE"
        }));
        for expected in [
            "coupon",
            "customer",
            "items[0].sku",
            "items[0].quantity",
            "items[0].unit_price_cents",
            "items[1]",
            "items[2].color",
        ] {
            assert!(found.iter().any(|f| f == expected), "{expected} in {found:?}");
        }
        assert_eq!(found.len(), 7, "{found:?}");
    }

    #[test]
    fn needs_at_least_one_item_and_bounds_them() {
        assert_eq!(fields(json!({"customer": "a", "items": []})), ["items"]);
        let many: Vec<Value> =
            (0..=MAX_ITEMS).map(|_| json!({"sku": "A", "quantity": 1, "unit_price_cents": 1})).collect();
        assert_eq!(fields(json!({"customer": "a", "items": many})), ["items"]);
        assert_eq!(fields(json!({"customer": "a"})), ["items"]);
    }

    #[test]
    fn refuses_totals_past_the_limit_and_huge_numbers() {
        let big = json!({"sku": "A", "quantity": MAX_QUANTITY, "unit_price_cents": MAX_UNIT_PRICE_CENTS});
        assert_eq!(fields(json!({"customer": "a", "items": [big]})), ["items"]);
        let huge = json!({"customer": "a", "items": [{"sku": "A", "quantity": 1e300, "unit_price_cents": u64::MAX}]});
        assert_eq!(fields(huge), ["items[0].quantity", "items[0].unit_price_cents"]);
    }

    #[test]
    fn refuses_control_characters_and_long_names() {
        assert_eq!(
            fields(json!({"customer": "a\u{0}b", "items": [{"sku": "A", "quantity": 1, "unit_price_cents": 1}]})),
            ["customer"]
        );
        let long = "x".repeat(MAX_CUSTOMER_CHARS + 1);
        assert_eq!(
            fields(json!({"customer": long, "items": [{"sku": "A", "quantity": 1, "unit_price_cents": 1}]})),
            ["customer"]
        );
    }

    #[test]
    fn whole_floats_are_integers() {
        let order =
            validate(&json!({"customer": "a", "items": [{"sku": "A", "quantity": 2.0, "unit_price_cents": 150.0}]}))
                .unwrap();
        assert_eq!(order.total_cents, 300);
        assert_eq!(
            fields(json!({"customer": "a", "items": [{"sku": "A", "quantity": 2.5, "unit_price_cents": 1e300}]})),
            ["items[0].quantity", "items[0].unit_price_cents"]
        );
    }

    #[test]
    fn body_must_be_an_object() {
        assert_eq!(fields(json!([1, 2])), [""]);
    }

    #[test]
    fn fingerprint_ignores_whitespace_around_the_customer() {
        let item = json!([{"sku": "A", "quantity": 1, "unit_price_cents": 1}]);
        let a = validate(&json!({"customer": "ada", "items": item})).unwrap();
        let b = validate(&json!({"customer": " ada ", "items": item})).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
    }
}
