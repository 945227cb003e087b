//! `<app> analyze` (issue #24) against the real child process, whose `api`
//! starts in `api.start_ms` after `store` is ready and drains in
//! `api.drain_ms`: the critical chain names the chain that sleeps and its
//! durations match the sleeps; blame's order follows them; `compare` flags
//! a component made 50 ms slower and not an unchanged one; the JSON's keys
//! are the same from run to run; a failing start is reported as such; a
//! `prod` profile is refused without `--yes`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("orderly-analyze-{name}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `lifecycle-child analyze <args>` in `dir` with `env`.
fn analyze(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lifecycle-child"))
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir)
        .arg("analyze")
        .args(args)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A JSON report with `api` starting in `start_ms`.
fn report(dir: &Path, start_ms: u64, file: &str) -> serde_json::Value {
    let start = format!("api.start_ms={start_ms}");
    let out = dir.join(file);
    let output =
        analyze(dir, &[], &["--runs", "3", "--format", "json", "-o", out.to_str().unwrap(), "--set", &start, "blame"]);
    assert!(output.status.success(), "{}", text(&output));
    serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap()
}

#[test]
fn the_critical_chain_names_the_chain_that_sleeps_with_its_durations() {
    let dir = Dir::new("chain");
    let output = analyze(
        &dir.0,
        &[],
        &["--runs", "3", "--set", "api.start_ms=120", "--set", "api.drain_ms=60", "critical-chain"],
    );
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let startup =
        lines.iter().position(|l| l.starts_with("startup, ready after")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(lines[startup + 1].starts_with("api @"), "{stdout}");
    assert!(lines[startup + 2].starts_with("└─store @"), "{stdout}");
    // api's link: its 120 ms start, within the noise of a loaded machine.
    let took: f64 = lines[startup + 1]
        .split('+')
        .nth(1)
        .and_then(|t| t.split("ms").next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!((120.0..250.0).contains(&took), "{took} in {stdout}");
    let drain = lines.iter().position(|l| l.starts_with("stop phase drain")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(lines[drain + 1].starts_with("api @"), "{stdout}");
}

#[test]
fn blame_lists_the_slowest_first() {
    let dir = Dir::new("blame");
    let output = analyze(&dir.0, &[], &["--runs", "2", "--set", "api.start_ms=80", "blame"]);
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let rows: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("startup")).skip(2).take(2).collect();
    assert!(rows[0].contains("api ("), "{stdout}");
    assert!(rows[1].contains("store ("), "{stdout}");
    assert!(stdout.contains("2 of 2 runs completed"), "{stdout}");
}

/// Every key path of a JSON value (array elements share their path).
fn keys(value: &serde_json::Value, prefix: &str, into: &mut BTreeSet<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                let path = format!("{prefix}.{key}");
                into.insert(path.clone());
                keys(value, &path, into);
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|item| keys(item, &format!("{prefix}[]"), into)),
        _ => {}
    }
}

#[test]
fn compare_flags_a_component_made_50_ms_slower_and_not_an_unchanged_one_and_the_keys_are_stable() {
    let dir = Dir::new("compare");
    let before = report(&dir.0, 30, "before.json");
    let after = report(&dir.0, 80, "after.json");
    let (mut a, mut b) = (BTreeSet::new(), BTreeSet::new());
    keys(&before, "", &mut a);
    keys(&after, "", &mut b);
    assert_eq!(a, b, "the same keys from run to run");

    let output = Command::new(env!("CARGO_BIN_EXE_lifecycle-child"))
        .current_dir(&dir.0)
        .args(["analyze", "compare", "before.json", "after.json"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("slower: api start + ready")), "{stdout}");
    assert!(!stdout.contains("store start + ready"), "store did not change: {stdout}");

    let output = Command::new(env!("CARGO_BIN_EXE_lifecycle-child"))
        .current_dir(&dir.0)
        .args(["analyze", "compare", "before.json", "before.json"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&output.stdout).contains("no change beyond the noise"), "{}", text(&output));
}

