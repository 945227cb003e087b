//! The app's SQL migrations: files named `<version>_<name>.sql`, compiled
//! into the binary ([`embed_migrations!`](crate::embed_migrations)) or read
//! from the directory `database.migrations`, applied in version order, each
//! in its own transaction, under a Postgres advisory lock so that replicas
//! starting together do not race.

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

/// A migration compiled into the binary: its file name
/// (`<version>_<name>.sql`) and its SQL. Made by
/// [`embed_migrations!`](crate::embed_migrations).
#[derive(Debug)]
pub struct EmbeddedMigration {
    /// The file name, `<version>_<name>.sql`.
    pub file: &'static str,
    /// The SQL.
    pub sql: &'static str,
}

/// The migrations one crate compiled in, collected at start by the
/// `database` component (an app has one database component; every set
/// submitted in the binary is applied to it).
#[derive(Debug)]
pub struct EmbeddedMigrations {
    files: &'static [EmbeddedMigration],
}

impl EmbeddedMigrations {
    #[doc(hidden)]
    pub const fn __new(files: &'static [EmbeddedMigration]) -> Self {
        Self { files }
    }
}

inventory::collect!(EmbeddedMigrations);

/// Compiles SQL migrations into the binary: the `database` component applies
/// them at start, whatever the working directory (with any found in the
/// directory `database.migrations`, which may then be left empty).
///
/// List the files, or have a build script list a directory (see
/// `example-app/build.rs`):
///
/// ```
/// use orderly_components::postgres::EmbeddedMigration;
/// orderly_components::embed_migrations!(&[EmbeddedMigration {
///     file: "0001_create_orders.sql",
///     sql: "CREATE TABLE orders (id BIGSERIAL PRIMARY KEY);",
/// }]);
/// ```
#[macro_export]
macro_rules! embed_migrations {
    ($files:expr) => {
        $crate::__private::inventory::submit! {
            $crate::postgres::EmbeddedMigrations::__new($files)
        }
    };
}

/// Where a migration's SQL is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    File(PathBuf),
    Embedded(&'static str),
}

/// One migration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Migration {
    pub(crate) version: u64,
    pub(crate) name: String,
    /// Where it came from, for errors: a path, or `embedded:<file>`.
    pub(crate) origin: String,
    pub(crate) source: Source,
}

impl Migration {
    fn read(&self) -> Result<String, MigrationError> {
        match &self.source {
            Source::File(path) => {
                std::fs::read_to_string(path).map_err(|source| MigrationError::Read { path: path.clone(), source })
            }
            Source::Embedded(sql) => Ok((*sql).to_owned()),
        }
    }
}

/// The version and name of a migration file named `<version>_<name>.sql`.
fn parse_name(file_name: &str, origin: &str) -> Result<(u64, String), MigrationError> {
    let name = file_name.strip_suffix(".sql").unwrap_or(file_name).to_owned();
    let version = name.split('_').next().and_then(|v| v.parse().ok());
    version.map(|v| (v, name)).ok_or_else(|| MigrationError::BadName(PathBuf::from(origin)))
}

/// Every migration: those compiled in and those in `dir` (if any), in
/// version order. One version twice is an error, except the same file
/// compiled in and on disk (same name, same SQL), which counts once: an
/// image that still ships its migrations directory keeps starting.
pub(crate) fn collect(dir: Option<&Path>) -> Result<Vec<Migration>, MigrationError> {
    let mut found = match dir {
        Some(dir) => discover(dir)?,
        None => Vec::new(),
    };
    let embedded = inventory::iter::<EmbeddedMigrations>.into_iter().flat_map(|set| set.files);
    for file in embedded {
        let origin = format!("embedded:{}", file.file);
        let (version, name) = parse_name(file.file, &origin)?;
        let migration = Migration { version, name, origin, source: Source::Embedded(file.sql) };
        if !is_on_disk(&found, &migration)? {
            found.push(migration);
        }
    }
    in_order(found)
}

/// Whether `migration` (compiled in) is already among `found` as the same
/// file on disk.
fn is_on_disk(found: &[Migration], migration: &Migration) -> Result<bool, MigrationError> {
    for other in found.iter().filter(|m| m.version == migration.version && m.name == migration.name) {
        if other.read()? == migration.read()? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn in_order(mut found: Vec<Migration>) -> Result<Vec<Migration>, MigrationError> {
    found.sort_by_key(|m| m.version);
    if let Some(pair) = found.windows(2).find(|w| w[0].version == w[1].version) {
        return Err(MigrationError::Duplicate(PathBuf::from(&pair[0].origin), PathBuf::from(&pair[1].origin)));
    }
    Ok(found)
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
        let file_name = path.file_name().and_then(|s| s.to_str()).unwrap_or_default().to_owned();
        let origin = path.display().to_string();
        let (version, name) = parse_name(&file_name, &origin)?;
        found.push(Migration { version, name, origin, source: Source::File(path) });
    }
    in_order(found)
}

fn apply_error(file: &str) -> impl FnOnce(tokio_postgres::Error) -> MigrationError + '_ {
    move |source| MigrationError::Apply { file: file.to_owned(), source }
}

/// Applies what is not applied yet of `migrations`; returns the names it applied.
pub(crate) async fn run(client: &mut Client, migrations: &[Migration]) -> Result<Vec<String>, MigrationError> {
    if migrations.is_empty() {
        return Ok(Vec::new());
    }
    // Session-level lock: held until unlocked, whichever replica gets it first migrates.
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await.map_err(apply_error("advisory lock"))?;
    let result = apply(client, migrations).await;
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
        let sql = migration.read()?;
        let file = migration.origin.clone();
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

    crate::embed_migrations!(&[EmbeddedMigration { file: "0900_compiled_in.sql", sql: "SELECT 900;" }]);

    #[test]
    fn compiled_in_migrations_join_the_directory_and_the_same_file_counts_once() {
        let names = |found: Vec<Migration>| found.into_iter().map(|m| m.name).collect::<Vec<_>>();
        assert_eq!(names(collect(None).unwrap()), ["0900_compiled_in"]);

        let dir = dir_with(&["0001_first.sql"]);
        assert_eq!(names(collect(Some(&dir)).unwrap()), ["0001_first", "0900_compiled_in"]);
        // The image still ships the file it compiled in: one migration.
        std::fs::write(dir.join("0900_compiled_in.sql"), "SELECT 900;").unwrap();
        assert_eq!(names(collect(Some(&dir)).unwrap()), ["0001_first", "0900_compiled_in"]);
        // The same version with other SQL is a conflict, named.
        std::fs::write(dir.join("0900_compiled_in.sql"), "SELECT 901;").unwrap();
        let error = collect(Some(&dir)).unwrap_err().to_string();
        assert!(error.contains("0900_compiled_in.sql") && error.contains("embedded:"), "{error}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
