//! The delivery rollup on PostgreSQL (see `crate::rollup`): added to in the transaction that
//! records a batch of attempts (several nodes add into the same rows), read by the overview,
//! pruned by maintenance.

use std::sync::LazyLock;

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;

use super::list::int;
use super::rows::{get, ms};
use super::sql::{Pipeline, execute, query};
use crate::rollup::{self, RollupMinute};
use crate::{AttemptRecord, Result};

/// The upsert of one minute, written once.
static UPSERT: LazyLock<String> = LazyLock::new(|| rollup::upsert_sql(|n| format!("${n}")));

/// Adds what the batch did to each minute it touches: one statement per minute, sent with
/// the batch's other statements.
pub(crate) fn add(pipeline: &mut Pipeline, records: &[AttemptRecord]) {
    for minute in rollup::aggregate(records) {
        let params = std::iter::once(ms(minute.start))
            .chain(minute.counts())
            .map(int)
            .collect();
        pipeline.push(UPSERT.as_str(), params);
    }
}

pub(crate) async fn read(
    c: &impl GenericClient,
    since: OffsetDateTime,
) -> Result<Vec<RollupMinute>> {
    let rows = query(c, &rollup::select_sql("$1"), &[&ms(since)]).await?;
    let width = rollup::COLUMNS.len();
    rows.iter()
        .map(|row| {
            let counts = (1..=width)
                .map(|index| get::<i64>(row, index))
                .collect::<Result<Vec<i64>>>()?;
            Ok(RollupMinute::from_row(get(row, 0)?, &counts))
        })
        .collect()
}

pub(crate) async fn prune(c: &impl GenericClient, before: OffsetDateTime) -> Result<u64> {
    execute(
        c,
        "DELETE FROM rollup_minutes WHERE minute < $1",
        &[&ms(before)],
    )
    .await
}
