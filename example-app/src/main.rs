//! example-app: a small service assembled from orderly components.

fn main() -> std::process::ExitCode {
    orderly::app::App::new(orderly::app_info!(), orderly::link![example_app, orderly_components])
        .embedded_config(include_str!("../config/default.toml"))
        // Read over the defaults only in a debug build, or when asked for.
        .embedded_profile("dev", include_str!("../config/dev.toml"))
        .run()
}
