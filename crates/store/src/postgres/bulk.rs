//! PostgreSQL's side of [`BulkStore`]: replays, content erasure and usage counts. Replays
//! wake the other nodes (`NOTIFY`) in their transaction, as recovery does.

use async_trait::async_trait;
use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use tokio_postgres::types::ToSql;
use webhookd_core::model::{DeliveryStatus, Endpoint, Message};
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId};

use super::PostgresStore;
use super::error::map_error;
use super::list::{Param, int, param, text, text_list};
use super::listen::notify_due;
use super::retention;
use super::rows::{get, ms, opt_ms, status_code};
use super::sql::{execute, query};
use crate::columns::MESSAGE_COLUMNS;
use crate::{
    AppUsage, BulkStore, Conflict, EXPUNGE_BATCH, Lease, ReplayFilter, Result, claim_at_insert,
    fanout, first_due,
};

const PENDING: i16 = DeliveryStatus::Pending as i16;

#[async_trait]
impl BulkStore for PostgresStore {
    async fn create_message_to(
        &self,
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
        let client = self.client().await?;
        let inserted = execute(
            &client,
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
            notify_due(&client).await?;
        }
        Ok(())
    }

    async fn replay_missing(
        &self,
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
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
                    &tx,
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
        let replayed = execute(&tx, &sql, &params).await?;
        if replayed > 0 {
            notify_due(&tx).await?;
        }
        tx.commit().await.map_err(map_error)?;
        Ok(replayed)
    }

    async fn replay_deliveries(
        &self,
        endpoint: &EndpointId,
        filter: &ReplayFilter,
        now: OffsetDateTime,
    ) -> Result<u64> {
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
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        // An ordered endpoint's replayed deliveries join the end of its line, in message order.
        sql.push_str(" RETURNING d.msg_id");
        let rows = query(&tx, &sql, &values).await?;
        let replayed = rows
            .iter()
            .map(|row| get::<String>(row, 0))
            .collect::<Result<Vec<_>>>()?;
        super::ordered::line_up(&tx, endpoint, replayed.clone()).await?;
        let replayed = replayed.len() as u64;
        if replayed > 0 {
            notify_due(&tx).await?;
        }
        tx.commit().await.map_err(map_error)?;
        Ok(replayed)
    }

    async fn expunge_contents(
        &self,
        app: &AppId,
        msgs: &[MessageId],
        now: OffsetDateTime,
    ) -> Result<Vec<MessageId>> {
        let ids: Vec<String> = msgs.iter().map(ToString::to_string).collect();
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        let expunged = expunge(&tx, app, &ids, now).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(expunged)
    }

    async fn expunge_attempt_content(
        &self,
        app: &AppId,
        msg: &MessageId,
        attempt: &AttemptId,
    ) -> Result<bool> {
        let changed = execute(
            &self.client().await?,
            "UPDATE attempts SET response = '' WHERE app_id = $1 AND msg_id = $2 AND id = $3",
            &[&app.as_str(), &msg.as_str(), &attempt.as_str()],
        )
        .await?;
        Ok(changed > 0)
    }

    async fn expunge_app_contents(&self, app: &AppId, now: OffsetDateTime) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(map_error)?;
        // Rows another node is erasing at the same moment are skipped, not waited for.
        let rows = query(
            &tx,
            "SELECT id FROM messages WHERE app_id = $1 AND NOT expunged \
             LIMIT $2 FOR UPDATE SKIP LOCKED",
            &[&app.as_str(), &(EXPUNGE_BATCH as i64)],
        )
        .await?;
        let ids = rows
            .iter()
            .map(|row| get::<String>(row, 0))
            .collect::<Result<Vec<_>>>()?;
        let expunged = expunge(&tx, app, &ids, now).await?;
        tx.commit().await.map_err(map_error)?;
        Ok(expunged.len() as u64)
    }

    async fn usage_by_app(
        &self,
        apps: Option<&[AppId]>,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<AppUsage>> {
        let client = self.client().await?;
        let rows = match apps {
            Some(apps) => {
                let ids: Vec<String> = apps.iter().map(ToString::to_string).collect();
                query(
                    &client,
                    "SELECT a.id, a.uid, (SELECT COUNT(*) FROM deliveries d \
                       WHERE d.app_id = a.id AND d.created_at >= $1 AND d.created_at <= $2) \
                     FROM applications a WHERE a.id = ANY($3) ORDER BY a.id",
                    &[&ms(since), &ms(until), &ids],
                )
                .await?
            }
            None => {
                query(
                    &client,
                    "SELECT a.id, a.uid, COUNT(*) FROM deliveries d \
                     JOIN applications a ON a.id = d.app_id \
                     WHERE d.created_at >= $1 AND d.created_at <= $2 \
                     GROUP BY a.id, a.uid ORDER BY a.id",
                    &[&ms(since), &ms(until)],
                )
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(AppUsage {
                    app_id: AppId::from_trusted(get(row, 0)?),
                    app_uid: get(row, 1)?,
                    message_destinations: u64::try_from(get::<i64>(row, 2)?).unwrap_or_default(),
                })
            })
            .collect()
    }
}

/// Erases the payloads of these messages of the application and cancels their pending
/// deliveries; returns the ids found. Call inside a transaction.
async fn expunge(
    c: &impl GenericClient,
    app: &AppId,
    ids: &[String],
    now: OffsetDateTime,
) -> Result<Vec<MessageId>> {
    let rows = query(
        c,
        "SELECT id FROM messages WHERE app_id = $1 AND id = ANY($2)",
        &[&app.as_str(), &ids],
    )
    .await?;
    let found = rows
        .iter()
        .map(|row| get::<String>(row, 0))
        .collect::<Result<Vec<_>>>()?;
    retention::erase_payloads(c, &found).await?;
    // What is erased cannot be sent: its pending deliveries end canceled.
    execute(
        c,
        "UPDATE deliveries SET status = $1, next_attempt_at = NULL, lease_owner = NULL, \
         lease_until = NULL, updated_at = $2 WHERE msg_id = ANY($3) AND status = $4",
        &[
            &status_code(DeliveryStatus::Canceled),
            &ms(now),
            &found,
            &PENDING,
        ],
    )
    .await?;
    Ok(found.into_iter().map(MessageId::from_trusted).collect())
}
