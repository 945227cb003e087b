//! SIGTERM while clients create and read orders, five times in a row
//! against one database: no request sent before the signal fails,
//! `/readyz` answers 503 from the signal on, the five phases run in order,
//! the last counts reach a real Pushgateway, no job is lost, exit 0.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use support::*;

/// What one client request saw.
struct Outcome {
    sent: Instant,
    /// The status, or `None` when the connection was refused or reset.
    status: Option<u16>,
    created: bool,
}

async fn clients(base: String, count: usize, stop: Arc<AtomicBool>, outcomes: Arc<Mutex<Vec<Outcome>>>) {
    let mut tasks = Vec::new();
    for c in 0..count {
        let (base, stop, outcomes) = (base.clone(), stop.clone(), outcomes.clone());
        tasks.push(tokio::spawn(async move {
            let client = client();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let sent = Instant::now();
                let result = create(&client, &base, &new_order(&format!("client-{c}-{n}")), None).await;
                let (status, id) = match result {
                    Ok((status, body)) => (Some(status), body["id"].as_i64()),
                    Err(_) => (None, None),
                };
                outcomes.lock().push(Outcome { sent, status, created: status == Some(201) });
                let Some(id) = id else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let sent = Instant::now();
                let status = get_json(&client, &format!("{base}/api/v1/orders/{id}")).await.ok().map(|(s, _)| s);
                outcomes.lock().push(Outcome { sent, status, created: false });
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_loses_nothing_five_times() {
    let db = DevDatabase::start().await.expect("test postgres");
    let gateway = Pushgateway::start();
    let sql = sql(&db.url()).await;
    for round in 0..5 {
        let instance = format!("round-{round}");
        let mut app = App::start(
            &db.url(),
            &[
                ("APP__SHUTDOWN__PROPAGATION_DELAY", "300ms"),
                // Requests take a while, so several are in flight at the signal.
                ("APP__FAULTS__SLOW_AUTH_MS", "40"),
                ("APP__METRICS__PUSH__URL", &gateway.url),
                ("APP__METRICS__PUSH__INTERVAL", "1h"),
                ("APP__METRICS__PUSH__INSTANCE", &instance),
            ],
        );
        let admin = app.admin_base();
        let stop = Arc::new(AtomicBool::new(false));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let load = tokio::spawn(clients(app.base(), 8, stop.clone(), outcomes.clone()));

        tokio::time::sleep(Duration::from_millis(400 + 50 * round)).await;
        let in_flight_before = outcomes.lock().len();
        let signalled = Instant::now();
        app.sigterm();
        // The probe, from the moment the app has the signal until the
        // management server closes. (A probe sent the instant `kill`
        // returns can be answered before the signal is delivered: no
        // process can withdraw readiness before it knows.)
        tokio::task::block_in_place(|| {
            app.wait_for("the shutdown request", |v| v["event"] == "shutdown_requested");
        });
        let probe = client();
        let mut readiness = Vec::new();
        while let Ok(response) = probe.get(format!("{admin}/readyz")).send().await {
            readiness.push(response.status().as_u16());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (code, stderr) = tokio::task::block_in_place(|| app.wait_exit(Duration::from_secs(40)));
        stop.store(true, Ordering::SeqCst);
        load.await.unwrap();

        assert_eq!(code, 0, "round {round}: {stderr}");
        assert!(in_flight_before > 0, "round {round}: the load had started");
        let outcomes = std::mem::take(&mut *outcomes.lock());
        let before: Vec<&Outcome> = outcomes.iter().filter(|o| o.sent < signalled).collect();
        let failed: Vec<Option<u16>> =
            before.iter().filter(|o| !matches!(o.status, Some(200 | 201))).map(|o| o.status).collect();
        assert!(failed.is_empty(), "round {round}: requests sent before SIGTERM failed: {failed:?}");
        let server_errors: Vec<u16> =
            outcomes.iter().filter_map(|o| o.status).filter(|s| *s >= 500 && *s != 503).collect();
        assert!(server_errors.is_empty(), "round {round}: {server_errors:?}");
        assert!(readiness.contains(&503), "round {round}: /readyz never answered 503 during the drain: {readiness:?}");
        assert!(!readiness.contains(&200), "round {round}: /readyz answered 200 after SIGTERM: {readiness:?}");
        assert_eq!(app.phases_started(), FIVE_PHASES, "round {round}");

        let created = outcomes.iter().filter(|o| o.created).count() as f64;
        let pushed = pushed_value(&gateway, "orders_created_total", &[&format!("instance=\"{instance}\"")]).await;
        assert_eq!(pushed, Some(created), "round {round}: the final push carries every created order");

        // None lost: every order's job is done (and the order confirmed once) or still queued.
        for (id, status, runs, jobs, notifications) in order_states(&sql).await {
            match (jobs.as_slice(), status.as_str()) {
                ([job], "confirmed") if job == "done" => assert_eq!((runs, notifications), (1, 1), "order {id}"),
                ([job], "pending") if job == "ready" => assert_eq!((runs, notifications), (0, 0), "order {id}"),
                other => panic!("round {round}: order {id} is {other:?}"),
            }
        }
    }
    let orders: i64 = sql.query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get(0);
    assert!(orders >= 5, "{orders} orders over five rounds");
}
