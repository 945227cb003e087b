//! Startup of the real binary: components start in dependency order (read
//! from its JSON log, against the graph it prints), the startup and
//! readiness probes turn 200, and `--print-graph` shows the real graph.

mod support;

use std::time::Duration;

use support::*;

/// The edges `dependent -> dependency` of `--print-graph dot`.
fn printed_edges(database_url: &str) -> Vec<(String, String)> {
    let mut app = App::spawn(&base_env(database_url), &["--print-graph", "dot"]);
    let (code, stderr) = app.wait_exit(Duration::from_secs(20));
    assert_eq!(code, 0, "{stderr}");
    let dot: Vec<String> =
        app.logs().iter().filter(|v| v["msg"] == "NOT JSON").map(|v| v["line"].as_str().unwrap().to_owned()).collect();
    dot.iter()
        .filter_map(|l| l.trim().trim_end_matches(';').split_once(" -> "))
        // An optional edge carries its style after the name: `"faults" [style=dashed, …]`.
        .map(|(a, b)| (a.trim_matches('"').to_owned(), b.split(' ').next().unwrap_or(b).trim_matches('"').to_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_in_dependency_order_then_probes_turn_ready() {
    let db = DevDatabase::start().await.expect("test postgres");
    let edges = printed_edges(&db.url());
    for expected in [
        ("orders", "database"),
        ("orders", "workers"),
        ("orders", "http"),
        ("workers", "database"),
        ("http", "metrics"),
    ] {
        assert!(edges.iter().any(|(a, b)| (a.as_str(), b.as_str()) == expected), "{expected:?} in {edges:?}");
    }

    let mut app = App::start(&db.url(), &[]);
    let client = client();
    until_status(&client, &format!("{}/startupz", app.admin_base()), 200).await;
    until_status(&client, &format!("{}/readyz", app.admin_base()), 200).await;
    let ready: serde_json::Value =
        client.get(format!("{}/readyz", app.admin_base())).send().await.unwrap().json().await.unwrap();
    for component in ["admin", "api", "cache", "database", "faults", "http", "metrics", "orders", "tracing", "workers"]
    {
        assert_eq!(ready["components"][component]["state"], "ready", "{component}: {ready}");
    }

    let events = app.lifecycle();
    let position = |component: &str, event: &str| {
        events
            .iter()
            .position(|v| v["component"] == component && v["event"] == event)
            .unwrap_or_else(|| panic!("no `{event}` of {component}"))
    };
    for (dependent, dependency) in &edges {
        assert!(
            position(dependency, "ready") < position(dependent, "starting"),
            "{dependency} was ready before {dependent} started"
        );
    }

    app.sigterm();
    let (code, stderr) = app.wait_exit(Duration::from_secs(30));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(app.phases_started(), FIVE_PHASES);
}
