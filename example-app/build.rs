//! Injects the git commit and build date that `--version` prints, and lists
//! `migrations/` for `embed_migrations!` (so the binary carries its SQL and
//! the working directory does not matter).

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    if let Some(commit) = commit {
        println!("cargo:rustc-env=ORDERLY_GIT_COMMIT={commit}");
    }
    // Reproducible builds set SOURCE_DATE_EPOCH; otherwise, now.
    let seconds = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0));
    let date = humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_secs(seconds)).to_string();
    println!("cargo:rustc-env=ORDERLY_BUILD_DATE={}", &date[..10]);
    for path in ["../.git/HEAD", "../.git/refs/heads"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    list_migrations();
}

/// Writes `$OUT_DIR/migrations.rs`: a slice of `EmbeddedMigration`s, one
/// per `migrations/*.sql`, in file-name order.
fn list_migrations() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    let entries: Vec<String> = files
        .iter()
        .map(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            format!(
                "orderly_components::postgres::EmbeddedMigration {{ file: {name:?}, sql: include_str!({:?}) }}",
                path.display().to_string()
            )
        })
        .collect();
    let out = std::path::Path::new(&std::env::var("OUT_DIR").unwrap_or_default()).join("migrations.rs");
    std::fs::write(&out, format!("&[{}]", entries.join(",\n")))
        .unwrap_or_else(|e| panic!("writing {}: {e}", out.display()));
}
