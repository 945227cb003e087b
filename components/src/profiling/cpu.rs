//! A CPU profile of the whole process over a number of seconds.

use std::future::Future;
use std::time::Duration;

use pprof::protos::Message;

use super::ProfileError;

/// Samples a second: a prime, so sampling does not beat in step with
/// periodic work, and the rate Go's profiler uses too (about 100 Hz).
const FREQUENCY: i32 = 99;

/// Libraries whose frames are not unwound from the signal handler: the
/// unwinder can deadlock inside them (pprof-rs's advice).
const BLOCKLIST: [&str; 4] = ["libc", "libgcc", "pthread", "vdso"];

/// How a CPU profile comes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuProfileFormat {
    /// pprof's protobuf (`go tool pprof`, Speedscope, Pyroscope, …).
    Pprof,
    /// A flame graph, SVG, for a browser.
    FlameGraph,
}

/// A finished CPU profile.
#[derive(Debug)]
pub struct CpuProfile {
    /// The encoded profile.
    pub bytes: Vec<u8>,
    /// Samples taken (0 when the process was idle the whole time).
    pub samples: usize,
}

/// Profiles the process for `seconds`, unless `abandon` resolves first
/// (the shutdown began): then the profiler stops at once and nothing is
/// reported. The report (symbols resolved, encoded) is built on a
/// blocking thread, so the caller's runtime keeps serving meanwhile.
pub async fn cpu_profile(
    seconds: Duration,
    format: CpuProfileFormat,
    abandon: impl Future<Output = ()>,
) -> Result<CpuProfile, ProfileError> {
    let guard = pprof::ProfilerGuardBuilder::default()
        .frequency(FREQUENCY)
        .blocklist(&BLOCKLIST)
        .build()
        .map_err(ProfileError::Cpu)?;
    tokio::select! {
        () = tokio::time::sleep(seconds) => {}
        () = abandon => return Err(ProfileError::ShuttingDown),
    }
    let report = tokio::task::spawn_blocking(move || -> Result<CpuProfile, ProfileError> {
        let report =
            guard.report().frames_post_processor(without_profiler_frames).build().map_err(ProfileError::Cpu)?;
        // The profiler stops here, before the encoding, which it would sample.
        drop(guard);
        let samples = report.data.values().map(|&count| count.max(0) as usize).sum();
        let bytes = match format {
            CpuProfileFormat::Pprof => report.pprof().map_err(ProfileError::Cpu)?.encode_to_vec(),
            CpuProfileFormat::FlameGraph => {
                let mut svg = Vec::new();
                report.flamegraph(&mut svg).map_err(ProfileError::Cpu)?;
                svg
            }
        };
        Ok(CpuProfile { bytes, samples })
    });
    report.await.map_err(|error| ProfileError::Report(error.to_string()))?
}

/// Drops the profiler's own frames (the unwinder called from the signal
/// handler) from the top of a sample's stack: they would otherwise be the
/// "flat" cost of every sample, hiding the function that was running.
fn without_profiler_frames(frames: &mut pprof::Frames) {
    let ours = |symbol: &pprof::Symbol| {
        let name = symbol.name();
        name.starts_with("backtrace::") || name.contains("pprof::") || name.contains("perf_signal_handler")
    };
    for frame in frames.frames.iter_mut() {
        frame.retain(|symbol| !ours(symbol));
    }
    frames.frames.retain(|frame| !frame.is_empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use pprof::protos::Profile;

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Burns CPU in a function whose name the profile must show, until told
    /// to stop (the profiler's first start in a process resolves symbols,
    /// which takes a while in a debug build).
    #[inline(never)]
    fn orderly_test_spin(stop: Arc<AtomicBool>) -> u64 {
        let mut x = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        x
    }

    fn spin() -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        (stop, std::thread::spawn(move || orderly_test_spin(flag)))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_profile_has_samples_and_names_the_busy_function() {
        let (stop, busy) = spin();
        let profile =
            cpu_profile(Duration::from_secs(1), CpuProfileFormat::Pprof, std::future::pending()).await.unwrap();
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
        assert!(profile.samples > 10, "{} samples", profile.samples);
        let decoded = Profile::decode(profile.bytes.as_slice()).expect("pprof protobuf");
        assert!(!decoded.sample.is_empty());
        let names: Vec<&str> =
            decoded.function.iter().map(|f| decoded.string_table[f.name as usize].as_str()).collect();
        assert!(names.iter().any(|n| n.contains("orderly_test_spin")), "functions: {names:?}");
        assert!(!names.iter().any(|n| n.contains("trace_unsynchronized")), "the profiler's own frames: {names:?}");
    }

    #[tokio::test]
    async fn the_flame_graph_is_svg_with_frames() {
        let (stop, busy) = spin();
        let svg = cpu_profile(Duration::from_millis(500), CpuProfileFormat::FlameGraph, std::future::pending())
            .await
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        busy.join().unwrap();
        let text = String::from_utf8(svg.bytes.clone()).unwrap();
        assert!(
            text.contains("<svg") && text.contains("orderly_test_spin"),
            "{} samples: {}",
            svg.samples,
            &text[..text.len().min(400)]
        );
    }

    #[tokio::test]
    async fn abandoning_stops_at_once() {
        let started = std::time::Instant::now();
        let outcome = cpu_profile(Duration::from_secs(30), CpuProfileFormat::Pprof, async {}).await;
        assert!(matches!(outcome, Err(ProfileError::ShuttingDown)), "{outcome:?}");
        // Not a timing assertion: 30 s would mean the abandon was ignored.
        assert!(started.elapsed() < Duration::from_secs(25));
    }
}
