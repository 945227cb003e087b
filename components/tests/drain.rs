//! Shutdown under load: nothing accepted is dropped, nothing new gets in
//! after phase 1, probes and metrics keep answering, and a request still
//! running at the end of the budget is cut off, counted, and does not hold
//! the shutdown past its deadline.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use orderly::{
    events::EventKind, events::Timeline, phase::Phase, settings::PhaseBudgets, settings::ShutdownSettings, StopPhase,
};
use parking_lot::Mutex;
use support::*;

fn phase_done(timeline: &Timeline, phase: StopPhase) -> bool {
    timeline.of_kind(EventKind::PhaseFinished).iter().any(|e| e.phase == Some(Phase::Stop(phase)))
}

#[derive(Default)]
struct Outcomes {
    ok: usize,
    /// Never reached the server: refused, or reset before it was accepted.
    not_accepted: usize,
    /// Connection-level failures before any shutdown began: always wrong.
    errors_before_shutdown: Vec<String>,
    /// Any answer other than 200.
    bad_status: Vec<u16>,
}

#[derive(Default)]
struct Probes {
    readyz_during_shutdown: Vec<u16>,
    metrics_during_drain: Vec<u16>,
    connects_after_phase_1: Vec<std::io::ErrorKind>,
}

/// One round: clients keep sending 200 ms requests on fresh connections
/// while the shutdown runs; a prober watches the admin server.
async fn drain_under_load() {
    let settings = ShutdownSettings {
        phases: PhaseBudgets { drain: Duration::from_secs(10), ..PhaseBudgets::default() },
        ..ShutdownSettings::default()
    };
    let svc = start_with(http_config(), admin_config(), settings).await;
    let stop = Arc::new(AtomicBool::new(false));
    let shutting_down = Arc::new(AtomicBool::new(false));
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let client = fresh_connection_client();

    let clients: Vec<_> = (0..24)
        .map(|_| {
            let (stop, shutting_down, outcomes, client) =
                (stop.clone(), shutting_down.clone(), outcomes.clone(), client.clone());
            let url = format!("{}/slow?ms=200", svc.base);
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    match client.get(&url).send().await {
                        Ok(res) if res.status() == 200 => match res.text().await {
                            Ok(body) if body == "done" => outcomes.lock().ok += 1,
                            other => outcomes.lock().errors_before_shutdown.push(format!("body: {other:?}")),
                        },
                        Ok(res) => outcomes.lock().bad_status.push(res.status().as_u16()),
                        Err(e) if shutting_down.load(Ordering::SeqCst) => {
                            outcomes.lock().not_accepted += 1;
                            // Refused: back off a little rather than spin.
                            if e.is_connect() {
                                tokio::time::sleep(Duration::from_millis(2)).await;
                            }
                        }
                        Err(e) => outcomes.lock().errors_before_shutdown.push(format!("{e:?}")),
                    }
                }
            })
        })
        .collect();

    let probes = Arc::new(Mutex::new(Probes::default()));
    let prober = {
        let (stop, probes, timeline) = (stop.clone(), probes.clone(), svc.runtime.timeline().clone());
        let (admin, http_addr) = (svc.admin_base.clone(), svc.http.local_addr().unwrap());
        let client = client.clone();
        let shutting_down = shutting_down.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                if shutting_down.load(Ordering::SeqCst) {
                    if let Ok(res) = client.get(format!("{admin}/readyz")).send().await {
                        probes.lock().readyz_during_shutdown.push(res.status().as_u16());
                    }
                }
                let in_drain =
                    phase_done(&timeline, StopPhase::StopAccepting) && !phase_done(&timeline, StopPhase::Drain);
                if in_drain {
                    if let Ok(res) = client.get(format!("{admin}/metrics")).send().await {
                        probes.lock().metrics_during_drain.push(res.status().as_u16());
                    }
                    if let Err(e) = tokio::net::TcpStream::connect(http_addr).await {
                        probes.lock().connects_after_phase_1.push(e.kind());
                    } else if phase_done(&timeline, StopPhase::StopAccepting) {
                        probes.lock().connects_after_phase_1.push(std::io::ErrorKind::Other);
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };

    // Let load build up: requests are in flight when the signal comes.
    while svc.accepted.count() < 48 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutting_down.store(true, Ordering::SeqCst);
    let report = svc.runtime.shutdown(reason()).await;
    let left_in_flight = svc.http.in_flight();
    stop.store(true, Ordering::SeqCst);
    for task in clients {
        task.await.unwrap();
    }
    prober.await.unwrap();

    assert!(report.is_clean(), "{report:?}");
    assert_eq!(left_in_flight, 0, "phase 2 waited for every accepted request");
    let outcomes = outcomes.lock();
    let probes = probes.lock();
    assert!(outcomes.errors_before_shutdown.is_empty(), "{:?}", outcomes.errors_before_shutdown);
    assert!(outcomes.bad_status.is_empty(), "an accepted request failed: {:?}", outcomes.bad_status);
    assert_eq!(outcomes.ok, svc.accepted.count(), "every request a handler saw was answered 200");
    assert!(outcomes.not_accepted > 0, "clients kept trying and were turned away");
    assert!(
        !probes.readyz_during_shutdown.is_empty() && probes.readyz_during_shutdown.iter().all(|s| *s == 503),
        "{:?}",
        probes.readyz_during_shutdown
    );
    assert!(!probes.metrics_during_drain.is_empty(), "the prober saw the drain");
    assert!(probes.metrics_during_drain.iter().all(|s| *s == 200), "{:?}", probes.metrics_during_drain);
    assert!(
        probes.connects_after_phase_1.iter().all(|k| *k == std::io::ErrorKind::ConnectionRefused),
        "new connections are refused after phase 1: {:?}",
        probes.connects_after_phase_1
    );
    assert!(!probes.connects_after_phase_1.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_under_load_drops_nothing_repeatedly() {
    for _ in 0..3 {
        drain_under_load().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_running_at_the_end_of_the_budget_is_cut_off_and_counted() {
    let settings = ShutdownSettings {
        phases: PhaseBudgets { drain: Duration::from_millis(400), ..PhaseBudgets::default() },
        ..ShutdownSettings::default()
    };
    let svc = start_with(http_config(), admin_config(), settings).await;
    let admin = svc.admin_base.clone();
    let hung = tokio::spawn(fresh_connection_client().get(format!("{}/hang", svc.base)).send());
    while svc.accepted.count() < 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let metrics_before = client().get(format!("{admin}/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics_before.contains("http_requests_cut_off_total 0"), "{metrics_before}");

    let report = svc.runtime.shutdown(reason()).await;

    let res = hung.await.unwrap().expect("the cut-off request gets an answer");
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["connection"], "close");
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"]["code"], "shutting_down");
    let problem = report.problems.iter().find(|p| p.component == "http").expect("the drain reports the cut-off");
    assert!(problem.error.contains("1 request(s)"), "{problem:?}");
    assert_eq!(problem.event, EventKind::Failed, "the hook ended by itself, within its budget");
    let timeline = svc.runtime.timeline();
    assert!(phase_done(timeline, StopPhase::Close), "the shutdown went on to the end");
    assert!(timeline.position("admin", EventKind::Stopped, Some(Phase::Stop(StopPhase::Close))).is_some());
}
