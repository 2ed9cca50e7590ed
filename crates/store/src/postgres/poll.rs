//! Polling endpoints on PostgreSQL: streams read by the storing transaction's id, up to the
//! oldest transaction still running (see `crate::poll`), consumer offsets and poller tokens.

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio_postgres::Row;
use webhookd_core::model::Message;
use webhookd_core::time::from_unix_ms;
use webhookd_core::{AppId, EndpointId, MessageId, TokenId};

use super::PostgresStore;
use super::rows::{get, ms};
use super::sql::{execute, query, query_one, query_opt};
use crate::columns::MESSAGE_COLUMNS;
use crate::poll::POLLER_TOKEN_COLUMNS;
use crate::{
    MESSAGE_ID_CLOCK_SLACK, PollStore, PollerTokenRecord, Result, SecretCodec, StoreError,
    StreamPosition,
};

/// The oldest transaction still running: every message of an older one is committed (or
/// gone), so the stream is read up to it and no further.
const HORIZON: &str = "pg_snapshot_xmin(pg_current_snapshot())";

fn poller_token(row: &Row, codec: &SecretCodec) -> Result<PollerTokenRecord> {
    let sealed: String = get(row, 4)?;
    Ok(PollerTokenRecord {
        id: TokenId::from_trusted(get(row, 0)?),
        hash: get(row, 1)?,
        app_id: AppId::from_trusted(get(row, 2)?),
        endpoint_id: EndpointId::from_trusted(get(row, 3)?),
        token: codec.open_text(&sealed).map_err(StoreError::Internal)?,
        created_at: from_unix_ms(get(row, 5)?),
        expires_at: from_unix_ms(get(row, 6)?),
    })
}

#[async_trait]
impl PollStore for PostgresStore {
    async fn stream_start(&self, app: &AppId, since: OffsetDateTime) -> Result<StreamPosition> {
        // Messages created after `since` have ids made at most the slack before it; none of
        // them, nor any message still to commit, lies before this position.
        let low = MessageId::lowest_at(since - MESSAGE_ID_CLOCK_SLACK);
        let row = query_one(
            &self.client().await?,
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

    async fn read_stream(
        &self,
        app: &AppId,
        since: OffsetDateTime,
        after: &StreamPosition,
        limit: usize,
    ) -> Result<Vec<(StreamPosition, Message)>> {
        let rows = query(
            &self.client().await?,
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
                let message = crate::rows::message_at(&crate::db::Row::Postgres(row), 1)?;
                let position = StreamPosition {
                    seq: get(row, 0)?,
                    msg: message.id.as_str().to_owned(),
                };
                Ok((position, message))
            })
            .collect()
    }

    async fn get_poll_offset(
        &self,
        endpoint: &EndpointId,
        consumer: &str,
    ) -> Result<Option<String>> {
        let row = query_opt(
            &self.client().await?,
            "SELECT iterator FROM poll_consumers WHERE endpoint_id = $1 AND consumer_id = $2",
            &[&endpoint.as_str(), &consumer],
        )
        .await?;
        row.as_ref().map(|row| get(row, 0)).transpose()
    }

    async fn set_poll_offset(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        consumer: &str,
        iterator: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        execute(
            &self.client().await?,
            "INSERT INTO poll_consumers (endpoint_id, consumer_id, app_id, iterator, updated_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (endpoint_id, consumer_id) \
             DO UPDATE SET iterator = excluded.iterator, updated_at = excluded.updated_at",
            &[
                &endpoint.as_str(),
                &consumer,
                &app.as_str(),
                &iterator,
                &ms(now),
            ],
        )
        .await?;
        Ok(())
    }

    async fn rotate_poller_token(
        &self,
        token: &PollerTokenRecord,
        retire_others_at: OffsetDateTime,
    ) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(super::error::map_error)?;
        execute(
            &tx,
            "UPDATE poller_tokens SET expires_at = $2 WHERE endpoint_id = $1 AND expires_at > $2",
            &[&token.endpoint_id.as_str(), &ms(retire_others_at)],
        )
        .await?;
        execute(
            &tx,
            &format!(
                "INSERT INTO poller_tokens ({POLLER_TOKEN_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            &[
                &token.id.as_str(),
                &token.hash,
                &token.app_id.as_str(),
                &token.endpoint_id.as_str(),
                &self.codec.seal_text(&token.token),
                &ms(token.created_at),
                &ms(token.expires_at),
            ],
        )
        .await?;
        tx.commit().await.map_err(super::error::map_error)
    }

    async fn find_poller_token(&self, hash: &str) -> Result<Option<PollerTokenRecord>> {
        let row = query_opt(
            &self.client().await?,
            &format!("SELECT {POLLER_TOKEN_COLUMNS} FROM poller_tokens WHERE hash = $1"),
            &[&hash],
        )
        .await?;
        row.as_ref()
            .map(|row| poller_token(row, &self.codec))
            .transpose()
    }

    async fn reseal_poller_tokens(&self) -> Result<u64> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(super::error::map_error)?;
        let stored = query(&tx, "SELECT id, token FROM poller_tokens FOR UPDATE", &[]).await?;
        for row in &stored {
            let (id, sealed): (String, String) = (get(row, 0)?, get(row, 1)?);
            let token = self
                .codec
                .open_text(&sealed)
                .map_err(StoreError::Internal)?;
            execute(
                &tx,
                "UPDATE poller_tokens SET token = $1 WHERE id = $2",
                &[&self.codec.seal_text(&token), &id],
            )
            .await?;
        }
        tx.commit().await.map_err(super::error::map_error)?;
        Ok(stored.len() as u64)
    }

    async fn current_poller_token(
        &self,
        endpoint: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<Option<PollerTokenRecord>> {
        let row = query_opt(
            &self.client().await?,
            &format!(
                "SELECT {POLLER_TOKEN_COLUMNS} FROM poller_tokens \
                 WHERE endpoint_id = $1 AND expires_at > $2 \
                 ORDER BY created_at DESC, id DESC LIMIT 1"
            ),
            &[&endpoint.as_str(), &ms(now)],
        )
        .await?;
        row.as_ref()
            .map(|row| poller_token(row, &self.codec))
            .transpose()
    }
}
