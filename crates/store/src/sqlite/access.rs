//! App-scoped tokens and browser sessions on SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};
use time::OffsetDateTime;
use webhookd_core::access;
use webhookd_core::time::from_unix_ms;
use webhookd_core::{AppId, TokenId};

use super::{SqliteStore, map_error};
use crate::access::{APP_TOKEN_COLUMNS, SESSION_COLUMNS};
use crate::rows::ms;
use crate::{AccessStore, AppTokenRecord, Result, SessionRecord, SessionSubject};

fn app_token(row: &rusqlite::Row<'_>) -> rusqlite::Result<AppTokenRecord> {
    Ok(AppTokenRecord {
        id: TokenId::from_trusted(row.get(0)?),
        hash: row.get(1)?,
        app_id: AppId::from_trusted(row.get(2)?),
        capabilities: access::split(&row.get::<_, String>(3)?),
        session_label: row.get(4)?,
        created_at: from_unix_ms(row.get(5)?),
        expires_at: from_unix_ms(row.get(6)?),
    })
}

fn create_app_token(c: &Connection, token: &AppTokenRecord) -> Result<()> {
    c.prepare_cached(&format!(
        "INSERT INTO app_tokens ({APP_TOKEN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"
    ))
    .and_then(|mut insert| {
        insert.execute(params![
            token.id.as_str(),
            token.hash,
            token.app_id.as_str(),
            access::join(&token.capabilities),
            token.session_label,
            ms(token.created_at),
            ms(token.expires_at),
        ])
    })
    .map_err(map_error)?;
    Ok(())
}

/// The token whose `column` ([`BY_HASH`] or [`BY_ID`]) is `key`.
fn find_app_token(
    c: &Connection,
    column: &'static str,
    key: &str,
) -> Result<Option<AppTokenRecord>> {
    c.prepare_cached(&format!(
        "SELECT {APP_TOKEN_COLUMNS} FROM app_tokens WHERE {column} = ?"
    ))
    .and_then(|mut select| select.query_row([key], app_token).optional())
    .map_err(map_error)
}

fn expire_app_tokens(
    c: &Connection,
    app: &AppId,
    labels: &[String],
    at: OffsetDateTime,
) -> Result<u64> {
    let mut changed = 0;
    if labels.is_empty() {
        changed += c
            .execute(
                "UPDATE app_tokens SET expires_at = ?2 WHERE app_id = ?1 AND expires_at > ?2",
                params![app.as_str(), ms(at)],
            )
            .map_err(map_error)?;
    }
    for label in labels {
        changed += c
            .execute(
                "UPDATE app_tokens SET expires_at = ?3 \
                 WHERE app_id = ?1 AND session_label = ?2 AND expires_at > ?3",
                params![app.as_str(), label, ms(at)],
            )
            .map_err(map_error)?;
    }
    Ok(changed as u64)
}

fn expire_app_token(c: &Connection, id: &TokenId, at: OffsetDateTime) -> Result<bool> {
    let found = c
        .query_row(
            "SELECT 1 FROM app_tokens WHERE id = ?",
            [id.as_str()],
            |_| Ok(()),
        )
        .optional()
        .map_err(map_error)?;
    c.execute(
        "UPDATE app_tokens SET expires_at = ?2 WHERE id = ?1 AND expires_at > ?2",
        params![id.as_str(), ms(at)],
    )
    .map_err(map_error)?;
    Ok(found.is_some())
}

fn create_session(c: &Connection, session: &SessionRecord) -> Result<()> {
    let (operator_token_hash, app_token_id) = session.subject.columns();
    c.prepare_cached(&format!(
        "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?)"
    ))
    .and_then(|mut insert| {
        insert.execute(params![
            session.hash,
            operator_token_hash,
            app_token_id,
            ms(session.created_at),
            ms(session.expires_at),
        ])
    })
    .map_err(map_error)?;
    Ok(())
}

fn find_session(c: &Connection, hash: &str) -> Result<Option<SessionRecord>> {
    let row = c
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE hash = ?"
        ))
        .and_then(|mut select| {
            select
                .query_row([hash], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, Option<String>>(1)?,
                        row.get::<_, Option<String>>(2)?,
                        row.get::<_, i64>(3)?,
                        row.get::<_, i64>(4)?,
                    ))
                })
                .optional()
        })
        .map_err(map_error)?;
    let Some((hash, operator_token_hash, app_token_id, created_at, expires_at)) = row else {
        return Ok(None);
    };
    Ok(Some(SessionRecord {
        hash,
        subject: SessionSubject::from_columns(operator_token_hash, app_token_id)?,
        created_at: from_unix_ms(created_at),
        expires_at: from_unix_ms(expires_at),
    }))
}

fn delete_session(c: &Connection, hash: &str) -> Result<bool> {
    let deleted = c
        .execute("DELETE FROM sessions WHERE hash = ?", [hash])
        .map_err(map_error)?;
    Ok(deleted > 0)
}

fn prune_access(c: &Connection, before: OffsetDateTime) -> Result<u64> {
    let mut pruned = 0;
    for table in ["sessions", "app_tokens"] {
        pruned += c
            .execute(
                &format!("DELETE FROM {table} WHERE expires_at < ?"),
                [ms(before)],
            )
            .map_err(map_error)?;
    }
    Ok(pruned as u64)
}

/// The column a token is looked up by.
const BY_HASH: &str = "hash";
const BY_ID: &str = "id";

#[async_trait]
impl AccessStore for SqliteStore {
    async fn create_app_token(&self, token: &AppTokenRecord) -> Result<()> {
        let token = token.clone();
        self.write(move |c| create_app_token(c, &token)).await
    }

    async fn find_app_token(&self, hash: &str) -> Result<Option<AppTokenRecord>> {
        let hash = hash.to_owned();
        self.read(move |c| find_app_token(c, BY_HASH, &hash)).await
    }

    async fn get_app_token(&self, id: &TokenId) -> Result<Option<AppTokenRecord>> {
        let id = id.clone();
        self.read(move |c| find_app_token(c, BY_ID, id.as_str()))
            .await
    }

    async fn expire_app_tokens(
        &self,
        app: &AppId,
        labels: &[String],
        at: OffsetDateTime,
    ) -> Result<u64> {
        let (app, labels) = (app.clone(), labels.to_vec());
        self.write(move |c| expire_app_tokens(c, &app, &labels, at))
            .await
    }

    async fn expire_app_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<bool> {
        let id = id.clone();
        self.write(move |c| expire_app_token(c, &id, at)).await
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<()> {
        let session = session.clone();
        self.write(move |c| create_session(c, &session)).await
    }

    async fn find_session(&self, hash: &str) -> Result<Option<SessionRecord>> {
        let hash = hash.to_owned();
        self.read(move |c| find_session(c, &hash)).await
    }

    async fn delete_session(&self, hash: &str) -> Result<bool> {
        let hash = hash.to_owned();
        self.write(move |c| delete_session(c, &hash)).await
    }

    async fn prune_access(&self, before: OffsetDateTime) -> Result<u64> {
        self.write(move |c| prune_access(c, before)).await
    }
}
