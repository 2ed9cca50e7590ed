//! The delivery rollup on SQLite (see `crate::rollup`): added to in the transaction that
//! records a batch of attempts, read by the overview, pruned by maintenance.

use std::sync::LazyLock;

use rusqlite::{Connection, params_from_iter};
use time::OffsetDateTime;

use super::map_error;
use crate::Result;
use crate::rollup::{self, RollupMinute};
use crate::rows::ms;

/// The upsert of one minute, written once.
static UPSERT: LazyLock<String> = LazyLock::new(|| rollup::upsert_sql(|n| format!("?{n}")));

/// Adds what the batch did to each minute it touches: one statement per minute.
pub(crate) fn add(c: &Connection, records: &[crate::AttemptRecord]) -> Result<()> {
    let minutes = rollup::aggregate(records);
    if minutes.is_empty() {
        return Ok(());
    }
    let mut upsert = c.prepare_cached(&UPSERT).map_err(map_error)?;
    for minute in &minutes {
        let values = std::iter::once(ms(minute.start)).chain(minute.counts());
        upsert
            .execute(params_from_iter(values))
            .map_err(map_error)?;
    }
    Ok(())
}

pub(crate) fn read(c: &Connection, since: OffsetDateTime) -> Result<Vec<RollupMinute>> {
    let mut select = c
        .prepare_cached(&rollup::select_sql("?1"))
        .map_err(map_error)?;
    let width = rollup::COLUMNS.len();
    select
        .query_map([ms(since)], |row| {
            let counts = (1..=width)
                .map(|index| row.get::<_, i64>(index))
                .collect::<rusqlite::Result<Vec<i64>>>()?;
            Ok(RollupMinute::from_row(row.get(0)?, &counts))
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(map_error)
}

pub(crate) fn prune(c: &Connection, before: OffsetDateTime) -> Result<u64> {
    let pruned = c
        .execute("DELETE FROM rollup_minutes WHERE minute < ?", [ms(before)])
        .map_err(map_error)?;
    Ok(pruned as u64)
}
