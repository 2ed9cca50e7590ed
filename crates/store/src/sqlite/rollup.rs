//! The delivery rollup on SQLite (see `crate::rollup`): added to in the transaction that
//! records a batch of attempts.

use rusqlite::Connection;

use crate::Result;
use crate::db::Param;
use crate::rollup::{self, UPSERT};
use crate::rows::ms;

/// Adds what the batch did to each minute it touches: one statement per minute.
pub(crate) fn add(c: &Connection, records: &[crate::AttemptRecord]) -> Result<()> {
    for minute in rollup::aggregate(records) {
        let values: Vec<Param<'_>> = std::iter::once(ms(minute.start))
            .chain(minute.counts())
            .map(Param::Int)
            .collect();
        super::db::execute(c, &UPSERT, &values)?;
    }
    Ok(())
}
