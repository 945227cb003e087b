//! Wake-ups: an idle claim loop learns of a new durable job at once, not at
//! its next poll. `enqueue` notifies the queue's channel in the same
//! transaction as the insert (Postgres delivers it at commit, so never for
//! a job that does not exist); a dedicated connection `LISTEN`s on it.
//!
//! Polling stays, as the fallback: a notification lost while the listening
//! connection was down is covered by the next poll, and one more look right
//! after the connection comes back. A dropped connection is logged and
//! established again after a second.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{watch, Notify};
use tokio_postgres::AsyncMessage;

use super::stage::{reached, Stage};

/// How long to wait before connecting again after the listening connection failed.
const RECONNECT: Duration = Duration::from_secs(1);

/// The channel jobs of `queue` are announced on.
pub(crate) fn channel(queue: &str) -> String {
    format!("orderly_jobs_{queue}")
}

/// `channel` as a quoted identifier, for `LISTEN`.
fn quoted(channel: &str) -> String {
    format!("\"{}\"", channel.replace('"', "\"\""))
}

/// Listens on `queue`'s channel until phase 1, waking `wake` for each
/// notification (and once after each reconnect).
pub(crate) async fn listen(
    mut config: tokio_postgres::Config,
    queue: Arc<str>,
    wake: Arc<Notify>,
    mut stage: watch::Receiver<Stage>,
    logger: slog::Logger,
) {
    config.application_name("orderly-jobs-listener");
    let listen = format!("LISTEN {}", quoted(&channel(&queue)));
    let mut connected_before = false;
    loop {
        let lost = tokio::select! {
            lost = listen_once(&config, &listen, &wake, connected_before) => lost,
            () = reached(&mut stage, Stage::NotClaiming) => return,
        };
        connected_before = true;
        slog::warn!(logger, "the job queue's listening connection was lost; polling until it is back";
            "queue" => &*queue, "error" => lost, "retry_in_ms" => RECONNECT.as_millis() as u64);
        tokio::select! {
            () = tokio::time::sleep(RECONNECT) => {}
            () = reached(&mut stage, Stage::NotClaiming) => return,
        }
    }
}

/// One connection: `LISTEN`, then forward notifications until it fails.
/// Returns why it ended.
async fn listen_once(config: &tokio_postgres::Config, listen: &str, wake: &Notify, reconnected: bool) -> String {
    let (client, mut connection) = match config.connect(tokio_postgres::NoTls).await {
        Ok(pair) => pair,
        Err(e) => return e.to_string(),
    };
    // The connection is driven here, by reading its messages: notifications
    // arrive among them.
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    let subscribe = client.batch_execute(listen);
    tokio::pin!(subscribe);
    loop {
        tokio::select! {
            done = &mut subscribe => match done {
                Ok(()) => break,
                Err(e) => return e.to_string(),
            },
            message = messages.next() => match message {
                Some(Ok(_)) => {}
                Some(Err(e)) => return e.to_string(),
                None => return "the connection closed".into(),
            },
        }
    }
    // Jobs enqueued while it was down announced themselves to nobody: look now.
    if reconnected {
        wake.notify_one();
    }
    loop {
        match messages.next().await {
            Some(Ok(AsyncMessage::Notification(_))) => wake.notify_one(),
            Some(Ok(_)) => {}
            Some(Err(e)) => return e.to_string(),
            None => return "the connection closed".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_name_is_quoted_for_listen() {
        assert_eq!(quoted(&channel("default")), "\"orderly_jobs_default\"");
        assert_eq!(quoted(&channel("a\"b")), "\"orderly_jobs_a\"\"b\"");
    }
}
