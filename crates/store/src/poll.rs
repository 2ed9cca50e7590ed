//! The storage of polling endpoints: an application's message stream read in commit order,
//! the offsets the server keeps per consumer, and the endpoints' poller tokens.
//!
//! **The stream's order.** Message ids are time-sortable, but two messages stored at once may
//! become visible in the other order (the older id committing later), so an id cursor could
//! step over a message committed late. The stream is therefore read in an order that only
//! ever grows at its end, per backend:
//! - SQLite has one writer, so a per-application sequence (`stream_seq`, the application's
//!   largest plus one, given at insert) is commit order.
//! - PostgreSQL orders by the transaction id that stored the message (`xid`, then the id), and
//!   reads only messages of transactions older than every transaction still running
//!   (`pg_snapshot_xmin`): any message committed later has a larger transaction id than what
//!   was read. The price: a transaction left open anywhere on the server holds the stream
//!   back until it ends.
//!
//! A [`StreamPosition`] is a place in that order; reads return what comes strictly after it.

use async_trait::async_trait;
use time::OffsetDateTime;
use webhookd_core::model::Message;
use webhookd_core::{AppId, EndpointId, TokenId};

use crate::backend::{Backend, run};
use crate::db::{Row, by_backend, params};
use crate::postgres as pg;
use crate::sqlite as lite;
use crate::{Result, SecretCodec, StoreError};

/// A place in an application's message stream (see the module docs); opaque to callers but
/// for being stored and given back.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamPosition {
    /// SQLite: the message's `stream_seq`; PostgreSQL: its transaction id.
    pub seq: i64,
    /// PostgreSQL: the message's id, which orders the messages of one transaction; empty on
    /// SQLite and before the first message of a transaction.
    pub msg: String,
}

/// A polling endpoint's token (`pollsk_…`): it reads that endpoint's stream and nothing else.
/// The store finds it by hash; the token itself is kept sealed like endpoint secrets, so that
/// the endpoint's owner can read it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollerTokenRecord {
    pub id: TokenId,
    /// The hex SHA-256 of the token.
    pub hash: String,
    pub app_id: AppId,
    pub endpoint_id: EndpointId,
    pub token: String,
    pub created_at: OffsetDateTime,
    /// Rotating brings the previous token's expiry forward; it never moves later.
    pub expires_at: OffsetDateTime,
}

