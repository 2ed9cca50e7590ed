//! `…/endpoint/{ep}/recover` and `…/endpoint/{ep}/stats`: re-queue what failed, and count
//! the endpoint's deliveries by status.
//!
//! Recovery runs within the request: it is one store update, however many deliveries it
//! touches. It is still recorded as a background task (`endpoint.recover`, readable at
//! `/api/v1/background-task/{id}` with `data: {"recovered": n}`) because that is the shape the
//! SDKs expect, and the 202 reports the task's state when the answer is made: `finished`.
//!
//! The idempotency record is written with the task's final state, so a repeated request
//! replays exactly the first answer. If the process stops between the recovery and that write,
//! a retry recovers again, which is harmless: deliveries already pending are not touched.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use webhookd_core::TaskId;
use webhookd_core::model::{BackgroundTask, EndpointStats};
use webhookd_core::time::{now, serde_rfc3339};

use super::locate;
use crate::ApiState;
use crate::background_task::run_task;
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency::{self, IdempotencyKey};
use crate::poller::refuse_polling;
use crate::query::Query;
use crate::wire::JsonBytes;

/// The kind of the task a recovery records.
const RECOVER_TASK: &str = "endpoint.recover";

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route(
            "/app/{app}/endpoint/{ep}/recover",
            idempotency::post(recover),
        )
        .route("/app/{app}/endpoint/{ep}/stats", get(stats))
}

/// The window of deliveries to recover, by creation time.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct RecoverIn {
    #[serde(with = "serde_rfc3339")]
    since: OffsetDateTime,
    /// Now when absent.
    #[serde(default, with = "serde_rfc3339::option")]
    until: Option<OffsetDateTime>,
}

/// The background task that recorded the recovery.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecoverOut {
    #[schema(value_type = String, example = "qtask_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E")]
    id: TaskId,
    #[schema(schema_with = crate::schema::task_status)]
    status: &'static str,
    #[schema(example = "endpoint.recover")]
    task: String,
    #[serde(with = "serde_rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<&BackgroundTask> for RecoverOut {
    fn from(task: &BackgroundTask) -> Self {
        Self {
            id: task.id.clone(),
            status: task.status.text(),
            task: task.kind.clone(),
            updated_at: task.updated_at,
        }
    }
}

/// The endpoint's deliveries counted by status.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatsOut {
    success: u64,
    pending: u64,
    sending: u64,
    fail: u64,
    canceled: u64,
}

impl From<EndpointStats> for StatsOut {
    fn from(stats: EndpointStats) -> Self {
        Self {
            success: stats.success,
            pending: stats.pending,
            sending: stats.sending,
            fail: stats.fail,
            canceled: stats.canceled,
        }
    }
}

/// Makes every failed or canceled delivery created in `[since, until]` pending again.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/endpoint/{ep}/recover",
    operation_id = "v1.endpoint.recover",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    request_body = RecoverIn,
    responses(
        (status = 202, description = "Recovered; the task is readable at `/api/v1/background-task/{id}`", body = RecoverOut),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn recover(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    idempotency: IdempotencyKey,
    Json(input): Json<RecoverIn>,
) -> ApiResult<JsonBytes> {
    let (_, endpoint) = locate(&state, &app, &ep).await?;
    refuse_polling(&endpoint, "recover")?;
    let started = now();
    let until = input.until.unwrap_or(started);
    if input.since >= until {
        return Err(ApiError::invalid(
            &["body", "since"],
            "must be before `until` (or now, when `until` is absent)",
        ));
    }
    let store = state.store();
    let response = run_task(
        &state,
        RECOVER_TASK,
        &idempotency,
        async {
            let recovered = store
                .recover(&endpoint.id, input.since, until, started)
                .await?;
            Ok(json!({ "recovered": recovered }))
        },
        |task| JsonBytes::new(StatusCode::ACCEPTED, &RecoverOut::from(task)),
    )
    .await?;
    state.dispatcher().wake();
    Ok(response)
}

/// The window of the endpoint's counts: deliveries of messages created in `[since, until]`;
/// either bound may be left out.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct StatsQuery {
    /// Count only deliveries created at or after this time (RFC 3339).
    #[serde(default, deserialize_with = "serde_rfc3339::option::deserialize")]
    pub(crate) since: Option<OffsetDateTime>,
    /// Count only deliveries created at or before this time (RFC 3339).
    #[serde(default, deserialize_with = "serde_rfc3339::option::deserialize")]
    pub(crate) until: Option<OffsetDateTime>,
}

impl StatsQuery {
    /// The window, checked: `since` after `until` is a 422 rather than an empty count.
    pub(crate) fn window(&self) -> ApiResult<(Option<OffsetDateTime>, Option<OffsetDateTime>)> {
        if let (Some(since), Some(until)) = (self.since, self.until)
            && since > until
        {
            return Err(ApiError::invalid(
                &["query", "since"],
                "must not be after `until`",
            ));
        }
        Ok((self.since, self.until))
    }
}

/// Counts of the endpoint's deliveries by status, of messages created in the window the query
/// gives (all the endpoint's deliveries the store holds, which retention bounds, without one).
#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/endpoint/{ep}/stats",
    operation_id = "v1.endpoint.get-stats",
    tag = "Endpoint",
    params(
        ("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid"),
        StatsQuery,
    ),
    responses(
        (status = 200, description = "Counts of the endpoint's deliveries by status", body = StatsOut),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
        (status = 422, description = "`since` or `until` is not a timestamp, or `since` is after `until`", body = ValidationErrorBody),
    )
)]
pub(crate) async fn stats(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    Query(query): Query<StatsQuery>,
) -> ApiResult<JsonBytes> {
    let (since, until) = query.window()?;
    let (_, endpoint) = locate(&state, &app, &ep).await?;
    let stats = state
        .store()
        .endpoint_stats(&endpoint.id, since, until)
        .await?;
    JsonBytes::new(StatusCode::OK, &StatsOut::from(stats))
}
