//! Operations over many messages at once, for the SDK's replays, content erasure and usage
//! counts (and a message sent to one endpoint alone): replaying what an endpoint missed or already got, erasing payloads and response
//! bodies (GDPR), and counting deliveries per application.
//!
//! A supertrait of [`crate::Store`], so every store has them and `dyn Store` callers reach
//! them; they live apart from the core interface because none of them is on the delivery path.
//!
//! Erasure is real: an erased payload or response body is overwritten in the database, not
//! hidden. Payloads are erased by `retention::erase_payloads`, which the retention purge uses
//! too. Replays and the message sent to one endpoint are the backends' own (arrays and fan-out
//! differ); the rest is written once here.

use async_trait::async_trait;
use time::OffsetDateTime;
use webhookd_core::model::{DeliveryStatus, Endpoint, Message};
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId};

use crate::backend::{Backend, run};
use crate::db::{Db, Param, by_backend, params};
use crate::engine::REOPEN;
use crate::postgres as pg;
use crate::sqlite as lite;
use crate::status::{CANCELED, FAIL, PENDING, SUCCESS};
use crate::{Lease, Result, fanout};

/// Which of an endpoint's deliveries a bulk replay sends again. Times bound the messages'
/// creation; every filter given must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayFilter {
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
    /// Empty means every type.
    pub event_types: Vec<String>,
    pub channel: Option<String>,
    pub tag: Option<String>,
    /// The delivery's status.
    pub status: Option<DeliveryStatus>,
    /// 0 (no response), 100, 200, 300, 400 or 500: one of the delivery's attempts answered
    /// with a code of this class.
    pub status_code_class: Option<u16>,
}

/// Deliveries made for one application within a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUsage {
    pub app_id: AppId,
    pub app_uid: Option<String>,
    /// Deliveries (message × endpoint) created in the window.
    pub message_destinations: u64,
}

/// How many messages' contents one call of [`BulkStore::expunge_app_contents`] erases at most,
/// so that no call holds locks for long.
pub const EXPUNGE_BATCH: usize = 1000;

#[async_trait]
pub trait BulkStore: Send + Sync {
    /// Stores the message with one pending delivery, to this endpoint alone, whatever its
    /// filters (an example sent to one endpoint). With a lease, the delivery is created claimed
    /// by its owner. Conflict when the eventId is taken.
    async fn create_message_to(
        &self,
        message: &Message,
        endpoint: &EndpointId,
        lease: Option<&Lease>,
    ) -> Result<()>;

