//! What the API reads of messages, attempts and deliveries, written once for both backends.

use webhookd_core::model::{Attempt, Delivery, Endpoint, EndpointStats, Message};
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId, MessageKey};

use crate::columns::{
    ATTEMPT_COLUMNS, DELIVERY_COLUMNS, ENDPOINT_WIDTH, MESSAGE_COLUMNS, MESSAGE_WIDTH,
};
use crate::db::{Db, params};
use crate::{
    AttemptFilter, AttemptScope, MessageFilter, Page, PageRequest, Result, SecretCodec, key_column,
    lists, rows,
};

pub(crate) async fn get_message(
    db: &mut Db<'_>,
    app: &AppId,
    key: &MessageKey,
) -> Result<Option<Message>> {
    let (column, key) = key_column(key, "event_id");
    let sql =
        format!("SELECT {MESSAGE_COLUMNS} FROM messages m WHERE m.app_id = $1 AND m.{column} = $2");
    db.query_opt(&sql, &params![app.as_str(), key], |row| {
        rows::message_at(row, 0)
    })
    .await
}

pub(crate) async fn list_messages(
    db: &mut Db<'_>,
    app: &AppId,
    filter: &MessageFilter,
    page: &PageRequest,
) -> Result<Page<Message>> {
    lists::run(db, lists::messages(app, filter), page, |row| {
        rows::message_at(row, 0)
    })
    .await
}

pub(crate) async fn list_attempts(
    db: &mut Db<'_>,
    app: &AppId,
    scope: &AttemptScope,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<Attempt>> {
    let list = lists::attempts(app, scope, filter);
    lists::run(db, list, page, rows::attempt).await
}

pub(crate) async fn get_attempt(
    db: &mut Db<'_>,
    app: &AppId,
    msg: &MessageId,
    id: &AttemptId,
) -> Result<Option<Attempt>> {
    db.query_opt(
        const_format::formatcp!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts a \
             WHERE a.app_id = $1 AND a.msg_id = $2 AND a.id = $3"
        ),
        &params![app.as_str(), msg.as_str(), id.as_str()],
        rows::attempt,
    )
    .await
}

pub(crate) async fn list_message_deliveries(
    db: &mut Db<'_>,
    codec: &SecretCodec,
    app: &AppId,
    msg: &MessageId,
    page: &PageRequest,
) -> Result<Page<(Endpoint, Delivery)>> {
    lists::run(db, lists::message_deliveries(app, msg), page, |row| {
        Ok((
            rows::endpoint(row, codec)?,
            rows::delivery_at(row, ENDPOINT_WIDTH)?,
        ))
    })
    .await
}

pub(crate) async fn list_endpoint_deliveries(
    db: &mut Db<'_>,
    app: &AppId,
    endpoint: &EndpointId,
    filter: &AttemptFilter,
    page: &PageRequest,
) -> Result<Page<(Message, Delivery)>> {
    let list = lists::endpoint_deliveries(app, endpoint, filter);
    lists::run(db, list, page, |row| {
        Ok((
            rows::message_at(row, 0)?,
            rows::delivery_at(row, MESSAGE_WIDTH)?,
        ))
    })
    .await
}

pub(crate) async fn get_delivery(
    db: &mut Db<'_>,
    msg: &MessageId,
    endpoint: &EndpointId,
) -> Result<Option<Delivery>> {
    db.query_opt(
        const_format::formatcp!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries d WHERE d.msg_id = $1 AND d.endpoint_id = $2"
        ),
        &params![msg.as_str(), endpoint.as_str()],
        |row| rows::delivery_at(row, 0),
    )
    .await
}

pub(crate) async fn endpoint_stats(
    db: &mut Db<'_>,
    endpoint: &EndpointId,
    since: Option<time::OffsetDateTime>,
    until: Option<time::OffsetDateTime>,
) -> Result<EndpointStats> {
    let (since, until) = crate::stats_bounds(since, until);
    let counts = db
        .query(
            "SELECT status, COUNT(*) FROM deliveries \
             WHERE endpoint_id = $1 AND created_at >= $2 AND created_at <= $3 GROUP BY status",
            &params![endpoint.as_str(), since, until],
            |row| Ok((row.get::<i64>(0)?, row.get::<u64>(1)?)),
        )
        .await?;
    let mut stats = EndpointStats::default();
    for (code, count) in counts {
        stats.add(code, count);
    }
    Ok(stats)
}
