//! The app's SQL migrations: files named `<version>_<name>.sql` in one
//! directory, applied in version order, each in its own transaction, under
//! a Postgres advisory lock so that replicas starting together do not race.

use std::path::{Path, PathBuf};

use tokio_postgres::Client;

/// The advisory lock key (any fixed number: "orderly migrations").
const LOCK_KEY: i64 = 0x006f_7264_6572_6c79;

/// A migration failed; names the file.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// The directory or a file could not be read.
    #[error("reading migrations from {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file's name does not start with a version number.
    #[error("migration file {0} must be named <version>_<name>.sql, for example 0001_create_orders.sql")]
    BadName(PathBuf),
    /// Two files have the same version.
    #[error("migrations {0} and {1} have the same version")]
    Duplicate(PathBuf, PathBuf),
    /// Postgres rejected a statement.
    #[error("applying migration {file}: {source}")]
    Apply {
        /// The file (or the bookkeeping step).
        file: String,
        /// The cause.
        #[source]
        source: tokio_postgres::Error,
    },
}

/// One migration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Migration {
    pub(crate) version: u64,
    pub(crate) name: String,
    pub(crate) path: PathBuf,
}

/// The migrations in `dir`, in version order. A missing directory has none.
pub(crate) fn discover(dir: &Path) -> Result<Vec<Migration>, MigrationError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(MigrationError::Read { path: dir.to_owned(), source }),
    };
    let mut found = Vec::new();
    for entry in entries {
        let path = entry.map_err(|source| MigrationError::Read { path: dir.to_owned(), source })?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") {
            continue;
        }
        let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        let version =
            name.split('_').next().and_then(|v| v.parse().ok()).ok_or_else(|| MigrationError::BadName(path.clone()))?;
        found.push(Migration { version, name, path });
    }
    found.sort_by_key(|m| m.version);
    if let Some(pair) = found.windows(2).find(|w| w[0].version == w[1].version) {
        return Err(MigrationError::Duplicate(pair[0].path.clone(), pair[1].path.clone()));
    }
    Ok(found)
}

fn apply_error(file: &str) -> impl FnOnce(tokio_postgres::Error) -> MigrationError + '_ {
    move |source| MigrationError::Apply { file: file.to_owned(), source }
}

/// Applies what is not applied yet; returns the names it applied.
pub(crate) async fn run(client: &mut Client, dir: &Path) -> Result<Vec<String>, MigrationError> {
    let migrations = discover(dir)?;
    if migrations.is_empty() {
        return Ok(Vec::new());
    }
    // Session-level lock: held until unlocked, whichever replica gets it first migrates.
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await.map_err(apply_error("advisory lock"))?;
    let result = apply(client, &migrations).await;
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await;
    let applied = result?;
    unlocked.map_err(apply_error("advisory unlock"))?;
    Ok(applied)
}

async fn apply(client: &mut Client, migrations: &[Migration]) -> Result<Vec<String>, MigrationError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS orderly_migrations (
                version BIGINT PRIMARY KEY,
                name TEXT NOT NULL,
                applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(apply_error("creating orderly_migrations"))?;
    let done: Vec<i64> = client
        .query("SELECT version FROM orderly_migrations", &[])
        .await
        .map_err(apply_error("reading orderly_migrations"))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for migration in migrations.iter().filter(|m| !done.contains(&(m.version as i64))) {
        let sql = std::fs::read_to_string(&migration.path)
            .map_err(|source| MigrationError::Read { path: migration.path.clone(), source })?;
        let file = migration.path.display().to_string();
        let tx = client.transaction().await.map_err(apply_error(&file))?;
        tx.batch_execute(&sql).await.map_err(apply_error(&file))?;
        tx.execute(
            "INSERT INTO orderly_migrations (version, name) VALUES ($1, $2)",
            &[&(migration.version as i64), &migration.name],
        )
        .await
        .map_err(apply_error(&file))?;
        tx.commit().await.map_err(apply_error(&file))?;
        applied.push(migration.name.clone());
    }
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[&str]) -> PathBuf {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("orderly-migrations-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for file in files {
            std::fs::write(dir.join(file), "SELECT 1;").unwrap();
        }
        dir
    }

    #[test]
    fn discovers_in_version_order_and_ignores_other_files() {
        let dir = dir_with(&["0010_later.sql", "0002_first.sql", "README.md"]);
        let names: Vec<_> = discover(&dir).unwrap().into_iter().map(|m| m.name).collect();
        assert_eq!(names, ["0002_first", "0010_later"]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_names_and_duplicates_are_errors() {
        let dir = dir_with(&["create.sql"]);
        assert!(matches!(discover(&dir), Err(MigrationError::BadName(_))));
        std::fs::remove_dir_all(dir).unwrap();
        let dir = dir_with(&["1_a.sql", "0001_b.sql"]);
        assert!(matches!(discover(&dir), Err(MigrationError::Duplicate(..))));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_directory_has_no_migrations() {
        assert!(discover(Path::new("/nonexistent/orderly/migrations")).unwrap().is_empty());
    }
}
