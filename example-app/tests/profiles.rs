//! Development defaults stay out of production: a release binary's default
//! profile is `prod` (what `--profile prod` selects here, on the debug test
//! binary), which has no API key and no private database, so started
//! without configuration it refuses at once (exit 78), naming what to set;
//! the `dev` profile, a debug build's default, has both. The migrations are
//! in the binary: every test here and in the other files runs it from a
//! directory that holds none of its files.

mod support;

use std::time::Duration;

use support::*;

/// The binary with nothing but `env` and `args`: no test defaults.
fn bare(env: &[(&str, &str)], args: &[&str]) -> (i32, String, Vec<String>) {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    let mut app = App::spawn(&env, args);
    let (code, stderr) = app.wait_exit(Duration::from_secs(20));
    // Log records are JSON; what else is on stdout (the config dump) is kept as its line.
    let stdout = app.logs().iter().map(|v| v["line"].as_str().map_or_else(|| v.to_string(), str::to_owned)).collect();
    (code, stderr, stdout)
}

#[test]
fn the_prod_profile_without_configuration_refuses_to_start_naming_the_key_and_the_database() {
    for how in [&["--profile", "prod"][..], &[]] {
        let env: &[(&str, &str)] = if how.is_empty() { &[("APP_PROFILE", "prod")] } else { &[] };
        let (code, stderr, _) = bare(env, how);
        assert_eq!(code, 78, "{how:?}: {stderr}");
        assert!(stderr.contains("api.key: an API key is required: set APP__API__KEY"), "{how:?}: {stderr}");
        assert!(stderr.contains("database.url: must be set"), "{how:?}: {stderr}");
        assert!(!stderr.contains("dev-key-not-for-production"), "{stderr}");
    }
}

#[test]
fn the_prod_profile_runs_with_a_key_and_a_database_and_accepts_no_development_key() {
    let configured =
        [("APP__API__KEY", "a-production-key-0123"), ("APP__DATABASE__URL", "postgres://u@127.0.0.1:1/db")];
    let (code, stderr, _) = bare(&configured, &["--profile", "prod", "--check"]);
    assert_eq!(code, 0, "{stderr}");
    let (_, _, stdout) = bare(&configured, &["--profile", "prod", "--print-config"]);
    let dump = stdout.join("\n");
    assert!(dump.contains("dev_database = false") && dump.contains("debug = false"), "{dump}");
}

#[test]
fn the_dev_profile_a_debug_builds_default_brings_the_development_conveniences() {
    // The harness asks for a log level, so the log still says which profile.
    let (code, stderr, stdout) = bare(&[], &["--print-config"]);
    assert_eq!(code, 0, "{stderr}");
    let dump = stdout.join("\n");
    assert!(dump.contains("dev_database = true") && dump.contains("debug = true"), "{dump}");
    assert!(dump.contains("# key = \"[redacted]\""), "the development key is set, and hidden: {dump}");
    assert!(stdout.iter().any(|l| l.contains("\"profile\":\"dev\"")), "the log says which profile: {stdout:?}");
}
