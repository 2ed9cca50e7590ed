//! `/api/v1/background-task/{id}`: the state of a background task such as `endpoint.recover`.
//!
//! A malformed id answers 404 like an unknown one: from the outside both are simply no task.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;
use webhookd_core::TaskId;
use webhookd_core::model::BackgroundTask;
use webhookd_core::time::serde_rfc3339;

use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Path;
use crate::wire::JsonBytes;

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/background-task/{id}", get(read))
}

/// `{"id", "status", "task", "updatedAt", "data"}`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BackgroundTaskOut {
    #[schema(value_type = String, example = "qtask_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E")]
    id: TaskId,
    #[schema(schema_with = crate::openapi::task_status)]
    status: &'static str,
    #[schema(example = "endpoint.recover")]
    task: String,
    #[serde(with = "serde_rfc3339")]
    updated_at: OffsetDateTime,
    /// What the task reports, e.g. `{"recovered": 3}`.
    #[schema(value_type = Object)]
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

#[utoipa::path(
    get,
    path = "/api/v1/background-task/{id}",
    operation_id = "v1.background-task.get",
    tag = "Background Task",
    params(("id" = String, Path, description = "The task's id")),
    responses(
        (status = 200, description = "The task", body = BackgroundTaskOut),
        (status = 404, description = "No such task", body = ErrorBody),
    )
)]
pub(crate) async fn read(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<JsonBytes> {
    let not_found = || ApiError::not_found("background task");
    let id: TaskId = id.parse().map_err(|_| not_found())?;
    let task = state.store().get_task(&id).await?.ok_or_else(not_found)?;
    JsonBytes::new(StatusCode::OK, &BackgroundTaskOut::from(task))
}
