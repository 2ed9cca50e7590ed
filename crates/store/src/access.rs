//! The records of app-scoped access: tokens made for one application (`appsk_…`, Svix's app
//! portal tokens) and the browser sessions opened with a token. Only hashes of the secrets are
//! stored.

use async_trait::async_trait;
use time::OffsetDateTime;
use webhookd_core::access::{self, Capability};
use webhookd_core::{AppId, TokenId};

use crate::Result;
use crate::backend::{Backend, run};
use crate::db::{Db, Row, params};

/// A token that works for one application, with some capabilities, until it expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppTokenRecord {
    pub id: TokenId,
    /// The hex SHA-256 of the token.
    pub hash: String,
    pub app_id: AppId,
    pub capabilities: Vec<Capability>,
    /// Svix's `sessionId`: a label given by the operator, so that `expire-all` can expire the
    /// tokens of one of their users' sessions.
    pub session_label: Option<String>,
    pub created_at: OffsetDateTime,
    /// Expiring or revoking a token brings this forward; it never moves later.
    pub expires_at: OffsetDateTime,
}

/// What a session was opened with: it has that token's scope, and ends when the token does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionSubject {
    /// An operator's API token, by its hex SHA-256.
    Operator { token_hash: String },
    /// An app-scoped token, by its id.
    App { token_id: TokenId },
}

/// A browser session: the cookie holds a random id, the store its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The hex SHA-256 of the session id.
    pub hash: String,
    pub subject: SessionSubject,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// The storage of app-scoped tokens and sessions, a part of [`crate::Store`]. Every method is
/// one transaction.
#[async_trait]
pub trait AccessStore: Send + Sync {
    /// Conflict when the hash is taken.
    async fn create_app_token(&self, token: &AppTokenRecord) -> Result<()>;
    /// By hash, expired or not: the caller compares the expiry with its clock.
    async fn find_app_token(&self, hash: &str) -> Result<Option<AppTokenRecord>>;
    async fn get_app_token(&self, id: &TokenId) -> Result<Option<AppTokenRecord>>;
    /// Brings the expiry of the application's tokens forward to `at` (a token that expires
    /// sooner keeps its expiry). With `labels`, only the tokens carrying one of them. Returns
    /// how many tokens changed.
    async fn expire_app_tokens(
        &self,
        app: &AppId,
        labels: &[String],
        at: OffsetDateTime,
    ) -> Result<u64>;
    /// Brings one token's expiry forward to `at`. False when absent.
    async fn expire_app_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<bool>;
    async fn create_session(&self, session: &SessionRecord) -> Result<()>;
    /// By hash, expired or not.
    async fn find_session(&self, hash: &str) -> Result<Option<SessionRecord>>;
    /// False when absent.
    async fn delete_session(&self, hash: &str) -> Result<bool>;
    /// Deletes the sessions and app tokens that expired before `before`. Returns how many.
    async fn prune_access(&self, before: OffsetDateTime) -> Result<u64>;
}

/// The columns of `app_tokens`, in the order both backends read them.
pub(crate) const APP_TOKEN_COLUMNS: &str =
    "id, hash, app_id, capabilities, session_label, created_at, expires_at";

/// The columns of `sessions`, in the order both backends read them.
pub(crate) const SESSION_COLUMNS: &str =
    "hash, operator_token_hash, app_token_id, created_at, expires_at";

impl SessionSubject {
    /// The two columns that hold the subject: `(operator_token_hash, app_token_id)`, one set.
    pub(crate) fn columns(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Self::Operator { token_hash } => (Some(token_hash), None),
            Self::App { token_id } => (None, Some(token_id.as_str())),
        }
    }

    /// Reads back what [`SessionSubject::columns`] wrote.
    pub(crate) fn from_columns(
        operator_token_hash: Option<String>,
        app_token_id: Option<String>,
    ) -> Result<Self> {
        match (operator_token_hash, app_token_id) {
            (Some(token_hash), None) => Ok(Self::Operator { token_hash }),
            (None, Some(id)) => Ok(Self::App {
                token_id: TokenId::from_trusted(id),
            }),
            _ => Err(crate::StoreError::Internal(
                "a session row names no token, or two".into(),
            )),
        }
    }
}

fn app_token(row: &Row<'_>) -> Result<AppTokenRecord> {
    Ok(AppTokenRecord {
        id: TokenId::from_trusted(row.get(0)?),
        hash: row.get(1)?,
        app_id: AppId::from_trusted(row.get(2)?),
        capabilities: access::split(row.get(3)?),
        session_label: row.get(4)?,
        created_at: row.get(5)?,
        expires_at: row.get(6)?,
    })
}

