//! One profile at a time per process: the CPU profiler is process-wide
//! (one timer, one signal handler), and two heap dumps at once would only
//! cost twice for the same answer.

use std::time::Instant;

use parking_lot::Mutex;

/// What is running now, for the refusal's message.
struct Running {
    what: String,
    since: Instant,
}

static RUNNING: Mutex<Option<Running>> = Mutex::new(None);

/// Another profile holds the slot.
#[derive(Debug, Clone, thiserror::Error)]
#[error("a profile is already running: {running}")]
pub struct SlotTaken {
    /// The running profile, in words ("CPU profile of 30 s for 127.0.0.1:50312, 12 s in").
    pub running: String,
}

/// The process's profile slot, held while a profile runs.
#[derive(Debug)]
pub struct Slot(());

impl Slot {
    /// Takes the slot for `what`, or names the profile that holds it.
    pub fn take(what: impl Into<String>) -> Result<Slot, SlotTaken> {
        let mut running = RUNNING.lock();
        if let Some(current) = running.as_ref() {
            return Err(SlotTaken { running: format!("{}, {} s in", current.what, current.since.elapsed().as_secs()) });
        }
        *running = Some(Running { what: what.into(), since: Instant::now() });
        Ok(Slot(()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        *RUNNING.lock() = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_at_a_time_and_free_again_when_dropped() {
        let first = Slot::take("CPU profile of 30 s for tests").unwrap();
        let refused = Slot::take("heap profile").unwrap_err();
        assert!(refused.running.starts_with("CPU profile of 30 s for tests, 0 s in"), "{}", refused.running);
        drop(first);
        assert!(Slot::take("heap profile").is_ok());
    }
}
