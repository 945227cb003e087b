//! The database going away: while the app runs (readiness 503, API 503,
//! no crash, recovery without a restart once it is back), and absent at
//! startup (retries, then a clear error and a non-zero exit).

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_while_running_then_back() {
    let mut db = DevDatabase::start().await.expect("test postgres");
    let mut app =
        App::start(&db.url(), &[("APP__DATABASE__WAIT_TIMEOUT", "300ms"), ("APP__DATABASE__CONNECT_TIMEOUT", "300ms")]);
    let (client, base, admin) = (client(), app.base(), app.admin_base());
    until_status(&client, &format!("{admin}/readyz"), 200).await;
    let (status, before) = create(&client, &base, &new_order("before the outage"), None).await.unwrap();
    assert_eq!(status, 201);

    db.suspend().await.expect("stop postgres");
    until_status(&client, &format!("{admin}/readyz"), 503).await;
    let readiness: serde_json::Value =
        client.get(format!("{admin}/readyz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(readiness["components"]["database"]["state"], "not_ready", "{readiness}");
    for _ in 0..3 {
        let (status, body) = create(&client, &base, &new_order("during the outage"), None).await.unwrap();
        assert_eq!(status, 503, "{body}");
        assert_eq!(body["error"]["code"], "unavailable");
        let (status, _) = get_json(&client, &format!("{base}/api/v1/orders?limit=5")).await.unwrap();
        assert_eq!(status, 503);
    }
    assert_eq!(client.get(format!("{admin}/healthz")).send().await.unwrap().status(), 200, "still alive");

    db.resume().await.expect("start postgres again");
    until_status(&client, &format!("{admin}/readyz"), 200).await;
    let (status, after) = create(&client, &base, &new_order("after the outage"), None).await.unwrap();
    assert_eq!(status, 201, "{after}");
    let (status, page) = get_json(&client, &format!("{base}/api/v1/orders")).await.unwrap();
    assert_eq!(status, 200);
    let ids: Vec<i64> = page["orders"].as_array().unwrap().iter().map(|o| o["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [after["id"].as_i64().unwrap(), before["id"].as_i64().unwrap()], "nothing lost, nothing doubled");

    app.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_absent_at_startup_retries_then_exits_with_the_reason() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let mut env = base_env(&url);
    env.push(("APP__DATABASE__CONNECT_RETRY".into(), "1500ms".into()));
    let mut app = App::spawn(&env, &[]);
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("start failed"), "{stderr}");
    assert!(stderr.contains("database"), "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "names the target: {stderr}");
    assert!(stderr.contains("attempts"), "says it retried: {stderr}");
    let logs = app.logs();
    let retries = logs.iter().filter(|v| v["msg"] == "database not reachable yet; retrying").count();
    assert!(retries >= 2, "retried before giving up ({retries} retries logged)");
    assert!(!logs.iter().any(|v| v["msg"] == "serving"), "never served");
}