/// The token whose `column` (`hash` or `id`) is `key`.
async fn app_token_by(
    db: &mut Db<'_>,
    column: &'static str,
    key: &str,
) -> Result<Option<AppTokenRecord>> {
    let sql = format!("SELECT {APP_TOKEN_COLUMNS} FROM app_tokens WHERE {column} = $1");
    db.query_opt(&sql, &params![key], app_token).await
}

#[async_trait]
impl<B: Backend> AccessStore for B {
    async fn create_app_token(&self, token: &AppTokenRecord) -> Result<()> {
        let token = token.clone();
        run!(self, Write, |db| {
            let capabilities = access::join(&token.capabilities);
            db.execute(
                const_format::formatcp!(
                    "INSERT INTO app_tokens ({APP_TOKEN_COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)"
                ),
                &params![
                    token.id.as_str(),
                    &token.hash,
                    token.app_id.as_str(),
                    &capabilities,
                    &token.session_label,
                    token.created_at,
                    token.expires_at,
                ],
            )
            .await
            .map(drop)
        })
        .await
    }

    async fn find_app_token(&self, hash: &str) -> Result<Option<AppTokenRecord>> {
        let hash = hash.to_owned();
        run!(self, Read, |db| app_token_by(db, "hash", &hash).await).await
    }

    async fn get_app_token(&self, id: &TokenId) -> Result<Option<AppTokenRecord>> {
        let id = id.clone();
        run!(self, Read, |db| app_token_by(db, "id", id.as_str()).await).await
    }

    async fn expire_app_tokens(
        &self,
        app: &AppId,
        labels: &[String],
        at: OffsetDateTime,
    ) -> Result<u64> {
        let (app, labels) = (app.clone(), labels.to_vec());
        run!(self, Write, |db| {
            if labels.is_empty() {
                db.execute(
                    "UPDATE app_tokens SET expires_at = $2 WHERE app_id = $1 AND expires_at > $2",
                    &params![app.as_str(), at],
                )
                .await
            } else {
                let sql = format!(
                    "UPDATE app_tokens SET expires_at = $3 \
                     WHERE app_id = $1 AND {} AND expires_at > $3",
                    db.any_of("session_label", "$2")
                );
                db.execute(&sql, &params![app.as_str(), &labels, at]).await
            }
        })
        .await
    }

    async fn expire_app_token(&self, id: &TokenId, at: OffsetDateTime) -> Result<bool> {
        let id = id.clone();
        run!(self, Transaction, |db| {
            // The token is found whether or not its expiry had to move.
            let found = app_token_by(db, "id", id.as_str()).await?.is_some();
            db.execute(
                "UPDATE app_tokens SET expires_at = $2 WHERE id = $1 AND expires_at > $2",
                &params![id.as_str(), at],
            )
            .await?;
            Ok(found)
        })
        .await
    }

    async fn create_session(&self, session: &SessionRecord) -> Result<()> {
        let session = session.clone();
        run!(self, Write, |db| {
            let (operator_token_hash, app_token_id) = session.subject.columns();
            db.execute(
                const_format::formatcp!(
                    "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES ($1, $2, $3, $4, $5)"
                ),
                &params![
                    &session.hash,
                    operator_token_hash,
                    app_token_id,
                    session.created_at,
                    session.expires_at,
                ],
            )
            .await
            .map(drop)
        })
        .await
    }

    async fn find_session(&self, hash: &str) -> Result<Option<SessionRecord>> {
        let hash = hash.to_owned();
        run!(self, Read, |db| {
            db.query_opt(
                const_format::formatcp!("SELECT {SESSION_COLUMNS} FROM sessions WHERE hash = $1"),
                &params![&hash],
                |row| {
                    Ok(SessionRecord {
                        hash: row.get(0)?,
                        subject: SessionSubject::from_columns(row.get(1)?, row.get(2)?)?,
                        created_at: row.get(3)?,
                        expires_at: row.get(4)?,
                    })
                },
            )
            .await
        })
        .await
    }

    async fn delete_session(&self, hash: &str) -> Result<bool> {
        let hash = hash.to_owned();
        run!(self, Write, |db| {
            let deleted = db
                .execute("DELETE FROM sessions WHERE hash = $1", &params![&hash])
                .await?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn prune_access(&self, before: OffsetDateTime) -> Result<u64> {
        run!(self, Write, |db| {
            let mut pruned = 0;
            for table in ["sessions", "app_tokens"] {
                let sql = format!("DELETE FROM {table} WHERE expires_at < $1");
                pruned += db.execute(&sql, &params![before]).await?;
            }
            Ok(pruned)
        })
        .await
    }
}
