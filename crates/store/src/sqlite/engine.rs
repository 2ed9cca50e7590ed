//! The engine's side of storage: claims and leases, attempt results, recovery and retention.

use const_format::{formatcp, str_replace};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use time::OffsetDateTime;
use webhookd_core::time::from_unix_ms;
use webhookd_core::{EndpointId, MessageId};

use super::map_error;
use crate::columns::{ATTEMPT_COLUMNS, DELIVERY_COLUMNS, DELIVERY_WIDTH, MESSAGE_COLUMNS};
use crate::rows::ms;
use crate::status::PENDING;
use crate::{AttemptRecord, Due, Lease, Result};

/// The head of each ordered endpoint's line (`en`): its pending delivery `d` with the smallest
/// number, found through `deliveries_line` (then read by its key). The claim hands out
/// numbered deliveries only from here, so nothing of a line is sent while an earlier delivery of it is pending (leased, or
/// waiting for a retry: it holds the line); an expired lease (a dead node's) lets the head be
/// claimed again. Numbered deliveries are not in `deliveries_due`, so a long line costs the
/// claim nothing but its head.
const LINE_HEADS: &str = formatcp!(
    "endpoints en JOIN deliveries d ON d.endpoint_id = en.id \
     AND d.msg_id = (SELECT x.msg_id FROM deliveries x \
                     WHERE x.endpoint_id = en.id AND x.status = {PENDING} AND x.seq IS NOT NULL \
                     ORDER BY x.seq LIMIT 1)"
);

