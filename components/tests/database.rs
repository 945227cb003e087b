//! The Postgres pool against real, throwaway Postgres servers (one per
//! test, on a free loopback port, removed afterwards).

use std::sync::Arc;
use std::time::Duration;

use orderly::{config::Secret, events::EventKind, runtime::StartError, Runtime, ShutdownReason};
use orderly_components::postgres::{Database, DatabaseConfig, DbError, DevDatabase};

fn scratch_dir(files: &[(&str, &str)]) -> std::path::PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("orderly-db-test-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, sql) in files {
        std::fs::write(dir.join(name), sql).unwrap();
    }
    dir
}

fn config(url: String) -> DatabaseConfig {
    DatabaseConfig {
        url: Secret::new(url),
        migrations: String::new(),
        application_name: format!("orderly-test-{}", std::process::id()),
        ..DatabaseConfig::default()
    }
}

async fn observer(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.expect("observer connects");
    tokio::spawn(connection);
    client
}

async fn connections_of(client: &tokio_postgres::Client, app: &str) -> i64 {
    client.query_one("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", &[&app]).await.unwrap().get(0)
}

fn reason() -> ShutdownReason {
    ShutdownReason::Signal("SIGTERM")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase_5_waits_for_checked_out_connections_and_leaves_none_behind() {
    let server = DevDatabase::start().await.expect("a throwaway postgres");
    let config = config(server.url());
    let app = config.application_name.clone();
    let db = Arc::new(Database::new(config));
    let runtime = Runtime::builder().component_arc(db.clone()).build().unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();

    let held: Vec<_> =
        futures::future::join_all((0..3).map(|_| db.get())).await.into_iter().map(Result::unwrap).collect();
    let watcher = observer(&server.url()).await;
    assert!(connections_of(&watcher, &app).await >= 3);
    // One connection is still checked out when the shutdown begins; it comes back during phase 5.
    let mut held = held.into_iter();
    let late = held.next().unwrap();
    drop(held);
    let returner = tokio::spawn(async move {
        late.query_one("SELECT pg_sleep(0.2)", &[]).await.unwrap();
        drop(late);
    });
    let report = runtime.shutdown(reason()).await;
    returner.await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(matches!(db.get().await, Err(DbError::NotStarted)), "the pool is gone after phase 5");

    let mut left = connections_of(&watcher, &app).await;
    for _ in 0..100 {
        if left == 0 {
            break;
        }
        // The server notices closed sockets asynchronously.
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = connections_of(&watcher, &app).await;
    }
    assert_eq!(left, 0, "no connection of this process is left on the server");
    drop(watcher);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_run_once_when_replicas_start_together() {
    let server = DevDatabase::start().await.expect("a throwaway postgres");
    let dir = scratch_dir(&[
        ("0001_orders.sql", "CREATE TABLE orders (id BIGSERIAL PRIMARY KEY, note TEXT NOT NULL);"),
        ("0002_seed.sql", "INSERT INTO orders (note) VALUES ('seeded once');"),
    ]);
    let replicas: Vec<Runtime> = (0..3)
        .map(|_| {
            let config = DatabaseConfig { migrations: dir.display().to_string(), ..config(server.url()) };
            Runtime::builder().component(Database::new(config)).build().unwrap()
        })
        .collect();
    let started = futures::future::join_all(replicas.iter().map(|r| r.start())).await;
    assert!(started.iter().all(Result::is_ok), "every replica starts");

    let client = observer(&server.url()).await;
    let seeded: i64 = client.query_one("SELECT count(*) FROM orders", &[]).await.unwrap().get(0);
    let versions: i64 = client.query_one("SELECT count(*) FROM orderly_migrations", &[]).await.unwrap().get(0);
    assert_eq!((seeded, versions), (1, 2), "each migration ran exactly once");
    for replica in &replicas {
        assert!(replica.shutdown(reason()).await.is_clean());
    }
    drop(client);
    std::fs::remove_dir_all(dir).unwrap();
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_at_once_with_a_clear_message() {
    let server = DevDatabase::start_on(None, Some("right-password".into())).await.expect("a throwaway postgres");
    let url = format!("postgres://postgres:wrong-password@127.0.0.1:{}/postgres", server.port());
    let runtime = Runtime::builder().component(Database::new(config(url))).build().unwrap();
    let outcome = runtime.start().await.expect_err("the password is wrong");
    let StartError::Failed { failure, .. } = *outcome else { panic!("expected a start failure") };
    assert!(failure.error.contains("password authentication failed"), "{}", failure.error);
    assert!(failure.error.contains("not retried"), "{}", failure.error);
    assert!(!failure.error.contains("wrong-password"), "the password never appears: {}", failure.error);
    assert!(runtime.timeline().of_kind(EventKind::Retrying).is_empty(), "no retry");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_comes_up_a_little_later_is_fine() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let runtime = Arc::new(Runtime::builder().component(Database::new(config(url))).build().unwrap());
    let starting = tokio::spawn({
        let runtime = runtime.clone();
        async move { runtime.start().await.map_err(|e| format!("{e:?}")) }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!starting.is_finished(), "start keeps trying while nothing listens");
    let server = DevDatabase::start_on(Some(port), None).await.expect("postgres on the awaited port");
    starting.await.unwrap().expect("start succeeds once the database is up");
    assert!(runtime.shutdown(reason()).await.is_clean());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_pool_makes_callers_wait_then_fail_with_unavailable() {
    let server = DevDatabase::start().await.expect("a throwaway postgres");
    let config = DatabaseConfig { pool_size: 1, wait_timeout: Duration::from_millis(100), ..config(server.url()) };
    let db = Arc::new(Database::new(config));
    let runtime = Runtime::builder().component_arc(db.clone()).build().unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();

    let only = db.get().await.unwrap();
    let error = db.get().await.expect_err("the only connection is taken");
    assert!(matches!(error, DbError::Unavailable(_)), "{error:?}");
    let api: orderly_components::http::ApiError = error.into();
    assert_eq!(api.status(), 503, "handlers answer 503");
    drop(only);
    drop(db.get().await.expect("a connection is free again"));
    assert!(runtime.shutdown(reason()).await.is_clean());
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_url_it_runs_a_dev_database_and_removes_it() {
    let dir = scratch_dir(&[("0001_t.sql", "CREATE TABLE t (x INT);")]);
    let config = DatabaseConfig { migrations: dir.display().to_string(), ..config(String::new()) };
    let db = Arc::new(Database::new(config));
    let runtime = Runtime::builder().component_arc(db.clone()).build().unwrap();
    runtime.start().await.map_err(|e| format!("{e:?}")).unwrap();
    let port = db.dev_database_port().await.expect("a dev database runs");
    let client = db.get().await.unwrap();
    client.execute("INSERT INTO t VALUES (1)", &[]).await.unwrap();
    drop(client);
    assert!(runtime.shutdown(reason()).await.is_clean());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "the dev database is stopped");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tells_an_unavailable_database_from_a_bad_query() {
    use orderly_components::postgres::is_unavailable;
    let mut server = DevDatabase::start().await.expect("a throwaway postgres");
    let client = observer(&server.url()).await;

    let syntax = client.query("SELEKT 1", &[]).await.unwrap_err();
    assert!(!is_unavailable(&syntax), "a syntax error is ours: {syntax}");
    let row = client.query_one("SELECT 'text'::TEXT", &[]).await.unwrap();
    let conversion = row.try_get::<_, i64>(0).unwrap_err();
    assert!(!is_unavailable(&conversion), "a type mismatch is ours: {conversion}");

    // Another session ends ours, as an operator or a failover would.
    let pid: i32 = client.query_one("SELECT pg_backend_pid()", &[]).await.unwrap().get(0);
    let admin = observer(&server.url()).await;
    admin.execute("SELECT pg_terminate_backend($1)", &[&pid]).await.unwrap();
    let terminated = client.query("SELECT 1", &[]).await.unwrap_err();
    assert!(is_unavailable(&terminated), "a terminated session: {terminated}");

    let survivor = observer(&server.url()).await;
    server.suspend().await.unwrap();
    let stopped = survivor.query("SELECT 1", &[]).await.unwrap_err();
    assert!(is_unavailable(&stopped), "a stopped server: {stopped}");
}

#[tokio::test]
async fn a_kept_dev_database_keeps_its_data_from_one_run_to_the_next() {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let dir = std::env::temp_dir().join(format!("orderly-kept-dev-db-{}-{nanos}", std::process::id()));
    let first = DevDatabase::start_kept(dir.clone()).await.expect("a kept postgres");
    let client = observer(&first.url()).await;
    client
        .batch_execute("CREATE TABLE kept (note text); INSERT INTO kept VALUES ('from the first run')")
        .await
        .unwrap();
    drop(client);
    let url = first.url();
    first.stop().await.unwrap();
    assert!(dir.join("data/PG_VERSION").is_file(), "the folder and its database stay");
    assert!(tokio_postgres::connect(&url, tokio_postgres::NoTls).await.is_err(), "but its server stopped");

    let second = DevDatabase::start_kept(dir.clone()).await.expect("the same postgres again");
    let client = observer(&second.url()).await;
    let note: String = client.query_one("SELECT note FROM kept", &[]).await.unwrap().get(0);
    assert_eq!(note, "from the first run");
    drop(client);
    second.stop().await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}
