//! `/api/v1/background-task/{id}`: the state of a background task such as `endpoint.recover`.
//!
//! A malformed id answers 404 like an unknown one: from the outside both are simply no task.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use webhookd_core::TaskId;
use webhookd_core::model::BackgroundTask;
use webhookd_core::time::serde_rfc3339;

use crate::ApiState;
use crate::error::{ApiError, ApiResult};
use crate::wire::JsonBytes;

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/background-task/{id}", get(read))
}

/// `{"id", "status", "task", "updatedAt", "data"}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BackgroundTaskOut {
    id: TaskId,
    status: &'static str,
    task: String,
    #[serde(with = "serde_rfc3339")]
    updated_at: OffsetDateTime,
    data: Value,
}

impl From<BackgroundTask> for BackgroundTaskOut {
    fn from(task: BackgroundTask) -> Self {
        Self {
            id: task.id,
            status: task.status.text(),
            task: task.kind,
            updated_at: task.updated_at,
            data: task.data,
        }
    }
}

async fn read(State(state): State<ApiState>, Path(id): Path<String>) -> ApiResult<JsonBytes> {
    let not_found = || ApiError::not_found("background task");
    let id: TaskId = id.parse().map_err(|_| not_found())?;
    let task = state.store().get_task(&id).await?.ok_or_else(not_found)?;
    JsonBytes::new(StatusCode::OK, &BackgroundTaskOut::from(task))
}
