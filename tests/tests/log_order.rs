//! The log reads in causal order at the shutdown (issue #22, item 7): the
//! runtime's `stopping` line for a hook comes before the hook's own lines,
//! even for a hook that finishes at once (announced lazily, for hooks that
//! log nothing, so that no-op hooks cost no event).

use std::sync::{Arc, Mutex};

use orderly::{async_trait, BoxError, Component, Runtime, ShutdownReason, StopContext};

/// Records each log line's message and `component` key, in order.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

/// Logs a line from its drain, which finishes at once.
struct Api;

impl slog::Drain for Lines {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &slog::Record<'_>, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        struct Find(Option<String>);
        impl slog::Serializer for Find {
            fn emit_arguments(&mut self, key: slog::Key, val: &std::fmt::Arguments<'_>) -> slog::Result {
                if key == "component" {
                    self.0 = Some(val.to_string());
                }
                Ok(())
            }
        }
        let mut component = Find(None);
        let _ = slog::KV::serialize(values, record, &mut component);
        let _ = slog::KV::serialize(&record.kv(), record, &mut component);
        let who = component.0.unwrap_or_default();
        self.0.lock().unwrap().push(format!("{who}: {}", record.msg()));
        Ok(())
    }
}

#[async_trait]
impl Component for Api {
    fn name(&self) -> &str {
        "api"
    }
    async fn drain(&self, ctx: &StopContext) -> Result<(), BoxError> {
        slog::info!(ctx.logger(), "drained");
        Ok(())
    }
}

#[tokio::test]
async fn a_hooks_own_lines_follow_the_runtimes_stopping_line() {
    let lines = Lines::default();
    let logger = slog::Logger::root(slog::Drain::fuse(lines.clone()), slog::o!());
    let runtime = Runtime::builder().component(Api).logger(logger).build().unwrap();
    runtime.start().await.unwrap();
    assert!(runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await.is_clean());
    let lines = lines.0.lock().unwrap().clone();
    let at =
        |wanted: &str| lines.iter().position(|l| l == wanted).unwrap_or_else(|| panic!("no `{wanted}` in {lines:#?}"));
    assert!(at("api: lifecycle stopping") < at("api: drained"), "{lines:#?}");
    assert!(at("api: drained") < at("api: lifecycle stopped"), "{lines:#?}");
    assert_eq!(lines.iter().filter(|l| *l == "api: lifecycle stopping").count(), 1, "announced once: {lines:#?}");
}
