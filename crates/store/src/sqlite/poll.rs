//! Polling endpoints on SQLite: streams read by `stream_seq` (commit order, one writer),
//! consumer offsets and poller tokens.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;
use webhookd_core::model::Message;
use webhookd_core::time::from_unix_ms;
use webhookd_core::{AppId, EndpointId, MessageId, TokenId};

use super::{SqliteStore, map_error};
use crate::columns::MESSAGE_COLUMNS;
use crate::poll::POLLER_TOKEN_COLUMNS;
use crate::rows::ms;
use crate::{MESSAGE_ID_CLOCK_SLACK, PollStore, PollerTokenRecord, Result, SecretCodec};

/// The next `stream_seq` of the message's application, for its insert (`?2` is its app id).
pub(crate) const NEXT_STREAM_SEQ: &str =
    "(SELECT coalesce(max(stream_seq), 0) + 1 FROM messages WHERE app_id = ?2)";

fn stream_start(c: &Connection, app: &AppId, since: OffsetDateTime) -> Result<i64> {
    // A message created after `since` has an id made at most the slack before it; before the
    // first such message, or after the application's last one when there is none yet.
    let low = MessageId::lowest_at(since - MESSAGE_ID_CLOCK_SLACK);
    c.query_row(
        "SELECT coalesce( \
           (SELECT min(stream_seq) - 1 FROM messages WHERE app_id = ?1 AND id >= ?2), \
           (SELECT max(stream_seq) FROM messages WHERE app_id = ?1), 0)",
        params![app.as_str(), low.as_str()],
        |row| row.get(0),
    )
    .map_err(map_error)
}

fn read_stream(
    c: &Connection,
    app: &AppId,
    since: OffsetDateTime,
    after: i64,
    limit: usize,
) -> Result<Vec<(i64, Message)>> {
    let mut select = c
        .prepare_cached(&format!(
            "SELECT m.stream_seq, {MESSAGE_COLUMNS} FROM messages m \
             WHERE m.app_id = ? AND m.stream_seq > ? AND m.created_at > ? \
             ORDER BY m.stream_seq LIMIT ?"
        ))
        .map_err(map_error)?;
    let found = select
        .query_map(
            params![
                app.as_str(),
                after,
                ms(since),
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| {
                Ok((
                    row.get(0)?,
                    super::db::read(row, |row| crate::rows::message_at(row, 1))?,
                ))
            },
        )
        .map_err(map_error)?;
    found
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(map_error)
}

fn poller_token(
    row: &rusqlite::Row<'_>,
    codec: &SecretCodec,
) -> rusqlite::Result<PollerTokenRecord> {
    let sealed: String = row.get(4)?;
    let token = codec.open_text(&sealed).map_err(|error| {
        rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, error.into())
    })?;
    Ok(PollerTokenRecord {
        id: TokenId::from_trusted(row.get(0)?),
        hash: row.get(1)?,
        app_id: AppId::from_trusted(row.get(2)?),
        endpoint_id: EndpointId::from_trusted(row.get(3)?),
        token,
        created_at: from_unix_ms(row.get(5)?),
        expires_at: from_unix_ms(row.get(6)?),
    })
}

fn rotate_poller_token(
    c: &Connection,
    token: &PollerTokenRecord,
    sealed: &str,
    retire_others_at: OffsetDateTime,
) -> Result<()> {
    c.execute(
        "UPDATE poller_tokens SET expires_at = ?2 WHERE endpoint_id = ?1 AND expires_at > ?2",
        params![token.endpoint_id.as_str(), ms(retire_others_at)],
    )
    .map_err(map_error)?;
    c.execute(
        &format!("INSERT INTO poller_tokens ({POLLER_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"),
        params![
            token.id.as_str(),
            token.hash,
            token.app_id.as_str(),
            token.endpoint_id.as_str(),
            sealed,
            ms(token.created_at),
            ms(token.expires_at),
        ],
    )
    .map_err(map_error)?;
    Ok(())
}

#[async_trait]
impl PollStore for SqliteStore {
    async fn stream_start(
        &self,
        app: &AppId,
        since: OffsetDateTime,
    ) -> Result<crate::StreamPosition> {
        let app = app.clone();
        let seq = self.read(move |c| stream_start(c, &app, since)).await?;
        Ok(crate::StreamPosition {
            seq,
            msg: String::new(),
        })
    }