/// The storage of polling endpoints, a part of [`crate::Store`]. Every method is one
/// transaction.
#[async_trait]
pub trait PollStore: Send + Sync {
    /// The position from which the application's messages created after `since` are read:
    /// no message created after `since` lies at or before it, now or later.
    async fn stream_start(&self, app: &AppId, since: OffsetDateTime) -> Result<StreamPosition>;
    /// Up to `limit` of the application's messages created after `since` that lie after
    /// `after` in the stream, in stream order, each with its position.
    async fn read_stream(
        &self,
        app: &AppId,
        since: OffsetDateTime,
        after: &StreamPosition,
        limit: usize,
    ) -> Result<Vec<(StreamPosition, Message)>>;
    /// The iterator a consumer of the endpoint stopped at, if it has one.
    async fn get_poll_offset(
        &self,
        endpoint: &EndpointId,
        consumer: &str,
    ) -> Result<Option<String>>;
    /// Stores the consumer's iterator (creating the consumer).
    async fn set_poll_offset(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        consumer: &str,
        iterator: &str,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// Stores a new poller token and brings the expiry of the endpoint's other tokens forward
    /// to `retire_others_at` (a token that expires sooner keeps its expiry).
    async fn rotate_poller_token(
        &self,
        token: &PollerTokenRecord,
        retire_others_at: OffsetDateTime,
    ) -> Result<()>;
    /// By hash, expired or not: the caller compares the expiry with its clock.
    async fn find_poller_token(&self, hash: &str) -> Result<Option<PollerTokenRecord>>;
    /// Seals every stored poller token with the current key (`webhookd secrets reencrypt`).
    /// Returns how many were rewritten.
    async fn reseal_poller_tokens(&self) -> Result<u64>;
    /// The endpoint's newest token that is still live at `now`.
    async fn current_poller_token(
        &self,
        endpoint: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<Option<PollerTokenRecord>>;
}

/// The columns of `poller_tokens`, in the order both backends read them.
pub(crate) const POLLER_TOKEN_COLUMNS: &str =
    "id, hash, app_id, endpoint_id, token, created_at, expires_at";

fn poller_token(row: &Row<'_>, codec: &SecretCodec) -> Result<PollerTokenRecord> {
    Ok(PollerTokenRecord {
        id: TokenId::from_trusted(row.get(0)?),
        hash: row.get(1)?,
        app_id: AppId::from_trusted(row.get(2)?),
        endpoint_id: EndpointId::from_trusted(row.get(3)?),
        token: codec.open_text(row.get(4)?).map_err(StoreError::Internal)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
    })
}

#[async_trait]
impl<B: Backend> PollStore for B {
    async fn stream_start(&self, app: &AppId, since: OffsetDateTime) -> Result<StreamPosition> {
        let app = app.clone();
        run!(self, Read, |db| by_backend!(db,
            c => lite::poll::stream_start(c, &app, since),
            c => pg::poll::stream_start(*c, &app, since).await))
        .await
    }

    async fn read_stream(
        &self,
        app: &AppId,
        since: OffsetDateTime,
        after: &StreamPosition,
        limit: usize,
    ) -> Result<Vec<(StreamPosition, Message)>> {
        let (app, after) = (app.clone(), after.clone());
        run!(self, Read, |db| by_backend!(db,
            c => lite::poll::read_stream(c, &app, since, &after, limit),
            c => pg::poll::read_stream(*c, &app, since, &after, limit).await))
        .await
    }

    async fn get_poll_offset(
        &self,
        endpoint: &EndpointId,
        consumer: &str,
    ) -> Result<Option<String>> {
        let (endpoint, consumer) = (endpoint.clone(), consumer.to_owned());
        run!(self, Read, |db| {
            db.query_opt(
                "SELECT iterator FROM poll_consumers WHERE endpoint_id = $1 AND consumer_id = $2",
                &params![endpoint.as_str(), &consumer],
                |row| row.get(0),
            )
            .await
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
        run!(self, Write, |db| {
            db.execute(
                "INSERT INTO poll_consumers (endpoint_id, consumer_id, app_id, iterator, \
                 updated_at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (endpoint_id, consumer_id) \
                 DO UPDATE SET iterator = excluded.iterator, updated_at = excluded.updated_at",
                &params![endpoint.as_str(), &consumer, app.as_str(), &iterator, now],
            )
            .await
            .map(drop)
        })
        .await
    }

    async fn rotate_poller_token(
        &self,
        token: &PollerTokenRecord,
        retire_others_at: OffsetDateTime,
    ) -> Result<()> {
        let sealed = self.codec().seal_text(&token.token);
        let token = token.clone();
        run!(self, Transaction, |db| {
            db.execute(
                "UPDATE poller_tokens SET expires_at = $2 \
                 WHERE endpoint_id = $1 AND expires_at > $2",
                &params![token.endpoint_id.as_str(), retire_others_at],
            )
            .await?;
            db.execute(
                const_format::formatcp!(
                    "INSERT INTO poller_tokens ({POLLER_TOKEN_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)"
                ),
                &params![
                    token.id.as_str(),
                    &token.hash,
                    token.app_id.as_str(),
                    token.endpoint_id.as_str(),
                    &sealed,
                    token.created_at,
                    token.expires_at,
                ],
            )
            .await
            .map(drop)
        })
        .await
    }

    async fn find_poller_token(&self, hash: &str) -> Result<Option<PollerTokenRecord>> {
        let (hash, codec) = (hash.to_owned(), self.codec().clone());
        run!(self, Read, |db| {
            db.query_opt(
                const_format::formatcp!(
                    "SELECT {POLLER_TOKEN_COLUMNS} FROM poller_tokens WHERE hash = $1"
                ),
                &params![&hash],
                |row| poller_token(row, &codec),
            )
            .await
        })
        .await
    }

    async fn reseal_poller_tokens(&self) -> Result<u64> {
        let codec = self.codec().clone();
        run!(self, Transaction, |db| {
            let select = format!(
                "SELECT id, token FROM poller_tokens{}",
                db.lock(" FOR UPDATE")
            );
            let stored = db
                .query(&select, &[], |row| {
                    Ok((row.get::<String>(0)?, row.get::<String>(1)?))
                })
                .await?;
            for (id, sealed) in &stored {
                let token = codec.open_text(sealed).map_err(StoreError::Internal)?;
                db.execute(
                    "UPDATE poller_tokens SET token = $1 WHERE id = $2",
                    &params![&codec.seal_text(&token), id],
                )
                .await?;
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
        let (endpoint, codec) = (endpoint.clone(), self.codec().clone());
        run!(self, Read, |db| {
            db.query_opt(
                const_format::formatcp!(
                    "SELECT {POLLER_TOKEN_COLUMNS} FROM poller_tokens \
                     WHERE endpoint_id = $1 AND expires_at > $2 \
                     ORDER BY created_at DESC, id DESC LIMIT 1"
                ),
                &params![endpoint.as_str(), now],
                |row| poller_token(row, &codec),
            )
            .await
        })
        .await
    }
}
