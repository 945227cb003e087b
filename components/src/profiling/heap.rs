//! The live heap, from jemalloc's sampling profiler, and a summary of
//! what the allocator and the kernel hold.

use serde::Serialize;

use super::ProfileError;

/// What the allocator and the kernel hold, in bytes. Cheap: a handful of
/// counters, no profile.
#[derive(Debug, Clone, Serialize)]
pub struct HeapSummary {
    /// Whether jemalloc's heap profiler is on (`/debug/pprof/heap` answers).
    pub heap_profiling: bool,
    /// Bytes the application has allocated and not freed (jemalloc `stats.allocated`).
    pub allocated_bytes: u64,
    /// Bytes in pages jemalloc has handed out (`stats.active`).
    pub active_bytes: u64,
    /// Bytes jemalloc holds in physical memory, its metadata included (`stats.resident`).
    pub allocator_resident_bytes: u64,
    /// The whole process's resident set, as the kernel counts it (`/proc/self/statm`).
    pub process_resident_bytes: u64,
}

/// The summary. jemalloc's counters are those of its last epoch, so the
/// epoch is advanced first.
pub fn heap_summary() -> HeapSummary {
    use tikv_jemalloc_ctl::{epoch, profiling, stats};
    let _ = epoch::advance();
    let read = |value: Result<usize, tikv_jemalloc_ctl::Error>| value.map_or(0, |v| v as u64);
    HeapSummary {
        heap_profiling: profiling::prof::read().unwrap_or(false),
        allocated_bytes: read(stats::allocated::read()),
        active_bytes: read(stats::active::read()),
        allocator_resident_bytes: read(stats::resident::read()),
        process_resident_bytes: process_resident_bytes().unwrap_or(0),
    }
}

fn process_resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions; it reads a constant of the system.
    let page_size = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    Some(pages * page_size)
}

/// The live heap in pprof format (gzipped protobuf, as Go serves it):
/// sampled allocations still in use, with their stacks, symbols resolved.
/// Written and read on a blocking thread.
pub async fn heap_profile() -> Result<Vec<u8>, ProfileError> {
    let Some(ctl) = jemalloc_pprof::PROF_CTL.as_ref() else {
        return Err(ProfileError::HeapProfilingOff);
    };
    let ctl = ctl.clone();
    let dump = tokio::task::spawn_blocking(move || {
        let mut ctl = ctl.blocking_lock();
        if !ctl.activated() {
            return Err(ProfileError::HeapProfilingOff);
        }
        ctl.dump_pprof().map_err(|error| ProfileError::Heap(format!("{error:#}")))
    });
    dump.await.map_err(|error| ProfileError::Report(error.to_string()))?
}
