//! A rolling restart under load: two instances share one Postgres behind a
//! proxy that follows their readiness. Each is replaced in turn (a new one
//! starts and becomes ready, then the old one gets SIGTERM, with a
//! propagation delay configured). No client request fails, and every
//! order's confirmation job runs exactly once.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use support::proxy::Proxy;
use support::*;

const INSTANCE_ENV: [(&str, &str); 3] = [
    ("APP__SHUTDOWN__PROPAGATION_DELAY", "500ms"),
    // Requests take a while, so some are always in flight during a restart.
    ("APP__FAULTS__SLOW_AUTH_MS", "20"),
    ("APP__WORKERS__CONCURRENCY", "2"),
];

async fn start_instance(db: &str, proxy: &Proxy) -> App {
    let app = tokio::task::block_in_place(|| App::start(db, &INSTANCE_ENV));
    proxy.add(app.http.unwrap(), app.admin.unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !proxy.is_ready(app.http.unwrap()) {
        assert!(Instant::now() < deadline, "a new instance never became ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app
}

/// SIGTERM, wait for exit 0, then take it out of the endpoints (the pod is gone).
async fn stop_instance(mut app: App, proxy: &Proxy) -> usize {
    app.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(40)));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(app.phases_started(), FIVE_PHASES);
    proxy.remove(app.http.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rolling_restart_under_load_fails_no_request_and_confirms_each_order_once() {
    let db = DevDatabase::start().await.expect("test postgres");
    let proxy = Proxy::start().await;
    let base = format!("http://{}", proxy.addr);
    let old = vec![start_instance(&db.url(), &proxy).await, start_instance(&db.url(), &proxy).await];

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let created = Arc::new(Mutex::new(Vec::<i64>::new()));
    let mut clients = Vec::new();
    for c in 0..6 {
        let (base, stop, failures, created) = (base.clone(), stop.clone(), failures.clone(), created.clone());
        clients.push(tokio::spawn(async move {
            let client = client();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                match create(&client, &base, &new_order(&format!("rolling-{c}-{n}")), Some(&format!("r-{c}-{n}"))).await
                {
                    Ok((201, body)) => {
                        let id = body["id"].as_i64().unwrap();
                        created.lock().push(id);
                        match get_json(&client, &format!("{base}/api/v1/orders/{id}")).await {
                            Ok((200, _)) => {}
                            other => failures.lock().push(format!("GET {id}: {other:?}")),
                        }
                    }
                    other => failures.lock().push(format!("POST: {other:?}")),
                }
            }
        }));
    }

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut served = Vec::new();
    let mut running = Vec::new();
    for old in old {
        running.push(start_instance(&db.url(), &proxy).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
        served.push(stop_instance(old, &proxy).await);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }

    let failures = failures.lock().clone();
    assert!(failures.is_empty(), "{} failed requests: {:?}", failures.len(), &failures[..failures.len().min(10)]);
    assert!(served.iter().all(|n| *n > 0), "the old instances served before they were replaced: {served:?}");

    // Every order's confirmation runs exactly once, across four processes.
    let sql = sql(&db.url()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let states = loop {
        let states = order_states(&sql).await;
        if states.iter().all(|(_, status, ..)| status == "confirmed") {
            break states;
        }
        assert!(Instant::now() < deadline, "orders left unconfirmed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(states.len(), created.lock().len(), "one order per successful create");
    for (id, _, runs, jobs, notifications) in &states {
        assert_eq!((runs, jobs.as_slice(), notifications), (&1, &["done".to_owned()][..], &1), "order {id}");
    }
    for app in running {
        let new_served = stop_instance(app, &proxy).await;
        assert!(new_served > 0, "the new instances took traffic");
    }
}
