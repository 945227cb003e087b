//! Where the pool is in its stop: one value, moving only forward, instead
//! of a flag per step (each stage implies every one before it).

use tokio::sync::watch;

/// The pool's stage, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Stage {
    /// Claiming and running jobs.
    Claiming,
    /// Phase 1: no more claiming; running jobs go on.
    NotClaiming,
    /// Phase 3: running jobs are asked to stop (`JobContext::cancelled`).
    Cancelling,
    /// The end of phase 3's budget: handlers are no longer waited for, and
    /// their jobs are given back to the queue.
    CuttingOff,
}

/// Moves the pool to `stage`, unless it is there or further already.
pub(crate) fn advance(sender: &watch::Sender<Stage>, stage: Stage) {
    sender.send_if_modified(|current| {
        let later = stage > *current;
        if later {
            *current = stage;
        }
        later
    });
}

/// Resolves once the pool has reached `stage` (or its sender is gone).
/// Returns nothing, so no borrow of the value is held across an await.
pub(crate) async fn reached(receiver: &mut watch::Receiver<Stage>, stage: Stage) {
    let _ = receiver.wait_for(|current| *current >= stage).await;
}

/// Whether the pool has reached `stage`.
pub(crate) fn has_reached(receiver: &watch::Receiver<Stage>, stage: Stage) -> bool {
    *receiver.borrow() >= stage
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn stages_only_move_forward_and_imply_the_earlier_ones() {
        let (sender, mut receiver) = watch::channel(Stage::Claiming);
        advance(&sender, Stage::Cancelling);
        advance(&sender, Stage::NotClaiming); // late: ignored
        assert_eq!(*receiver.borrow(), Stage::Cancelling);
        assert!(has_reached(&receiver, Stage::NotClaiming));
        assert!(!has_reached(&receiver, Stage::CuttingOff));
        reached(&mut receiver, Stage::NotClaiming).await; // already there: returns at once
        let waiter = tokio::spawn(async move { reached(&mut receiver, Stage::CuttingOff).await });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        advance(&sender, Stage::CuttingOff);
        waiter.await.unwrap();
    }
}
