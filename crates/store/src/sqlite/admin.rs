//! API tokens, idempotency records and background tasks.

use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;
use webhookd_core::model::BackgroundTask;
use webhookd_core::time::from_unix_ms;
use webhookd_core::{TaskId, TokenId};

use super::map_error;
use crate::columns::TASK_COLUMNS;
use crate::rows::{json, ms};
use crate::{
    ApiTokenRecord, Conflict, IDEMPOTENCY_WINDOW, IdempotentResponse, Result, SecretCodec,
    StoreError,
};

pub(crate) fn save_idempotent(c: &Connection, response: Option<&IdempotentResponse>) -> Result<()> {
    let Some(response) = response else {
        return Ok(());
    };
    // A stale record under the same key (older than the window) is replaced; a live one
    // means another request with this key got there first, and this write, with the effect it
    // belongs to, is refused.
    let written = c
        .prepare_cached(
            "INSERT INTO idempotency (key_hash, status, body, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (key_hash) DO UPDATE SET status = excluded.status, body = excluded.body, \
             created_at = excluded.created_at WHERE idempotency.created_at < ?5",
        )
        .and_then(|mut insert| {
            insert.execute(params![
                response.key_hash,
                response.status,
                response.body,
                ms(response.created_at),
                ms(response.created_at - IDEMPOTENCY_WINDOW),
            ])
        })
        .map_err(map_error)?;
    if written == 0 {
        return Err(StoreError::Conflict(Conflict::idempotency_key()));
    }
    Ok(())
}

pub(crate) fn get_idempotent(
    c: &Connection,
    key_hash: &str,
    not_before: OffsetDateTime,
) -> Result<Option<IdempotentResponse>> {
    c.prepare_cached(
        "SELECT key_hash, status, body, created_at FROM idempotency \
         WHERE key_hash = ? AND created_at >= ?",
    )
    .and_then(|mut select| {
        select
            .query_row(params![key_hash, ms(not_before)], |row| {
                Ok(IdempotentResponse {
                    key_hash: row.get(0)?,
                    status: row.get(1)?,
                    body: row.get(2)?,
                    created_at: from_unix_ms(row.get(3)?),
                })
            })
            .optional()
    })
    .map_err(map_error)
}

pub(crate) fn prune_idempotency(c: &Connection, before: OffsetDateTime) -> Result<u64> {
    let pruned = c
        .execute("DELETE FROM idempotency WHERE created_at < ?", [ms(before)])
        .map_err(map_error)?;
    Ok(pruned as u64)
}

pub(crate) fn reseal_idempotent(c: &Connection, codec: &SecretCodec) -> Result<u64> {
    let stored: Vec<(String, Vec<u8>)> = c
        .prepare("SELECT key_hash, body FROM idempotency")
        .and_then(|mut select| {
            select
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .and_then(Iterator::collect)
        })
        .map_err(map_error)?;
    let mut rewritten = 0;
    for (key_hash, body) in stored {
        if let Some(body) = codec.reseal_body(&body).map_err(StoreError::Internal)? {
            c.execute(
                "UPDATE idempotency SET body = ? WHERE key_hash = ?",
                params![body, key_hash],
            )
            .map_err(map_error)?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

pub(crate) fn put_task(c: &Connection, task: &BackgroundTask) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO background_tasks ({TASK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (id) DO UPDATE SET status = ?3, data = ?4, updated_at = ?5"
    ))
    .and_then(|mut upsert| {
        upsert.execute(params![
            task.id.as_str(),
            task.kind,
            task.status.text(),
            json(&task.data).unwrap_or_else(|_| "{}".into()),
            ms(task.updated_at)
        ])
    })
    .map_err(map_error)?;
    Ok(())
}

pub(crate) fn get_task(c: &Connection, id: &TaskId) -> Result<Option<BackgroundTask>> {
    c.prepare_cached(&format!(
        "SELECT {TASK_COLUMNS} FROM background_tasks WHERE id = ?"
    ))
    .and_then(|mut select| {
        select
            .query_row([id.as_str()], super::db::reader(crate::rows::task))
            .optional()
    })
    .map_err(map_error)
}

fn token(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        id: TokenId::from_trusted(row.get(0)?),
        name: row.get(1)?,
        hash: row.get(2)?,
        created_at: from_unix_ms(row.get(3)?),
    })
}

/// The `settings` row that records, for good, that the store has had a token.
const HAD_TOKENS: &str = "had_tokens";

pub(crate) fn create_token(c: &Connection, token: &ApiTokenRecord) -> Result<()> {
    c.execute(
        "INSERT INTO settings (key, value) VALUES (?, '1') ON CONFLICT (key) DO NOTHING",
        [HAD_TOKENS],
    )
    .map_err(map_error)?;
    c.execute(
        "INSERT INTO api_tokens (id, name, hash, created_at) VALUES (?, ?, ?, ?)",
        params![
            token.id.as_str(),
            token.name,
            token.hash,
            ms(token.created_at)
        ],
    )
    .map_err(|error| map_error(error).taken_as(|| Conflict::token_name(&token.name)))?;
    Ok(())
}

pub(crate) fn list_tokens(c: &Connection) -> Result<Vec<ApiTokenRecord>> {
    let mut select = c
        .prepare_cached("SELECT id, name, hash, created_at FROM api_tokens ORDER BY id")
        .map_err(map_error)?;
    select
        .query_map([], token)
        .and_then(Iterator::collect)
        .map_err(map_error)
}

pub(crate) fn revoke_token(c: &Connection, key: &str) -> Result<bool> {
    let revoked = c
        .execute("DELETE FROM api_tokens WHERE id = ?1 OR name = ?1", [key])
        .map_err(map_error)?;
    Ok(revoked > 0)
}

pub(crate) fn find_token(c: &Connection, hash: &str) -> Result<Option<ApiTokenRecord>> {
    c.prepare_cached("SELECT id, name, hash, created_at FROM api_tokens WHERE hash = ?")
        .and_then(|mut select| select.query_row([hash], token).optional())
        .map_err(map_error)
}

pub(crate) fn had_tokens(c: &Connection) -> Result<bool> {
    c.query_row(
        "SELECT EXISTS (SELECT 1 FROM settings WHERE key = ?)",
        [HAD_TOKENS],
        |row| row.get(0),
    )
    .map_err(map_error)
}

pub(crate) fn count_tokens(c: &Connection) -> Result<u64> {
    c.query_row("SELECT COUNT(*) FROM api_tokens", [], |row| row.get(0))
        .map_err(map_error)
}

pub(crate) fn ping(c: &Connection) -> Result<()> {
    c.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))
        .map(drop)
        .map_err(map_error)
}
