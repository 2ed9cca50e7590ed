//! The lines of ordered endpoints (FIFO delivery): the numbers that say which pending delivery
//! is earlier. Fresh deliveries are numbered at insert (SQLite in its statements, PostgreSQL by
//! an insert trigger); this numbers deliveries made pending again (recover, replay, requeue) and
//! the pending deliveries of an endpoint whose `ordered` changed. Drawing numbers is each
//! backend's own (`number`); the claim's rule is in each backend's `engine::claim_due`.

use const_format::formatcp;
use time::OffsetDateTime;
use webhookd_core::{AppId, EndpointId, MessageId};

use crate::Result;
use crate::db::{Db, by_backend, params};
use crate::engine::REOPEN;
use crate::operational::notify_due;
use crate::status::PENDING;

/// Makes ready to number deliveries before an endpoint becomes ordered (PostgreSQL turns on
/// its trigger; SQLite always numbers).
pub(crate) async fn enable_numbering(db: &mut Db<'_>) -> Result<()> {
    by_backend!(db,
        _sqlite => Ok(()),
        c => crate::postgres::ordered::enable_numbering(*c).await)
}

/// Numbers these pending deliveries of the endpoint, in the order given, after its line, when
/// the endpoint is ordered.
async fn number(db: &mut Db<'_>, endpoint: &EndpointId, msgs: &[String]) -> Result<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    by_backend!(db,
        c => crate::sqlite::ordered::number(c, endpoint, msgs),
        c => crate::postgres::ordered::number(*c, endpoint, msgs).await)
}

/// Puts these pending deliveries of the endpoint at the end of its line, in message id order,
/// when the endpoint is ordered. The statement that made them pending cleared their numbers.
pub(crate) async fn line_up(
    db: &mut Db<'_>,
    endpoint: &EndpointId,
    mut msgs: Vec<String>,
) -> Result<()> {
    msgs.sort();
    number(db, endpoint, &msgs).await
}

/// After the endpoint's `ordered` changed: lines up its pending deliveries in message id
/// order, those already claimed (in a node's memory, maybe in flight) first, so that only the
/// front of the line is ever leased; or clears their numbers.
pub(crate) async fn reorder(db: &mut Db<'_>, endpoint: &EndpointId, ordered: bool) -> Result<()> {
    if !ordered {
        db.execute(
            formatcp!(
                "UPDATE deliveries SET seq = NULL \
                 WHERE endpoint_id = $1 AND status = {PENDING} AND seq IS NOT NULL"
            ),
            &params![endpoint.as_str()],
        )
        .await?;
        return Ok(());
    }
    let pending: Vec<String> = db
        .query(
            formatcp!(
                "SELECT msg_id FROM deliveries \
                 WHERE endpoint_id = $1 AND status = {PENDING} AND seq IS NULL \
                 ORDER BY lease_owner IS NULL, msg_id"
            ),
            &params![endpoint.as_str()],
            |row| row.get(0),
        )
        .await?;
    number(db, endpoint, &pending).await
}

/// See [`crate::Store::requeue`]. Wakes the nodes. Call inside a transaction.
pub(crate) async fn requeue(
    db: &mut Db<'_>,
    app: &AppId,
    msg: &MessageId,
    endpoint: &EndpointId,
    now: OffsetDateTime,
) -> Result<()> {
    let again = db
        .execute(
            formatcp!(
                "UPDATE deliveries SET {REOPEN} \
                 WHERE msg_id = $2 AND endpoint_id = $3 AND status <> {PENDING}"
            ),
            &params![now, msg.as_str(), endpoint.as_str()],
        )
        .await?;
    if again > 0 {
        line_up(db, endpoint, vec![msg.to_string()]).await?;
    } else {
        // Absent: created pending, numbered at insert. Present and pending: kept.
        db.execute(
            formatcp!(
                "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
                 next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, {PENDING}, 0, $4, $4, $4) \
                 ON CONFLICT (msg_id, endpoint_id) DO NOTHING"
            ),
            &params![msg.as_str(), endpoint.as_str(), app.as_str(), now],
        )
        .await?;
    }
    notify_due(db).await
}
