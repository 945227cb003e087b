//! A private PostgreSQL for development and tests: `initdb` into a fresh
//! directory, `postgres` on a free loopback port, removed again on stop.
//!
//! PostgreSQL refuses to run as root, so as root the binaries run as the
//! `postgres` user (`runuser -u postgres`), which owns the directory.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Starting or stopping the dev database failed; says what to do.
#[derive(Debug, thiserror::Error)]
pub enum DevDatabaseError {
    /// No PostgreSQL server binaries were found.
    #[error(
        "database.url is not set, and no PostgreSQL server binaries were found to start a local dev database \
         (looked for initdb in {searched}); install them (Debian: `apt-get install postgresql`) or set \
         database.url (APP__DATABASE__URL)"
    )]
    BinariesMissing {
        /// Where we looked.
        searched: String,
    },
    /// A step failed; `output` is what the tool printed.
    #[error("dev database: {step} failed: {output}")]
    Step {
        /// Which step.
        step: &'static str,
        /// stderr/stdout of the tool, or the OS error.
        output: String,
    },
}

/// Where to look for `initdb` and `pg_ctl`: Debian's versioned directories
/// (newest first), then `PATH`.
pub(crate) fn find_binaries(roots: &[&Path]) -> Result<PathBuf, DevDatabaseError> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    for root in roots {
        if let Ok(entries) = std::fs::read_dir(root) {
            let mut versions: Vec<(u32, PathBuf)> = entries
                .filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok().map(|v| (v, e.path().join("bin"))))
                .collect();
            versions.sort_by_key(|v| std::cmp::Reverse(v.0));
            candidates.extend(versions.into_iter().map(|(_, bin)| bin));
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates.into_iter().find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file()).ok_or_else(|| {
        DevDatabaseError::BinariesMissing {
            searched: roots
                .iter()
                .map(|r| format!("{}/*/bin", r.display()))
                .chain(["PATH".to_owned()])
                .collect::<Vec<_>>()
                .join(", "),
        }
    })
}

/// A running private PostgreSQL. Stopped and removed by [`stop`](Self::stop)
/// or, failing that, on drop.
pub struct DevDatabase {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    running: bool,
    /// A folder given to keep (`database.dev_database_dir`): reused if it
    /// holds a database, and left in place on stop; only the server stops.
    keep: bool,
    /// Stops the server if this process dies without stopping it (SIGKILL).
    watcher: Option<std::process::Child>,
}

/// Whether we run as root: `/proc/self` belongs to the effective user.
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// A system tool (`runuser`, `chown`) by absolute path: the app may run
/// with an empty environment, and so without `PATH`.
fn system_tool(name: &str) -> PathBuf {
    let from_path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default();
    let standard = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"].map(PathBuf::from);
    from_path
        .into_iter()
        .chain(standard)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

fn free_port() -> Result<u16, DevDatabaseError> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DevDatabaseError::Step { step: "finding a free port", output: e.to_string() })
}

fn check(step: &'static str, result: std::io::Result<Output>) -> Result<(), DevDatabaseError> {
    match result {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(DevDatabaseError::Step {
            step,
            output: format!("{}{}", String::from_utf8_lossy(&output.stderr), String::from_utf8_lossy(&output.stdout))
                .trim()
                .to_owned(),
        }),
        Err(e) => Err(DevDatabaseError::Step { step, output: e.to_string() }),
    }
}

/// Runs a command off the async threads and checks it succeeded.
async fn run_blocking(step: &'static str, mut command: Command) -> Result<(), DevDatabaseError> {
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| DevDatabaseError::Step { step, output: e.to_string() })?;
    check(step, output)
}

impl DevDatabase {
    /// Starts one on a free port, trusting local connections (user `postgres`).
    pub async fn start() -> Result<Self, DevDatabaseError> {
        Self::start_on(None, None).await
    }

    /// Starts one in `dir`, kept between runs: the database there is reused
    /// if it exists (created otherwise), and on stop only the server stops,
    /// so what one run wrote the next one reads.
    pub async fn start_kept(dir: PathBuf) -> Result<Self, DevDatabaseError> {
        tokio::task::spawn_blocking(move || Self::start_blocking(Some(dir), None, None))
            .await
            .map_err(|e| DevDatabaseError::Step { step: "start", output: e.to_string() })?
    }