#[test]
fn a_failing_start_is_reported_as_such_not_as_a_time() {
    let dir = Dir::new("failing");
    let out = dir.0.join("report.json");
    let output = analyze(
        &dir.0,
        &[("APP__COMPONENTS__BROKEN__ENABLED", "true")],
        &["--runs", "2", "--format", "json", "-o", out.to_str().unwrap(), "blame"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
    assert_eq!(report["completed"], 0);
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{report}");
    assert!(failures[0].as_str().unwrap().starts_with("run 1: start failed"), "{report}");
    assert!(report["time_to_ready"]["runs_ms"].as_array().unwrap().is_empty(), "no time for a failed run: {report}");
}

#[test]
fn a_prod_profile_is_refused_without_yes() {
    let dir = Dir::new("prod");
    let output = analyze(&dir.0, &[], &["--runs", "1", "--profile", "prod", "blame"]);
    assert_eq!(output.status.code(), Some(78), "{}", text(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("pass --yes"), "{}", text(&output));
    let output = analyze(&dir.0, &[], &["--runs", "1", "--profile", "prod", "--yes", "blame"]);
    assert!(output.status.success(), "{}", text(&output));
}

/// A crate outside this workspace, depending on `orderly` by path: two
/// registered components, no code for `analyze` at all.
const OUTSIDE_MAIN: &str = r#"
use std::time::Duration;

use orderly::{async_trait, BoxError, Component, Dependency, StartContext};

#[derive(Default)]
struct Slow;

#[async_trait]
impl Component for Slow {
    async fn start(&self, _: &StartContext) -> Result<(), BoxError> {
        tokio::time::sleep(Duration::from_millis(60)).await;
        Ok(())
    }
}
orderly::register_default!(Slow);

#[derive(Default)]
struct Front;

#[async_trait]
impl Component for Front {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Slow>()]
    }
}
orderly::register_default!(Front);

fn main() -> std::process::ExitCode {
    orderly::app::App::new(orderly::app_info!(), orderly::link![]).run()
}
"#;

#[test]
fn it_works_for_a_crate_outside_the_workspace_with_no_code_for_it() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf();
    let dir = Dir::new("outside");
    std::fs::create_dir_all(dir.0.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"outside\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\
         orderly = {{ path = {:?} }}\ntokio = {{ version = \"1\", features = [\"time\"] }}\n\n[workspace]\n",
        workspace.join("framework")
    );
    std::fs::write(dir.0.join("Cargo.toml"), manifest).unwrap();
    std::fs::write(dir.0.join("src/main.rs"), OUTSIDE_MAIN).unwrap();
    // The workspace's lock file: the same versions, already downloaded.
    std::fs::copy(workspace.join("Cargo.lock"), dir.0.join("Cargo.lock")).unwrap();
    // A target directory of its own that outlives the test: the next run builds only what changed.
    let target = workspace.join("target/outside-crate");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = Command::new(cargo)
        .current_dir(&dir.0)
        .env("CARGO_TARGET_DIR", &target)
        .args(["build", "--offline", "--quiet"])
        .output()
        .unwrap();
    assert!(built.status.success(), "{}", text(&built));
    let output = Command::new(target.join("debug/outside"))
        .current_dir(&dir.0)
        .args(["analyze", "--runs", "2", "critical-chain"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("front @") && stdout.contains("└─slow @0.0ms +"), "{stdout}");
}

#[test]
fn plot_draws_a_bar_and_a_whisker_per_component_and_per_stop_phase() {
    let dir = Dir::new("plot");
    let out = dir.0.join("runs.svg");
    let output =
        analyze(&dir.0, &[], &["--runs", "2", "--set", "api.drain_ms=30", "plot", "-o", out.to_str().unwrap()]);
    assert!(output.status.success(), "{}", text(&output));
    let svg = std::fs::read_to_string(out).unwrap();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{svg}");
    for title in ["<title>api: began @", "<title>store: began @", "<title>drain: "] {
        assert!(svg.contains(title), "no {title} in {svg}");
    }
    assert_eq!(svg.matches("<rect").count(), svg.matches("<line").count(), "a whisker per bar: {svg}");
}

#[test]
fn ctrl_c_ends_the_trial_under_way_and_reports_the_runs_done() {
    use std::io::BufRead;
    let dir = Dir::new("interrupted");
    let out = dir.0.join("report.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_lifecycle-child"))
        .env_clear()
        .current_dir(&dir.0)
        .args(["analyze", "--runs", "100", "--set", "api.start_ms=100", "--format", "json", "-o"])
        .arg(&out)
        .arg("blame")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut lines = stderr.lines().map_while(Result::ok);
    // Two runs are done once the third begins.
    assert!(lines.any(|l| l.contains("trial run 3 of 100")), "the trials never got to run 3");
    // SAFETY: kill(2) on our own child's pid has no memory-safety preconditions.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "interrupted");
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let completed = report["completed"].as_u64().unwrap();
    assert!((2..100).contains(&completed), "{report}");
    let failures = report["failures"].to_string();
    assert!(failures.contains("interrupted"), "{report}");
}
