//! API tokens, idempotency records and background tasks.

use deadpool_postgres::GenericClient;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;
use webhookd_core::model::BackgroundTask;
use webhookd_core::time::from_unix_ms;
use webhookd_core::{TaskId, TokenId};

use super::list::{Param, int, param, text};
use super::rows::{self, get, json, ms};
use super::sql::{execute, query, query_one, query_opt};
use crate::columns::TASK_COLUMNS;
use crate::{
    ApiTokenRecord, Conflict, IDEMPOTENCY_WINDOW, IdempotentResponse, Result, SecretCodec,
    StoreError,
};

pub(crate) async fn save_idempotent(
    c: &impl GenericClient,
    response: Option<&IdempotentResponse>,
) -> Result<()> {
    let Some(response) = response else {
        return Ok(());
    };
    let (sql, params) = save_idempotent_statement(response);
    let params: Vec<&(dyn ToSql + Sync)> = params.iter().map(|param| param.as_ref() as _).collect();
    if execute(c, sql, &params).await? == 0 {
        return Err(StoreError::Conflict(Conflict::idempotency_key()));
    }
    Ok(())
}

/// The statement that records `response`; it writes no row when the key is taken.
pub(crate) fn save_idempotent_statement(
    response: &IdempotentResponse,
) -> (&'static str, Vec<Param>) {
    // A stale record under the same key (older than the window) is replaced; a live one
    // means another request with this key got there first (on any node), and this write, with
    // the effect it belongs to, is refused.
    (
        "INSERT INTO idempotency (key_hash, status, body, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (key_hash) DO UPDATE SET status = excluded.status, body = excluded.body, \
         created_at = excluded.created_at WHERE idempotency.created_at < $5",
        vec![
            text(&response.key_hash),
            param(i32::from(response.status)),
            param(response.body.clone()),
            int(ms(response.created_at)),
            int(ms(response.created_at - IDEMPOTENCY_WINDOW)),
        ],
    )
}

/// The records of several responses in one plain insert (a group commit's): a key already
/// recorded, live or stale, or twice among them fails the statement, and the caller then
/// writes each response alone with [`save_idempotent_statement`], which replaces a stale
/// record. A plain insert spares each row the speculative insertion of `ON CONFLICT`.
pub(crate) fn save_idempotent_many_statement(
    responses: &[&IdempotentResponse],
) -> (&'static str, Vec<Param>) {
    (
        "INSERT INTO idempotency (key_hash, status, body, created_at) \
         SELECT * FROM unnest($1::text[], $2::integer[], $3::bytea[], $4::bigint[])",
        vec![
            param(
                responses
                    .iter()
                    .map(|response| response.key_hash.clone())
                    .collect::<Vec<_>>(),
            ),
            param(
                responses
                    .iter()
                    .map(|response| i32::from(response.status))
                    .collect::<Vec<_>>(),
            ),
            param(
                responses
                    .iter()
                    .map(|response| response.body.clone())
                    .collect::<Vec<_>>(),
            ),
            param(
                responses
                    .iter()
                    .map(|response| ms(response.created_at))
                    .collect::<Vec<_>>(),
            ),
        ],
    )
}

pub(crate) async fn get_idempotent(
    c: &impl GenericClient,
    key_hash: &str,
    not_before: OffsetDateTime,
) -> Result<Option<IdempotentResponse>> {
    let row = query_opt(
        c,
        "SELECT key_hash, status, body, created_at FROM idempotency \
         WHERE key_hash = $1 AND created_at >= $2",
        &[&key_hash, &ms(not_before)],
    )
    .await?;
    let Some(row) = row else { return Ok(None) };
    let status: i32 = get(&row, 1)?;
    Ok(Some(IdempotentResponse {
        key_hash: get(&row, 0)?,
        status: u16::try_from(status)
            .map_err(|_| StoreError::Internal(format!("a stored status of {status}")))?,
        body: get(&row, 2)?,
        created_at: from_unix_ms(get(&row, 3)?),
    }))
}

