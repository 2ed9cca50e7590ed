//! The SQLite schema: the SQL files under `migrations/`, applied by refinery (see
//! `crate::migrations`), all pending ones in one transaction. A database that records
//! migrations this release does not know (a newer release's) is refused.
//!
//! Databases made before refinery kept this schema count their migrations in
//! `PRAGMA user_version` and have no history table. They are adopted first: their migrations
//! are recorded as applied in refinery's history, so that refinery applies only the rest.
//! Every run then writes the version reached to `user_version` too, so that a release from
//! before refinery, which reads only that, refuses a database newer than it knows instead of
//! applying its first migration again over existing tables.

use refinery::Target;
use rusqlite::Connection;

use super::map_error;
use crate::{Result, StoreError};

refinery::embed_migrations!("src/sqlite/migrations");

/// Applies pending migrations over `connection`; returns the schema version reached.
pub(crate) fn migrate(connection: &mut Connection) -> Result<usize> {
    adopt(connection)?;
    let runner = migrations::runner().set_grouped(true);
    let newest = runner
        .run(connection)
        .and_then(|_| runner.get_last_applied_migration(connection));
    let reached = crate::migrations::version_reached(newest)?;
    connection
        .pragma_update(None, "user_version", reached)
        .map_err(map_error)?;
    Ok(reached)
}

/// Records the migrations counted in `user_version` as applied, in one transaction, unless
/// refinery's history already records any.
fn adopt(connection: &mut Connection) -> Result<()> {
    let counted: i32 = connection
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .map_err(map_error)?;
    if counted == 0 || recorded(connection)? {
        return Ok(());
    }
    let known = migrations::runner().get_migrations().len();
    if !usize::try_from(counted).is_ok_and(|counted| counted <= known) {
        return Err(StoreError::Internal(format!(
            "the database's schema version {counted} is newer than this webhookd's ({known})"
        )));
    }
    // A fake run records migrations without applying them, all in one transaction, in the
    // form (and with the checksums) refinery checks at every later run.
    migrations::runner()
        .set_target(Target::FakeVersion(counted))
        .run(connection)
        .map_err(|error| StoreError::Internal(format!("adopting the schema failed: {error}")))?;
    Ok(())
}

/// Whether refinery's history records any migration. An empty one is left by an adoption
/// that stopped between creating it and filling it.
fn recorded(connection: &Connection) -> Result<bool> {
    let exists: bool = connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master \
             WHERE type = 'table' AND name = 'refinery_schema_history')",
            [],
            |row| row.get(0),
        )
        .map_err(map_error)?;
    if !exists {
        return Ok(false);
    }
    connection
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM refinery_schema_history)",
            [],
            |row| row.get(0),
        )
        .map_err(map_error)
}

#[cfg(test)]
mod tests;
