//! The lines of ordered endpoints (FIFO delivery): the numbers that say which pending delivery
//! is earlier. The insert trigger of migration V10 numbers fresh deliveries; this numbers
//! deliveries made pending again (recover, replay, resend) and the pending deliveries of an
//! endpoint whose `ordered` changed. The claim's rule is in `engine::claim_due`.

use const_format::formatcp;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;
use webhookd_core::{AppId, EndpointId, MessageId};

use super::map_error;
use crate::Result;
use crate::rows::ms;
use crate::status::PENDING;

/// Whether the endpoint delivers in order (false when it does not exist).
pub(crate) fn is_ordered(c: &Connection, endpoint: &EndpointId) -> Result<bool> {
    c.prepare_cached("SELECT ordered FROM endpoints WHERE id = ?")
        .and_then(|mut select| {
            select
                .query_row([endpoint.as_str()], |row| row.get::<_, bool>(0))
                .optional()
        })
        .map(Option::unwrap_or_default)
        .map_err(map_error)
}

/// Puts these pending deliveries of the endpoint at the end of its line, in message id order,
/// when the endpoint is ordered. The statement that made them pending cleared their numbers.
pub(crate) fn line_up(c: &Connection, endpoint: &EndpointId, mut msgs: Vec<String>) -> Result<()> {
    msgs.sort();
    number(c, endpoint, &msgs)
}

/// Numbers these pending deliveries of the endpoint, in the order given, after its line,
/// when the endpoint is ordered.
fn number(c: &Connection, endpoint: &EndpointId, msgs: &[String]) -> Result<()> {
    if msgs.is_empty() || !is_ordered(c, endpoint)? {
        return Ok(());
    }
    let count = i64::try_from(msgs.len()).unwrap_or(i64::MAX);
    let last: i64 = c
        .prepare_cached(
            "UPDATE endpoints SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq",
        )
        .and_then(|mut update| {
            update.query_row(params![count, endpoint.as_str()], |row| row.get(0))
        })
        .map_err(map_error)?;
    let mut number = c
        .prepare_cached(formatcp!(
            "UPDATE deliveries SET seq = ? \
             WHERE msg_id = ? AND endpoint_id = ? AND status = {PENDING}"
        ))
        .map_err(map_error)?;
    for (seq, msg) in (last - count + 1..).zip(msgs) {
        number
            .execute(params![seq, msg, endpoint.as_str()])
            .map_err(map_error)?;
    }
    Ok(())
}

/// After the endpoint's `ordered` changed: lines up its pending deliveries in message id
/// order, those already claimed (in a node's memory, maybe in flight) first, so that only the
/// front of the line is ever leased; or clears their numbers.
pub(crate) fn reorder(c: &Connection, endpoint: &EndpointId, ordered: bool) -> Result<()> {
    if !ordered {
        return c
            .prepare_cached(formatcp!(
                "UPDATE deliveries SET seq = NULL \
                 WHERE endpoint_id = ? AND status = {PENDING} AND seq IS NOT NULL"
            ))
            .and_then(|mut update| update.execute([endpoint.as_str()]))
            .map(drop)
            .map_err(map_error);
    }
    let pending = c
        .prepare_cached(formatcp!(
            "SELECT msg_id FROM deliveries \
             WHERE endpoint_id = ? AND status = {PENDING} AND seq IS NULL \
             ORDER BY lease_owner IS NULL, msg_id"
        ))
        .and_then(|mut select| {
            select
                .query_map([endpoint.as_str()], |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_error)?;
    number(c, endpoint, &pending)
}

/// See [`crate::Store::requeue`].
pub(crate) fn requeue(
    c: &Connection,
    app: &AppId,
    msg: &MessageId,
    endpoint: &EndpointId,
    now: OffsetDateTime,
) -> Result<()> {
    let now = ms(now);
    let again = c
        .prepare_cached(formatcp!(
            "UPDATE deliveries SET status = {PENDING}, attempts = 0, next_attempt_at = ?, \
             lease_owner = NULL, lease_until = NULL, updated_at = ?, seq = NULL \
             WHERE msg_id = ? AND endpoint_id = ? AND status <> {PENDING}"
        ))
        .and_then(|mut update| update.execute(params![now, now, msg.as_str(), endpoint.as_str()]))
        .map_err(map_error)?;
    if again > 0 {
        return line_up(c, endpoint, vec![msg.to_string()]);
    }
    // Absent: created pending, numbered by the insert trigger. Present and pending: kept.
    c.prepare_cached(formatcp!(
        "INSERT OR IGNORE INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
         next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, {PENDING}, 0, ?, ?, ?)"
    ))
    .and_then(|mut insert| {
        insert.execute(params![
            msg.as_str(),
            endpoint.as_str(),
            app.as_str(),
            now,
            now,
            now
        ])
    })
    .map(drop)
    .map_err(map_error)
}
