//! The README's fault experiments do what it says: slow authentication runs
//! into the request timeout (504); a failing database makes the API answer
//! 503 and readiness not ready while liveness stays up, and the app still
//! shuts down cleanly.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_authentication_runs_into_the_request_timeout() {
    let db = DevDatabase::start().await.expect("test postgres");
    let mut app =
        App::start(&db.url(), &[("APP__FAULTS__SLOW_AUTH_MS", "2000"), ("APP__HTTP__REQUEST_TIMEOUT", "300ms")]);
    let (status, body) = get_json(&client(), &format!("{}/api/v1/orders", app.base())).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (504, Some("timeout")), "{body}");
    app.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_database_means_503_and_not_ready_but_alive() {
    let db = DevDatabase::start().await.expect("test postgres");
    let mut app = App::start(&db.url(), &[("APP__FAULTS__DB_FAILURE", "true")]);
    let client = client();
    until_status(&client, &format!("{}/startupz", app.admin_base()), 200).await;
    until_status(&client, &format!("{}/readyz", app.admin_base()), 503).await;
    let readiness: serde_json::Value =
        client.get(format!("{}/readyz", app.admin_base())).send().await.unwrap().json().await.unwrap();
    assert_eq!(readiness["components"]["orders"]["state"], "not_ready", "{readiness}");
    assert_eq!(readiness["components"]["database"]["state"], "ready", "only the injected fault: {readiness}");
    let (status, body) = create(&client, &app.base(), &new_order("during the fault"), None).await.unwrap();
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("unavailable")), "{body}");
    let (status, _) = get_json(&client, &format!("{}/api/v1/orders/1", app.base())).await.unwrap();
    assert_eq!(status, 503);
    assert_eq!(client.get(format!("{}/healthz", app.admin_base())).send().await.unwrap().status(), 200);
    let rows: i64 = sql(&db.url()).await.query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get(0);
    assert_eq!(rows, 0, "nothing written");
    app.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 0, "{stderr}");
}
