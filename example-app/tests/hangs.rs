//! A job that ignores cancellation and runs far past phase 3's budget:
//! the shutdown still ends within its deadline, names the job it cut off
//! and gives it back to the queue; the next instance completes it once.

mod support;

use std::time::{Duration, Instant};

use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_job_is_cut_off_given_back_and_finished_by_the_next_instance() {
    let db = DevDatabase::start().await.expect("test postgres");
    let sql = sql(&db.url()).await;
    let mut first =
        App::start(&db.url(), &[("APP__FAULTS__SLOW_JOB_MS", "600000"), ("APP__SHUTDOWN__PHASES__STOP_WORKERS", "1s")]);
    let client = client();
    let (status, order) = create(&client, &first.base(), &new_order("patient customer"), None).await.unwrap();
    assert_eq!(status, 201);
    let id = order["id"].as_i64().unwrap();

    // Wait until its job is running in the first instance.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states = order_states(&sql).await;
        if states.iter().any(|(o, _, _, jobs, _)| *o == id && jobs == &["running"]) {
            break;
        }
        assert!(Instant::now() < deadline, "the job never started: {states:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    first.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| first.wait_exit(Duration::from_secs(40)));
    assert_eq!(code, 0, "the shutdown ended within its deadline, by itself: {stderr}");
    let cut = first.wait_for("cut-off job", |v| v["msg"].as_str().is_some_and(|m| m.starts_with("job cut off")));
    assert_eq!(cut["kind"], "send_confirmation");
    let job_id: i64 = sql
        .query_one("SELECT id FROM orderly_jobs WHERE (payload->>'order_id')::BIGINT = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(cut["job"].as_i64(), Some(job_id), "names the job: {cut}");
    let phases = first.phases_started();
    assert_eq!(phases, FIVE_PHASES);
    let states = order_states(&sql).await;
    assert_eq!(states, [(id, "pending".to_owned(), 0, vec!["ready".to_owned()], 0)], "given back, no effects");

    let mut second = App::start(&db.url(), &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let states = order_states(&sql).await;
        if states[0].1 == "confirmed" {
            assert_eq!(states, [(id, "confirmed".to_owned(), 1, vec!["done".to_owned()], 1)], "exactly once");
            break;
        }
        assert!(Instant::now() < deadline, "the next instance did not finish the job: {states:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    second.sigterm();
    let (code, stderr) = tokio::task::block_in_place(|| second.wait_exit(Duration::from_secs(30)));
    assert_eq!(code, 0, "{stderr}");
}
