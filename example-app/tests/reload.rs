//! Reload on SIGHUP, end to end: the orders cache TTLs change in place
//! (its reload hook), nothing is stopped or restarted, and the API keeps
//! serving; an invalid file is rejected and changes nothing.

mod support;

use std::time::Duration;

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_ttls_reload_in_place_and_the_api_keeps_serving() {
    let db = DevDatabase::start().await.expect("test postgres");
    let dir = scratch_dir("ttl");
    let file = dir.join("app.toml");
    std::fs::write(&file, "[orders]\ncache_ttl = \"5m\"\npending_cache_ttl = \"1s\"\n").unwrap();
    let path = file.to_string_lossy().to_string();
    let mut app = App::start_with_args(&db.url(), &[], &["--config", &path]);
    let client = client();
    until_status(&client, &format!("{}/readyz", app.admin_base()), 200).await;
    let seen = app.logs().len();

    std::fs::write(&file, "[orders]\ncache_ttl = \"10m\"\npending_cache_ttl = \"2s\"\n").unwrap();
    app.signal(libc::SIGHUP);
    let changed = app.wait_for_msg("cache TTLs changed");
    assert_eq!(changed["cache_ttl"], "600s", "{changed}");
    assert_eq!(changed["pending_cache_ttl"], "2s", "{changed}");
    let reloaded = app.wait_for("the reloaded event", |v| v["event"] == "reloaded" && v["component"] == "orders");
    assert_eq!(reloaded["detail"], "applied in place");
    let after: Vec<_> = app.logs()[seen..].to_vec();
    assert!(
        after.iter().all(|v| v["event"] != "stopping" && v["event"] != "starting"),
        "nothing restarted: {after:#?}"
    );

    let (status, body) = create(&client, &app.base(), &new_order("after the reload"), None).await.unwrap();
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_i64().unwrap();
    let (status, _) = get_json(&client, &format!("{}/api/v1/orders/{id}", app.base())).await.unwrap();
    assert_eq!(status, 200);

    // An invalid file: rejected, every problem named, nothing changed.
    std::fs::write(&file, "[orders]\ncache_ttl = \"0s\"\npending_cache_ttl = \"forever\"\n").unwrap();
    app.signal(libc::SIGHUP);
    app.wait_for_msg("reload rejected: the configuration is invalid; nothing changed");
    let keys: Vec<String> = app
        .logs()
        .iter()
        .filter(|v| v["msg"] == "reload rejected")
        .map(|v| format!("{}: {}", v["key"].as_str().unwrap_or(""), v["problem"].as_str().unwrap_or("")))
        .collect();
    assert!(keys.iter().any(|k| k.starts_with("orders.pending_cache_ttl: invalid value")), "{keys:#?}");
    assert!(keys.iter().any(|k| k == "orders.cache_ttl: must be greater than 0"), "{keys:#?}");
    assert_eq!(client.get(format!("{}/readyz", app.admin_base())).send().await.unwrap().status(), 200);
    let metrics = client.get(format!("{}/metrics", app.admin_base())).send().await.unwrap().text().await.unwrap();
    for counted in [
        r#"orderly_reloads_total{result="applied"} 1"#,
        r#"orderly_reloads_total{result="rejected"} 1"#,
        r#"orderly_reloads_total{result="rolled_back"} 0"#,
    ] {
        assert!(metrics.contains(counted), "{counted} missing:\n{metrics}");
    }

    app.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("reload rejected"), "{stderr}");
}
