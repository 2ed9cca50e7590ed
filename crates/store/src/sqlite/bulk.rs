//! SQLite's side of [`BulkStore`]: replays, content erasure and usage counts.

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};
use time::OffsetDateTime;
use webhookd_core::model::{DeliveryStatus, Endpoint, Message};
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId};

use super::SqliteStore;
use super::map_error;
use super::messages::{self, json_contains};
use super::retention;
use crate::rows::ms;
use crate::{AppUsage, BulkStore, EXPUNGE_BATCH, Lease, ReplayFilter, Result, fanout};

const PENDING: i64 = DeliveryStatus::Pending as i64;

#[async_trait]
impl BulkStore for SqliteStore {
    async fn create_message_to(
        &self,
        message: &Message,
        endpoint: &EndpointId,
        lease: Option<&Lease>,
    ) -> Result<()> {
        let (message, endpoint, lease) = (message.clone(), endpoint.clone(), lease.cloned());
        self.write(move |c| {
            messages::insert_message(c, &message)?;
            messages::insert_deliveries(c, &message, &[endpoint], lease.as_ref())
        })
        .await
    }

    async fn replay_missing(
        &self,
        endpoint: &Endpoint,
        since: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let endpoint = endpoint.clone();
        self.write(move |c| replay_missing(c, &endpoint, since, until, now))
            .await
    }

    async fn replay_deliveries(
        &self,
        endpoint: &EndpointId,
        filter: &ReplayFilter,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let (endpoint, filter) = (endpoint.clone(), filter.clone());
        self.write(move |c| replay_deliveries(c, &endpoint, &filter, now))
            .await
    }

    async fn expunge_contents(
        &self,
        app: &AppId,
        msgs: &[MessageId],
        now: OffsetDateTime,
    ) -> Result<Vec<MessageId>> {
        let (app, msgs) = (app.clone(), msgs.to_vec());
        self.write(move |c| expunge_contents(c, &app, &msgs, now))
            .await
    }

    async fn expunge_attempt_content(
        &self,
        app: &AppId,
        msg: &MessageId,
        attempt: &AttemptId,
    ) -> Result<bool> {
        let (app, msg, attempt) = (app.clone(), msg.clone(), attempt.clone());
        self.write(move |c| {
            c.prepare_cached(
                "UPDATE attempts SET response = '' WHERE app_id = ? AND msg_id = ? AND id = ?",
            )
            .and_then(|mut update| update.execute([app.as_str(), msg.as_str(), attempt.as_str()]))
            .map(|changed| changed > 0)
            .map_err(map_error)
        })
        .await
    }

    async fn expunge_app_contents(&self, app: &AppId, now: OffsetDateTime) -> Result<u64> {
        let app = app.clone();
        self.write(move |c| {
            let ids = c
                .prepare_cached("SELECT id FROM messages WHERE app_id = ? AND expunged = 0 LIMIT ?")
                .and_then(|mut select| {
                    select
                        .query_map(params![app.as_str(), EXPUNGE_BATCH as i64], |row| {
                            row.get::<_, String>(0)
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_error)?;
            let ids: Vec<MessageId> = ids.into_iter().map(MessageId::from_trusted).collect();
            Ok(expunge_contents(c, &app, &ids, now)?.len() as u64)
        })
        .await
    }

    async fn usage_by_app(
        &self,
        apps: Option<&[AppId]>,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<AppUsage>> {
        let apps = apps.map(<[AppId]>::to_vec);
        self.read(move |c| usage_by_app(c, apps.as_deref(), since, until))
            .await
    }
}

fn replay_missing(
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

fn replay_deliveries(
    c: &Connection,
    endpoint: &EndpointId,
    filter: &ReplayFilter,
    now: OffsetDateTime,
) -> Result<u64> {
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
    // An ordered endpoint's replayed deliveries join the end of its line, in message order.
    sql.push_str(" RETURNING msg_id");
    let replayed = c
        .prepare(&sql)
        .and_then(|mut update| {
            update
                .query_map(params_from_iter(values), |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .map_err(map_error)?;
    let count = replayed.len() as u64;
    super::ordered::line_up(c, endpoint, replayed)?;
    Ok(count)
}

/// The response codes of a status class: 0 is "no response", else `class..=class + 99`.
fn class_range(class: u16) -> (i64, i64) {
    let low = i64::from(class);
    if low == 0 { (0, 0) } else { (low, low + 99) }
}

fn expunge_contents(
    c: &Connection,
    app: &AppId,
    msgs: &[MessageId],
    now: OffsetDateTime,
) -> Result<Vec<MessageId>> {
    let mut find = c
        .prepare_cached("SELECT 1 FROM messages WHERE app_id = ? AND id = ?")
        .map_err(map_error)?;
    let mut found = Vec::with_capacity(msgs.len());
    for msg in msgs {
        if find
            .exists([app.as_str(), msg.as_str()])
            .map_err(map_error)?
        {
            found.push(msg.clone());
        }
    }
    let ids: Vec<String> = found.iter().map(ToString::to_string).collect();
    retention::erase_payloads(c, &ids)?;
    // What is erased cannot be sent: its pending deliveries end canceled.
    let mut cancel = c
        .prepare_cached(
            "UPDATE deliveries SET status = ?, next_attempt_at = NULL, lease_owner = NULL, \
             lease_until = NULL, updated_at = ? WHERE msg_id = ? AND status = ?",
        )
        .map_err(map_error)?;
    let now = ms(now);
    for id in &ids {
        cancel
            .execute(params![DeliveryStatus::Canceled.code(), now, id, PENDING])
            .map_err(map_error)?;
    }
    Ok(found)
}

fn usage_by_app(
    c: &Connection,
    apps: Option<&[AppId]>,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<Vec<AppUsage>> {
    if apps.is_some_and(<[AppId]>::is_empty) {
        return Ok(Vec::new());
    }
    // Unnumbered `?` after `?1` and `?2` are numbered 3, 4, … by SQLite.
    let mut values = vec![Value::Integer(ms(since)), Value::Integer(ms(until))];
    let sql = match apps {
        Some(apps) => {
            let marks = vec!["?"; apps.len()].join(", ");
            values.extend(apps.iter().map(|app| Value::Text(app.to_string())));
            format!(
                "SELECT a.id, a.uid, (SELECT COUNT(*) FROM deliveries d WHERE d.app_id = a.id \
                 AND d.created_at >= ?1 AND d.created_at <= ?2) \
                 FROM applications a WHERE a.id IN ({marks}) ORDER BY a.id"
            )
        }
        None => "SELECT a.id, a.uid, COUNT(*) FROM deliveries d \
                 JOIN applications a ON a.id = d.app_id \
                 WHERE d.created_at >= ?1 AND d.created_at <= ?2 \
                 GROUP BY a.id, a.uid ORDER BY a.id"
            .to_owned(),
    };
    let mut select = c.prepare(&sql).map_err(map_error)?;
    select
        .query_map(params_from_iter(values), |row| {
            Ok(AppUsage {
                app_id: AppId::from_trusted(row.get(0)?),
                app_uid: row.get(1)?,
                message_destinations: row.get(2)?,
            })
        })
        .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
        .map_err(map_error)
}
