//! Bad input gets a clear error and loses nothing: invalid configs exit 78
//! naming every problem; hostile requests get 4xx JSON, never 5xx; a
//! bounded randomised fuzzer finds no 5xx and no crash.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{json, Value};
use support::*;

/// Runs `--check` with `env` on top of the test defaults; the exit code and stderr.
fn check(extra: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let mut env = base_env("postgres://postgres@127.0.0.1:1/postgres");
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let mut app = App::spawn(&env, &[&["--check"], args].concat());
    app.wait_exit(Duration::from_secs(20))
}

/// A case: its name, env, extra arguments, and the keys the error must name.
type ConfigCase<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a [&'a str], &'a [&'a str]);

#[test]
fn invalid_configs_exit_78_naming_every_problem() {
    let cases: &[ConfigCase] = &[
        ("wrong type", &[("APP__HTTP__WORKERS", "lots")], &[], &["http.workers"]),
        ("out of range", &[("APP__WORKERS__CONCURRENCY", "0")], &[], &["workers.concurrency"]),
        ("bad duration", &[("APP__SHUTDOWN__DEADLINE", "soon")], &[], &["shutdown.deadline"]),
        ("unknown key", &[("APP__ORDERS__CACHE_TLL", "1s")], &[], &["cache_tll"]),
        ("unknown section", &[], &["--set", "ordres.cache_ttl=1s"], &["ordres"]),
        ("missing secret", &[("APP__API__KEY", "")], &[], &["api.key", "APP__API__KEY"]),
        ("weak secret", &[("APP__API__KEY", "short")], &[], &["api.key", "at least 16"]),
        ("fault out of range", &[("APP__FAULTS__SLOW_JOB_MS", "99999999999")], &[], &["faults.slow_job_ms"]),
        ("ttl order", &[("APP__ORDERS__PENDING_CACHE_TTL", "10m")], &[], &["orders.pending_cache_ttl"]),
        (
            "all at once",
            &[
                ("APP__HTTP__WORKERS", "lots"),
                ("APP__API__KEY", ""),
                ("APP__ORDERS__CACHE_TTL", "0s"),
                ("APP__FAULTS__SLOW_AUTH_MS", "-3"),
            ],
            &[],
            &["http.workers", "api.key", "orders.cache_ttl", "faults.slow_auth_ms"],
        ),
    ];
    for (name, env, args, named) in cases {
        let (code, stderr) = check(env, args);
        assert_eq!(code, 78, "{name}: {stderr}");
        for key in *named {
            assert!(stderr.contains(key), "{name}: `{key}` not named in: {stderr}");
        }
        assert!(!stderr.contains("dev-key-not-for-production"), "{name}: a secret leaked: {stderr}");
    }
    let (code, stderr) = check(&[], &[]);
    assert_eq!(code, 0, "the defaults are valid: {stderr}");
}

/// A raw HTTP/1.1 request (for bytes no client library would send); the status and body.
fn raw(addr: std::net::SocketAddr, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let request = format!("{head}\r\nHost: test\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", body.len());
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_4xx_json_and_break_nothing() {
    let db = DevDatabase::start().await.expect("test postgres");
    let mut app = App::start(&db.url(), &[]);
    let addr = app.http.unwrap();
    let auth = format!("Authorization: {}", bearer());
    let post = format!("POST /api/v1/orders HTTP/1.1\r\n{auth}\r\nContent-Type: application/json");
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = format!("{{\"customer\": \"{}\", \"items\": []}}", "x".repeat(2 * 1024 * 1024));
    let cases: Vec<(&str, String, Vec<u8>, u16)> = vec![
        ("malformed JSON", post.clone(), b"{\"customer\": ".to_vec(), 400),
        ("not an object", post.clone(), b"[1, 2, 3]".to_vec(), 400),
        ("deep nesting", post.clone(), deep.into_bytes(), 400),
        ("huge body", post.clone(), huge.into_bytes(), 413),
        ("invalid UTF-8", post.clone(), b"{\"customer\": \"\xff\xfe\", \"items\": []}".to_vec(), 400),
        ("negative quantity", post.clone(), json!({"customer": "a", "items": [{"sku": "A", "quantity": -5, "unit_price_cents": 1}]}).to_string().into_bytes(), 400),
        ("overflowing total", post.clone(), json!({"customer": "a", "items": [{"sku": "A", "quantity": 10000, "unit_price_cents": 100000000}, {"sku": "B", "quantity": 10000, "unit_price_cents": 100000000}]}).to_string().into_bytes(), 400),
        ("number past i64", post.clone(), br#"{"customer": "a", "items": [{"sku": "A", "quantity": 1, "unit_price_cents": 99999999999999999999999}]}"#.to_vec(), 400),
        ("unknown content type", format!("POST /api/v1/orders HTTP/1.1\r\n{auth}\r\nContent-Type: text/plain"), b"customer=a".to_vec(), 415),
        ("no content type", format!("POST /api/v1/orders HTTP/1.1\r\n{auth}"), b"{}".to_vec(), 415),
        ("no token", "GET /api/v1/orders HTTP/1.1".into(), vec![], 401),
        ("wrong token", "GET /api/v1/orders HTTP/1.1\r\nAuthorization: Bearer dev-key-not-for-productioN".into(), vec![], 401),
        ("basic auth", "GET /api/v1/orders HTTP/1.1\r\nAuthorization: Basic ZGV2OmtleQ==".into(), vec![], 401),
        ("empty bearer", "GET /api/v1/orders HTTP/1.1\r\nAuthorization: Bearer ".into(), vec![], 401),
        ("token as query", format!("GET /api/v1/orders?access_token={API_KEY} HTTP/1.1"), vec![], 401),
        ("malformed id", format!("GET /api/v1/orders/abc HTTP/1.1\r\n{auth}"), vec![], 400),
        ("SQL in the id", format!("GET /api/v1/orders/1%3BDROP%20TABLE%20orders HTTP/1.1\r\n{auth}"), vec![], 400),
        ("zero id", format!("GET /api/v1/orders/0 HTTP/1.1\r\n{auth}"), vec![], 400),
        ("unknown id", format!("GET /api/v1/orders/987654321 HTTP/1.1\r\n{auth}"), vec![], 404),
        ("limit too big", format!("GET /api/v1/orders?limit=1000 HTTP/1.1\r\n{auth}"), vec![], 400),
        ("limit not a number", format!("GET /api/v1/orders?limit=ten HTTP/1.1\r\n{auth}"), vec![], 400),
        ("bad cursor", format!("GET /api/v1/orders?cursor=%27%20OR%201%3D1 HTTP/1.1\r\n{auth}"), vec![], 400),
        ("bad idempotency key", format!("{post}\r\nIdempotency-Key: has spaces in it"), json!({"customer": "a", "items": [{"sku": "A", "quantity": 1, "unit_price_cents": 1}]}).to_string().into_bytes(), 400),
        ("wrong method", format!("DELETE /api/v1/orders HTTP/1.1\r\n{auth}"), vec![], 405),
        ("unknown path", format!("GET /api/v1/customers HTTP/1.1\r\n{auth}"), vec![], 404),
    ];
    for (name, head, body, expected) in cases {
        let (status, text) = tokio::task::block_in_place(|| raw(addr, &head, &body));
        assert_eq!(status, expected, "{name}: {text}");
        let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {text}"));
        assert_eq!(body["error"]["status"], expected, "{name}: {body}");
    }

    // SQL-looking text is data: stored and returned as it came, nothing dropped.
    let client = client();
    let evil = "Robert'); DROP TABLE orders; --";
    let (status, order) = create(&client, &app.base(), &new_order(evil), None).await.unwrap();
    assert_eq!(status, 201, "{order}");
    let (status, read) = get_json(&client, &format!("{}/api/v1/orders/{}", app.base(), order["id"])).await.unwrap();
    assert_eq!((status, read["customer"].as_str()), (200, Some(evil)));

    // Idempotency: a retry returns the first order; the same key with another order is refused.
    let (s1, first) = create(&client, &app.base(), &new_order("retry me"), Some("key-1")).await.unwrap();
    let (s2, again) = create(&client, &app.base(), &new_order("retry me"), Some("key-1")).await.unwrap();
    let (s3, other) = create(&client, &app.base(), &new_order("someone else"), Some("key-1")).await.unwrap();
    assert_eq!((s1, s2, s3), (201, 201, 422), "{other}");
    assert_eq!(first["id"], again["id"]);
    let sql = sql(&db.url()).await;
    let count: i64 = sql.query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get(0);
    assert_eq!(count, 2, "one order per create, none per rejected request");

    app.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !app.logs().iter().any(|v| v["level"] == "ERRO" || v["level"] == "CRIT"),
        "no request caused a server error"
    );
}

/// A random JSON value, mostly shaped like an order, sometimes not at all.
fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
    match rng.u8(..10) {
        _ if depth > 3 => json!(rng.i64(..)),
        0 => Value::Null,
        1 => json!(rng.bool()),
        2 => json!(rng.i64(..)),
        3 => json!(rng.f64() * 1e30),
        4 => json!(["", "A-1", "a", "'; --", "\u{0}", "ü", "9", &"Z".repeat(40)][rng.usize(..8)]),
        5 => Value::Array((0..rng.usize(..4)).map(|_| random_value(rng, depth + 1)).collect()),
        _ => {
            let keys = ["customer", "items", "sku", "quantity", "unit_price_cents", "extra"];
            Value::Object(
                (0..rng.usize(..5))
                    .map(|_| (keys[rng.usize(..keys.len())].to_owned(), random_value(rng, depth + 1)))
                    .collect(),
            )
        }
    }
}

fn random_order(rng: &mut fastrand::Rng) -> Value {
    let items: Vec<Value> = (0..rng.usize(..4))
        .map(|_| {
            json!({
                "sku": (["A-1", "B", "bad sku", ""][rng.usize(..4)]),
                "quantity": ([json!(1), json!(0), json!(-1), json!(10001), json!("2"), json!(i64::MAX)][rng.usize(..6)]),
                "unit_price_cents": ([json!(0), json!(150), json!(100000001), json!(1.5), json!(null)][rng.usize(..5)]),
            })
        })
        .collect();
    json!({ "customer": (["ada", "", " ", "x\u{7}"][rng.usize(..4)]), "items": items })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_random_fuzz_finds_no_server_error() {
    const REQUESTS: usize = 3000;
    let seed = std::env::var("FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| fastrand::u64(..));
    println!("FUZZ_SEED={seed}");
    let db = DevDatabase::start().await.expect("test postgres");
    let mut app = App::start(&db.url(), &[]);
    let base = app.base();
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
    let mut tasks = Vec::new();
    for worker in 0..8u64 {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed.wrapping_add(worker));
            let mut seen = Vec::new();
            for _ in 0..REQUESTS / 8 {
                let path = match rng.u8(..7) {
                    0 | 6 => "/api/v1/orders".to_owned(),
                    1 => format!(
                        "/api/v1/orders/{}",
                        [rng.i64(..).to_string(), "x".into(), "".into(), "1.0".into(), "%00".into()][rng.usize(..5)]
                    ),
                    2 => format!("/api/v1/orders?limit={}&cursor={}", rng.i32(-5..200), rng.i64(-5..1000)),
                    3 => format!(
                        "/api/v1/orders?{}={}",
                        ["limit", "cursor", "x"][rng.usize(..3)],
                        ["", "%ff", "1e9", "--"][rng.usize(..4)]
                    ),
                    4 => "/api/v1/openapi.json".to_owned(),
                    _ => format!(
                        "/{}",
                        ["", "api", "api/v1", "api/v1/orders/1/items", "..%2f..%2fetc%2fpasswd"][rng.usize(..5)]
                    ),
                };
                let method =
                    [reqwest::Method::GET, reqwest::Method::POST, reqwest::Method::PUT, reqwest::Method::DELETE]
                        [rng.usize(..4)]
                    .clone();
                let mut request = client.request(method, format!("{base}{path}"));
                if rng.u8(..10) < 8 {
                    request =
                        request.header("Authorization", if rng.u8(..10) < 9 { bearer() } else { "Bearer nope".into() });
                }
                if rng.bool() {
                    request = request.header("Idempotency-Key", ["k", "", "\t", &"k".repeat(300)][rng.usize(..4)]);
                }
                request = match rng.u8(..5) {
                    0 => request.json(&random_order(&mut rng)),
                    4 => request.json(&new_order("fuzzed")),
                    1 => request.json(&random_value(&mut rng, 0)),
                    2 => {
                        let mut bytes = serde_json::to_vec(&random_order(&mut rng)).unwrap();
                        for _ in 0..rng.usize(..4) {
                            if !bytes.is_empty() {
                                let at = rng.usize(..bytes.len());
                                bytes[at] = rng.u8(..);
                            }
                        }
                        request.header("Content-Type", "application/json").body(bytes)
                    }
                    _ => request,
                };
                let response = request.send().await.expect("the server answers every request");
                seen.push((response.status().as_u16(), path));
            }
            seen
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for task in tasks {
        for (status, path) in task.await.unwrap() {
            assert!(status < 500, "FUZZ_SEED={seed}: {status} for {path}");
            *statuses.entry(status).or_insert(0) += 1;
        }
    }
    println!("statuses: {statuses:?}");
    assert!(statuses.contains_key(&201) && statuses.contains_key(&400) && statuses.contains_key(&401), "{statuses:?}");
    let ready = client.get(format!("{}/readyz", app.admin_base())).send().await.unwrap().status();
    assert_eq!(ready, 200, "still ready after the fuzz");
    app.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn secrets_never_show_in_the_printed_config() {
    let mut env = base_env("postgres://app:hunter2-db-password@127.0.0.1:1/orders");
    env.push(("APP__API__KEY".into(), "a-production-key-0123456789".into()));
    let mut app = App::spawn(&env, &["--print-config"]);
    let (code, stderr) = app.wait_exit(Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    let printed: String = app
        .logs()
        .iter()
        .filter(|v| v["msg"] == "NOT JSON")
        .map(|v| format!("{}\n", v["line"].as_str().unwrap()))
        .collect();
    assert!(printed.contains("[api]") && printed.contains("[database]"), "{printed}");
    for secret in ["a-production-key-0123456789", "hunter2-db-password", "dev-key-not-for-production"] {
        assert!(!printed.contains(secret), "`{secret}` printed:\n{printed}");
    }
    assert!(printed.contains("[redacted]"), "{printed}");
}