    /// Starts one on `port` (or a free one), requiring `password` for user
    /// `postgres` when given.
    pub async fn start_on(port: Option<u16>, password: Option<String>) -> Result<Self, DevDatabaseError> {
        tokio::task::spawn_blocking(move || Self::start_blocking(None, port, password.as_deref()))
            .await
            .map_err(|e| DevDatabaseError::Step { step: "start", output: e.to_string() })?
    }

    fn start_blocking(
        kept: Option<PathBuf>,
        port: Option<u16>,
        password: Option<&str>,
    ) -> Result<Self, DevDatabaseError> {
        let bin = find_binaries(&[Path::new("/usr/lib/postgresql")])?;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let keep = kept.is_some();
        let dir =
            kept.unwrap_or_else(|| std::env::temp_dir().join(format!("orderly-dev-db-{}-{nanos}", std::process::id())));
        std::fs::create_dir_all(&dir)
            .map_err(|e| DevDatabaseError::Step { step: "creating the data directory", output: e.to_string() })?;
        let port = match port {
            Some(port) => port,
            None => free_port()?,
        };
        let mut db = DevDatabase { bin, dir, port, as_postgres: is_root(), running: false, keep, watcher: None };
        // First, so that even a process that exits during initdb leaves nothing behind.
        db.watcher = db.watch_this_process();
        if db.as_postgres {
            check("chown to postgres", Command::new(system_tool("chown")).arg("postgres:").arg(&db.dir).output())?;
        }
        let mut initdb =
            vec!["-D".to_owned(), db.data().display().to_string(), "-U".into(), "postgres".into(), "--no-sync".into()];
        match password {
            Some(password) => {
                let file = db.dir.join("pwfile");
                std::fs::write(&file, password)
                    .map_err(|e| DevDatabaseError::Step { step: "writing the password file", output: e.to_string() })?;
                if db.as_postgres {
                    check(
                        "chown the password file",
                        Command::new(system_tool("chown")).arg("postgres:").arg(&file).output(),
                    )?;
                }
                initdb.extend(["-A".into(), "scram-sha-256".into(), format!("--pwfile={}", file.display())]);
            }
            None => initdb.extend(["-A".into(), "trust".into()]),
        }
        // A kept folder that already holds a database is reused as it is.
        if !(keep && db.data().join("PG_VERSION").is_file()) {
            check("initdb", db.tool("initdb", &initdb).output())?;
        }
        let options = db.server_options();
        let log = db.dir.join("log").display().to_string();
        let data = db.data().display().to_string();
        check(
            "pg_ctl start",
            db.tool("pg_ctl", &["-D", &data, "-l", &log, "-w", "-s", "-o", &options, "start"]).output(),
        )?;
        db.running = true;
        Ok(db)
    }

