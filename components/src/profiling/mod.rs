//! CPU and heap profiles of the running process, for the management
//! server's `/debug/pprof/*` (feature `profiling`).
//!
//! - CPU: pprof-rs samples every thread 99 times a second (`SIGPROF`) while
//!   a profile runs, and nothing at all otherwise: the signal handler and
//!   timer exist only during a profile.
//! - Heap: jemalloc's own sampling profiler, one sample per 512 KiB
//!   allocated on average, always on from the first allocation (a heap
//!   profile shows what is live now, so it cannot be started later);
//!   [`heap_profiling_allocator!`](crate::heap_profiling_allocator)
//!   installs jemalloc with it in the application's binary.
//!
//! Both come out in pprof's protobuf format, so `go tool pprof` and every
//! pprof viewer read them; a CPU profile also comes as a flame graph.
//! One profile runs at a time in a process ([`Slot`]).

mod cpu;
mod heap;
mod slot;

pub use cpu::{cpu_profile, CpuProfile, CpuProfileFormat};
pub use heap::{heap_profile, heap_summary, HeapSummary};
pub use slot::{Slot, SlotTaken};

/// jemalloc as a global allocator, for
/// [`heap_profiling_allocator!`](crate::heap_profiling_allocator).
#[doc(hidden)]
pub use tikv_jemallocator::Jemalloc;

/// The longest CPU profile one request may ask for.
pub const MAX_PROFILE_SECONDS: u64 = 300;

/// What can go wrong while taking a profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Another profile is running in this process.
    #[error(transparent)]
    Busy(#[from] SlotTaken),
    /// The CPU profiler could not start or report.
    #[error("CPU profiler: {0}")]
    Cpu(#[source] pprof::Error),
    /// The heap profiler is not on: jemalloc is not the allocator, or was
    /// started without `prof:true`.
    #[error(
        "heap profiling is off: install jemalloc with profiling in the binary \
         (`orderly_components::heap_profiling_allocator!();` in main.rs)"
    )]
    HeapProfilingOff,
    /// jemalloc could not write or read its profile.
    #[error("heap profile: {0}")]
    Heap(String),
    /// The shutdown began while the profile ran; it was abandoned.
    #[error("the shutdown began; the profile was abandoned")]
    ShuttingDown,
    /// The report's thread ended without an answer.
    #[error("the profile's report could not be built: {0}")]
    Report(String),
}

/// Installs jemalloc, with its sampling heap profiler on, as the binary's
/// global allocator. Put it once in the application's `main.rs`; it makes
/// `/debug/pprof/heap` answer.
///
/// ```ignore
/// orderly_components::heap_profiling_allocator!();
///
/// fn main() -> std::process::ExitCode {
///     // …
/// #   std::process::ExitCode::SUCCESS
/// }
/// ```
///
/// One heap sample per 512 KiB allocated on average (`lg_prof_sample:19`);
/// `_RJEM_MALLOC_CONF` in the environment overrides it at start.
#[macro_export]
macro_rules! heap_profiling_allocator {
    () => {
        #[global_allocator]
        static ORDERLY_GLOBAL_ALLOCATOR: $crate::profiling::Jemalloc = $crate::profiling::Jemalloc;

        /// jemalloc reads its options from this symbol before the first allocation.
        #[allow(non_upper_case_globals)]
        #[export_name = "_rjem_malloc_conf"]
        pub static _rjem_malloc_conf: &[u8] = b"prof:true,prof_active:true,lg_prof_sample:19\0";
    };
}
