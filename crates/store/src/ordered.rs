//! The lines of ordered endpoints (FIFO delivery), where the backends number them their own
//! way: SQLite numbers in its statements, PostgreSQL in an insert trigger.

use webhookd_core::EndpointId;

use crate::Result;
use crate::db::{Db, by_backend};

/// Makes ready to number deliveries before an endpoint becomes ordered (PostgreSQL turns on
/// its trigger; SQLite always numbers).
pub(crate) async fn enable_numbering(db: &mut Db<'_>) -> Result<()> {
    by_backend!(db,
        _sqlite => Ok(()),
        c => crate::postgres::ordered::enable_numbering(*c).await)
}

/// After the endpoint's `ordered` changed: lines up its pending deliveries, or clears their
/// numbers.
pub(crate) async fn reorder(db: &mut Db<'_>, endpoint: &EndpointId, ordered: bool) -> Result<()> {
    by_backend!(db,
        c => crate::sqlite::ordered::reorder(c, endpoint, ordered),
        c => crate::postgres::ordered::reorder(*c, endpoint, ordered).await)
}
