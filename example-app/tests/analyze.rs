//! `example-app analyze` (issue #24) on the real service with its dev
//! database: the startup's critical chain runs through the database (the
//! private Postgres it starts is most of the time to ready), the orders
//! service is on it, and blame puts the database first.

use std::process::Command;

fn analyze(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_example-app"))
        .current_dir(std::env::temp_dir())
        .arg("analyze")
        .args(args)
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

#[test]
fn the_critical_chain_runs_through_the_dev_database_and_blame_puts_it_first() {
    // Ports of their own: these trial runs may overlap other tests' apps.
    let ports = ["--set", "http.bind=127.0.0.1:0", "--set", "admin.bind=127.0.0.1:0"];
    let (ok, stdout, stderr) = analyze(&[&["--runs", "2"][..], &ports, &["critical-chain"]].concat());
    assert!(ok, "{stdout}\n{stderr}");
    let chain: Vec<&str> = stdout.lines().skip_while(|l| !l.starts_with("startup, ready after")).skip(1).collect();
    let last = chain.iter().take_while(|l| !l.is_empty()).last().copied().unwrap_or_default();
    assert!(last.trim_start_matches(['└', '─', ' ']).starts_with("database @"), "{stdout}");
    assert!(chain.iter().any(|l| l.contains("orders @") || l.contains("workers @")), "{stdout}");

    let (ok, stdout, stderr) = analyze(&[&["--runs", "2"][..], &ports, &["blame"]].concat());
    assert!(ok, "{stdout}\n{stderr}");
    let first = stdout.lines().skip_while(|l| !l.starts_with("startup")).nth(2).unwrap_or_default();
    assert!(first.contains("database ("), "{stdout}");
}
