//! `/api/v1/background-task/{id}`: the state of a background task such as `endpoint.recover`,
//! and [`run_task`], which every route that starts one uses.
//!
//! A malformed id answers 404 like an unknown one: from the outside both are simply no task.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use std::future::Future;

use serde::Serialize;
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;
use webhookd_core::TaskId;
use webhookd_core::model::{BackgroundTask, TaskStatus};
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_store::StoreError;

use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::Path;
use crate::idempotency::IdempotencyKey;
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
    #[schema(schema_with = crate::schema::task_status)]
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

/// `{"id", "status", "task", "updatedAt"}`: the answer of a route that runs a background task.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TaskStartedOut {
    #[schema(value_type = String, example = "qtask_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E")]
    id: TaskId,
    #[schema(schema_with = crate::schema::task_status)]
    status: &'static str,
    #[schema(example = "endpoint.replay")]
    task: String,
    #[serde(with = "serde_rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<&BackgroundTask> for TaskStartedOut {
    fn from(task: &BackgroundTask) -> Self {
        Self {
            id: task.id.clone(),
            status: task.status.text(),
            task: task.kind.clone(),
            updated_at: task.updated_at,
        }
    }
}

/// What a failed task says of its error: never the store's internals.
pub(crate) fn task_error(error: &StoreError) -> &'static str {
    match error {
        StoreError::Unavailable(_) => "the store was unavailable; try again",
        _ => "internal error; see the server log",
    }
}

/// Runs `work` as the background task `kind`: the task is recorded as running, then as
/// finished with the data `work` reports (or failed, and the error answered). The work runs
/// within the request, so the answer `answer` makes of the task reports it finished; the
/// idempotency record is written with the task's final state, so a repeat replays the answer.
pub(crate) async fn run_task<W, A>(
    state: &ApiState,
    kind: &str,
    idempotency: &IdempotencyKey,
    work: W,
    answer: A,
) -> ApiResult<JsonBytes>
where
    W: Future<Output = Result<Value, StoreError>>,
    A: FnOnce(&BackgroundTask) -> ApiResult<JsonBytes>,
{
    let mut task = BackgroundTask {
        id: TaskId::new(),
        kind: kind.to_owned(),
        status: TaskStatus::Running,
        data: json!({}),
        updated_at: now(),
    };
    state.store().put_task(&task, None).await?;
    let outcome = work.await;
    task.updated_at = now();
    match outcome {
        Ok(data) => {
            task.status = TaskStatus::Finished;
            task.data = data;
        }
        Err(error) => {
            task.status = TaskStatus::Failed;
            task.data = json!({ "error": task_error(&error) });
            // Best effort, so that the task does not read as running forever; the client
            // learns of the failure from the error answer either way.
            if let Err(put_error) = state.store().put_task(&task, None).await {
                tracing::warn!(error = %put_error, task = %task.id, "could not mark a task failed");
            }
            return Err(error.into());
        }
    }
    let response = answer(&task)?;
    state
        .store()
        .put_task(&task, idempotency.record(&response).as_ref())
        .await?;
    Ok(response.recorded())
}
