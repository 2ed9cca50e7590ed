//! The records of app-scoped access: tokens made for one application (`appsk_…`, Svix's app
//! portal tokens) and the browser sessions opened with a token. Only hashes of the secrets are
//! stored.

use async_trait::async_trait;
use time::OffsetDateTime;
use webhookd_core::access::Capability;
use webhookd_core::{AppId, TokenId};

use crate::Result;

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
