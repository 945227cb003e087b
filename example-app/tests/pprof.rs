//! Profiles on the management port, against the real binary under a real
//! load (`wrk`): a CPU profile that names the API's handler, a flame graph,
//! a heap profile and its summary, one profile at a time, and a profile
//! that never holds the shutdown up.

mod support;

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pprof::protos::{Message, Profile};
use support::*;

/// A load generator, killed when dropped (also when an assertion fails).
struct Load(Child);

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `wrk` reading one order with the API key, for `seconds`.
fn wrk(url: &str, seconds: u64) -> Load {
    let child = Command::new("wrk")
        .args(["-t1", "-c8", &format!("-d{seconds}s"), "-H", &format!("Authorization: {}", bearer()), url])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("wrk (apt-get install wrk; scripts/test-all.sh installs it when run as root)");
    Load(child)
}

/// The names of the functions a pprof profile's samples pass through.
fn function_names(profile: &Profile) -> Vec<String> {
    profile.function.iter().map(|f| profile.string_table[f.name as usize].clone()).collect()
}

async fn get(url: &str) -> reqwest::Response {
    client().get(url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cpu_and_heap_profiles_under_load() {
    let db = DevDatabase::start().await.expect("test postgres");
    let app = App::start(&db.url(), &[]);
    let (status, order) = create(&client(), &app.base(), &new_order("profiled"), None).await.unwrap();
    assert_eq!(status, 201);
    let order_url = format!("{}/api/v1/orders/{}", app.base(), order["id"]);
    let load = wrk(&order_url, 12);
    let admin = app.admin_base();

    // A CPU profile while the API is under load, and a second one refused meanwhile.
    let profile = tokio::spawn({
        let url = format!("{admin}/debug/pprof/profile?seconds=3");
        async move { get(&url).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let second = get(&format!("{admin}/debug/pprof/profile?seconds=1")).await;
    assert_eq!(second.status(), 409);
    let refusal: serde_json::Value = second.json().await.unwrap();
    assert!(
        refusal["error"].as_str().unwrap().contains("a profile is already running: CPU profile of 3 s for 127.0.0.1:"),
        "{refusal}"
    );

    let profile = profile.await.unwrap();
    assert_eq!(profile.status(), 200);
    assert_eq!(profile.headers()["content-type"], "application/octet-stream");
    let bytes = profile.bytes().await.unwrap();
    let cpu = Profile::decode(bytes.as_ref()).expect("the CPU profile is pprof protobuf");
    assert!(!cpu.sample.is_empty(), "no samples under load");
    let names = function_names(&cpu);
    assert!(
        names.iter().any(|n| n.contains("example_app::orders::routes::get_order")),
        "the handler of GET /api/v1/orders/{{id}} is not in the profile: {} functions",
        names.len()
    );

    let flame = get(&format!("{admin}/debug/pprof/flamegraph?seconds=1")).await;
    assert_eq!(flame.status(), 200);
    assert_eq!(flame.headers()["content-type"], "image/svg+xml");
    let svg = flame.text().await.unwrap();
    assert!(svg.contains("<svg") && svg.contains("get_order"), "a flame graph with the handler's frames");
    drop(load);

    let heap = get(&format!("{admin}/debug/pprof/heap")).await;
    assert_eq!(heap.status(), 200);
    let mut decoded = Vec::new();
    flate2::read::GzDecoder::new(heap.bytes().await.unwrap().as_ref())
        .read_to_end(&mut decoded)
        .expect("the heap profile is gzipped, as Go serves it");
    let heap = Profile::decode(decoded.as_slice()).expect("the heap profile is pprof protobuf");
    assert!(!heap.sample.is_empty(), "live heap samples");
    let kinds: Vec<&str> = heap.sample_type.iter().map(|t| heap.string_table[t.ty as usize].as_str()).collect();
    assert_eq!(kinds, ["inuse_space"]);

    let summary: serde_json::Value = get(&format!("{admin}/debug/pprof/heap/summary")).await.json().await.unwrap();
    assert_eq!(summary["heap_profiling"], true, "{summary}");
    let (allocated, resident) =
        (summary["allocated_bytes"].as_u64().unwrap(), summary["process_resident_bytes"].as_u64().unwrap());
    assert!(allocated > 1 << 20 && resident > allocated, "plausible: {summary}");

    // Bad input gets a clear answer.
    let bad = get(&format!("{admin}/debug/pprof/profile?seconds=100000")).await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("between 1 and 300"));
    let bad = get(&format!("{admin}/debug/pprof/profile?seconds=1&format=png")).await;
    assert_eq!(bad.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_never_holds_the_shutdown_up() {
    let db = DevDatabase::start().await.expect("test postgres");
    let mut app = App::start(&db.url(), &[("APP__SHUTDOWN__PROPAGATION_DELAY", "2s")]);
    let admin = app.admin_base();
    let long = tokio::spawn({
        let url = format!("{admin}/debug/pprof/profile?seconds=30");
        async move { client().get(&url).send().await }
    });
    app.wait_for_msg("CPU profile started");
    let signalled = Instant::now();
    app.sigterm();
    // During the propagation delay the management server still answers,
    // and refuses a new profile.
    let refused = get(&format!("{admin}/debug/pprof/profile?seconds=1")).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.text().await.unwrap().contains("the shutdown has begun"));

    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(20)));
    assert_eq!(code, 0, "{stderr}");
    // Not a speed assertion: a profile that held the shutdown would take its 30 s.
    assert!(signalled.elapsed() < Duration::from_secs(20));
    match long.await.unwrap() {
        Ok(response) => assert_eq!(response.status(), 503, "the running profile was abandoned"),
        Err(error) => panic!("the abandoned profile got no answer: {error}"),
    }
    assert!(
        app.logs().iter().any(|v| v["msg"] == "profile not taken"
            && v["error"].as_str().is_some_and(|e| e.contains("the shutdown began"))),
        "the abandoned profile is logged"
    );
}
