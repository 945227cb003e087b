//! SIGHUP against the real binary, under a load of creates and reads:
//! settings that can change live do (the pool's size, the workers'
//! concurrency, the request timeout, the orders' TTLs, metrics push) with
//! nothing stopped and no request failed; a new database URL restarts the
//! graph from the pool onto a second server holding a copy of the data,
//! with nothing failed but 503s that say when to retry; a component
//! enabled and then disabled again (`faults`) starts and stops with only
//! its optional dependent (`orders`) restarting.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use support::*;

/// The config file of a test: everything a reload may change is here, not
/// in the environment (which wins over the file and does not change).
fn write_config(path: &std::path::Path, database_url: &str, extra: &str) {
    let text = format!(
        "[database]\nurl = \"{database_url}\"\npool_size = 4\n\n[workers]\nconcurrency = 2\npoll_interval = \"50ms\"\n\n\
         [http]\nrequest_timeout = \"30s\"\n\n[orders]\ncache_ttl = \"5m\"\npending_cache_ttl = \"1s\"\n\n{extra}"
    );
    std::fs::write(path, text).unwrap();
}

fn spawn_with_file(path: &std::path::Path) -> App {
    let env: Vec<(String, String)> = [
        ("APP__HTTP__BIND", "127.0.0.1:0"),
        ("APP__ADMIN__BIND", "127.0.0.1:0"),
        ("APP__HTTP__WORKERS", "2"),
        ("APP__HTTP__ACCESS_LOG", "false"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let mut app = App::spawn(&env, &["--config", &path.to_string_lossy()]);
    app.admin = Some(app.wait_for_msg("management server listening")["addr"].as_str().unwrap().parse().unwrap());
    app.http = Some(app.wait_for_msg("serving")["addr"].as_str().unwrap().parse().unwrap());
    app
}

/// What the load saw.
#[derive(Default)]
struct Load {
    created: Mutex<Vec<i64>>,
    reads: AtomicUsize,
    /// 503 with `Retry-After`: the app said when to come back.
    retry_later: AtomicUsize,
    failed: Mutex<Vec<String>>,
}

/// Clients creating an order and reading it back, until `stop`.
fn run_load(base: String, clients: usize, stop: Arc<AtomicBool>, load: Arc<Load>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|n| {
            let (base, stop, load) = (base.clone(), stop.clone(), load.clone());
            tokio::spawn(async move {
                let client = client();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let key = format!("load-{n}-{i}-{}", std::process::id());
                    let created = create(&client, &base, &new_order("load"), Some(&key)).await;
                    let id = match created {
                        Ok((201, body)) => body["id"].as_i64().unwrap_or_default(),
                        other => {
                            note(&load, other.map(|(status, body)| (status, body.to_string())), "create");
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            continue;
                        }
                    };
                    load.created.lock().push(id);
                    let read =
                        client.get(format!("{base}/api/v1/orders/{id}")).header("Authorization", bearer()).send().await;
                    match read {
                        Ok(response) if response.status() == 200 => {
                            load.reads.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(response) => {
                            let retry = response.headers().contains_key("retry-after");
                            let status = response.status().as_u16();
                            note(&load, Ok((status, format!("retry-after: {retry}"))), "read");
                        }
                        Err(error) => note(&load, Err(error), "read"),
                    }
                }
            })
        })
        .collect()
}

fn note(load: &Load, outcome: reqwest::Result<(u16, String)>, what: &str) {
    match outcome {
        Ok((503, body)) if !body.contains("retry-after: false") => {
            load.retry_later.fetch_add(1, Ordering::Relaxed);
        }
        Ok((status, body)) => load.failed.lock().push(format!("{what}: {status} {body}")),
        Err(error) => load.failed.lock().push(format!("{what}: {error:?}")),
    }
}

/// Waits until every order is confirmed, and checks each was confirmed
/// exactly once (one run of its job, one notification).
async fn all_confirmed_once(url: &str, expected: usize) {
    let db = sql(url).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let states = order_states(&db).await;
        let confirmed = states.iter().filter(|s| s.1 == "confirmed").count();
        if states.len() >= expected && confirmed == states.len() {
            for (id, _, runs, jobs, notifications) in &states {
                assert_eq!((*runs, *notifications), (1, 1), "order {id}: jobs {jobs:?}");
            }
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{confirmed} of {} confirmed", states.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The components that began to start after log record `seen`, in order.
fn starts_after(app: &App, seen: usize) -> Vec<String> {
    let starting = app.logs()[seen..].iter().filter(|v| v["event"] == "starting").cloned().collect::<Vec<_>>();
    starting.iter().map(|v| v["component"].as_str().unwrap_or_default().to_string()).collect()
}

fn stops_after(app: &App, seen: usize) -> Vec<serde_json::Value> {
    app.logs()[seen..].iter().filter(|v| v["event"] == "stopping").cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_under_load_changes_pool_workers_timeout_ttls_and_push_in_place() {
    let db = DevDatabase::start().await.expect("test postgres");
    let gateway = Pushgateway::start();
    let dir = scratch_dir("live");
    let file = dir.join("app.toml");
    write_config(&file, &db.url(), "");
    let app = spawn_with_file(&file);
    let admin = app.admin_base();
    until_status(&client(), &format!("{admin}/readyz"), 200).await;
    let (stop, load) = (Arc::new(AtomicBool::new(false)), Arc::new(Load::default()));
    let clients = run_load(app.base(), 4, stop.clone(), load.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    let seen = app.logs().len();
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("pool_size = 4", "pool_size = 12")
        .replace("concurrency = 2", "concurrency = 6")
        .replace("request_timeout = \"30s\"", "request_timeout = \"10s\"")
        .replace("cache_ttl = \"5m\"", "cache_ttl = \"10m\"")
        .replace("pending_cache_ttl = \"1s\"", "pending_cache_ttl = \"2s\"");
    std::fs::write(&file, &text).unwrap();
    app.signal(libc::SIGHUP);
    let reloaded = app.wait_for_msg("reloaded");
    let applied = reloaded["applied"].as_str().unwrap_or_default().to_string();
    for component in ["database", "workers", "http", "orders"] {
        assert!(applied.contains(component), "{component} applied in place: {reloaded}");
    }
    assert_eq!(reloaded["restarted"], "", "{reloaded}");
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Then metrics push, turned on by the next SIGHUP.
    let push = format!(
        "[metrics.push]\nurl = \"{}\"\ninterval = \"100ms\"\njob = \"live\"\ninstance = \"one\"\n",
        gateway.url
    );
    std::fs::write(&file, format!("{text}\n{push}")).unwrap();
    app.signal(libc::SIGHUP);
    app.wait_for("the metrics reload", |v| v["event"] == "reloaded" && v["component"] == "metrics");
    let pushed = async {
        while pushed_value(&gateway, "orders_created_total", &[r#"job="live""#]).await.is_none() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), pushed).await.expect("pushes began without a restart");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_load(&stop, clients).await;
    assert!(load.failed.lock().is_empty(), "failed requests: {:?}", load.failed.lock());
    assert_eq!(load.retry_later.load(Ordering::Relaxed), 0, "nothing was unavailable");
    assert!(stops_after(&app, seen).is_empty(), "nothing stopped: {:#?}", stops_after(&app, seen));
    let created = load.created.lock().len();
    assert!(created > 20 && load.reads.load(Ordering::Relaxed) == created, "{created} created");
    confirmed_counted_and_clean_exit(app, &db.url(), created, 2).await;
}

/// Ends the load and waits for its clients.
async fn stop_load(stop: &AtomicBool, clients: Vec<tokio::task::JoinHandle<()>>) {
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
}

/// Every one of the `created` orders is confirmed exactly once, `applied`
/// reloads are counted as such, and SIGTERM ends the app cleanly.
async fn confirmed_counted_and_clean_exit(mut app: App, url: &str, created: usize, applied: usize) {
    all_confirmed_once(url, created).await;
    let metrics = client().get(format!("{}/metrics", app.admin_base())).send().await.unwrap().text().await.unwrap();
    let counted = format!(r#"orderly_reloads_total{{result="applied"}} {applied}"#);
    assert!(metrics.contains(&counted), "{metrics}");
    app.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 0, "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_moving_the_database_restarts_the_graph_onto_a_copy_with_only_retryable_503s() {
    let (first, second) =
        (DevDatabase::start().await.expect("postgres"), DevDatabase::start().await.expect("postgres"));
    let dir = scratch_dir("move");
    let file = dir.join("app.toml");
    write_config(&file, &first.url(), "");
    let mut app = spawn_with_file(&file);
    let admin = app.admin_base();
    until_status(&client(), &format!("{admin}/readyz"), 200).await;
    let c = client();
    let mut before = Vec::new();
    for n in 0..20 {
        let (status, body) = create(&c, &app.base(), &new_order(&format!("before {n}")), None).await.unwrap();
        assert_eq!(status, 201, "{body}");
        before.push(body["id"].as_i64().unwrap());
    }
    all_confirmed_once(&first.url(), before.len()).await;
    // The operator's copy: everything, jobs included.
    let dump = std::process::Command::new("pg_dump").args(["--no-owner", "-d", &first.url()]).output().unwrap();
    assert!(dump.status.success(), "{}", String::from_utf8_lossy(&dump.stderr));
    let mut psql = std::process::Command::new("psql")
        .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", &second.url()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(psql.stdin.as_mut().unwrap(), &dump.stdout).unwrap();
    drop(psql.stdin.take());
    assert!(psql.wait().unwrap().success());

    // Reads keep coming while the graph moves; creates begin after (a write
    // to the old server in between would not be in the copy).
    let (stop, load) = (Arc::new(AtomicBool::new(false)), Arc::new(Load::default()));
    let readers: Vec<_> = (0..3)
        .map(|n| {
            let (base, stop, load, ids) = (app.base(), stop.clone(), load.clone(), before.clone());
            tokio::spawn(async move {
                let client = client();
                let mut i = n;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let url = format!("{base}/api/v1/orders/{}", ids[i % ids.len()]);
                    match client.get(&url).header("Authorization", bearer()).send().await {
                        Ok(r) if r.status() == 200 => {
                            load.reads.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            let retry = r.headers().contains_key("retry-after");
                            note(&load, Ok((r.status().as_u16(), format!("retry-after: {retry}"))), "read");
                        }
                        Err(e) => note(&load, Err(e), "read"),
                    }
                }
            })
        })
        .collect();
    let not_ready = Arc::new(AtomicUsize::new(0));
    let prober = {
        let (stop, not_ready, admin) = (stop.clone(), not_ready.clone(), admin.clone());
        tokio::spawn(async move {
            let client = client();
            while !stop.load(Ordering::Relaxed) {
                if client.get(format!("{admin}/readyz")).send().await.is_ok_and(|r| r.status() == 503) {
                    not_ready.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The new server answers its first connections only after 400 ms (its
    // postmaster is paused): long enough that the prober must see the graph
    // not ready while it restarts, however busy this machine is.
    let paused = Paused::new(postmaster_pid(&second));
    let resume = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        drop(paused);
    });
    let text = std::fs::read_to_string(&file).unwrap().replace(&first.url(), &second.url());
    std::fs::write(&file, text).unwrap();
    app.signal(libc::SIGHUP);
    let reloaded = app.wait_for_msg("reloaded");
    resume.await.unwrap();
    assert!(reloaded["restarted"].as_str().unwrap_or_default().contains("database"), "{reloaded}");
    assert_eq!(reloaded["failed"], "", "{reloaded}");
    until_status(&client(), &format!("{admin}/readyz"), 200).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut after = Vec::new();
    for n in 0..10 {
        let (status, body) = create(&c, &app.base(), &new_order(&format!("after {n}")), None).await.unwrap();
        assert_eq!(status, 201, "{body}");
        after.push(body["id"].as_i64().unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    for reader in readers {
        reader.await.unwrap();
    }
    prober.await.unwrap();
    assert!(load.failed.lock().is_empty(), "failed other than 503 + Retry-After: {:?}", load.failed.lock());
    assert!(load.reads.load(Ordering::Relaxed) > 0);
    assert!(not_ready.load(Ordering::Relaxed) > 0, "readiness went not-ready while the graph restarted");
    // The new orders are on the new server, confirmed there once each; the old one has none of them.
    all_confirmed_once(&second.url(), before.len() + after.len()).await;
    let old = sql(&first.url()).await;
    let on_old: i64 = old.query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get(0);
    assert_eq!(on_old as usize, before.len(), "nothing written to the old server after the move");

    app.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 0, "{stderr}");
}

/// The pid of `db`'s postmaster, from its `postmaster.pid`.
fn postmaster_pid(db: &DevDatabase) -> i32 {
    let file = std::fs::read_to_string(db.dir().join("data").join("postmaster.pid")).expect("postmaster.pid");
    file.lines().next().and_then(|line| line.trim().parse().ok()).expect("a pid on its first line")
}

/// A process stopped (SIGSTOP) until this is dropped, even by a failing
/// test: a server left stopped would hang its own shutdown.
struct Paused(i32);

impl Paused {
    fn new(pid: i32) -> Self {
        // SAFETY: kill(2) on a process this test started has no memory-safety preconditions.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        Self(pid)
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        // SAFETY: as in `new`.
        unsafe { libc::kill(self.0, libc::SIGCONT) };
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_enabling_and_disabling_a_component_under_load_restarts_only_its_optional_dependent() {
    let db = DevDatabase::start().await.expect("test postgres");
    let dir = scratch_dir("toggle");
    let file = dir.join("app.toml");
    // `faults` off at start: in the graph, not started, not probed.
    let off = "[components.faults]\nenabled = false\n";
    write_config(&file, &db.url(), off);
    let app = spawn_with_file(&file);
    let admin = app.admin_base();
    until_status(&client(), &format!("{admin}/readyz"), 200).await;
    let probe = || async {
        let body = client().get(format!("{admin}/readyz")).send().await.unwrap().text().await.unwrap();
        body.contains("\"faults\"")
    };
    assert!(!probe().await, "a disabled component is not probed");
    let (stop, load) = (Arc::new(AtomicBool::new(false)), Arc::new(Load::default()));
    let clients = run_load(app.base(), 4, stop.clone(), load.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;

    // On: `faults` starts and `orders`, which takes it if it is there, starts again.
    let seen = app.logs().len();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace(off, "[components.faults]\nenabled = true\n")).unwrap();
    app.signal(libc::SIGHUP);
    let reloaded = app.wait_for_msg("reloaded");
    assert_eq!((reloaded["enabled"].as_str(), reloaded["failed"].as_str()), (Some("faults"), Some("")), "{reloaded}");
    assert_eq!(starts_after(&app, seen), ["faults", "orders"], "faults, then orders again; nothing else");
    until_status(&client(), &format!("{admin}/readyz"), 200).await;
    assert!(probe().await, "an enabled component is probed");
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Off again: it stops through its phases, and `orders` runs on without it.
    let seen = app.logs().len();
    std::fs::write(&file, text).unwrap();
    app.signal(libc::SIGHUP);
    app.wait_for("the second reload", |v| v["msg"] == "reloaded" && v["disabled"] == "faults");
    assert_eq!(starts_after(&app, seen), ["orders"], "orders again, without faults; nothing else");
    until_status(&client(), &format!("{admin}/readyz"), 200).await;
    assert!(!probe().await, "disabled again, not probed");
    tokio::time::sleep(Duration::from_millis(300)).await;

    stop_load(&stop, clients).await;
    assert!(load.failed.lock().is_empty(), "failed other than 503 + Retry-After: {:?}", load.failed.lock());
    let created = load.created.lock().len();
    assert!(created > 20, "{created} created");
    eprintln!("{created} orders created, {} answers 503 + Retry-After", load.retry_later.load(Ordering::Relaxed));
    confirmed_counted_and_clean_exit(app, &db.url(), created, 2).await;
}
