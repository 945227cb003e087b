//! The private dev database never outlives the app (issue #22, item 1),
//! whatever a terminal does to it: a Ctrl-C reaches the whole foreground
//! process group, so a guard in that group would die with the app. Here
//! the app leads its own process group, as in a terminal, and the signals
//! go to the group: two SIGINTs once it is ready, and one during `initdb`.
//! Afterwards no `postgres` serves its folder and the folder is gone.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The app with its dev database (no `database.url`), leading its own
/// process group as a terminal's foreground job does.
fn spawn() -> Child {
    Command::new(env!("CARGO_BIN_EXE_example-app"))
        .env_clear()
        .env("APP__HTTP__BIND", "127.0.0.1:0")
        .env("APP__ADMIN__BIND", "127.0.0.1:0")
        .current_dir(std::env::temp_dir())
        .args(["--log-format", "json"])
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn example-app")
}

/// Reads the app's log as it comes; says when it is serving.
fn drain(app: &mut Child) -> std::sync::mpsc::Receiver<()> {
    use std::io::BufRead;
    let stdout = app.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains("\"msg\":\"serving\"") {
                let _ = tx.send(());
            }
        }
    });
    rx
}

/// Waits until the log says the app serves.
fn wait_until_ready(app: &mut Child) {
    drain(app).recv_timeout(Duration::from_secs(30)).expect("the app never became ready");
}

/// A failed assertion must not leave the app (and its database) running:
/// on a panic, the app's group is killed, and its guard then removes the
/// database as for any killed app.
struct KillOnPanic(i32);

impl Drop for KillOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // SAFETY: kill(2) on a process group this test created.
            unsafe { libc::kill(-self.0, libc::SIGKILL) };
        }
    }
}

/// SIGINT to every process in the app's group, as Ctrl-C does.
fn ctrl_c(app: &Child) {
    let group = i32::try_from(app.id()).unwrap();
    // SAFETY: kill(2) on a process group this test created.
    unsafe { libc::kill(-group, libc::SIGINT) };
}

/// The dev database folders of process `pid`.
fn folders_of(pid: u32) -> Vec<PathBuf> {
    let prefix = format!("orderly-dev-db-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().starts_with(&prefix))
                .map(|e| e.path())
                .collect()
        })
        .unwrap_or_default()
}

/// Processes whose command line names `folder` (a postgres serving it, an initdb filling it).
fn processes_using(folder: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().filter_map(Result::ok) {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.contains(folder) && !cmdline.contains("sh -c") {
                found.push(format!("{}: {cmdline}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Waits until the app's folders are gone and nothing serves them.
fn assert_nothing_left(pid: u32, seen: &[PathBuf]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = folders_of(pid);
        let running: Vec<String> = seen.iter().flat_map(|f| processes_using(&f.display().to_string())).collect();
        if left.is_empty() && running.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left behind: folders {left:?}, processes {running:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_folder(app: &Child) -> Vec<PathBuf> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let folders = folders_of(app.id());
        if !folders.is_empty() {
            return folders;
        }
        assert!(Instant::now() < deadline, "the dev database never started");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn two_ctrl_c_in_a_terminal_leave_no_postgres_and_no_folder() {
    let mut app = spawn();
    let _guard = KillOnPanic(i32::try_from(app.id()).unwrap());
    wait_until_ready(&mut app);
    let folders = folders_of(app.id());
    assert!(folders.iter().any(|f| f.join("data/postmaster.pid").exists()), "its server runs: {folders:?}");
    ctrl_c(&app);
    // Apart enough to count as two (a signal stream coalesces), soon enough
    // to land while phase 5 stops the database (about 130 ms).
    std::thread::sleep(Duration::from_millis(60));
    ctrl_c(&app); // the impatient second one: exit at once (130)
    let status = app.wait().unwrap();
    assert_eq!(status.code(), Some(130), "the second Ctrl-C forces the exit");
    assert_nothing_left(app.id(), &folders);
}

#[test]
fn a_ctrl_c_during_initdb_leaves_no_postgres_and_no_folder() {
    let mut app = spawn();
    let _guard = KillOnPanic(i32::try_from(app.id()).unwrap());
    drain(&mut app);
    let folders = wait_for_folder(&app);
    // The folder exists: initdb is about to run or running.
    std::thread::sleep(Duration::from_millis(150));
    ctrl_c(&app);
    let _ = app.wait();
    assert_nothing_left(app.id(), &folders);
}
