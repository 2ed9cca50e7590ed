//! Retention on PostgreSQL: small batches, each a short transaction that skips rows another
//! node is purging at the same moment instead of waiting for them.

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use webhookd_core::AttemptId;

use super::rows::get;
use super::sql::{execute, query};
use crate::status::PENDING;
use crate::{Result, RetentionPurge};

/// Rows purged per kind and call at most: a batch holds its row locks for milliseconds.
const RETENTION_BATCH: i64 = 200;

/// Erases these messages' payloads: they read back as empty content, never as an error. The
/// one place content is erased, shared by retention and the expunge APIs.
pub(crate) async fn erase_payloads(c: &impl GenericClient, ids: &[String]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    execute(
        c,
        "UPDATE messages SET payload = ''::bytea, expunged = TRUE \
         WHERE id = ANY($1) AND NOT expunged",
        &[&ids],
    )
    .await
}

/// Ids of messages whose payload is due for erasure by `condition` (indexed), skipping
/// messages with a delivery still pending and rows locked by another purge.
async fn expired(
    c: &impl GenericClient,
    condition: &str,
    bound: i64,
    limit: i64,
) -> Result<Vec<String>> {
    let sql = format!(
        "SELECT m.id FROM messages m WHERE NOT m.expunged AND {condition} \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.status = {PENDING}) \
         LIMIT $2 FOR UPDATE OF m SKIP LOCKED"
    );
    let rows = query(c, &sql, &[&bound, &limit]).await?;
    rows.iter().map(|row| get::<String>(row, 0)).collect()
}

/// One batch of retention. Call inside a transaction.
pub(crate) async fn apply_retention(
    c: &impl GenericClient,
    cutoff: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<RetentionPurge> {
    // An attempt's id carries the time it was made: the oldest attempts are the lowest ids.
    let first_kept = AttemptId::lowest_at(cutoff);
    let cutoff = super::rows::ms(cutoff);
    let attempts = execute(
        c,
        "DELETE FROM attempts WHERE id IN \
         (SELECT id FROM attempts WHERE id < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
        &[&first_kept.as_str(), &RETENTION_BATCH],
    )
    .await?;
    let mut ids = expired(c, "m.created_at < $1", cutoff, RETENTION_BATCH).await?;
    let room = RETENTION_BATCH - ids.len() as i64;
    if room > 0 {
        let own = expired(c, "m.retain_payload_until < $1", super::rows::ms(now), room).await?;
        ids.extend(own);
    }
    let payloads = erase_payloads(c, &ids).await?;
    Ok(RetentionPurge { payloads, attempts })
}
