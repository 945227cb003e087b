//! example-app: a small service assembled from orderly components.

fn main() -> std::process::ExitCode {
    orderly::app::App::new(orderly::app_info!(), orderly::link![example_app, orderly_components])
        .embedded_config(include_str!("../config/default.toml"))
        .run()
}
