//! example-app: a small service assembled from orderly components.

// jemalloc with its sampling heap profiler, for /debug/pprof/heap.
orderly_components::heap_profiling_allocator!();

fn main() -> std::process::ExitCode {
    orderly::app::App::new(orderly::app_info!(), orderly::link![example_app, orderly_components])
        .embedded_config(include_str!("../config/default.toml"))
        // Read over the defaults only in a debug build, or when asked for.
        .embedded_profile("dev", include_str!("../config/dev.toml"))
        .run()
}
