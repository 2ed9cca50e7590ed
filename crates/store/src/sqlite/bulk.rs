//! SQLite's side of [`crate::BulkStore`]: replays, and a message sent to one endpoint.

use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};
use time::OffsetDateTime;
use webhookd_core::EndpointId;
use webhookd_core::model::{DeliveryStatus, Endpoint, Message};

use super::map_error;
use super::messages::{self, json_contains};
use crate::rows::ms;
use crate::{Lease, ReplayFilter, Result, fanout};

const PENDING: i64 = DeliveryStatus::Pending as i64;

/// See [`crate::BulkStore::create_message_to`].
pub(crate) fn create_message_to(
    c: &Connection,
    message: &Message,
    endpoint: &EndpointId,
    lease: Option<&Lease>,
) -> Result<()> {
    messages::insert_message(c, message)?;
    messages::insert_deliveries(c, message, std::slice::from_ref(endpoint), lease)
}

/// See [`crate::BulkStore::replay_missing`].
pub(crate) fn replay_missing(
    c: &Connection,
    endpoint: &Endpoint,
    since: OffsetDateTime,
    until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u64> {
    // The payload is read only to evaluate the endpoint's filter.
    let payload = if endpoint.payload_filter.is_some() {
        "m.payload"
    } else {
        "NULL"
    };
    let candidates = c
        .prepare_cached(&format!(
            "SELECT m.id, m.event_type, m.channels, {payload} FROM messages m \
             WHERE m.app_id = ? AND m.created_at >= ? AND m.created_at <= ? AND m.expunged = 0 \
             AND NOT EXISTS (SELECT 1 FROM deliveries d \
                             WHERE d.msg_id = m.id AND d.endpoint_id = ?) \
             ORDER BY m.id"
        ))
        .and_then(|mut select| {
            select
                .query_map(
                    params![
                        endpoint.app_id.as_str(),
                        ms(since),
                        ms(until),
                        endpoint.id.as_str()
                    ],
                    |row| {
                        Ok((
                            row.get::<_, String>(0)?,
                            row.get::<_, String>(1)?,
                            row.get::<_, String>(2)?,
                            row.get::<_, Option<Vec<u8>>>(3)?,
                        ))
                    },
                )?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_error)?;
    let mut insert = c
        .prepare_cached(
            "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
             next_attempt_at, lease_owner, lease_until, created_at, updated_at) \
             VALUES (?, ?, ?, ?, 0, ?, NULL, NULL, ?, ?)",
        )
        .map_err(map_error)?;
    let mut replayed = 0;
    for (msg_id, event_type, channels, payload) in candidates {
        let channels: Vec<String> = serde_json::from_str(&channels).unwrap_or_default();
        if !endpoint.matches(&event_type, &channels)
            || !fanout::passes(
                endpoint.payload_filter.as_deref(),
                payload.as_deref().unwrap_or_default(),
                &event_type,
                &channels,
            )
        {
            continue;
        }
        insert
            .execute(params![
                msg_id,
                endpoint.id.as_str(),
                endpoint.app_id.as_str(),
                PENDING,
                ms(now),
                ms(now),
                ms(now)
            ])
            .map_err(map_error)?;
        replayed += 1;
    }
    Ok(replayed)
}

/// See [`crate::BulkStore::replay_deliveries`]; returns the messages replayed.
pub(crate) fn replay_deliveries(
    c: &Connection,
    endpoint: &EndpointId,
    filter: &ReplayFilter,
    now: OffsetDateTime,
) -> Result<Vec<String>> {
    let now = ms(now);
    let finished = [
        DeliveryStatus::Success,
        DeliveryStatus::Fail,
        DeliveryStatus::Canceled,
    ]
    .map(|status| status.code().to_string())
    .join(", ");
    let mut sql = format!(
        "UPDATE deliveries SET status = {PENDING}, attempts = 0, next_attempt_at = ?, \
         lease_owner = NULL, lease_until = NULL, updated_at = ?, seq = NULL \
         WHERE endpoint_id = ? AND status IN ({finished})"
    );
    let mut values = vec![
        Value::Integer(now),
        Value::Integer(now),
        Value::Text(endpoint.to_string()),
    ];
    if let Some(status) = filter.status {
        sql.push_str(" AND status = ?");
        values.push(Value::Integer(status.code()));
    }
    sql.push_str(
        " AND msg_id IN (SELECT m.id FROM messages m WHERE m.id = deliveries.msg_id \
         AND m.expunged = 0 AND m.created_at >= ? AND m.created_at <= ?",
    );
    values.push(Value::Integer(ms(filter.since)));
    values.push(Value::Integer(ms(filter.until)));
    if !filter.event_types.is_empty() {
        let marks = vec!["?"; filter.event_types.len()].join(", ");
        sql.push_str(&format!(" AND m.event_type IN ({marks})"));
        values.extend(filter.event_types.iter().cloned().map(Value::Text));
    }
    for (column, value) in [("m.channels", &filter.channel), ("m.tags", &filter.tag)] {
        if let Some(value) = value {
            sql.push_str(&format!(" AND {}", json_contains(column)));
            values.push(Value::Text(value.clone()));
        }
    }
    sql.push(')');
    if let Some(class) = filter.status_code_class {
        let (low, high) = class_range(class);
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM attempts a WHERE a.msg_id = deliveries.msg_id \
             AND a.endpoint_id = deliveries.endpoint_id \
             AND a.response_status_code BETWEEN ? AND ?)",
        );
        values.push(Value::Integer(low));
        values.push(Value::Integer(high));
    }
    sql.push_str(" RETURNING msg_id");
    c.prepare(&sql)
        .and_then(|mut update| {
            update
                .query_map(params_from_iter(values), |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_error)
}

/// The response codes of a status class: 0 is "no response", else `class..=class + 99`.
fn class_range(class: u16) -> (i64, i64) {
    let low = i64::from(class);
    if low == 0 { (0, 0) } else { (low, low + 99) }
}