pub(crate) fn claim_due(
    c: &Connection,
    lease: &Lease,
    now: OffsetDateTime,
    limit: usize,
    skip_endpoints: &[EndpointId],
) -> Result<Vec<Due>> {
    let now_ms = ms(now);
    let mut values = vec![Value::Integer(now_ms)];
    let mut skip = String::new();
    if !skip_endpoints.is_empty() {
        let marks: Vec<String> = (0..skip_endpoints.len())
            .map(|i| format!("?{}", i + 2))
            .collect();
        skip = format!(" AND d.endpoint_id NOT IN ({})", marks.join(", "));
        values.extend(skip_endpoints.iter().map(|id| Value::Text(id.to_string())));
    }
    let claimable = "d.next_attempt_at <= ?1 AND (d.lease_until IS NULL OR d.lease_until < ?1)";
    // Unordered deliveries, then the heads of the ordered endpoints' lines; the oldest due of
    // both.
    let unordered = format!(
        "SELECT {DELIVERY_COLUMNS}, {MESSAGE_COLUMNS} FROM deliveries d \
         JOIN messages m ON m.id = d.msg_id \
         WHERE d.status = {PENDING} AND d.seq IS NULL AND {claimable}{skip} \
         ORDER BY d.next_attempt_at LIMIT {limit}"
    );
    let heads = format!(
        "SELECT {DELIVERY_COLUMNS}, {MESSAGE_COLUMNS} FROM {LINE_HEADS} \
         JOIN messages m ON m.id = d.msg_id \
         WHERE en.ordered = 1 AND {claimable}{skip} \
         ORDER BY d.next_attempt_at LIMIT {limit}"
    );
    let width = DELIVERY_WIDTH;
    let mut due = Vec::new();
    for sql in [unordered, heads] {
        let found = c
            .prepare_cached(&sql)
            .and_then(|mut select| {
                select
                    .query_map(params_from_iter(values.iter()), |row| {
                        Ok(Due {
                            delivery: super::db::read(row, |row| crate::rows::delivery_at(row, 0))?,
                            message: super::db::read(row, |row| {
                                crate::rows::message_at(row, width)
                            })?,
                        })
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(map_error)?;
        due.extend(found);
    }
    due.sort_by_key(|item| item.delivery.next_attempt_at);
    due.truncate(limit);
    let mut claim = c
        .prepare_cached(
            "UPDATE deliveries SET lease_owner = ?, lease_until = ? \
             WHERE msg_id = ? AND endpoint_id = ?",
        )
        .map_err(map_error)?;
    for item in &due {
        claim
            .execute(params![
                lease.owner,
                ms(lease.until),
                item.delivery.msg_id.as_str(),
                item.delivery.endpoint_id.as_str()
            ])
            .map_err(map_error)?;
    }
    Ok(due)
}

pub(crate) fn renew_leases(
    c: &Connection,
    lease: &Lease,
    keys: &[(MessageId, EndpointId)],
) -> Result<u64> {
    let mut renew = c
        .prepare_cached(formatcp!(
            "UPDATE deliveries SET lease_until = ? \
             WHERE msg_id = ? AND endpoint_id = ? AND lease_owner = ? AND status = {PENDING}"
        ))
        .map_err(map_error)?;
    let mut renewed = 0;
    for (msg, endpoint) in keys {
        renewed += renew
            .execute(params![
                ms(lease.until),
                msg.as_str(),
                endpoint.as_str(),
                lease.owner
            ])
            .map_err(map_error)?;
    }
    Ok(renewed as u64)
}

pub(crate) fn release_leases(
    c: &Connection,
    owner: &str,
    keys: &[(MessageId, EndpointId)],
) -> Result<()> {
    let mut release = c
        .prepare_cached(
            "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL \
             WHERE msg_id = ? AND endpoint_id = ? AND lease_owner = ?",
        )
        .map_err(map_error)?;
    for (msg, endpoint) in keys {
        release
            .execute(params![msg.as_str(), endpoint.as_str(), owner])
            .map_err(map_error)?;
    }
    Ok(())
}

/// Writes the attempts, their deliveries' and endpoints' new state and the rollup; then
/// `crate::operational::after_attempts`.
pub(crate) fn record_attempts(c: &Connection, records: &[AttemptRecord]) -> Result<()> {
    let mut insert = c
        .prepare_cached(formatcp!(
            "INSERT INTO attempts ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            str_replace!(ATTEMPT_COLUMNS, "a.", "")
        ))
        .map_err(map_error)?;
    for record in records {
        let attempt = &record.attempt;
        insert
            .execute(params![
                attempt.id.as_str(),
                attempt.msg_id.as_str(),
                attempt.endpoint_id.as_str(),
                attempt.app_id.as_str(),
                attempt.url,
                attempt.status.code(),
                attempt.response_status_code,
                attempt.response,
                attempt.duration_ms,
                attempt.trigger_type.code(),
                ms(attempt.created_at),
            ])
            .map_err(map_error)?;
        let mut run =
            |sql, params: &[crate::db::Param<'_>]| super::db::execute(c, sql, params).map(drop);
        crate::engine::delivery_statements(record, &mut run)?;
        crate::engine::health_statement(record, &mut run)?;
    }
    super::rollup::add(c, records)
}

pub(crate) fn next_due_at(c: &Connection, after: OffsetDateTime) -> Result<Option<OffsetDateTime>> {
    // Of unordered deliveries, and of the heads of ordered endpoints' lines (the rest of a line
    // waits for its head, not for the clock).
    let mut next: Option<i64> = None;
    for sql in [
        formatcp!(
            "SELECT next_attempt_at FROM deliveries WHERE status = {PENDING} AND seq IS NULL \
             AND lease_owner IS NULL AND next_attempt_at > ?1 \
             ORDER BY next_attempt_at LIMIT 1"
        ),
        formatcp!(
            "SELECT MIN(d.next_attempt_at) FROM {LINE_HEADS} \
             WHERE en.ordered = 1 AND d.lease_owner IS NULL AND d.next_attempt_at > ?1"
        ),
    ] {
        let found: Option<i64> = c
            .prepare_cached(sql)
            .and_then(|mut select| select.query_row([ms(after)], |row| row.get(0)).optional())
            .map_err(map_error)?
            .flatten();
        next = match (next, found) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }
    Ok(next.map(from_unix_ms))
}
