//! How the schema's migrations are written and applied: SQL files
//! `<backend>/migrations/V<n>__<name>.sql`, embedded at build time and applied in version order
//! by refinery, which records each one it applies (with a checksum of its name and text) in the
//! table `refinery_schema_history`.
//!
//! A migration is never edited once released (refinery refuses a database whose recorded
//! checksum differs from the file's): changes are new migrations, additive first (add, then
//! remove a release later), so that a node of the previous release still runs on the schema.

use refinery::Migration;

use crate::{Result, StoreError};

/// The schema version a run of the migrations reached: the newest migration the database
/// records (0 for none), or the run's failure.
pub(crate) fn version_reached(
    newest: std::result::Result<Option<Migration>, refinery::Error>,
) -> Result<usize> {
    let newest =
        newest.map_err(|error| StoreError::Internal(format!("migration failed: {error}")))?;
    Ok(newest.map_or(0, |migration| {
        usize::try_from(migration.version()).unwrap_or_default()
    }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn postgres_migrations_are_numbered_one_by_one() {
        // The runner applies them in version order; the files are listed in name order.
        let mut versions: Vec<_> = crate::postgres::schema::migrations::runner()
            .get_migrations()
            .iter()
            .map(|migration| migration.version())
            .collect();
        versions.sort_unstable();
        let expected: Vec<_> = (1..=versions.len()).map(|n| n as i32).collect();
        assert_eq!(versions, expected);
    }
}
