//! Content erasure and the precheck, beside the messages themselves (`message`):
//!
//! - `DELETE /app/{app}/msg/{msg}/content`: erases one message's payload (204);
//! - `POST /app/{app}/msg/bulk-expunge` `{"ids": [...]}`: erases several (ids or `eventId`s),
//!   answering `{"results": {key: "expunged" | "not-found"}}`;
//! - `POST /app/{app}/msg/expunge-all-contents`: erases every payload of the application, as
//!   the background task `application.purge_content` (`data: {"messagesPurged": n}`);
//! - `DELETE /app/{app}/msg/{msg}/attempt/{id}/content`: erases one attempt's response body;
//! - `POST /app/{app}/msg/precheck/active` `{"eventType", "channels"?}`: `{"active": bool}`,
//!   whether any enabled endpoint would receive such a message.
//!
//! Erased content is overwritten in the database (see `webhookd_store::BulkStore`), and reads
//! back empty, never as an error: a payload as `{}`, a response body as `""`. An erased
//! message cannot be sent again: its pending deliveries are canceled, and replays skip it.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::delete;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use webhookd_core::MessageKey;
use webhookd_core::time::now;
use webhookd_core::{AttemptId, validate};
use webhookd_store::{Cursor, Order, PageRequest};

use crate::ApiState;
use crate::background_task::{TaskStartedOut, run_task};
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency::{self, IdempotencyKey};
use crate::wire::JsonBytes;

const PURGE_TASK: &str = "application.purge_content";
/// The most messages one bulk expunge names.
const MAX_BULK_EXPUNGE: usize = 1000;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/app/{app}/msg/{msg}/content", delete(expunge))
        .route(
            "/app/{app}/msg/bulk-expunge",
            idempotency::post(bulk_expunge),
        )
        .route(
            "/app/{app}/msg/expunge-all-contents",
            idempotency::post(expunge_all),
        )
        .route(
            "/app/{app}/msg/{msg}/attempt/{id}/content",
            delete(expunge_attempt),
        )
        .route(
            "/app/{app}/msg/precheck/active",
            idempotency::post(precheck),
        )
}

/// The messages to erase, by id or `eventId`.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct BulkExpungeIn {
    #[serde(default)]
    #[schema(max_items = 1000)]
    ids: Option<Vec<String>>,
}

/// What became of each message named, by the key it was named with.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct BulkExpungeOut {
    #[schema(value_type = Object, example = json!({"msg_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E": "expunged"}))]
    results: BTreeMap<String, &'static str>,
}

/// A message that would be posted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PrecheckIn {
    event_type: String,
    #[serde(default)]
    channels: Option<Vec<String>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PrecheckOut {
    /// Whether an enabled endpoint would receive it.
    active: bool,
}

#[utoipa::path(
    delete,
    path = "/api/v1/app/{app}/msg/{msg}/content",
    operation_id = "v1.message.expunge-content",
    tag = "Message",
    params(("app" = String, Path, description = "The application's id or uid"), ("msg" = String, Path, description = "The message's id or `eventId`")),
    responses(
        (status = 204, description = "Erased (also when it already was)"),
        (status = 404, description = "No such application or message", body = ErrorBody),
    )
)]
pub(crate) async fn expunge(
    State(state): State<ApiState>,
    Path((app, msg)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let app = state.application(&app).await?;
    let message = state
        .store()
        .get_message(&app.id, &MessageKey::parse(&msg))
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    state
        .store()
        .expunge_contents(&app.id, std::slice::from_ref(&message.id), now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/msg/bulk-expunge",
    operation_id = "v1.message.bulk-expunge-content",
    tag = "Message",
    params(("app" = String, Path, description = "The application's id or uid")),
    request_body = BulkExpungeIn,
    responses(
        (status = 200, description = "Each message named, expunged or not found", body = BulkExpungeOut),
        (status = 404, description = "No such application", body = ErrorBody),
        (status = 422, description = "More than 1,000 ids", body = ValidationErrorBody),
    )
)]
pub(crate) async fn bulk_expunge(
    State(state): State<ApiState>,
    Path(app): Path<String>,
    Json(input): Json<BulkExpungeIn>,
) -> ApiResult<JsonBytes> {
    let keys = input.ids.unwrap_or_default();
    if keys.len() > MAX_BULK_EXPUNGE {
        return Err(ApiError::invalid(
            &["body", "ids"],
            format!("must hold at most {MAX_BULK_EXPUNGE} ids"),
        ));
    }
    let app = state.application(&app).await?;
    let mut results = BTreeMap::new();
    let mut found = Vec::new();
    for key in keys {
        match state
            .store()
            .get_message(&app.id, &MessageKey::parse(&key))
            .await?
        {
            Some(message) => {
                found.push(message.id);
                results.insert(key, "expunged");
            }
            None => {
                results.insert(key, "not-found");
            }
        }
    }
    state
        .store()
        .expunge_contents(&app.id, &found, now())
        .await?;
    JsonBytes::new(StatusCode::OK, &BulkExpungeOut { results })
}

#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/msg/expunge-all-contents",
    operation_id = "v1.message.expunge-all-contents",
    tag = "Message",
    params(("app" = String, Path, description = "The application's id or uid")),
    responses(
        (status = 202, description = "Erased; the task (`data.messagesPurged`) is readable at `/api/v1/background-task/{id}`", body = TaskStartedOut),
        (status = 404, description = "No such application", body = ErrorBody),
    )
)]
pub(crate) async fn expunge_all(
    State(state): State<ApiState>,
    Path(app): Path<String>,
    idempotency: IdempotencyKey,
) -> ApiResult<JsonBytes> {
    let app = state.application(&app).await?;
    let store = state.store();
    run_task(
        &state,
        PURGE_TASK,
        &idempotency,
        async {
            let mut purged = 0;
            loop {
                let batch = store.expunge_app_contents(&app.id, now()).await?;
                if batch == 0 {
                    break;
                }
                purged += batch;
            }
            Ok(json!({ "messagesPurged": purged }))
        },
        |task| JsonBytes::new(StatusCode::ACCEPTED, &TaskStartedOut::from(task)),
    )
    .await
}

