//! Retention on SQLite: small batches, each a short write, so that a purge of millions of
//! messages never holds the writer (and the ingest path behind it) for long.

use rusqlite::{Connection, params};
use time::OffsetDateTime;
use webhookd_core::AttemptId;

use super::map_error;
use crate::rows::ms;
use crate::status::PENDING;
use crate::{Result, RetentionPurge};

/// Rows purged per kind and call at most: a batch costs the writer a few milliseconds.
const RETENTION_BATCH: i64 = 200;

/// Erases these messages' payloads: they read back as empty content, never as an error. The
/// one place content is erased, shared by retention and the expunge APIs.
pub(crate) fn erase_payloads(c: &Connection, ids: &[String]) -> Result<u64> {
    let mut erase = c
        .prepare_cached(
            "UPDATE messages SET payload = X'', expunged = 1 WHERE id = ? AND expunged = 0",
        )
        .map_err(map_error)?;
    let mut erased = 0;
    for id in ids {
        erased += erase.execute([id]).map_err(map_error)? as u64;
    }
    Ok(erased)
}

/// Ids of messages whose payload is due for erasure by `condition` (indexed), oldest first,
/// skipping messages with a delivery still pending.
fn expired(c: &Connection, condition: &str, bound: i64, limit: i64) -> Result<Vec<String>> {
    c.prepare_cached(&format!(
        "SELECT m.id FROM messages m WHERE m.expunged = 0 AND {condition} \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.status = {PENDING}) \
         LIMIT ?"
    ))
    .and_then(|mut select| {
        select
            .query_map(params![bound, limit], |row| row.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()
    })
    .map_err(map_error)
}

pub(crate) fn apply_retention(
    c: &Connection,
    cutoff: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<RetentionPurge> {
    // An attempt's id carries the time it was made: the oldest attempts are the lowest ids.
    let first_kept = AttemptId::lowest_at(cutoff);
    let cutoff = ms(cutoff);
    let attempts = c
        .execute(
            "DELETE FROM attempts WHERE rowid IN \
             (SELECT rowid FROM attempts WHERE id < ? LIMIT ?)",
            params![first_kept.as_str(), RETENTION_BATCH],
        )
        .map_err(map_error)? as u64;
    let mut ids = expired(c, "m.created_at < ?", cutoff, RETENTION_BATCH)?;
    let room = RETENTION_BATCH - ids.len() as i64;
    if room > 0 {
        ids.extend(expired(c, "m.retain_payload_until < ?", ms(now), room)?);
    }
    let payloads = erase_payloads(c, &ids)?;
    Ok(RetentionPurge { payloads, attempts })
}
