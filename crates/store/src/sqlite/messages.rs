//! Messages and their fan-out, deliveries and attempts as the API reads them.

use const_format::{formatcp, str_replace};
use rusqlite::{Connection, params};
use webhookd_core::EndpointId;
use webhookd_core::model::{DeliveryStatus, Message, POLLING_URL, selects};

use super::map_error;
use super::poll::NEXT_STREAM_SEQ;
use crate::columns::MESSAGE_COLUMNS;
use crate::fanout::FilterPass;
use crate::rows::{json, ms, opt_ms};
use crate::{Conflict, Lease, Result, claim_at_insert, first_due};

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
