//! How both backends' schemas are written and applied. A backend's schema is its list of SQL
//! files `<backend>/migrations/V<n>__<name>.sql`, embedded at build time and applied in version
//! order by refinery, which records each one it applies (with a checksum of its name and text)
//! in the table `refinery_schema_history`. The two lists are numbered alike: migration `n` of
//! SQLite is migration `n` of PostgreSQL, with the same name, each in its own dialect.
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
    use refinery::Runner;

    /// A list's migrations as (version, name), in version order.
    fn listed(runner: &Runner) -> Vec<(i32, String)> {
        let mut listed: Vec<_> = runner
            .get_migrations()
            .iter()
            .map(|migration| (migration.version(), migration.name().to_owned()))
            .collect();
        listed.sort_unstable();
        listed
    }

    fn sqlite() -> Vec<(i32, String)> {
        listed(&crate::sqlite::schema::migrations::runner())
    }

    fn postgres() -> Vec<(i32, String)> {
        listed(&crate::postgres::schema::migrations::runner())
    }

    #[test]
    fn each_list_is_numbered_one_by_one() {
        for list in [sqlite(), postgres()] {
            let versions: Vec<_> = list.iter().map(|(version, _)| *version).collect();
            let expected: Vec<_> = (1..=versions.len()).map(|n| n as i32).collect();
            assert_eq!(versions, expected, "{list:?}");
        }
    }

    #[test]
    fn both_backends_have_the_same_migrations() {
        assert_eq!(sqlite(), postgres());
    }
}
