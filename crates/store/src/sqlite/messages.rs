//! Messages and their fan-out, deliveries and attempts as the API reads them.

use crate::key_column;
use const_format::{formatcp, str_replace};
use rusqlite::{Connection, OptionalExtension, params};
use webhookd_core::MessageKey;
use webhookd_core::model::{
    Attempt, Delivery, DeliveryStatus, Endpoint, EndpointStats, Message, POLLING_URL, selects,
};
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId};

use super::list;
use super::map_error;
use super::poll::NEXT_STREAM_SEQ;
use super::rows::{self, json, ms, opt_ms};
use crate::columns::{
    ATTEMPT_COLUMNS, DELIVERY_COLUMNS, ENDPOINT_WIDTH, MESSAGE_COLUMNS, MESSAGE_WIDTH,
};
use crate::fanout::FilterPass;
use crate::lists;
use crate::{
    AttemptFilter, AttemptScope, Conflict, Lease, MessageFilter, Page, PageRequest, Result,
    SecretCodec, claim_at_insert, first_due,
};

/// Stores the message and a pending delivery for every endpoint that accepts it: its event
/// types, channels and payload filter let the message through.
pub(crate) fn create_message(
    c: &Connection,
    message: &Message,
    lease: Option<&Lease>,
) -> Result<Vec<EndpointId>> {
    insert_message(c, message)?;
    let (mut endpoints, ordered) = matching_endpoints(c, message)?;
    insert_deliveries(c, message, &endpoints, lease)?;
    if ordered && lease.is_some() {
        // The insert trigger takes the claim off an ordered endpoint's delivery that is not
        // the head of its line: the scheduler hands it out in its turn.
        let unclaimed = c
            .prepare_cached(
                "SELECT endpoint_id FROM deliveries WHERE msg_id = ? AND lease_owner IS NULL",
            )
            .and_then(|mut select| {
                select
                    .query_map([message.id.as_str()], |row| row.get::<_, String>(0))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(map_error)?;
        endpoints.retain(|id| !unclaimed.iter().any(|other| other == id.as_str()));
    }
    Ok(endpoints)
}

/// Stores the message row and its tags and channels (the list's indexes); Conflict when its
/// eventId is taken.
pub(crate) fn insert_message(c: &Connection, message: &Message) -> Result<()> {
    c.prepare_cached(formatcp!(
        "INSERT INTO messages ({}, stream_seq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, {NEXT_STREAM_SEQ})",
        str_replace!(MESSAGE_COLUMNS, "m.", "")
    ))
    .and_then(|mut insert| {
        insert.execute(params![
            message.id.as_str(),
            message.app_id.as_str(),
            message.event_type,
            message.event_id,
            message.payload.as_ref(),
            json(&message.channels).unwrap_or_else(|_| "[]".into()),
            json(&message.tags).unwrap_or_else(|_| "[]".into()),
            ms(message.created_at),
            opt_ms(message.deliver_at),
            opt_ms(message.retain_payload_until),
        ])
    })
    .map_err(|error| map_error(error).taken_as(|| Conflict::event_id(message.event_id.as_deref())))?;
    insert_labels(c, message)
}

/// A pending delivery of the message to each endpoint, claimed by the lease when given and
/// the message is due now.
pub(crate) fn insert_deliveries(
    c: &Connection,
    message: &Message,
    endpoints: &[EndpointId],
    lease: Option<&Lease>,
) -> Result<()> {
    let (created, due) = (ms(message.created_at), ms(first_due(message)));
    let (owner, until) = claim_at_insert(message, lease)
        .map(|lease| (lease.owner.as_str(), ms(lease.until)))
        .unzip();
    let mut insert = c
        .prepare_cached(
            "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
             next_attempt_at, lease_owner, lease_until, created_at, updated_at) \
             VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?)",
        )
        .map_err(map_error)?;
    for endpoint in endpoints {
        insert
            .execute(params![
                message.id.as_str(),
                endpoint.as_str(),
                message.app_id.as_str(),
                DeliveryStatus::Pending.code(),
                due,
                owner,
                until,
                created,
                created,
            ])
            .map_err(map_error)?;
    }
    Ok(())
}

/// Indexes the message's tags and channels for the list's filters.
fn insert_labels(c: &Connection, message: &Message) -> Result<()> {
    for (table, column, values) in [
        ("message_tags", "tag", &message.tags),
        ("message_channels", "channel", &message.channels),
    ] {
        if values.is_empty() {
            continue;
        }
        let mut insert = c
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO {table} (app_id, {column}, msg_id) VALUES (?, ?, ?)"
            ))
            .map_err(map_error)?;
        for value in values {
            insert
                .execute(params![message.app_id.as_str(), value, message.id.as_str()])
                .map_err(map_error)?;
        }
    }
    Ok(())
}

