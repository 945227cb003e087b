//! 09: new config while running. `RateLimit` changes its limit in place
//! (its `reload` hook copies it from the replacement built from the new
//! config); `Mailer` has no hook, so a reload restarts it with the new
//! value, along with `Signup`, which depends on it. `App` does this on
//! SIGHUP after re-reading and validating every config layer; here the
//! replacements are handed to `Runtime::reload` directly, all or nothing:
//! had the mailer failed to start, the rate limit would be 100 again.
//!
//! Then `Audit`, disabled at start (`[components.audit] enabled = false`
//! in config), is enabled and disabled again: it starts and stops along
//! the graph, and `Signup`, which takes it if it is there, starts again
//! each time to see it come and go.
//!
//! cargo run -p orderly --example 09_reload

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use orderly::{
    events::EventKind, runtime::ReloadChange, settings::ComponentSettings, BoxError, Component, Dependency,
    ReloadContext, Reloaded, Runtime, ShutdownReason, StartContext,
};

struct RateLimit {
    per_second: AtomicU32,
}

#[orderly::component]
impl Component for RateLimit {
    async fn reload(&self, ctx: &ReloadContext) -> Result<Reloaded, BoxError> {
        let new = ctx.replacement::<RateLimit>().ok_or("not a RateLimit")?;
        self.per_second.store(new.per_second.load(Ordering::Relaxed), Ordering::Relaxed);
        Ok(Reloaded::Applied) // in effect now; nothing restarts
    }
}

struct Mailer {
    relay: String,
}

#[orderly::component]
impl Component for Mailer {
    async fn start(&self, _ctx: &StartContext) -> Result<(), BoxError> {
        println!("mailer: connected to {}", self.relay);
        Ok(())
    }
}

struct Signup;

#[orderly::component]
impl Component for Signup {
    fn dependencies(&self) -> Vec<Dependency> {
        vec![Dependency::on::<Mailer>(), Dependency::on::<Audit>().optional()]
    }

    fn restartable(&self) -> bool {
        true // restarted when the mailer is, and when audit comes or goes
    }

    async fn start(&self, ctx: &StartContext) -> Result<(), BoxError> {
        let audited = if ctx.dependency::<Audit>().is_ok() { "audited" } else { "not audited" };
        println!("signup: using the mailer at {}, {audited}", ctx.dependency::<Mailer>()?.relay);
        Ok(())
    }
}

/// Off unless config enables it.
struct Audit;

#[orderly::component]
impl Component for Audit {
    async fn start(&self, _ctx: &StartContext) -> Result<(), BoxError> {
        println!("audit: started");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let limit = Arc::new(RateLimit { per_second: AtomicU32::new(100) });
    let runtime = Runtime::builder()
        .component_arc(limit.clone())
        .component(Mailer { relay: "smtp-a:25".into() })
        .component(Signup)
        .component_named("audit", Arc::new(Audit), Some(ComponentSettings { enabled: false, ..Default::default() }))
        .build()?;
    runtime.start().await.map_err(|e| format!("{e:?}"))?;

    let report = runtime
        .reload(vec![
            // Each change: the value from the new config, and a fresh one from
            // the config in force, for a rollback if a later change fails.
            ReloadChange::new(
                "rate_limit",
                Arc::new(RateLimit { per_second: AtomicU32::new(250) }),
                Arc::new(RateLimit { per_second: AtomicU32::new(100) }),
            ),
            ReloadChange::new(
                "mailer",
                Arc::new(Mailer { relay: "smtp-b:25".into() }),
                Arc::new(Mailer { relay: "smtp-a:25".into() }),
            ),
        ])
        .await;
    println!("applied in place: {:?}; restarted: {:?}", report.applied, report.restarted);
    println!("rate limit now {} per second", limit.per_second.load(Ordering::Relaxed));
    assert_eq!(report.applied, ["rate_limit"]);
    assert_eq!(report.restarted, ["mailer"]);
    assert_eq!(limit.per_second.load(Ordering::Relaxed), 250);
    for event in runtime.timeline().of_kind(EventKind::Reloaded) {
        println!("reloaded {}: {}", event.component.as_deref().unwrap_or("?"), event.detail.as_deref().unwrap_or(""));
    }

    // Enabled: a value built from the new config starts; signup starts again with it.
    let report = runtime.reload(vec![ReloadChange::enable("audit", Arc::new(Audit))]).await;
    assert_eq!(report.enabled, ["audit"]);
    println!("running now: {:?}", runtime.component_names());
    // Disabled: it stops; signup starts again without it. The copy would run again if the reload were undone.
    let report = runtime.reload(vec![ReloadChange::disable("audit", Arc::new(Audit))]).await;
    assert_eq!(report.disabled, ["audit"]);
    println!("running now: {:?}", runtime.component_names());

    let shutdown = runtime.shutdown(ShutdownReason::Signal("SIGTERM")).await;
    println!("shutdown clean: {}", shutdown.is_clean());
    Ok(())
}
