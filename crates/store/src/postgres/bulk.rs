//! PostgreSQL's side of [`crate::BulkStore`]: replays, and a message sent to one endpoint.
//! Replays wake the other nodes (`NOTIFY`) in their transaction, as recovery does.

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use webhookd_core::EndpointId;
use webhookd_core::model::{DeliveryStatus, Endpoint, Message};

use super::list::{Param, int, param, text, text_list};
use super::listen::notify_due;
use super::rows::{get, ms, opt_ms, status_code};
use super::sql::{execute, query};
use crate::columns::MESSAGE_COLUMNS;
use crate::{Conflict, Lease, ReplayFilter, Result, claim_at_insert, fanout, first_due};

const PENDING: i16 = DeliveryStatus::Pending as i16;

/// See [`crate::BulkStore::create_message_to`].
pub(crate) async fn create_message_to(
    c: &impl GenericClient,
    message: &Message,
    endpoint: &EndpointId,
    lease: Option<&Lease>,
) -> Result<()> {
    let claim = claim_at_insert(message, lease);
    let due = ms(first_due(message));
    let (owner, until) = claim
        .map(|lease| (lease.owner.as_str(), ms(lease.until)))
        .unzip();
    let sql = format!(
        "WITH message AS ( \
               INSERT INTO messages ({}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
               RETURNING id, app_id) \
             INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
               next_attempt_at, lease_owner, lease_until, created_at, updated_at) \
             SELECT message.id, $11::text, message.app_id, {PENDING}, 0, $12::bigint, \
               $13::text, $14::bigint, $8::bigint, $8::bigint FROM message",
        MESSAGE_COLUMNS.replace("m.", "")
    );
    let inserted = execute(
        c,
        &sql,
        &[
            &message.id.as_str(),
            &message.app_id.as_str(),
            &message.event_type,
            &message.event_id,
            &message.payload.as_ref(),
            &message.channels,
            &message.tags,
            &ms(message.created_at),
            &opt_ms(message.deliver_at),
            &opt_ms(message.retain_payload_until),
            &endpoint.as_str(),
            &due,
            &owner,
            &until,
        ],
    )
    .await
    .map_err(|error| error.taken_as(|| Conflict::event_id(message.event_id.as_deref())))?;
    if claim.is_none() && inserted > 0 {
        notify_due(c).await?;
    }
    Ok(())
}

/// See [`crate::BulkStore::replay_missing`]. Call inside a transaction.
pub(crate) async fn replay_missing(
    c: &impl GenericClient,
    endpoint: &Endpoint,
    since: OffsetDateTime,
    until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<u64> {
    // The rule of `Endpoint::matches`, in SQL, as at fan-out. With a payload filter, the
    // candidates are read first and only those the filter passes (`$8`) are inserted.
    let candidates = "FROM messages m \
             WHERE m.app_id = $2 AND m.created_at >= $3 AND m.created_at <= $4 \
             AND NOT m.expunged \
             AND (cardinality($6::text[]) = 0 OR m.event_type = ANY($6::text[])) \
             AND (cardinality($7::text[]) = 0 OR m.channels && $7::text[]) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d \
                             WHERE d.msg_id = m.id AND d.endpoint_id = $1)";
    let (id, app_id) = (endpoint.id.as_str(), endpoint.app_id.as_str());
    let (since, until, now) = (ms(since), ms(until), ms(now));
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &id,
        &app_id,
        &since,
        &until,
        &now,
        &endpoint.event_types,
        &endpoint.channels,
    ];
    let passing: Vec<String>;
    let only_passing = match endpoint.payload_filter.as_deref() {
        None => "",
        Some(filter) => {
            let rows = query(
                c,
                // `$5` (the time to insert with) is typed here too, as every parameter must be.
                &format!(
                    "SELECT m.id, m.payload, m.event_type, m.channels, $5::bigint \
                         {candidates}"
                ),
                &params[..7],
            )
            .await?;
            let mut ids = Vec::new();
            for row in &rows {
                let (payload, event_type): (&[u8], &str) = (get(row, 1)?, get(row, 2)?);
                let channels: Vec<String> = get(row, 3)?;
                if fanout::passes(Some(filter), payload, event_type, &channels) {
                    ids.push(get::<String>(row, 0)?);
                }
            }
            passing = ids;
            params.push(&passing);
            "AND m.id = ANY($8::text[])"
        }
    };
    let sql = format!(
        "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
               next_attempt_at, lease_owner, lease_until, created_at, updated_at) \
             SELECT m.id, $1, m.app_id, {PENDING}, 0, $5, NULL, NULL, $5, $5 \
             {candidates} {only_passing} ORDER BY m.id \
             ON CONFLICT (msg_id, endpoint_id) DO NOTHING"
    );
    let replayed = execute(c, &sql, &params).await?;
    if replayed > 0 {
        notify_due(c).await?;
    }
    Ok(replayed)
}

