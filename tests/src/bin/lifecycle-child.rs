//! The app that the signal tests run as a real child process.

fn main() -> std::process::ExitCode {
    orderly::app::App::new(orderly::app_info!(), orderly::link![orderly_tests])
        .embedded_config(
            r#"
            [api]
            drain_ms = 100
            [components.stray]
            enabled = false
            [components.hanger]
            enabled = false
            [components.blocker]
            enabled = false
            [components.broken]
            enabled = false
            [components.crasher]
            enabled = false
            [components.wedge]
            enabled = false
            [components.stuck]
            enabled = false
            [components.flapper]
            enabled = false
            [components.garbler]
            enabled = false
            [log]
            format = "json"
            "#,
        )
        .run()
}