#[utoipa::path(
    delete,
    path = "/api/v1/app/{app}/msg/{msg}/attempt/{id}/content",
    operation_id = "v1.message-attempt.expunge-content",
    tag = "Message Attempt",
    params(
        ("app" = String, Path, description = "The application's id or uid"),
        ("msg" = String, Path, description = "The message's id or `eventId`"),
        ("id" = String, Path, description = "The attempt's id"),
    ),
    responses(
        (status = 204, description = "The response body is erased (also when it already was)"),
        (status = 404, description = "No such application, message or attempt", body = ErrorBody),
    )
)]
pub(crate) async fn expunge_attempt(
    State(state): State<ApiState>,
    Path((app, msg, id)): Path<(String, String, String)>,
) -> ApiResult<StatusCode> {
    let not_found = || ApiError::not_found("attempt");
    let id = AttemptId::from_str(&id).map_err(|_| not_found())?;
    let app = state.application(&app).await?;
    let message = state
        .store()
        .get_message(&app.id, &MessageKey::parse(&msg))
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    if !state
        .store()
        .expunge_attempt_content(&app.id, &message.id, &id)
        .await?
    {
        return Err(not_found());
    }
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/msg/precheck/active",
    operation_id = "v1.message.precheck",
    tag = "Message",
    params(("app" = String, Path, description = "The application's id or uid")),
    request_body = PrecheckIn,
    responses(
        (status = 200, description = "Whether an enabled endpoint would receive the message", body = PrecheckOut),
        (status = 404, description = "No such application", body = ErrorBody),
        (status = 422, description = "The event type or a channel is not a valid name", body = ValidationErrorBody),
    )
)]
pub(crate) async fn precheck(
    State(state): State<ApiState>,
    Path(app): Path<String>,
    Json(input): Json<PrecheckIn>,
) -> ApiResult<JsonBytes> {
    validate::name(&input.event_type)
        .map_err(|msg| ApiError::invalid(&["body", "eventType"], msg))?;
    let channels = input.channels.unwrap_or_default();
    for (index, channel) in channels.iter().enumerate() {
        validate::name(channel)
            .map_err(|msg| ApiError::invalid(&["body", "channels", &index.to_string()], msg))?;
    }
    let app = state.application(&app).await?;
    let mut page = PageRequest {
        limit: 250,
        cursor: None,
        order: Order::Ascending,
    };
    let active = loop {
        let endpoints = state.store().list_endpoints(&app.id, &page).await?;
        if endpoints
            .items
            .iter()
            .any(|endpoint| endpoint.accepts(&input.event_type, &channels))
        {
            break true;
        }
        match (endpoints.done, endpoints.items.last()) {
            (false, Some(last)) => {
                page.cursor = Some(Cursor {
                    key: last.id.to_string(),
                    backward: false,
                });
            }
            _ => break false,
        }
    };
    JsonBytes::new(StatusCode::OK, &PrecheckOut { active })
}
