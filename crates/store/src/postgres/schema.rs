//! The PostgreSQL schema: the SQL files under `migrations/`, applied by refinery (see
//! `crate::migrations`), each in a transaction of its own.
//!
//! Several nodes may start at once: the migrations run under a session advisory lock, so one
//! node applies them and the others find them applied. A node that finds migrations newer
//! than its own (the next release, during a rolling upgrade) runs on: schema changes are
//! additive for one release, so its queries still hold.

use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::map_error;
use crate::Result;

refinery::embed_migrations!("src/postgres/migrations");

/// The advisory lock that serializes migrations between nodes ("webhookd" in ASCII).
const MIGRATION_LOCK: i64 = 0x7765_6268_6f6f_6b64;

/// Applies pending migrations over a connection of its own; returns the schema version
/// reached. Runs on the current Tokio runtime.
pub(crate) async fn migrate(
    config: &tokio_postgres::Config,
    tls: MakeRustlsConnect,
) -> Result<usize> {
    let (mut client, connection) = config.connect(tls).await.map_err(map_error)?;
    let driver = tokio::spawn(connection);
    // refinery's `CREATE TABLE IF NOT EXISTS` would log a NOTICE at every start.
    client
        .batch_execute("SET client_min_messages = warning")
        .await
        .map_err(map_error)?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(map_error)?;
    let runner = migrations::runner().set_abort_missing(false);
    let applied = runner.run_async(&mut client).await;
    let newest = match applied {
        Ok(_) => runner.get_last_applied_migration_async(&mut client).await,
        Err(error) => Err(error),
    };
    // The lock is released with the session in any case; unlocking first is only tidier.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    drop(client);
    let _ = driver.await;
    crate::migrations::version_reached(newest)
}
