//! What PostgreSQL's statements need beyond the shared rows (`crate::rows`): the database's
//! clock, lease lengths, statuses at their column's width, and typed reads of its own rows.

use tokio_postgres::Row;
use tokio_postgres::types::FromSql;
use webhookd_core::model::DeliveryStatus;
use webhookd_core::time::to_unix_ms;

use super::error::map_error;
use crate::{Lease, Result};

pub(crate) use crate::rows::{ms, opt_ms};

/// The database's clock in Unix milliseconds, as SQL: the one clock every node's leases are
/// measured by, however far the nodes' own clocks drift apart.
pub(crate) const DB_NOW_MS: &str = "(EXTRACT(EPOCH FROM now()) * 1000)::bigint";

/// How long a lease runs, in milliseconds: its end as the node computed it, less the node's
/// own now. Added to [`DB_NOW_MS`] in SQL, it gives the lease's end on the database's clock.
pub(crate) fn lease_ms(lease: &Lease) -> i64 {
    to_unix_ms(lease.until)
        .saturating_sub(to_unix_ms(webhookd_core::time::now()))
        .max(0)
}

/// A status as its SMALLINT column holds it.
pub(crate) fn status_code(status: DeliveryStatus) -> i16 {
    status as i16
}

pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, index: usize) -> Result<T> {
    row.try_get(index).map_err(map_error)
}

/// Maps every row with `map`, stopping at the first failure.
pub(crate) fn all<T>(rows: &[Row], map: impl FnMut(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(map).collect()
}
