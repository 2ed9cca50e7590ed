//! App-scoped tokens and browser sessions on PostgreSQL.

use async_trait::async_trait;
use time::OffsetDateTime;
use tokio_postgres::Row;
use webhookd_core::access;
use webhookd_core::time::from_unix_ms;
use webhookd_core::{AppId, TokenId};

use super::PostgresStore;
use super::rows::{get, ms};
use super::sql::{execute, query_opt};
use crate::access::{APP_TOKEN_COLUMNS, SESSION_COLUMNS};
use crate::{AccessStore, AppTokenRecord, Result, SessionRecord, SessionSubject};

fn app_token(row: &Row) -> Result<AppTokenRecord> {
    Ok(AppTokenRecord {
        id: TokenId::from_trusted(get(row, 0)?),
        hash: get(row, 1)?,
        app_id: AppId::from_trusted(get(row, 2)?),
        capabilities: access::split(get(row, 3)?),
        session_label: get(row, 4)?,
        created_at: from_unix_ms(get(row, 5)?),
        expires_at: from_unix_ms(get(row, 6)?),
    })
}

impl PostgresStore {
    async fn app_token_by(
        &self,
        column: &'static str,
        key: &str,
    ) -> Result<Option<AppTokenRecord>> {
        let row = query_opt(
            &self.client().await?,
            &format!("SELECT {APP_TOKEN_COLUMNS} FROM app_tokens WHERE {column} = $1"),
            &[&key],
        )
        .await?;
        row.as_ref().map(app_token).transpose()
    }
}

#[async_trait]
impl AccessStore for PostgresStore {
    async fn create_app_token(&self, token: &AppTokenRecord) -> Result<()> {
        execute(
            &self.client().await?,
            &format!(
                "INSERT INTO app_tokens ({APP_TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            &[
                &token.id.as_str(),
                &token.hash,
                &token.app_id.as_str(),
                &access::join(&token.capabilities),
                &token.session_label,
                &ms(token.created_at),
                &ms(token.expires_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn find_app_token(&self, hash: &str) -> Result<Option<AppTokenRecord>> {
        self.app_token_by("hash", hash).await
    }

    async fn get_app_token(&self, id: &TokenId) -> Result<Option<AppTokenRecord>> {
        self.app_token_by("id", id.as_str()).await
    }

    async fn expire_app_tokens(
        &self,
        app: &AppId,
        labels: &[String],
        at: OffsetDateTime,
    ) -> Result<u64> {
        let client = self.client().await?;
        if labels.is_empty() {
            execute(
                &client,
                "UPDATE app_tokens SET expires_at = $2 WHERE app_id = $1 AND expires_at > $2",
                &[&app.as_str(), &ms(at)],
            )
            .await
        } else {
            execute(
                &client,
                "UPDATE app_tokens SET expires_at = $3 \
                 WHERE app_id = $1 AND session_label = ANY($2) AND expires_at > $3",
                &[&app.as_str(), &labels, &ms(at)],
            )
            .await
        }
    }

    async fn expire_app_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<bool> {
        // One statement: the token is found whether or not its expiry had to move.
        let row = query_opt(
            &self.client().await?,
            "WITH found AS (SELECT id FROM app_tokens WHERE id = $1), \
             moved AS (UPDATE app_tokens SET expires_at = $2 WHERE id = $1 AND expires_at > $2) \
             SELECT 1 FROM found",
            &[&id.as_str(), &ms(at)],
        )
        .await?;
        Ok(row.is_some())
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<()> {
        let (operator_token_hash, app_token_id) = session.subject.columns();
        execute(
            &self.client().await?,
            &format!("INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"),
            &[
                &session.hash,
                &operator_token_hash,
                &app_token_id,
                &ms(session.created_at),
                &ms(session.expires_at),
            ],
        )
        .await?;
        Ok(())
    }

    async fn find_session(&self, hash: &str) -> Result<Option<SessionRecord>> {
        let row = query_opt(
            &self.client().await?,
            &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE hash = $1"),
            &[&hash],
        )
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionRecord {
            hash: get(&row, 0)?,
            subject: SessionSubject::from_columns(get(&row, 1)?, get(&row, 2)?)?,
            created_at: from_unix_ms(get(&row, 3)?),
            expires_at: from_unix_ms(get(&row, 4)?),
        }))
    }

    async fn delete_session(&self, hash: &str) -> Result<bool> {
        let deleted = execute(
            &self.client().await?,
            "DELETE FROM sessions WHERE hash = $1",
            &[&hash],
        )
        .await?;
        Ok(deleted > 0)
    }

    async fn prune_access(&self, before: OffsetDateTime) -> Result<u64> {
        let client = self.client().await?;
        let mut pruned = 0;
        for table in ["sessions", "app_tokens"] {
            pruned += execute(
                &client,
                &format!("DELETE FROM {table} WHERE expires_at < $1"),
                &[&ms(before)],
            )
            .await?;
        }
        Ok(pruned)
    }
}