    /// A shell that outlives us if we are killed: once our process is gone
    /// (or a zombie: a killed process stays one until its parent reaps it),
    /// it stops the server and removes its directory. No postgres is left
    /// behind even after SIGKILL.
    ///
    /// It is out of the terminal's reach: in a process group of its own (a
    /// Ctrl-C goes to the whole foreground group, which would end it with
    /// us) and ignoring the signals a terminal sends (`INT`, `QUIT`, `HUP`,
    /// `TERM`, which its `sleep`s inherit).
    fn watch_this_process(&self) -> Option<std::process::Child> {
        let quote = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', r"'\''"));
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = if self.as_postgres {
            format!("{} -u postgres -- {}", quote(&system_tool("runuser")), quote(&pg_ctl))
        } else {
            quote(&pg_ctl)
        };
        // A kept folder stays: only its server is stopped.
        let remove = if self.keep { ":" } else { "rm -rf" };
        let script = format!(
            r#"trap '' INT QUIT HUP TERM
alive() {{ s=$(sed 's/.*) //' /proc/{pid}/stat 2>/dev/null | cut -c1); [ -n "$s" ] && [ "$s" != Z ]; }}
while alive; do sleep 0.2; done
{stop} -D {data} -m immediate -w -s stop
{remove} {dir}
# An initdb orphaned mid-run may still be writing (it recreates the directory): once more.
sleep 3
{stop} -D {data} -m immediate -w -s stop
{remove} {dir}"#,
            pid = std::process::id(),
            data = quote(&self.data()),
            dir = quote(&self.dir),
        );
        Command::new(system_tool("sh"))
            .args(["-c", &script])
            .process_group(0)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn tool(&self, name: &str, args: &[impl AsRef<std::ffi::OsStr>]) -> Command {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new(system_tool("runuser"));
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        // Its own process group: a Ctrl-C in the terminal is ours to handle,
        // and must not kill an initdb half-way through its directory.
        command.args(args).current_dir(&self.dir).process_group(0);
        command
    }

    /// The directory holding its data and log (removed on stop, unless kept).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection URL for user `postgres`, database `postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server but keeps its data, so that [`resume`](Self::resume)
    /// brings the same database back on the same port: for experiments with
    /// a database that goes away.
    pub async fn suspend(&mut self) -> Result<(), DevDatabaseError> {
        let data = self.data().display().to_string();
        let stop = self.tool("pg_ctl", &["-D", &data, "-m", "fast", "-w", "-s", "stop"]);
        run_blocking("pg_ctl stop", stop).await?;
        self.running = false;
        Ok(())
    }

    /// Starts a [suspended](Self::suspend) server again.
    pub async fn resume(&mut self) -> Result<(), DevDatabaseError> {
        let data = self.data().display().to_string();
        let log = self.dir.join("log").display().to_string();
        let options = self.server_options();
        let start = self.tool("pg_ctl", &["-D", &data, "-l", &log, "-w", "-s", "-o", &options, "start"]);
        run_blocking("pg_ctl start", start).await?;
        self.running = true;
        Ok(())
    }

    fn server_options(&self) -> String {
        format!(
            "-h 127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.dir.display()
        )
    }

    /// Stops the server (fast shutdown) and removes its directory.
    pub async fn stop(mut self) -> Result<(), DevDatabaseError> {
        let stopped = tokio::task::spawn_blocking(move || {
            let result = self.stop_blocking("fast");
            drop(self); // removes the directory, then dismisses the watcher
            result
        });
        tokio::time::timeout(Duration::from_secs(30), stopped)
            .await
            .map_err(|_| DevDatabaseError::Step { step: "pg_ctl stop", output: "did not finish within 30 s".into() })?
            .map_err(|e| DevDatabaseError::Step { step: "pg_ctl stop", output: e.to_string() })?
    }

    /// Stops the server. The watcher stays until the directory is gone too
    /// (`drop`): a process killed half-way through its stop (a second
    /// Ctrl-C) still leaves nothing behind.
    fn stop_blocking(&mut self, mode: &str) -> Result<(), DevDatabaseError> {
        if !std::mem::replace(&mut self.running, false) {
            return Ok(());
        }
        let data = self.data().display().to_string();
        check("pg_ctl stop", self.tool("pg_ctl", &["-D", &data, "-m", mode, "-w", "-s", "stop"]).output())
    }
}

impl Drop for DevDatabase {
    fn drop(&mut self) {
        // Leave no server or directory behind, even on an error path.
        let _ = self.stop_blocking("immediate");
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        // Only now: until here, our death would still need it.
        if let Some(mut watcher) = self.watcher.take() {
            let _ = watcher.kill();
            let _ = watcher.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_say_how_to_fix_it() {
        let empty = std::env::temp_dir().join("orderly-no-postgres-here");
        let _ = std::fs::create_dir_all(&empty);
        let saved = std::env::var_os("PATH");
        std::env::set_var("PATH", &empty);
        let error = find_binaries(&[&empty]).unwrap_err().to_string();
        if let Some(path) = saved {
            std::env::set_var("PATH", path);
        }
        assert!(error.contains("apt-get install postgresql"), "{error}");
        assert!(error.contains("APP__DATABASE__URL"), "{error}");
    }
}