    async fn read_stream(
        &self,
        app: &AppId,
        since: OffsetDateTime,
        after: &crate::StreamPosition,
        limit: usize,
    ) -> Result<Vec<(crate::StreamPosition, Message)>> {
        let (app, after) = (app.clone(), after.seq);
        let found = self
            .read(move |c| read_stream(c, &app, since, after, limit))
            .await?;
        Ok(found
            .into_iter()
            .map(|(seq, message)| {
                let position = crate::StreamPosition {
                    seq,
                    msg: String::new(),
                };
                (position, message)
            })
            .collect())
    }

    async fn get_poll_offset(
        &self,
        endpoint: &EndpointId,
        consumer: &str,
    ) -> Result<Option<String>> {
        let (endpoint, consumer) = (endpoint.clone(), consumer.to_owned());
        self.read(move |c| {
            c.query_row(
                "SELECT iterator FROM poll_consumers WHERE endpoint_id = ? AND consumer_id = ?",
                [endpoint.as_str(), consumer.as_str()],
                |row| row.get(0),
            )
            .optional()
            .map_err(map_error)
        })
        .await
    }

    async fn set_poll_offset(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        consumer: &str,
        iterator: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (app, endpoint) = (app.clone(), endpoint.clone());
        let (consumer, iterator) = (consumer.to_owned(), iterator.to_owned());
        self.write(move |c| {
            c.execute(
                "INSERT INTO poll_consumers (endpoint_id, consumer_id, app_id, iterator, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (endpoint_id, consumer_id) \
                 DO UPDATE SET iterator = excluded.iterator, updated_at = excluded.updated_at",
                params![endpoint.as_str(), consumer, app.as_str(), iterator, ms(now)],
            )
            .map_err(map_error)?;
            Ok(())
        })
        .await
    }

    async fn rotate_poller_token(
        &self,
        token: &PollerTokenRecord,
        retire_others_at: OffsetDateTime,
    ) -> Result<()> {
        let sealed = self.codec.seal_text(&token.token);
        let token = token.clone();
        self.write(move |c| rotate_poller_token(c, &token, &sealed, retire_others_at))
            .await
    }

    async fn find_poller_token(&self, hash: &str) -> Result<Option<PollerTokenRecord>> {
        let (hash, codec) = (hash.to_owned(), self.codec.clone());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {POLLER_TOKEN_COLUMNS} FROM poller_tokens WHERE hash = ?"
            ))
            .and_then(|mut select| {
                select
                    .query_row([hash], |row| poller_token(row, &codec))
                    .optional()
            })
            .map_err(map_error)
        })
        .await
    }

    async fn reseal_poller_tokens(&self) -> Result<u64> {
        let codec = self.codec.clone();
        self.write(move |c| {
            let stored = c
                .prepare("SELECT id, token FROM poller_tokens")
                .and_then(|mut select| {
                    select
                        .query_map([], |row| {
                            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
                        })?
                        .collect::<rusqlite::Result<Vec<_>>>()
                })
                .map_err(map_error)?;
            for (id, sealed) in &stored {
                let token = codec
                    .open_text(sealed)
                    .map_err(crate::StoreError::Internal)?;
                c.execute(
                    "UPDATE poller_tokens SET token = ? WHERE id = ?",
                    params![codec.seal_text(&token), id],
                )
                .map_err(map_error)?;
            }
            Ok(stored.len() as u64)
        })
        .await
    }

    async fn current_poller_token(
        &self,
        endpoint: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<Option<PollerTokenRecord>> {
        let (endpoint, codec) = (endpoint.clone(), self.codec.clone());
        self.read(move |c| {
            c.prepare_cached(&format!(
                "SELECT {POLLER_TOKEN_COLUMNS} FROM poller_tokens \
                 WHERE endpoint_id = ? AND expires_at > ? ORDER BY created_at DESC, id DESC LIMIT 1"
            ))
            .and_then(|mut select| {
                select
                    .query_row(params![endpoint.as_str(), ms(now)], |row| {
                        poller_token(row, &codec)
                    })
                    .optional()
            })
            .map_err(map_error)
        })
        .await
    }
}
