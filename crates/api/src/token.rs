//! `/api/v1/auth/token`: the operator's API tokens, managed on a running node (a leaked token is
//! revoked without downtime, on SQLite too, where the data directory belongs to the server).
//!
//! - `GET` lists them in the list shape, all on one page: `id`, `name`, `createdAt`, never the
//!   token itself (only its SHA-256 is stored).
//! - `POST {"name"}` creates one and answers 201 with the token, shown this once. The answer is
//!   never saved for an `idempotency-key` replay, since that would store the token; a repeat
//!   with the same name is a 409 instead.
//! - `DELETE /{id}` revokes one at once (204; 404 when unknown): tokens are looked up on every
//!   request.
//!
//! Creating the first token ends local mode on this node at once (and on the others within
//! seconds, see `auth::watch_tokens`).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::ToSchema;
use webhookd_core::TokenId;
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_store::ApiTokenRecord;

use crate::ApiState;
use crate::auth::{check_token_name, generate_token, hash_token};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency;
use crate::wire::{JsonBytes, ListResponse};

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/auth/token", get(list).merge(idempotency::post(create)))
        .route("/auth/token/{id}", delete(revoke))
}

/// The body of a create.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ApiTokenIn {
    /// A name to recognise the token by; unique, 1 to 256 characters.
    #[schema(min_length = 1, max_length = 256)]
    name: String,
}

/// A stored token: never the token itself.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiTokenOut {
    #[schema(value_type = String, example = "tok_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E")]
    id: TokenId,
    name: String,
    #[serde(with = "serde_rfc3339")]
    created_at: OffsetDateTime,
}

impl From<ApiTokenRecord> for ApiTokenOut {
    fn from(record: ApiTokenRecord) -> Self {
        Self {
            id: record.id,
            name: record.name,
            created_at: record.created_at,
        }
    }
}

/// A token just created, with the token itself, shown this once.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiTokenCreatedOut {
    #[serde(flatten)]
    token_record: ApiTokenOut,
    /// The bearer token; only its hash is kept.
    #[schema(example = "whk_…")]
    token: String,
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/token",
    operation_id = "v1.auth.token.list",
    tag = "Authentication",
    responses(
        (status = 200, description = "Every stored API token (one page)", body = ListResponse<ApiTokenOut>),
    )
)]
pub(crate) async fn list(State(state): State<ApiState>) -> ApiResult<JsonBytes> {
    let tokens = state.store().list_tokens().await?;
    let list = ListResponse {
        data: tokens.into_iter().map(ApiTokenOut::from).collect(),
        iterator: None,
        prev_iterator: None,
        done: true,
    };
    JsonBytes::new(StatusCode::OK, &list)
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/token",
    operation_id = "v1.auth.token.create",
    tag = "Authentication",
    request_body = ApiTokenIn,
    responses(
        (status = 201, description = "Created; the token is shown only in this answer", body = ApiTokenCreatedOut),
        (status = 409, description = "A token has this name", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    Json(input): Json<ApiTokenIn>,
) -> ApiResult<JsonBytes> {
    check_token_name(&input.name).map_err(|msg| ApiError::invalid(&["body", "name"], msg))?;
    let token = generate_token();
    let record = ApiTokenRecord {
        id: TokenId::new(),
        name: input.name,
        hash: hex::encode(hash_token(&token)),
        created_at: now(),
    };
    state.store().create_token(&record).await?;
    state.require_tokens();
    tracing::info!(token_id = %record.id, name = %record.name, "API token created");
    let created = ApiTokenCreatedOut {
        token_record: ApiTokenOut::from(record),
        token,
    };
    // Marked as recorded so that no idempotency record (which would hold the token) is saved.
    Ok(JsonBytes::new(StatusCode::CREATED, &created)?.recorded())
}

#[utoipa::path(
    delete,
    path = "/api/v1/auth/token/{id}",
    operation_id = "v1.auth.token.delete",
    tag = "Authentication",
    params(("id" = String, Path, description = "The token's id (`tok_…`)")),
    responses(
        (status = 204, description = "Revoked: the token stops working at once"),
        (status = 404, description = "No such token", body = ErrorBody),
    )
)]
pub(crate) async fn revoke(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let not_found = || ApiError::not_found("token");
    let id: TokenId = id.parse().map_err(|_| not_found())?;
    let known = state
        .store()
        .list_tokens()
        .await?
        .iter()
        .any(|token| token.id == id);
    if !known || !state.store().revoke_token(id.as_str()).await? {
        return Err(not_found());
    }
    tracing::info!(token_id = %id, "API token revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}
