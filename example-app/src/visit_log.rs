//! The visit log: visits are buffered in memory and appended to a JSON-lines
//! file. It joins phase 4 (write what is buffered) and phase 5 (sync and
//! close the file), so visits recorded by the last drained requests reach
//! the disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use orderly::{BoxError, Component, FromConfig, StartContext, StopContext, Validate, Validation};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

/// `[visit_log]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VisitLogConfig {
    /// The file to append to; empty means `<temp dir>/example-app/visits.jsonl`.
    pub path: String,
    /// Visits held in memory at most; past it, new visits are counted as dropped.
    pub max_buffered: usize,
}

impl Default for VisitLogConfig {
    fn default() -> Self {
        Self { path: String::new(), max_buffered: 10_000 }
    }
}

impl Validate for VisitLogConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(self.max_buffered >= 1, "max_buffered", "must be at least 1");
    }
}

/// One served request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Visit {
    /// Milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
    /// The request path.
    pub path: String,
    /// The response status.
    pub status: u16,
}

/// The shared buffer that handlers record into; provided to dependents.
pub struct VisitBook {
    pending: parking_lot::Mutex<Vec<Visit>>,
    file: tokio::sync::Mutex<Option<tokio::fs::File>>,
    max_buffered: usize,
    recorded: AtomicU64,
    dropped: AtomicU64,
}

impl VisitBook {
    /// Buffers a visit. Returns false (and counts it) when the buffer is full:
    /// memory stays bounded even if the disk stalls.
    pub fn record(&self, visit: Visit) -> bool {
        let mut pending = self.pending.lock();
        if pending.len() >= self.max_buffered {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        pending.push(visit);
        self.recorded.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Visits recorded since start.
    pub fn recorded(&self) -> u64 {
        self.recorded.load(Ordering::Relaxed)
    }

    /// Visits refused because the buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Appends everything buffered to the file and syncs it. On a write
    /// error the visits go back to the front of the buffer: nothing is lost.
    pub async fn persist(&self) -> std::io::Result<usize> {
        let mut file = self.file.lock().await;
        let Some(file) = file.as_mut() else {
            return Err(std::io::Error::other("the visit log is closed"));
        };
        let batch = std::mem::take(&mut *self.pending.lock());
        if batch.is_empty() {
            return Ok(0);
        }
        let mut bytes = Vec::with_capacity(batch.len() * 64);
        for visit in &batch {
            serde_json::to_writer(&mut bytes, visit).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
        }
        let written = async {
            file.write_all(&bytes).await?;
            file.sync_data().await
        }
        .await;
        if let Err(e) = written {
            let mut pending = self.pending.lock();
            let newer = std::mem::replace(&mut *pending, batch);
            pending.extend(newer);
            return Err(e);
        }
        Ok(batch.len())
    }
}

/// The component that owns the visit log file.
pub struct VisitLog {
    path: PathBuf,
    book: Arc<VisitBook>,
}

impl VisitLog {
    /// The file visits are appended to.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }
}

#[orderly::component]
impl Component for VisitLog {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        if let Some(dir) = self.path.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(|e| format!("creating {}: {e}", dir.display()))?;
        }
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .await
            .map_err(|e| format!("opening {}: {e}", self.path.display()))?;
        *self.book.file.lock().await = Some(file);
        slog::info!(ctx.logger(), "visit log open"; "path" => self.path.display().to_string());
        ctx.provide(self.book.clone());
        Ok(())
    }

    async fn flush(&self, ctx: &StopContext) -> Result<(), BoxError> {
        let written = self.book.persist().await.map_err(|e| format!("writing {}: {e}", self.path.display()))?;
        slog::info!(ctx.logger(), "visit log flushed"; "visits" => written, "dropped" => self.book.dropped());
        Ok(())
    }

    async fn close(&self, _ctx: &StopContext) -> Result<(), BoxError> {
        if let Some(file) = self.book.file.lock().await.take() {
            file.sync_all().await.map_err(|e| format!("syncing {}: {e}", self.path.display()))?;
        }
        Ok(())
    }
}

impl FromConfig for VisitLog {
    type Config = VisitLogConfig;

    fn from_config(config: VisitLogConfig) -> Result<Self, BoxError> {
        let path = if config.path.is_empty() {
            std::env::temp_dir().join("example-app").join("visits.jsonl")
        } else {
            PathBuf::from(config.path)
        };
        let book = VisitBook {
            pending: parking_lot::Mutex::new(Vec::new()),
            file: tokio::sync::Mutex::new(None),
            max_buffered: config.max_buffered,
            recorded: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        };
        Ok(VisitLog { path, book: Arc::new(book) })
    }
}

orderly::register!(VisitLog);