/// See [`crate::BulkStore::replay_deliveries`]; returns the messages replayed.
pub(crate) async fn replay_deliveries(
    c: &impl GenericClient,
    endpoint: &EndpointId,
    filter: &ReplayFilter,
    now: OffsetDateTime,
) -> Result<Vec<String>> {
    let finished = [
        DeliveryStatus::Success,
        DeliveryStatus::Fail,
        DeliveryStatus::Canceled,
    ]
    .map(|status| status_code(status).to_string())
    .join(", ");
    let mut params: Vec<Param> = vec![int(ms(now)), text(endpoint.as_str())];
    let mark = |params: &mut Vec<Param>, value: Param| {
        params.push(value);
        format!("${}", params.len())
    };
    let mut sql = format!(
        "UPDATE deliveries d SET status = {PENDING}, attempts = 0, next_attempt_at = $1, \
             lease_owner = NULL, lease_until = NULL, updated_at = $1, seq = NULL \
             WHERE d.endpoint_id = $2 AND d.status IN ({finished})"
    );
    if let Some(status) = filter.status {
        let status = mark(&mut params, param(status_code(status)));
        sql.push_str(&format!(" AND d.status = {status}"));
    }
    let since = mark(&mut params, int(ms(filter.since)));
    let until = mark(&mut params, int(ms(filter.until)));
    sql.push_str(&format!(
        " AND EXISTS (SELECT 1 FROM messages m WHERE m.id = d.msg_id AND NOT m.expunged \
             AND m.created_at >= {since} AND m.created_at <= {until}"
    ));
    if !filter.event_types.is_empty() {
        let types = mark(&mut params, text_list(&filter.event_types));
        sql.push_str(&format!(" AND m.event_type = ANY({types})"));
    }
    if let Some(channel) = &filter.channel {
        let channel = mark(&mut params, text(channel));
        sql.push_str(&format!(" AND {channel} = ANY(m.channels)"));
    }
    if let Some(tag) = &filter.tag {
        let tag = mark(&mut params, text(tag));
        sql.push_str(&format!(" AND {tag} = ANY(m.tags)"));
    }
    sql.push(')');
    if let Some(class) = filter.status_code_class {
        let low = i32::from(class);
        let high = if low == 0 { 0 } else { low + 99 };
        let (low, high) = (
            mark(&mut params, param(low)),
            mark(&mut params, param(high)),
        );
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM attempts a WHERE a.msg_id = d.msg_id \
                 AND a.endpoint_id = d.endpoint_id \
                 AND a.response_status_code BETWEEN {low} AND {high})"
        ));
    }
    let values: Vec<&(dyn ToSql + Sync)> = params
        .iter()
        .map(|param| param.as_ref() as &(dyn ToSql + Sync))
        .collect();
    sql.push_str(" RETURNING d.msg_id");
    let rows = query(c, &sql, &values).await?;
    rows.iter().map(|row| get::<String>(row, 0)).collect()
}