/// The enabled endpoints that accept the message, and whether any of them is ordered; polling
/// endpoints get no deliveries (their consumers read the stream instead).
fn matching_endpoints(c: &Connection, message: &Message) -> Result<(Vec<EndpointId>, bool)> {
    let mut select = c
        .prepare_cached(formatcp!(
            "SELECT id, event_types, channels, payload_filter, ordered FROM endpoints \
             WHERE app_id = ? AND disabled = 0 AND url <> '{POLLING_URL}'"
        ))
        .map_err(map_error)?;
    let mut rows = select.query([message.app_id.as_str()]).map_err(map_error)?;
    let mut filters = FilterPass::new(message);
    let (mut matching, mut ordered) = (Vec::new(), false);
    while let Some(row) = rows.next().map_err(map_error)? {
        let event_types: String = row.get(1).map_err(map_error)?;
        let channels: String = row.get(2).map_err(map_error)?;
        let event_types: Vec<String> = serde_json::from_str(&event_types).unwrap_or_default();
        let channels: Vec<String> = serde_json::from_str(&channels).unwrap_or_default();
        if selects(
            &event_types,
            &channels,
            &message.event_type,
            &message.channels,
        ) {
            let filter: Option<String> = row.get(3).map_err(map_error)?;
            if filters.accepts(filter.as_deref()) {
                matching.push(EndpointId::from_trusted(row.get(0).map_err(map_error)?));
                ordered |= row.get::<_, bool>(4).map_err(map_error)?;
            }
        }
    }
    Ok((matching, ordered))
}

pub(crate) fn get_message(
    c: &Connection,
    app: &AppId,
    key: &MessageKey,
) -> Result<Option<Message>> {
    let (column, key) = key_column(key, "event_id");
    c.prepare_cached(&format!(
        "SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.app_id = ? AND m.{column} = ?"
    ))
    .and_then(|mut select| {
        select
            .query_row([app.as_str(), key], |row| rows::message_at(row, 0))
            .optional()
    })
    .map_err(map_error)
}

/// `EXISTS` over a JSON array column holding `?`.
pub(super) fn json_contains(column: &str) -> String {
    format!("EXISTS (SELECT 1 FROM json_each({column}) WHERE json_each.value = ?)")
}

pub(crate) fn list_messages(
    c: &Connection,
    app: &AppId,
    filter: &MessageFilter,
    page: &PageRequest,
) -> Result<Page<Message>> {
    list::run(c, lists::messages(app, filter), page, |row| {
        rows::message_at(row, 0)
    })
}

pub(crate) fn list_attempts(
    c: &Connection,
    app: &AppId,
    scope: &AttemptScope,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<Attempt>> {
    list::run(c, lists::attempts(app, scope, filter), page, rows::attempt)
}

pub(crate) fn get_attempt(
    c: &Connection,
    app: &AppId,
    msg: &MessageId,
    id: &AttemptId,
) -> Result<Option<Attempt>> {
    c.prepare_cached(&format!(
        "SELECT {ATTEMPT_COLUMNS} FROM attempts a WHERE a.app_id = ? AND a.msg_id = ? AND a.id = ?"
    ))
    .and_then(|mut select| {
        select
            .query_row([app.as_str(), msg.as_str(), id.as_str()], rows::attempt)
            .optional()
    })
    .map_err(map_error)
}

pub(crate) fn list_message_deliveries(
    c: &Connection,
    codec: &SecretCodec,
    app: &AppId,
    msg: &MessageId,
    page: &PageRequest,
) -> Result<Page<(Endpoint, Delivery)>> {
    list::run(c, lists::message_deliveries(app, msg), page, |row| {
        Ok((
            rows::endpoint(row, codec)?,
            rows::delivery_at(row, ENDPOINT_WIDTH)?,
        ))
    })
}

pub(crate) fn list_endpoint_deliveries(
    c: &Connection,
    app: &AppId,
    endpoint: &EndpointId,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<(Message, Delivery)>> {
    let query = lists::endpoint_deliveries(app, endpoint, filter);
    list::run(c, query, page, |row| {
        Ok((
            rows::message_at(row, 0)?,
            rows::delivery_at(row, MESSAGE_WIDTH)?,
        ))
    })
}

pub(crate) fn get_delivery(
    c: &Connection,
    msg: &MessageId,
    endpoint: &EndpointId,
) -> Result<Option<Delivery>> {
    c.prepare_cached(&format!(
        "SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE d.msg_id = ? AND d.endpoint_id = ?"
    ))
    .and_then(|mut select| {
        select
            .query_row([msg.as_str(), endpoint.as_str()], |row| {
                rows::delivery_at(row, 0)
            })
            .optional()
    })
    .map_err(map_error)
}

pub(crate) fn endpoint_stats(
    c: &Connection,
    endpoint: &EndpointId,
    since: Option<time::OffsetDateTime>,
    until: Option<time::OffsetDateTime>,
) -> Result<EndpointStats> {
    let (since, until) = crate::stats_bounds(since, until);
    let mut select = c
        .prepare_cached(
            "SELECT status, COUNT(*) FROM deliveries \
             WHERE endpoint_id = ? AND created_at >= ? AND created_at <= ? GROUP BY status",
        )
        .map_err(map_error)?;
    let counts = select
        .query_map(rusqlite::params![endpoint.as_str(), since, until], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, u64>(1)?))
        })
        .map_err(map_error)?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_error)?;
    let mut stats = EndpointStats::default();
    for (code, count) in counts {
        stats.add(code, count);
    }
    Ok(stats)
}
