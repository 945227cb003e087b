//! `[http.rate_limit]` in the real binary: a noisy API key runs out of its
//! own budget (429 with the RateLimit headers and a JSON error) while
//! another key is served as usual, and the limit is counted by route.

mod support;

use support::*;

const OTHER_KEY: &str = "second-key-0123456789";

/// The key file, removed when dropped (also when an assertion fails).
struct KeyFile(std::path::PathBuf);

impl Drop for KeyFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_noisy_key_is_limited_and_another_is_served() {
    let db = DevDatabase::start().await.expect("test postgres");
    let keys = KeyFile(std::env::temp_dir().join(format!("rate-limit-keys-{}", std::process::id())));
    std::fs::write(&keys.0, format!("{API_KEY}\n{OTHER_KEY}\n")).unwrap();
    let app = App::start(
        &db.url(),
        &[
            ("APP__API__KEY_FILE", keys.0.to_str().unwrap()),
            ("APP__HTTP__RATE_LIMIT__GROUPS__API__REQUESTS", "1"),
            ("APP__HTTP__RATE_LIMIT__GROUPS__API__PER", "1m"),
            ("APP__HTTP__RATE_LIMIT__GROUPS__API__BURST", "5"),
        ],
    );
    let client = client();
    let list = format!("{}/api/v1/orders", app.base());
    let with_key = |key: &str| client.get(&list).header("Authorization", format!("Bearer {key}"));

    for left in (0..5).rev() {
        let response = with_key(API_KEY).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["ratelimit-policy"], "\"api\";q=5;w=300");
        let state = response.headers()["ratelimit"].to_str().unwrap().to_owned();
        assert!(state.starts_with(&format!("\"api\";r={left};t=")), "{state}");
    }
    let limited = with_key(API_KEY).send().await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(limited.headers()["ratelimit"].to_str().unwrap(), format!("\"api\";r=0;t={retry_after}"));
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");

    let other = with_key(OTHER_KEY).send().await.unwrap();
    assert_eq!(other.status(), 200, "another client on the same address has its own budget");
    let probe = client.get(format!("{}/readyz", app.admin_base())).send().await.unwrap();
    assert_eq!(probe.status(), 200, "the management port is never limited");

    let metrics = client.get(format!("{}/metrics", app.admin_base())).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("http_rate_limited_total{route=\"/api/v1/orders\"} 1"), "{metrics}");
}
