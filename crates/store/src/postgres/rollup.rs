//! The delivery rollup on PostgreSQL (see `crate::rollup`): added to in the transaction that
//! records a batch of attempts (several nodes add into the same rows).

use super::list::int;
use super::rows::ms;
use super::sql::Pipeline;
use crate::AttemptRecord;
use crate::rollup::{self, UPSERT};

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
