//! The PostgreSQL schema: the SQL files under `migrations/`, embedded at build time and applied
//! in order by refinery, which records them in `refinery_schema_history`.
//!
//! Several nodes may start at once: the migrations run under a session advisory lock, so one
//! node applies them and the others find them applied. A node that finds migrations newer
//! than its own (the next release, during a rolling upgrade) runs on: schema changes are
//! additive for one release, so its queries still hold.

use tokio_postgres_rustls::MakeRustlsConnect;

use super::error::map_error;
use crate::{Result, StoreError};

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
    let version = match applied {
        Ok(_) => runner.get_last_applied_migration_async(&mut client).await,
        Err(error) => Err(error),
    };
    // The lock is released with the session in any case; unlocking first is only tidier.
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    drop(client);
    let _ = driver.await;
    let last =
        version.map_err(|error| StoreError::Internal(format!("migration failed: {error}")))?;
    Ok(last.map_or(0, |migration| {
        usize::try_from(migration.version()).unwrap_or_default()
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_numbered_one_by_one() {
        // The runner applies them in version order; the files are listed in name order.
        let mut versions: Vec<_> = super::migrations::runner()
            .get_migrations()
            .iter()
            .map(|migration| migration.version())
            .collect();
        versions.sort_unstable();
        let expected: Vec<_> = (1..=versions.len()).map(|n| n as i32).collect();
        assert_eq!(versions, expected);
    }
}
