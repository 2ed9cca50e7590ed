//! API tokens, idempotency records and background tasks, written once for both backends.

use time::OffsetDateTime;
use webhookd_core::model::BackgroundTask;
use webhookd_core::{TaskId, TokenId};

use crate::columns::TASK_COLUMNS;
use crate::db::{Db, Param, Row, params};
use crate::rows::{self, json, ms};
use crate::{
    ApiTokenRecord, Conflict, IDEMPOTENCY_WINDOW, IdempotentResponse, Result, SecretCodec,
    StoreError,
};

/// Records a response under its idempotency key; it writes no row when the key is taken. A
/// stale record under the same key (older than the window) is replaced; a live one means
/// another request with this key got there first (on any node), and this write, with the
/// effect it belongs to, is refused. Parameters from [`save_idempotent_params`].
pub(crate) const SAVE_IDEMPOTENT: &str = "INSERT INTO idempotency (key_hash, status, body, \
     created_at) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (key_hash) DO UPDATE SET status = excluded.status, body = excluded.body, \
     created_at = excluded.created_at WHERE idempotency.created_at < $5";

pub(crate) fn save_idempotent_params(response: &IdempotentResponse) -> [Param<'_>; 5] {
    params![
        &response.key_hash,
        u32::from(response.status),
        response.body.as_slice(),
        response.created_at,
        response.created_at - IDEMPOTENCY_WINDOW,
    ]
}

pub(crate) async fn save_idempotent(
    db: &mut Db<'_>,
    response: Option<&IdempotentResponse>,
) -> Result<()> {
    let Some(response) = response else {
        return Ok(());
    };
    let params = save_idempotent_params(response);
    if db.execute(SAVE_IDEMPOTENT, &params).await? == 0 {
        return Err(StoreError::Conflict(Conflict::idempotency_key()));
    }
    Ok(())
}

pub(crate) async fn get_idempotent(
    db: &mut Db<'_>,
    key_hash: &str,
    not_before: OffsetDateTime,
) -> Result<Option<IdempotentResponse>> {
    db.query_opt(
        "SELECT key_hash, status, body, created_at FROM idempotency \
         WHERE key_hash = $1 AND created_at >= $2",
        &params![key_hash, not_before],
        |row| {
            Ok(IdempotentResponse {
                key_hash: row.get(0)?,
                status: row.get(1)?,
                body: row.get(2)?,
                created_at: row.get(3)?,
            })
        },
    )
    .await
}

pub(crate) async fn prune_idempotency(db: &mut Db<'_>, before: OffsetDateTime) -> Result<u64> {
    db.execute(
        "DELETE FROM idempotency WHERE created_at < $1",
        &params![before],
    )
    .await
}

/// Seals every stored response body with the codec's current key. Call inside a
/// transaction.
pub(crate) async fn reseal_idempotent(db: &mut Db<'_>, codec: &SecretCodec) -> Result<u64> {
    let stored = db
        .query("SELECT key_hash, body FROM idempotency", &[], |row| {
            Ok((row.get::<String>(0)?, row.get::<Vec<u8>>(1)?))
        })
        .await?;
    let mut rewritten = 0;
    for (key_hash, body) in stored {
        if let Some(body) = codec.reseal_body(&body).map_err(StoreError::Internal)? {
            db.execute(
                "UPDATE idempotency SET body = $1 WHERE key_hash = $2",
                &params![body.as_slice(), &key_hash],
            )
            .await?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

pub(crate) async fn put_task(db: &mut Db<'_>, task: &BackgroundTask) -> Result<()> {
    let data = json(&task.data)?;
    db.execute(
        const_format::formatcp!(
            "INSERT INTO background_tasks ({TASK_COLUMNS}) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET status = $3, data = $4, updated_at = $5"
        ),
        &params![
            task.id.as_str(),
            &task.kind,
            task.status.text(),
            &data,
            ms(task.updated_at),
        ],
    )
    .await?;
    Ok(())
}

pub(crate) async fn get_task(db: &mut Db<'_>, id: &TaskId) -> Result<Option<BackgroundTask>> {
    db.query_opt(
        const_format::formatcp!("SELECT {TASK_COLUMNS} FROM background_tasks WHERE id = $1"),
        &params![id.as_str()],
        rows::task,
    )
    .await
}

fn token(row: &Row<'_>) -> Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        id: TokenId::from_trusted(row.get(0)?),
        name: row.get(1)?,
        hash: row.get(2)?,
        created_at: row.get(3)?,
    })
}

/// The `settings` row that records, for good, that the store has had a token.
const HAD_TOKENS: &str = "had_tokens";

/// Call inside a transaction: the token and the record that tokens existed go together.
pub(crate) async fn create_token(db: &mut Db<'_>, token: &ApiTokenRecord) -> Result<()> {
    db.execute(
        "INSERT INTO settings (key, value) VALUES ($1, '1') ON CONFLICT (key) DO NOTHING",
        &params![HAD_TOKENS],
    )
    .await?;
    db.execute(
        "INSERT INTO api_tokens (id, name, hash, created_at) VALUES ($1, $2, $3, $4)",
        &params![
            token.id.as_str(),
            &token.name,
            &token.hash,
            token.created_at
        ],
    )
    .await
    .map_err(|error| error.taken_as(|| Conflict::token_name(&token.name)))?;
    Ok(())
}

pub(crate) async fn list_tokens(db: &mut Db<'_>) -> Result<Vec<ApiTokenRecord>> {
    db.query(
        "SELECT id, name, hash, created_at FROM api_tokens ORDER BY id",
        &[],
        token,
    )
    .await
}

pub(crate) async fn revoke_token(db: &mut Db<'_>, key: &str) -> Result<bool> {
    let revoked = db
        .execute(
            "DELETE FROM api_tokens WHERE id = $1 OR name = $1",
            &params![key],
        )
        .await?;
    Ok(revoked > 0)
}

pub(crate) async fn find_token(db: &mut Db<'_>, hash: &str) -> Result<Option<ApiTokenRecord>> {
    db.query_opt(
        "SELECT id, name, hash, created_at FROM api_tokens WHERE hash = $1",
        &params![hash],
        token,
    )
    .await
}

pub(crate) async fn had_tokens(db: &mut Db<'_>) -> Result<bool> {
    db.query_one(
        "SELECT EXISTS (SELECT 1 FROM settings WHERE key = $1)",
        &params![HAD_TOKENS],
        |row| row.get(0),
    )
    .await
}

pub(crate) async fn count_tokens(db: &mut Db<'_>) -> Result<u64> {
    db.query_one("SELECT COUNT(*) FROM api_tokens", &[], |row| row.get(0))
        .await
}

pub(crate) async fn ping(db: &mut Db<'_>) -> Result<()> {
    db.query_one("SELECT 1", &[], |row| row.get::<i64>(0))
        .await
        .map(drop)
}
