//! The engine's statements that read and write the same way on both backends: recovery, the
//! queue's depth, manual resends, endpoint health counts, giving back every lease, and what one
//! attempt's result writes. The claim, lease renewal and the batching of attempt records are
//! each backend's own.

use const_format::formatcp;
use time::OffsetDateTime;
use webhookd_core::model::DeliveryStatus;
use webhookd_core::{AppId, EndpointId, MessageId};

use crate::db::{Db, Param, params};
use crate::operational::notify_due;
use crate::status::{CANCELED, FAIL, PENDING, SUCCESS};
use crate::{
    AttemptRecord, DeliveryUpdate, EndpointHealth, EndpointHealthCounts, QueueDepth,
    RELEASE_ALL_LEASES, Result,
};

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
    let sql = format!(
        "DELETE FROM resend_requests WHERE (msg_id, endpoint_id) IN \
         (SELECT msg_id, endpoint_id FROM resend_requests ORDER BY requested_at LIMIT $1{}) \
         RETURNING app_id, msg_id, endpoint_id",
        db.lock(" FOR UPDATE SKIP LOCKED")
    );
    db.query(&sql, &params![limit as i64], |row| {
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

/// The statements that write one attempt's result to its delivery, in order, each handed to
/// `run` with its parameters. A scheduled result (a retry, a final failure) applies only while
/// the delivery is still pending and not leased to another node: a delivery canceled meanwhile
/// stays canceled. A manual attempt's result creates a missing delivery finished; a failure
/// leaves a pending delivery on its own schedule.
pub(crate) fn delivery_statements(
    record: &AttemptRecord,
    mut run: impl FnMut(&'static str, &[Param<'_>]) -> Result<()>,
) -> Result<()> {
    let attempt = &record.attempt;
    let (msg, endpoint, at) = (
        attempt.msg_id.as_str(),
        attempt.endpoint_id.as_str(),
        attempt.created_at,
    );
    match record.delivery {
        DeliveryUpdate::Delivered => run(
            formatcp!(
                "UPDATE deliveries SET status = {SUCCESS}, attempts = attempts + 1, \
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $1 \
                 WHERE msg_id = $2 AND endpoint_id = $3"
            ),
            &params![at, msg, endpoint],
        ),
        DeliveryUpdate::RetryAt(next) => run(
            formatcp!(
                "UPDATE deliveries SET attempts = attempts + 1, next_attempt_at = $1, \
                 lease_owner = NULL, lease_until = NULL, updated_at = $2 \
                 WHERE msg_id = $3 AND endpoint_id = $4 AND status = {PENDING} \
                 AND (lease_owner IS NULL OR lease_owner = $5)"
            ),
            &params![next, at, msg, endpoint, &record.owner],
        ),
        DeliveryUpdate::Failed => run(
            formatcp!(
                "UPDATE deliveries SET status = {FAIL}, attempts = attempts + 1, \
                 next_attempt_at = NULL, lease_owner = NULL, lease_until = NULL, updated_at = $1 \
                 WHERE msg_id = $2 AND endpoint_id = $3 AND status = {PENDING} \
                 AND (lease_owner IS NULL OR lease_owner = $4)"
            ),
            &params![at, msg, endpoint, &record.owner],
        ),
        DeliveryUpdate::Manual { success } => {
            let status = if success {
                DeliveryStatus::Success
            } else {
                DeliveryStatus::Fail
            };
            run(
                "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, 0, $5, $5) \
                 ON CONFLICT (msg_id, endpoint_id) DO NOTHING",
                &params![msg, endpoint, attempt.app_id.as_str(), status.code(), at],
            )?;
            let sql = if success {
                formatcp!(
                    "UPDATE deliveries SET status = {SUCCESS}, next_attempt_at = NULL, \
                     updated_at = $1 WHERE msg_id = $2 AND endpoint_id = $3"
                )
            } else {
                // A delivery still pending on its own schedule keeps it.
                formatcp!(
                    "UPDATE deliveries SET status = {FAIL}, updated_at = $1 \
                     WHERE msg_id = $2 AND endpoint_id = $3 AND status <> {PENDING}"
                )
            };
            run(sql, &params![at, msg, endpoint])
        }
    }
}

/// The statement that writes what an attempt says of its endpoint's health, handed to `run`:
/// failing since a time (kept if already failing), or healthy again. Disabling is written
/// after the batch (`operational::after_attempts`).
pub(crate) fn health_statement(
    record: &AttemptRecord,
    mut run: impl FnMut(&'static str, &[Param<'_>]) -> Result<()>,
) -> Result<()> {
    let id = record.attempt.endpoint_id.as_str();
    match record.endpoint_health {
        Some(EndpointHealth::FailingSince(since)) => run(
            "UPDATE endpoints SET failing_since = $1 WHERE id = $2 AND failing_since IS NULL",
            &params![since, id],
        ),
        Some(EndpointHealth::Healthy) => run(
            "UPDATE endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
            &params![id],
        ),
        Some(EndpointHealth::Disable) | None => Ok(()),
    }
}
