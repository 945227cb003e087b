//! 06: a registered component with a typed, validated config section, run
//! by `App` with the standard command line. Try:
//!
//! cargo run -p orderly --example 06_registered_app_with_config -- --check
//! cargo run -p orderly --example 06_registered_app_with_config -- --print-config
//! APP__TICKER__EVERY=5ms cargo run -p orderly --example 06_registered_app_with_config -- --check   # exit 78
//! cargo run -p orderly --example 06_registered_app_with_config    # Ctrl-C to stop

use std::time::Duration;

use orderly::{config::FromConfig, config::Validate, config::Validation, BoxError, Component, StartContext};

/// `[ticker]`.
#[derive(Debug, serde::Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
struct TickerConfig {
    #[serde(with = "humantime_serde")]
    every: Duration,
}

impl Default for TickerConfig {
    fn default() -> Self {
        Self { every: Duration::from_secs(1) }
    }
}

impl Validate for TickerConfig {
    fn validate(&self, v: &mut Validation) {
        v.check(self.every >= Duration::from_millis(100), "every", "must be at least 100ms");
    }
}

struct Ticker {
    every: Duration,
}

#[orderly::component]
impl Component for Ticker {
    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let (every, logger) = (self.every, ctx.logger().clone());
        ctx.spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                slog::info!(logger, "tick");
            }
        });
        Ok(())
    }
}

impl FromConfig for Ticker {
    type Config = TickerConfig;
    fn from_config(config: TickerConfig) -> Result<Self, BoxError> {
        Ok(Ticker { every: config.every })
    }
}

orderly::register!(Ticker);

fn main() -> std::process::ExitCode {
    orderly::app::App::new(orderly::app_info!(), orderly::link![]).run()
}
