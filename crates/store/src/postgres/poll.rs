//! Polling endpoints on PostgreSQL: streams read by the storing transaction's id, up to the
//! oldest transaction still running (see `crate::poll`).

use super::sql::Connection;
use time::OffsetDateTime;
use webhookd_core::model::Message;
use webhookd_core::{AppId, MessageId};

use super::rows::{get, ms};
use super::sql::{query, query_one};
use crate::columns::MESSAGE_COLUMNS;
use crate::db::Row;
use crate::{MESSAGE_ID_CLOCK_SLACK, Result, StreamPosition};

/// The oldest transaction still running: every message of an older one is committed (or
/// gone), so the stream is read up to it and no further.
const HORIZON: &str = "pg_snapshot_xmin(pg_current_snapshot())";

/// See [`crate::PollStore::stream_start`].
pub(crate) async fn stream_start(
    c: &impl Connection,
    app: &AppId,
    since: OffsetDateTime,
) -> Result<StreamPosition> {
    // Messages created after `since` have ids made at most the slack before it; none of
    // them, nor any message still to commit, lies before this position.
    let low = MessageId::lowest_at(since - MESSAGE_ID_CLOCK_SLACK);
    let row = query_one(
        c,
        &format!(
            "SELECT LEAST( \
               (SELECT min(xid::text::bigint) FROM messages WHERE app_id = $1 AND id >= $2), \
               {HORIZON}::text::bigint)"
        ),
        &[&app.as_str(), &low.as_str()],
    )
    .await?;
    Ok(StreamPosition {
        seq: get(&row, 0)?,
        msg: String::new(),
    })
}

/// See [`crate::PollStore::read_stream`].
pub(crate) async fn read_stream(
    c: &impl Connection,
    app: &AppId,
    since: OffsetDateTime,
    after: &StreamPosition,
    limit: usize,
) -> Result<Vec<(StreamPosition, Message)>> {
    let rows = query(
        c,
        &format!(
            "SELECT m.xid::text::bigint, {MESSAGE_COLUMNS} FROM messages m \
             WHERE m.app_id = $1 AND (m.xid, m.id) > ($2::bigint::text::xid8, $3::text) \
             AND m.created_at > $4 AND m.xid < {HORIZON} \
             ORDER BY m.xid, m.id LIMIT $5"
        ),
        &[
            &app.as_str(),
            &after.seq,
            &after.msg,
            &ms(since),
            &i64::try_from(limit).unwrap_or(i64::MAX),
        ],
    )
    .await?;
    rows.iter()
        .map(|row| {
            let message = crate::rows::message_at(&Row::Postgres(row), 1)?;
            let position = StreamPosition {
                seq: get(row, 0)?,
                msg: message.id.as_str().to_owned(),
            };
            Ok((position, message))
        })
        .collect()
}