    /// Creates a pending delivery to the endpoint, due at `now`, for every message of its
    /// application created in `[since, until]` that the endpoint's event types and channels
    /// accept and that has no delivery to it at all (created before the endpoint existed, or
    /// while it was disabled). Messages whose content was erased are skipped. Returns how many.
    async fn replay_missing(
        &self,
        endpoint: &Endpoint,
        since: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64>;

    /// Makes every delivery to the endpoint that matches the filter and is finished (success,
    /// fail or canceled) pending again, due at `now`, its attempt count reset. Messages whose
    /// content was erased are skipped. Returns how many.
    async fn replay_deliveries(
        &self,
        endpoint: &EndpointId,
        filter: &ReplayFilter,
        now: OffsetDateTime,
    ) -> Result<u64>;

    /// Erases the payloads of these messages of the application (overwritten, marked
    /// expunged) and cancels their pending deliveries, which have nothing left to send.
    /// Returns the ids of the messages found.
    async fn expunge_contents(
        &self,
        app: &AppId,
        msgs: &[MessageId],
        now: OffsetDateTime,
    ) -> Result<Vec<MessageId>>;

    /// Erases the response body of one attempt. False when there is no such attempt.
    async fn expunge_attempt_content(
        &self,
        app: &AppId,
        msg: &MessageId,
        attempt: &AttemptId,
    ) -> Result<bool>;

    /// Erases the contents of up to [`EXPUNGE_BATCH`] messages of the application that still
    /// have theirs, as [`Self::expunge_contents`] does. Returns how many; call again until 0.
    async fn expunge_app_contents(&self, app: &AppId, now: OffsetDateTime) -> Result<u64>;

    /// Deliveries created in `[since, until]`, per application: of these applications, or of
    /// every application that has any when `apps` is `None`. Applications are in id order;
    /// named applications with none are listed with 0.
    async fn usage_by_app(
        &self,
        apps: Option<&[AppId]>,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<AppUsage>>;
}

/// See [`BulkStore::replay_missing`]: the candidates are read, the endpoint's rule (types,
/// channels, payload filter) is applied in Rust as at fan-out, and those that pass are inserted
/// in message order (an ordered endpoint numbers them at insert). Call inside a transaction.
async fn replay_missing(
    db: &mut Db<'_>,
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
    let sql = format!(
        "SELECT m.id, m.event_type, m.channels, {payload} FROM messages m \
         WHERE m.app_id = $1 AND m.created_at >= $2 AND m.created_at <= $3 AND {} \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.endpoint_id = $4) \
         ORDER BY m.id",
        db.is_false("m.expunged")
    );
    let params = params![endpoint.app_id.as_str(), since, until, endpoint.id.as_str()];
    let passing: Vec<String> = db
        .query(&sql, &params, |row| {
            let (event_type, channels): (String, Vec<String>) = (row.get(1)?, row.get(2)?);
            let payload: Option<Vec<u8>> = row.get(3)?;
            let passes = endpoint.matches(&event_type, &channels)
                && fanout::passes(
                    endpoint.payload_filter.as_deref(),
                    payload.as_deref().unwrap_or_default(),
                    &event_type,
                    &channels,
                );
            passes.then(|| row.get(0)).transpose()
        })
        .await?
        .into_iter()
        .flatten()
        .collect();
    if passing.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "INSERT INTO deliveries (msg_id, endpoint_id, app_id, status, attempts, \
           next_attempt_at, lease_owner, lease_until, created_at, updated_at) \
         SELECT m.id, $1, m.app_id, {PENDING}, 0, $3, NULL, NULL, $3, $3 FROM messages m \
         WHERE {} ORDER BY m.id ON CONFLICT (msg_id, endpoint_id) DO NOTHING",
        db.any_of("m.id", "$2")
    );
    let replayed = db
        .execute(&sql, &params![endpoint.id.as_str(), &passing, now])
        .await?;
    if replayed > 0 {
        crate::operational::notify_due(db).await?;
    }
    Ok(replayed)
}

/// See [`BulkStore::replay_deliveries`]: makes the endpoint's finished deliveries that match
/// the filter pending again; returns their messages.
async fn replay_deliveries(
    db: &mut Db<'_>,
    endpoint: &EndpointId,
    filter: &ReplayFilter,
    now: OffsetDateTime,
) -> Result<Vec<String>> {
    let mut params: Vec<Param<'_>> = params![now, endpoint.as_str()].to_vec();
    let mut mark = |param| {
        params.push(param);
        format!("${}", params.len())
    };
    let mut sql = format!(
        "UPDATE deliveries SET {REOPEN} \
         WHERE endpoint_id = $2 AND status IN ({SUCCESS}, {FAIL}, {CANCELED})"
    );
    if let Some(status) = filter.status {
        sql.push_str(&format!(
            " AND status = {}",
            mark(Param::Int(status.code()))
        ));
    }
    let (since, until) = (mark(filter.since.into()), mark(filter.until.into()));
    sql.push_str(&format!(
        " AND EXISTS (SELECT 1 FROM messages m WHERE m.id = deliveries.msg_id AND {} \
         AND m.created_at >= {since} AND m.created_at <= {until}",
        db.is_false("m.expunged")
    ));
    if !filter.event_types.is_empty() {
        let types = mark(Param::List(&filter.event_types));
        sql.push_str(&format!(" AND {}", db.any_of("m.event_type", &types)));
    }
    for (column, value) in [("m.channels", &filter.channel), ("m.tags", &filter.tag)] {
        if let Some(value) = value {
            let value = mark(Param::Text(value));
            sql.push_str(&format!(" AND {}", db.holds(column, &value)));
        }
    }
    sql.push(')');
    if let Some(class) = filter.status_code_class {
        // 0 is "no response", else `class..=class + 99`.
        let low = i64::from(class);
        let high = if low == 0 { 0 } else { low + 99 };
        let (low, high) = (mark(Param::Int(low)), mark(Param::Int(high)));
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM attempts a WHERE a.msg_id = deliveries.msg_id \
             AND a.endpoint_id = deliveries.endpoint_id \
             AND a.response_status_code BETWEEN {low} AND {high})"
        ));
    }
    sql.push_str(" RETURNING msg_id");
    db.query(&sql, &params, |row| row.get(0)).await
}

/// Erases the payloads of these messages of the application and cancels their pending
/// deliveries (what is erased cannot be sent); returns the ids found. Call inside a
/// transaction.
async fn expunge(
    db: &mut Db<'_>,
    app: &AppId,
    ids: &[String],
    now: OffsetDateTime,
) -> Result<Vec<MessageId>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id FROM messages WHERE app_id = $1 AND {}",
        db.any_of("id", "$2")
    );
    let found: Vec<String> = db
        .query(&sql, &params![app.as_str(), ids], |row| row.get(0))
        .await?;
    crate::retention::erase_payloads(db, &found).await?;
    let sql = format!(
        "UPDATE deliveries SET status = {CANCELED}, next_attempt_at = NULL, lease_owner = NULL, \
         lease_until = NULL, updated_at = $1 WHERE {} AND status = {PENDING}",
        db.any_of("msg_id", "$2")
    );
    db.execute(&sql, &params![now, &found]).await?;
    Ok(found.into_iter().map(MessageId::from_trusted).collect())
}

