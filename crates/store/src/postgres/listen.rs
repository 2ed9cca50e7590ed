//! Waking the nodes: writes that make work due at once (deliveries created without a lease,
//! released leases, recovered deliveries) send `NOTIFY webhookd_due` in their transaction, and
//! every node keeps one connection that `LISTEN`s on that channel and turns each notification
//! into a wake-up of its scheduler.
//!
//! The wake-up is a hint, never the only way work is found: a scheduler still polls, so a
//! notification lost while the connection was down delays work by one poll at most. The
//! connection is re-established with exponential backoff whenever it drops, and a reconnect
//! itself wakes the scheduler, for what may have been missed meanwhile.

use std::sync::Arc;
use std::time::Duration;

use super::sql::Connection;
use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::list::{Param, text};
use super::sql::execute;
use crate::Result;

/// The channel nodes signal due work on.
pub(crate) const CHANNEL: &str = "webhookd_due";

const FIRST_RETRY: Duration = Duration::from_millis(250);
const LAST_RETRY: Duration = Duration::from_secs(30);

/// Signals due work to every node when the surrounding transaction commits. Notifications
/// of one transaction are folded into one by the server.
pub(crate) async fn notify_due(c: &impl Connection) -> Result<()> {
    let (sql, _) = notify_due_statement();
    execute(c, sql, &[&CHANNEL]).await.map(drop)
}

/// The statement of [`notify_due`], for a pipeline.
pub(crate) fn notify_due_statement() -> (&'static str, Vec<Param>) {
    ("SELECT pg_notify($1, '')", vec![text(CHANNEL)])
}

/// Listens until the task is aborted, reconnecting with backoff; notifies `due` on every
/// signal.
pub(crate) async fn run(config: tokio_postgres::Config, tls: MakeRustlsConnect, due: Arc<Notify>) {
    let mut retry = FIRST_RETRY;
    loop {
        match listen(&config, tls.clone(), &due).await {
            Ok(()) => {
                retry = FIRST_RETRY;
                tracing::warn!(
                    channel = CHANNEL,
                    "the LISTEN connection closed; reconnecting"
                );
            }
            Err(error) => {
                tracing::warn!(%error, channel = CHANNEL, retry_in = ?retry, "cannot LISTEN for due work");
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(LAST_RETRY);
    }
}

/// One connection's life: `Ok` when it was listening and then closed.
async fn listen(
    config: &tokio_postgres::Config,
    tls: MakeRustlsConnect,
    due: &Arc<Notify>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(tls).await?;
    let forward = Arc::clone(due);
    // The connection task reads the socket; notifications arrive on it, not on the client.
    let driver = tokio::spawn(async move {
        loop {
            match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                Some(Ok(AsyncMessage::Notification(_))) => forward.notify_one(),
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Ok(()),
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    tracing::debug!(channel = CHANNEL, "listening for due work");
    // Whatever was signalled while this node was not listening is looked for now.
    due.notify_one();
    let ended = driver.await;
    drop(client);
    match ended {
        Ok(result) => result,
        // The driver cannot panic; a cancelled one means the runtime is going away.
        Err(_) => Ok(()),
    }
}
