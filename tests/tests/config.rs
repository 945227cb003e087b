//! Config layering, validation and redaction, in process (no shared
//! process environment: every test passes its own variables).

use std::time::Duration;

use orderly::{config::ConfigSources, config::Secret};

fn write(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("orderly-config-{tag}-{}-{}", std::process::id(), fastrand_seed()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn fastrand_seed() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
}

fn deadline(sources: &ConfigSources) -> Duration {
    sources.load().unwrap().runtime_settings(&[]).unwrap().shutdown.deadline
}

#[test]
fn every_layer_overrides_the_one_below() {
    let dir = temp_dir("layers");
    write(&dir, "config/default.toml", "[shutdown]\ndeadline = \"31s\"\n");
    write(&dir, "config/prod.toml", "[shutdown]\ndeadline = \"32s\"\n");
    let explicit = write(&dir, "explicit.toml", "[shutdown]\ndeadline = \"33s\"\n");
    let embedded = "[shutdown]\ndeadline = \"30s\"\n";
    let env = [("APP__SHUTDOWN__DEADLINE", "34s")];

    let base = || {
        ConfigSources::new("APP")
            .dir(dir.join("config"))
            .embedded_defaults(embedded)
            .env_vars(Vec::<(String, String)>::new())
    };
    assert_eq!(
        deadline(&ConfigSources::new("APP").env_vars(Vec::<(String, String)>::new())),
        Duration::from_secs(30),
        "type default"
    );
    assert_eq!(deadline(&base().dir(dir.join("nowhere"))), Duration::from_secs(30), "embedded");
    assert_eq!(deadline(&base()), Duration::from_secs(31), "config/default.toml");
    assert_eq!(deadline(&base().profile(Some("prod".into()))), Duration::from_secs(32), "config/<profile>.toml");
    assert_eq!(
        deadline(&base().profile(Some("prod".into())).file(Some(explicit.clone()))),
        Duration::from_secs(33),
        "--config"
    );
    let with_env = base().profile(Some("prod".into())).file(Some(explicit)).env_vars(env);
    assert_eq!(deadline(&with_env), Duration::from_secs(34), "environment");
    assert_eq!(deadline(&with_env.set("shutdown.deadline", "35s")), Duration::from_secs(35), "command line");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn several_invalid_values_are_reported_together() {
    let sources = ConfigSources::new("APP")
        .embedded_defaults(
            "[shutdown]\ndeadline = \"soon\"\n[start]\ntimeout = 5\n[components.db]\nretry = { attempts = 3 }\n",
        )
        .env_vars([("APP__SHUTDOWN__PROPAGATION_DELAY", "later")]);
    let errors = sources.load().unwrap().runtime_settings(&["db"]).unwrap_err();
    let keys: Vec<&str> = errors.0.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(
        keys,
        vec!["start.timeout", "shutdown.deadline", "shutdown.propagation_delay", "components.db"],
        "{errors}"
    );
    assert!(errors.to_string().starts_with("invalid configuration (4 problems)"));
}

#[test]
fn unknown_keys_are_rejected() {
    let sources = ConfigSources::new("APP").embedded_defaults("[shutdown]\ndeadlin = \"5s\"\n");
    let errors = sources.load().unwrap().runtime_settings(&[]).unwrap_err();
    assert_eq!(errors.0[0].key, "shutdown.deadlin");
    assert!(errors.0[0].message.contains("unknown field `deadlin`"));
}

#[test]
fn component_overrides_for_unknown_components_are_rejected() {
    let sources = ConfigSources::new("APP").embedded_defaults("[components.dbb]\nenabled = false\n");
    let errors = sources.load().unwrap().runtime_settings(&["db"]).unwrap_err();
    assert!(errors.0[0].message.contains("no component is named `dbb`"));
}

#[test]
fn a_syntax_error_names_its_file() {
    let dir = temp_dir("syntax");
    let file = write(&dir, "broken.toml", "[shutdown\n");
    let errors = ConfigSources::new("APP").file(Some(file.clone())).load().unwrap_err();
    assert_eq!(errors.0[0].key, file.display().to_string());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_missing_explicit_file_is_an_error() {
    let errors = ConfigSources::new("APP").file(Some("/nonexistent/orderly.toml".into())).load().unwrap_err();
    assert_eq!(errors.0[0].message, "file not found");
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Database {
    url: Secret<String>,
    pool_size: u32,
}

#[test]
fn secrets_are_redacted_in_debug_and_serialization() {
    let config = ConfigSources::new("APP")
        .env_vars([("APP__DATABASE__URL", "postgres://app:hunter2@db/app"), ("APP__DATABASE__POOL_SIZE", "8")])
        .load()
        .unwrap();
    let db: Database = config.section("database").unwrap();
    assert_eq!(db.pool_size, 8);
    assert_eq!(db.url.expose(), "postgres://app:hunter2@db/app");
    let shown = format!("{db:?} {db:#?} {}", serde_json::to_string(&db.url).unwrap());
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[test]
fn an_embedded_profile_is_read_only_when_it_is_in_force_and_below_every_file() {
    let dir = temp_dir("embedded-profile");
    let base = || {
        ConfigSources::new("APP")
            .dir(dir.join("config"))
            .embedded_defaults("[shutdown]\ndeadline = \"30s\"\n")
            .embedded_profile("dev", "[shutdown]\ndeadline = \"36s\"\n")
            .env_vars(Vec::<(String, String)>::new())
    };
    assert_eq!(deadline(&base()), Duration::from_secs(30), "no profile: the defaults");
    assert_eq!(deadline(&base().default_profile("prod")), Duration::from_secs(30), "another profile");
    assert_eq!(deadline(&base().default_profile("dev")), Duration::from_secs(36), "the default profile");
    assert_eq!(deadline(&base().profile(Some("dev".into()))), Duration::from_secs(36), "named");
    assert_eq!(
        deadline(&base().profile(Some("dev".into())).default_profile("prod")),
        Duration::from_secs(36),
        "a named profile wins over the default"
    );
    write(&dir, "config/default.toml", "[shutdown]\ndeadline = \"31s\"\n");
    assert_eq!(deadline(&base().default_profile("dev")), Duration::from_secs(31), "files are above it");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_named_profile_must_exist_but_a_default_or_built_in_one_need_not() {
    let dir = temp_dir("named-profile");
    let base = || ConfigSources::new("APP").dir(dir.join("config")).env_vars(Vec::<(String, String)>::new());
    let errors = base().profile(Some("staging".into())).load().unwrap_err();
    assert!(errors.0[0].key.ends_with("staging.toml") && errors.0[0].message == "file not found", "{errors}");
    assert!(base().default_profile("staging").load().is_ok(), "a default profile needs no file");
    assert!(base().profile(Some("prod".into())).load().is_ok(), "prod is built in");
    assert!(base().profile(Some("dev".into())).load().is_ok(), "dev is built in");
    assert!(base().profile(Some("qa".into())).embedded_profile("qa", "").load().is_ok(), "embedded");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn the_app_wide_restart_intensity_is_read_from_supervision_and_checked() {
    let base = || ConfigSources::new("APP").dir("/nonexistent").env_vars(Vec::<(String, String)>::new());
    let defaults = base().load().unwrap().runtime_settings(&[]).unwrap().supervision;
    assert_eq!((defaults.max_restarts, defaults.restart_period), (20, Duration::from_secs(60)));
    let set = base().set("supervision.max_restarts", "3").set("supervision.restart_period", "5s");
    let read = set.load().unwrap().runtime_settings(&[]).unwrap().supervision;
    assert_eq!((read.max_restarts, read.restart_period), (3, Duration::from_secs(5)));
    let zero = base().set("supervision.restart_period", "0s").load().unwrap().runtime_settings(&[]).unwrap_err();
    assert_eq!(zero.0[0].key, "supervision.restart_period", "{zero}");
}