#[async_trait]
impl<B: Backend> BulkStore for B {
    async fn create_message_to(
        &self,
        message: &Message,
        endpoint: &EndpointId,
        lease: Option<&Lease>,
    ) -> Result<()> {
        let (message, endpoint, lease) = (message.clone(), endpoint.clone(), lease.cloned());
        run!(self, Write, |db| by_backend!(db,
            c => lite::bulk::create_message_to(c, &message, &endpoint, lease.as_ref()),
            c => pg::bulk::create_message_to(*c, &message, &endpoint, lease.as_ref()).await))
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
        run!(self, Transaction, |db| {
            replay_missing(db, &endpoint, since, until, now).await
        })
        .await
    }

    async fn replay_deliveries(
        &self,
        endpoint: &EndpointId,
        filter: &ReplayFilter,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let (endpoint, filter) = (endpoint.clone(), filter.clone());
        run!(self, Transaction, |db| {
            let replayed = replay_deliveries(db, &endpoint, &filter, now).await?;
            let count = replayed.len() as u64;
            // An ordered endpoint's replayed deliveries join the end of its line, in message
            // order.
            crate::ordered::line_up(db, &endpoint, replayed).await?;
            if count > 0 {
                crate::operational::notify_due(db).await?;
            }
            Ok(count)
        })
        .await
    }

    async fn expunge_contents(
        &self,
        app: &AppId,
        msgs: &[MessageId],
        now: OffsetDateTime,
    ) -> Result<Vec<MessageId>> {
        let app = app.clone();
        let ids: Vec<String> = msgs.iter().map(ToString::to_string).collect();
        run!(self, Transaction, |db| expunge(db, &app, &ids, now).await).await
    }

    async fn expunge_attempt_content(
        &self,
        app: &AppId,
        msg: &MessageId,
        attempt: &AttemptId,
    ) -> Result<bool> {
        let (app, msg, attempt) = (app.clone(), msg.clone(), attempt.clone());
        run!(self, Write, |db| {
            let changed = db
                .execute(
                    "UPDATE attempts SET response = '' \
                     WHERE app_id = $1 AND msg_id = $2 AND id = $3",
                    &params![app.as_str(), msg.as_str(), attempt.as_str()],
                )
                .await?;
            Ok(changed > 0)
        })
        .await
    }

    async fn expunge_app_contents(&self, app: &AppId, now: OffsetDateTime) -> Result<u64> {
        let app = app.clone();
        run!(self, Transaction, |db| {
            // Rows another node is erasing at the same moment are skipped, not waited for.
            let sql = format!(
                "SELECT id FROM messages WHERE app_id = $1 AND {} LIMIT $2{}",
                db.is_false("expunged"),
                db.lock(" FOR UPDATE SKIP LOCKED")
            );
            let ids: Vec<String> = db
                .query(&sql, &params![app.as_str(), EXPUNGE_BATCH as i64], |row| {
                    row.get(0)
                })
                .await?;
            Ok(expunge(db, &app, &ids, now).await?.len() as u64)
        })
        .await
    }

    async fn usage_by_app(
        &self,
        apps: Option<&[AppId]>,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<AppUsage>> {
        let apps: Option<Vec<String>> =
            apps.map(|apps| apps.iter().map(ToString::to_string).collect());
        run!(self, Read, |db| {
            let sql = match &apps {
                Some(_) => format!(
                    "SELECT a.id, a.uid, (SELECT COUNT(*) FROM deliveries d \
                       WHERE d.app_id = a.id AND d.created_at >= $1 AND d.created_at <= $2) \
                     FROM applications a WHERE {} ORDER BY a.id",
                    db.any_of("a.id", "$3")
                ),
                None => "SELECT a.id, a.uid, COUNT(*) FROM deliveries d \
                         JOIN applications a ON a.id = d.app_id \
                         WHERE d.created_at >= $1 AND d.created_at <= $2 \
                         GROUP BY a.id, a.uid ORDER BY a.id"
                    .to_owned(),
            };
            let mut params = params![since, until].to_vec();
            if let Some(apps) = &apps {
                params.push(apps.into());
            }
            db.query(&sql, &params, |row| {
                Ok(AppUsage {
                    app_id: AppId::from_trusted(row.get(0)?),
                    app_uid: row.get(1)?,
                    message_destinations: row.get(2)?,
                })
            })
            .await
        })
        .await
    }
}
