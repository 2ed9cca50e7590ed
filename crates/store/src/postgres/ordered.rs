//! The lines of ordered endpoints (FIFO delivery): the numbers that say which pending delivery
//! is earlier. The insert trigger of migration V10 numbers fresh deliveries (and serializes the
//! inserts of one ordered endpoint); this numbers deliveries made pending again (recover,
//! replay) and the pending deliveries of an endpoint whose `ordered` changed. The claim's rule
//! is in `engine::claim_due`.

use const_format::formatcp;
use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use webhookd_core::{AppId, EndpointId, MessageId};

use super::listen::notify_due;
use super::rows::{get, ms};
use super::sql::{execute, query, query_opt};
use crate::Result;
use crate::status::PENDING;

/// Turns on the insert trigger that numbers deliveries, before an endpoint becomes ordered.
/// Until an endpoint of the database is ordered the trigger is off (migration V10 leaves it
/// so), and ingest pays nothing for ordering. Turning it on is transactional DDL: it waits for
/// the transactions inserting deliveries to end and holds new ones back until this transaction
/// commits, so every pending delivery of the endpoint is either committed already (and
/// numbered by `reorder`) or inserted after, through the trigger. It stays on once on.
pub(crate) async fn enable_numbering(c: &impl GenericClient) -> Result<()> {
    let enabled = query_opt(
        c,
        "SELECT tgenabled <> 'D' FROM pg_trigger \
         WHERE tgrelid = 'deliveries'::regclass AND tgname = 'deliveries_sequence'",
        &[],
    )
    .await?;
    if let Some(row) = enabled
        && !get::<bool>(&row, 0)?
    {
        execute(
            c,
            "ALTER TABLE deliveries ENABLE TRIGGER deliveries_sequence",
            &[],
        )
        .await?;
    }
    Ok(())
}

/// Puts these pending deliveries of the endpoint at the end of its line, in message id order,
/// when the endpoint is ordered. The statement that made them pending cleared their numbers.
/// Drawing the numbers locks the endpoint's row, as an insert does.
pub(crate) async fn line_up(
    c: &impl GenericClient,
    endpoint: &EndpointId,
    mut msgs: Vec<String>,
) -> Result<()> {
    msgs.sort();
    number(c, endpoint, &msgs).await
}

/// Numbers these pending deliveries of the endpoint, in the order given, after its line,
/// when the endpoint is ordered.
async fn number(c: &impl GenericClient, endpoint: &EndpointId, msgs: &[String]) -> Result<()> {
    if msgs.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(msgs.len()).unwrap_or(i64::MAX);
    execute(
        c,
        formatcp!(
            "WITH drawn AS ( \
               UPDATE endpoints SET last_seq = last_seq + $2 WHERE id = $1 AND ordered \
               RETURNING last_seq - $2 AS base) \
             UPDATE deliveries d SET seq = drawn.base + k.n \
             FROM drawn, unnest($3::text[]) WITH ORDINALITY AS k(msg_id, n) \
             WHERE d.endpoint_id = $1 AND d.msg_id = k.msg_id AND d.status = {PENDING}"
        ),
        &[&endpoint.as_str(), &count, &msgs],
    )
    .await?;
    Ok(())
}

/// After the endpoint's `ordered` changed: lines up its pending deliveries in message id
/// order, those already claimed (in a node's memory, maybe in flight) first, so that only the
/// front of the line is ever leased; or clears their numbers.
pub(crate) async fn reorder(
    c: &impl GenericClient,
    endpoint: &EndpointId,
    ordered: bool,
) -> Result<()> {
    if !ordered {
        execute(
            c,
            formatcp!(
                "UPDATE deliveries SET seq = NULL \
                 WHERE endpoint_id = $1 AND status = {PENDING} AND seq IS NOT NULL"
            ),
            &[&endpoint.as_str()],
        )
        .await?;
        return Ok(());
    }
    let rows = query(
        c,
        formatcp!(
            "SELECT msg_id FROM deliveries \
             WHERE endpoint_id = $1 AND status = {PENDING} AND seq IS NULL \
             ORDER BY lease_owner IS NULL, msg_id"
        ),
        &[&endpoint.as_str()],
    )
    .await?;
    let pending = rows
        .iter()
        .map(|row| get::<String>(row, 0))
        .collect::<Result<Vec<_>>>()?;
    number(c, endpoint, &pending).await
}

/// See [`crate::Store::requeue`]. Wakes the nodes. Call inside a transaction.
pub(crate) async fn requeue(
    c: &impl GenericClient,
    app: &AppId,
    msg: &MessageId,
    endpoint: &EndpointId,
    now: OffsetDateTime,
) -> Result<()> {
    let now = ms(now);
    let again = execute(
        c,
        formatcp!(
            "UPDATE deliveries SET status = {PENDING}, attempts = 0, next_attempt_at = $1, \
             lease_owner = NULL, lease_until = NULL, updated_at = $1, seq = NULL \
             WHERE msg_id = $2 AND endpoint_id = $3 AND status <> {PENDING}"
        ),
        &[&now, &msg.as_str(), &endpoint.as_str()],
    )
    .await?;
    if again > 0 {
        line_up(c, endpoint, vec![msg.to_string()]).await?;
    } else {
        // Absent: created pending, numbered by the insert trigger. Present and pending: kept.
        execute(
            c,
            formatcp!(
                "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
                 next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, {PENDING}, 0, $4, $4, $4) \
                 ON CONFLICT (msg_id, endpoint_id) DO NOTHING"
            ),
            &[&msg.as_str(), &endpoint.as_str(), &app.as_str(), &now],
        )
        .await?;
    }
    notify_due(c).await
}
