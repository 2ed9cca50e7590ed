//! The engine's statements that read and write the same way on both backends: recovery, the
//! queue's depth, manual resends, endpoint health counts, and giving back every lease. The
//! claim, lease renewal and the batched record of attempts are each backend's own.

use const_format::formatcp;
use time::OffsetDateTime;
use webhookd_core::{AppId, EndpointId, MessageId};

use crate::db::{Db, Dialect, params};
use crate::operational::notify_due;
use crate::status::{CANCELED, FAIL, PENDING};
use crate::{EndpointHealthCounts, QueueDepth, RELEASE_ALL_LEASES, Result};

/// The `SET` of a delivery made pending again (recovered, replayed, requeued): due at `$1`, its
/// attempts counted afresh, out of any lease and out of its endpoint's line (a number is drawn
/// again by `ordered::line_up`, at the end of the line).
pub(crate) const REOPEN: &str = formatcp!(
    "status = {PENDING}, attempts = 0, next_attempt_at = $1, lease_owner = NULL, \
     lease_until = NULL, updated_at = $1, seq = NULL"
);

/// Makes the endpoint's failed and canceled deliveries of the window pending again, and wakes
/// the nodes. Call inside a transaction.
pub(crate) async fn recover(
    db: &mut Db<'_>,
    endpoint: &EndpointId,
    since: OffsetDateTime,
    until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u64> {
    let recovered: Vec<String> = db
        .query(
            formatcp!(
                "UPDATE deliveries SET {REOPEN} \
                 WHERE endpoint_id = $2 AND status IN ({FAIL}, {CANCELED}) \
                 AND created_at >= $3 AND created_at <= $4 RETURNING msg_id"
            ),
            &params![now, endpoint.as_str(), since, until],
            |row| row.get(0),
        )
        .await?;
    let count = recovered.len() as u64;
    // An ordered endpoint's recovered deliveries join the end of its line, in message order.
    crate::ordered::line_up(db, endpoint, recovered).await?;
    if count > 0 {
        notify_due(db).await?;
    }
    Ok(count)
}

pub(crate) async fn queue_depth(db: &mut Db<'_>, now: OffsetDateTime) -> Result<QueueDepth> {
    // Unordered and numbered deliveries apart, each through its own index.
    let mut depth = QueueDepth::default();
    for numbered in ["seq IS NULL", "seq IS NOT NULL"] {
        let sql = format!(
            "SELECT \
               COUNT(*) FILTER (WHERE lease_owner IS NULL AND next_attempt_at <= $1), \
               COUNT(*) FILTER (WHERE lease_owner IS NULL AND next_attempt_at > $1), \
               COUNT(*) FILTER (WHERE lease_owner IS NOT NULL) \
             FROM deliveries WHERE status = {PENDING} AND {numbered}"
        );
        let part = db
            .query_one(&sql, &params![now], |row| {
                Ok(QueueDepth {
                    due: row.get(0)?,
                    scheduled: row.get(1)?,
                    leased: row.get(2)?,
                })
            })
            .await?;
        depth.due += part.due;
        depth.scheduled += part.scheduled;
        depth.leased += part.leased;
    }
    Ok(depth)
}

/// See [`crate::Store::request_resend`]. Wakes the nodes.
pub(crate) async fn request_resend(
    db: &mut Db<'_>,
    app: &AppId,
    msg: &MessageId,
    endpoint: &EndpointId,
    now: OffsetDateTime,
) -> Result<()> {
    db.execute(
        "INSERT INTO resend_requests (msg_id, endpoint_id, app_id, requested_at) \
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        &params![msg.as_str(), endpoint.as_str(), app.as_str(), now],
    )
    .await?;
    notify_due(db).await
}

/// See [`crate::Store::take_resends`]: on PostgreSQL, requests another node is taking at the
/// same moment are skipped.
pub(crate) async fn take_resends(
    db: &mut Db<'_>,
    limit: usize,
) -> Result<Vec<(AppId, MessageId, EndpointId)>> {
    const TAKE: &str = "DELETE FROM resend_requests WHERE (msg_id, endpoint_id) IN \
         (SELECT msg_id, endpoint_id FROM resend_requests ORDER BY requested_at LIMIT $1";
    let sql = match db.dialect() {
        Dialect::Sqlite => formatcp!("{TAKE}) RETURNING app_id, msg_id, endpoint_id"),
        Dialect::Postgres => {
            formatcp!("{TAKE} FOR UPDATE SKIP LOCKED) RETURNING app_id, msg_id, endpoint_id")
        }
    };
    db.query(sql, &params![limit as i64], |row| {
        Ok((
            AppId::from_trusted(row.get(0)?),
            MessageId::from_trusted(row.get(1)?),
            EndpointId::from_trusted(row.get(2)?),
        ))
    })
    .await
}

pub(crate) async fn endpoint_health_counts(db: &mut Db<'_>) -> Result<EndpointHealthCounts> {
    db.query_one(
        "SELECT COUNT(*) FILTER (WHERE failing_since IS NOT NULL AND NOT disabled), \
         COUNT(*) FILTER (WHERE disabled) FROM endpoints",
        &[],
        |row| {
            Ok(EndpointHealthCounts {
                failing: row.get(0)?,
                disabled: row.get(1)?,
            })
        },
    )
    .await
}

/// See [`crate::Store::release_all_leases`].
pub(crate) async fn release_all_leases(db: &mut Db<'_>) -> Result<u64> {
    let mut released = 0;
    for sql in RELEASE_ALL_LEASES {
        released += db.execute(sql, &[]).await?;
    }
    Ok(released)
}