/// Call inside a transaction.
pub(crate) async fn reseal_idempotent(c: &impl GenericClient, codec: &SecretCodec) -> Result<u64> {
    let stored = query(c, "SELECT key_hash, body FROM idempotency", &[]).await?;
    let mut rewritten = 0;
    for row in &stored {
        let key_hash: &str = get(row, 0)?;
        let body: Vec<u8> = get(row, 1)?;
        if let Some(body) = codec.reseal_body(&body).map_err(StoreError::Internal)? {
            execute(
                c,
                "UPDATE idempotency SET body = $1 WHERE key_hash = $2",
                &[&body, &key_hash],
            )
            .await?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

pub(crate) async fn prune_idempotency(
    c: &impl GenericClient,
    before: OffsetDateTime,
) -> Result<u64> {
    execute(
        c,
        "DELETE FROM idempotency WHERE created_at < $1",
        &[&ms(before)],
    )
    .await
}

pub(crate) async fn put_task(c: &impl GenericClient, task: &BackgroundTask) -> Result<()> {
    let data = json(&task.data).unwrap_or_else(|_| "{}".into());
    execute(
        c,
        &format!(
            "INSERT INTO background_tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET status = $3, data = $4, updated_at = $5"
        ),
        &[
            &task.id.as_str(),
            &task.kind,
            &task.status.text(),
            &data,
            &ms(task.updated_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get_task(
    c: &impl GenericClient,
    id: &TaskId,
) -> Result<Option<BackgroundTask>> {
    let sql = format!("SELECT {TASK_COLUMNS} FROM background_tasks WHERE id = $1");
    query_opt(c, &sql, &[&id.as_str()])
        .await?
        .as_ref()
        .map(|row| crate::rows::task(&crate::db::Row::Postgres(row)))
        .transpose()
}

fn token(row: &Row) -> Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        id: TokenId::from_trusted(get(row, 0)?),
        name: get(row, 1)?,
        hash: get(row, 2)?,
        created_at: from_unix_ms(get(row, 3)?),
    })
}

/// The `settings` row that records, for good, that the store has had a token.
const HAD_TOKENS: &str = "had_tokens";

/// Call inside a transaction: the token and the record that tokens existed go together.
pub(crate) async fn create_token(c: &impl GenericClient, token: &ApiTokenRecord) -> Result<()> {
    execute(
        c,
        "INSERT INTO settings (key, value) VALUES ($1, '1') ON CONFLICT (key) DO NOTHING",
        &[&HAD_TOKENS],
    )
    .await?;
    execute(
        c,
        "INSERT INTO api_tokens (id, name, hash, created_at) VALUES ($1, $2, $3, $4)",
        &[
            &token.id.as_str(),
            &token.name,
            &token.hash,
            &ms(token.created_at),
        ],
    )
    .await
    .map_err(|error| error.taken_as(|| Conflict::token_name(&token.name)))?;
    Ok(())
}

pub(crate) async fn list_tokens(c: &impl GenericClient) -> Result<Vec<ApiTokenRecord>> {
    let found = query(
        c,
        "SELECT id, name, hash, created_at FROM api_tokens ORDER BY id",
        &[],
    )
    .await?;
    rows::all(&found, token)
}

pub(crate) async fn revoke_token(c: &impl GenericClient, key: &str) -> Result<bool> {
    let revoked = execute(
        c,
        "DELETE FROM api_tokens WHERE id = $1 OR name = $1",
        &[&key],
    )
    .await?;
    Ok(revoked > 0)
}

pub(crate) async fn find_token(
    c: &impl GenericClient,
    hash: &str,
) -> Result<Option<ApiTokenRecord>> {
    query_opt(
        c,
        "SELECT id, name, hash, created_at FROM api_tokens WHERE hash = $1",
        &[&hash],
    )
    .await?
    .as_ref()
    .map(token)
    .transpose()
}

pub(crate) async fn had_tokens(c: &impl GenericClient) -> Result<bool> {
    let row = query_one(
        c,
        "SELECT EXISTS (SELECT 1 FROM settings WHERE key = $1)",
        &[&HAD_TOKENS],
    )
    .await?;
    get(&row, 0)
}

pub(crate) async fn count_tokens(c: &impl GenericClient) -> Result<u64> {
    let row = query_one(c, "SELECT COUNT(*) FROM api_tokens", &[]).await?;
    Ok(u64::try_from(get::<i64>(&row, 0)?).unwrap_or_default())
}

pub(crate) async fn ping(c: &impl GenericClient) -> Result<()> {
    query_one(c, "SELECT 1", &[]).await.map(drop)
}
