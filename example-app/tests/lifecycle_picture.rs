//! The lifecycle as a picture: `/debug/lifecycle.svg` on the management
//! server while the app runs, and the file `lifecycle.timeline_path` names
//! on exit. Both are parsed as XML and must hold a row per component, the
//! start and ready bars, and after shutdown a bar for every stop phase a
//! component joined, the phase strip and the propagation delay.

mod support;

use std::time::Duration;

use support::*;

const COMPONENTS: [&str; 10] =
    ["admin", "api", "cache", "database", "faults", "http", "metrics", "orders", "tracing", "workers"];

fn rows(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.attribute("class") == Some("row"))
        .filter_map(|n| n.text().map(str::to_owned))
        .collect()
}

fn bars<'a>(doc: &'a roxmltree::Document, phase: &str) -> Vec<&'a str> {
    doc.descendants()
        .filter(|n| {
            n.attribute("class").is_some_and(|c| c.starts_with("bar")) && n.attribute("data-phase") == Some(phase)
        })
        .filter_map(|n| n.attribute("data-component"))
        .collect()
}

/// Every `<text>`'s content, in document order.
fn texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants().filter(|n| n.tag_name().name() == "text").filter_map(|n| n.text().map(str::to_owned)).collect()
}

/// Every axis label (`+N ms`) is round: two significant digits at most
/// (multiples of a 1, 2 or 5 step), never `+249 ms`.
fn assert_round_ticks(doc: &roxmltree::Document) {
    let ticks: Vec<f64> = texts(doc)
        .iter()
        .filter_map(|t| t.strip_prefix('+')?.strip_suffix(" ms")?.parse().ok())
        .filter(|&v: &f64| v > 0.0)
        .collect();
    assert!(!ticks.is_empty(), "no axis labels");
    for value in ticks {
        let scaled = value / (10f64.powf(value.log10().floor()) / 10.0);
        assert!((scaled - scaled.round()).abs() < 1e-6, "+{value} ms is not a round tick");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_is_served_and_written_as_svg() {
    let db = DevDatabase::start().await.expect("test postgres");
    let dir = std::env::temp_dir().join(format!("example-app-svg-{}-{}", std::process::id(), fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("lifecycle.svg");
    let mut app = App::start(
        &db.url(),
        &[("APP__SHUTDOWN__PROPAGATION_DELAY", "200ms"), ("APP__LIFECYCLE__TIMELINE_PATH", path.to_str().unwrap())],
    );
    let client = client();
    until_status(&client, &format!("{}/readyz", app.admin_base()), 200).await;
    let response = client.get(format!("{}/debug/lifecycle.svg", app.admin_base())).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "image/svg+xml");
    let served = response.text().await.unwrap();
    let doc = roxmltree::Document::parse(&served).expect("well-formed SVG");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let mut found = rows(&doc);
    found.sort();
    assert_eq!(found, COMPONENTS);
    let mut started = bars(&doc, "start");
    started.sort();
    assert_eq!(started, COMPONENTS, "a start bar per component");
    assert!(bars(&doc, "drain").is_empty(), "no shutdown yet");
    // Polish (issue #22, item 8): the shutdown panel says why it is empty,
    // the title names the app, tooltips read as words, ticks are round.
    assert!(texts(&doc).iter().any(|t| t == "not yet: the app is running"), "{served}");
    assert!(texts(&doc)[0].starts_with("example-app (pid "), "{served}");
    let tooltips: Vec<String> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "title")
        .filter_map(|n| n.text().map(str::to_owned))
        .collect();
    assert!(tooltips.iter().any(|t| t.starts_with("orders: start took ")), "{tooltips:?}");
    assert!(tooltips.iter().any(|t| t.starts_with("orders: ready after ")), "{tooltips:?}");
    assert!(!tooltips.iter().any(|t| t.contains("start started") || t.contains("ready ready")), "{tooltips:?}");
    assert_round_ticks(&doc); // the startup panel's (the shutdown's count from the signal, past the delay)

    app.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 0, "{stderr}");
    let written = std::fs::read_to_string(&path).expect("the timeline file");
    std::fs::remove_dir_all(&dir).unwrap();
    let doc = roxmltree::Document::parse(&written).expect("well-formed SVG");
    assert_eq!(rows(&doc).len(), COMPONENTS.len());
    assert_eq!(bars(&doc, "stop_accepting").iter().filter(|c| ["http", "workers"].contains(c)).count(), 2);
    assert_eq!(bars(&doc, "drain"), ["http"]);
    assert_eq!(bars(&doc, "stop_workers"), ["workers"]);
    let mut closed = bars(&doc, "close");
    closed.sort();
    assert!(closed.contains(&"database") && closed.contains(&"admin") && closed.contains(&"cache"), "{closed:?}");
    let phases = doc.descendants().filter(|n| n.attribute("class") == Some("phase")).count();
    assert_eq!(phases, 5, "the phase strip");
    let delay =
        doc.descendants().find(|n| n.attribute("class") == Some("propagation-delay")).expect("the delay is drawn");
    assert!(delay.descendants().any(|n| n.text().is_some_and(|t| t.starts_with("propagation delay: 20"))));
    assert!(doc.descendants().all(|n| n.attribute("class") != Some("bar problem")), "a clean shutdown has no red");
    assert!(!texts(&doc).iter().any(|t| t.starts_with("not yet")), "the shutdown happened");
    assert!(doc.descendants().any(|n| n.text().is_some_and(|t| t.starts_with("http: phase drain took "))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_timeline_path_is_reported_and_changes_no_exit_code() {
    let db = DevDatabase::start().await.expect("test postgres");
    let mut app = App::start(&db.url(), &[("APP__LIFECYCLE__TIMELINE_PATH", "/nonexistent-dir/lifecycle.svg")]);
    app.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 0, "the service did its work: {stderr}");
    assert!(stderr.contains("cannot write the lifecycle timeline to /nonexistent-dir/lifecycle.svg"), "{stderr}");
}
