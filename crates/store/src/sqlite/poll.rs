//! Polling endpoints on SQLite: streams read by `stream_seq` (commit order, one writer).

use rusqlite::{Connection, params};
use time::OffsetDateTime;
use webhookd_core::model::Message;
use webhookd_core::{AppId, MessageId};

use super::map_error;
use crate::columns::MESSAGE_COLUMNS;
use crate::rows::ms;
use crate::{MESSAGE_ID_CLOCK_SLACK, Result, StreamPosition};

/// The next `stream_seq` of the message's application, for its insert (`?2` is its app id).
pub(crate) const NEXT_STREAM_SEQ: &str =
    "(SELECT coalesce(max(stream_seq), 0) + 1 FROM messages WHERE app_id = ?2)";

/// See [`crate::PollStore::stream_start`].
pub(crate) fn stream_start(
    c: &Connection,
    app: &AppId,
    since: OffsetDateTime,
) -> Result<StreamPosition> {
    // A message created after `since` has an id made at most the slack before it; before the
    // first such message, or after the application's last one when there is none yet.
    let low = MessageId::lowest_at(since - MESSAGE_ID_CLOCK_SLACK);
    let seq = c
        .query_row(
            "SELECT coalesce( \
               (SELECT min(stream_seq) - 1 FROM messages WHERE app_id = ?1 AND id >= ?2), \
               (SELECT max(stream_seq) FROM messages WHERE app_id = ?1), 0)",
            params![app.as_str(), low.as_str()],
            |row| row.get(0),
        )
        .map_err(map_error)?;
    Ok(StreamPosition {
        seq,
        msg: String::new(),
    })
}

/// See [`crate::PollStore::read_stream`].
pub(crate) fn read_stream(
    c: &Connection,
    app: &AppId,
    since: OffsetDateTime,
    after: &StreamPosition,
    limit: usize,
) -> Result<Vec<(StreamPosition, Message)>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    super::db::query(
        c,
        &format!(
            "SELECT m.stream_seq, {MESSAGE_COLUMNS} FROM messages m \
             WHERE m.app_id = $1 AND m.stream_seq > $2 AND m.created_at > $3 \
             ORDER BY m.stream_seq LIMIT $4"
        ),
        &crate::db::params![app.as_str(), after.seq, ms(since), limit],
        |row| {
            let position = StreamPosition {
                seq: row.get(0)?,
                msg: String::new(),
            };
            Ok((position, crate::rows::message_at(row, 1)?))
        },
    )
}
