//! Retention, in small batches, each a short write: a purge of millions of messages never
//! holds SQLite's writer (and the ingest behind it) for long, and on PostgreSQL each batch skips
//! the rows another node is purging at the same moment instead of waiting for them.

use time::OffsetDateTime;
use webhookd_core::AttemptId;

use crate::db::{Db, Param, params};
use crate::status::PENDING;
use crate::{Result, RetentionPurge};

/// Rows purged per kind and call at most: a batch costs milliseconds.
const RETENTION_BATCH: i64 = 200;

/// Messages past the retention window, and past their own retention (`$1` each).
const BY_CREATION: &str = "m.created_at < $1";
const BY_OWN_RETENTION: &str = "m.retain_payload_until < $1";

/// Erases these messages' payloads: they read back as empty content, never as an error. The
/// one place content is erased, shared by retention and the expunge APIs.
pub(crate) async fn erase_payloads(db: &mut Db<'_>, ids: &[String]) -> Result<u64> {
    if ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE messages SET payload = $2, expunged = TRUE WHERE {} AND NOT expunged",
        db.any_of("id", "$1")
    );
    db.execute(&sql, &params![ids, Param::Bytes(&[])]).await
}

/// Ids of messages whose payload is due for erasure by `condition` (indexed, on `$1`),
/// skipping messages with a delivery still pending.
async fn expired(db: &mut Db<'_>, condition: &str, bound: i64, limit: i64) -> Result<Vec<String>> {
    let sql = expired_sql(db, condition);
    db.query(&sql, &params![bound, limit], |row| row.get(0))
        .await
}

fn expired_sql(db: &Db<'_>, condition: &str) -> String {
    format!(
        "SELECT m.id FROM messages m WHERE {} AND {condition} \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.msg_id = m.id AND d.status = {PENDING}) \
         LIMIT $2{}",
        db.is_false("m.expunged"),
        db.lock(" FOR UPDATE OF m SKIP LOCKED")
    )
}

/// One batch of retention. Call inside a transaction.
pub(crate) async fn apply_retention(
    db: &mut Db<'_>,
    cutoff: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<RetentionPurge> {
    // An attempt's id carries the time it was made: the oldest attempts are the lowest ids.
    let first_kept = AttemptId::lowest_at(cutoff);
    let sql = format!(
        "DELETE FROM attempts WHERE id IN (SELECT id FROM attempts WHERE id < $1 LIMIT $2{})",
        db.lock(" FOR UPDATE SKIP LOCKED")
    );
    let attempts = db
        .execute(&sql, &params![first_kept.as_str(), RETENTION_BATCH])
        .await?;
    let cutoff = crate::rows::ms(cutoff);
    let mut ids = expired(db, BY_CREATION, cutoff, RETENTION_BATCH).await?;
    let room = RETENTION_BATCH - ids.len() as i64;
    if room > 0 {
        let now = crate::rows::ms(now);
        ids.extend(expired(db, BY_OWN_RETENTION, now, room).await?);
    }
    let payloads = erase_payloads(db, &ids).await?;
    Ok(RetentionPurge { payloads, attempts })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Retention must find its messages through the partial indexes, whose predicate the
    /// statement has to repeat as the index writes it: a scan of every message would hold
    /// SQLite's writer, and the ingest behind it, for as long as the table is large.
    #[test]
    fn sqlite_finds_expired_messages_through_the_partial_indexes() {
        let directory = tempfile::tempdir().unwrap();
        let path = directory.path().join("webhookd.db");
        crate::sqlite::SqliteStore::migrate(&path).unwrap();
        let mut connection = rusqlite::Connection::open(&path).unwrap();
        let db = Db::Sqlite(&mut connection);
        for (condition, index) in [
            (BY_CREATION, "messages_created"),
            (BY_OWN_RETENTION, "messages_retain_until"),
        ] {
            let sql = format!("EXPLAIN QUERY PLAN {}", expired_sql(&db, condition));
            let Db::Sqlite(connection) = &db else {
                unreachable!()
            };
            let plan: Vec<String> = connection
                .prepare(&sql)
                .unwrap()
                .query_map([0, 1], |row| row.get::<_, String>(3))
                .unwrap()
                .collect::<rusqlite::Result<_>>()
                .unwrap();
            let plan = plan.join("\n");
            assert!(
                plan.contains(&format!("USING INDEX {index}")),
                "{condition}: {plan}"
            );
        }
    }
}
