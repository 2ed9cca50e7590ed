//! `…/endpoint/{ep}/replay-missing`, `…/bulk-replay`, `…/send-example` and `…/attempt-stats`:
//! sending an endpoint what it missed, again what it already got, or an example.
//!
//! - `replay-missing` creates a delivery for every message since `since` (until `until`) that
//!   the endpoint's filters accept and that has no delivery to it at all — sent before it
//!   existed or while it was disabled. Delivered and failed messages are left alone: failures
//!   are `recover`'s job. Task `endpoint.replay`, data `{"messagesSent": n}`.
//! - `bulk-replay` sends again every finished delivery (success, fail or canceled) matching its
//!   filters: event types, channel, tag, the delivery's status, and a response status class
//!   one of its attempts got. Task `endpoint.bulk-replay`, data `{"messagesSent": n}`.
//! - `send-example` posts the event type's schema example (`exampleIndex`, the first by
//!   default) to this endpoint alone, as a message of the application; a 422 names the event
//!   type when its schemas hold no example.
//!
//! Replays run within the request, as recovery does (see `background_task::run_task`), and
//! wake the engine; messages whose content was expunged cannot be sent again and are skipped.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;
use webhookd_core::MessageId;
use webhookd_core::model::{DeliveryStatus, Message};
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_store::ReplayFilter;

use super::locate;
use super::recover::StatsQuery;
use crate::ApiState;
use crate::background_task::{TaskStartedOut, run_task};
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency::{self, IdempotencyKey};
use crate::message_out::MessageOut;
use crate::poller::refuse_polling;
use crate::query::Query;
use crate::wire::JsonBytes;

const REPLAY_TASK: &str = "endpoint.replay";
const BULK_REPLAY_TASK: &str = "endpoint.bulk-replay";

pub(super) fn router() -> Router<ApiState> {
    Router::new()
        .route(
            "/app/{app}/endpoint/{ep}/replay-missing",
            idempotency::post(replay_missing),
        )
        .route(
            "/app/{app}/endpoint/{ep}/bulk-replay",
            idempotency::post(bulk_replay),
        )
        .route(
            "/app/{app}/endpoint/{ep}/send-example",
            idempotency::post(send_example),
        )
        .route("/app/{app}/endpoint/{ep}/attempt-stats", get(attempt_stats))
}

/// The window of messages to replay, by creation time.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ReplayIn {
    #[serde(with = "serde_rfc3339")]
    since: OffsetDateTime,
    /// Now when absent.
    #[serde(default, with = "serde_rfc3339::option")]
    until: Option<OffsetDateTime>,
}

/// The window and the filters of a bulk replay; every filter given must hold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BulkReplayIn {
    #[serde(with = "serde_rfc3339")]
    since: OffsetDateTime,
    /// Now when absent.
    #[serde(default, with = "serde_rfc3339::option")]
    until: Option<OffsetDateTime>,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    tag: Option<String>,
    /// The delivery's status: 0 success, 2 fail, 4 canceled (pending ones are not replayed).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 4)]
    status: Option<i64>,
    /// One of the delivery's attempts got a response of this class: 0 (none), 100 … 500.
    #[serde(default)]
    status_code_class: Option<u16>,
}

/// Which example of which event type to send.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventExampleIn {
    event_type: String,
    /// Which of the schema's `examples` to send: 0 (the first) by default.
    #[serde(default)]
    #[schema(minimum = 0)]
    example_index: Option<usize>,
    /// A payload to send instead of the schema's example.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    payload: Option<Map<String, Value>>,
}

/// Finished deliveries of the endpoint by status.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AttemptStatsOut {
    success: u64,
    fail: u64,
    canceled: u64,
}

/// `since` before `until` (now when absent); returns `until`.
fn window(since: OffsetDateTime, until: Option<OffsetDateTime>) -> ApiResult<OffsetDateTime> {
    let until = until.unwrap_or_else(now);
    if since >= until {
        return Err(ApiError::invalid(
            &["body", "since"],
            "must be before `until` (or now, when `until` is absent)",
        ));
    }
    Ok(until)
}

#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/endpoint/{ep}/replay-missing",
    operation_id = "v1.endpoint.replay-missing",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    request_body = ReplayIn,
    responses(
        (status = 202, description = "Replayed; the task (`data.messagesSent`) is readable at `/api/v1/background-task/{id}`", body = TaskStartedOut),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
        (status = 422, description = "`since` is not before `until`", body = ValidationErrorBody),
    )
)]
pub(crate) async fn replay_missing(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    idempotency: IdempotencyKey,
    Json(input): Json<ReplayIn>,
) -> ApiResult<JsonBytes> {
    let until = window(input.since, input.until)?;
    let (_, endpoint) = locate(&state, &app, &ep).await?;
    refuse_polling(&endpoint, "replay-missing")?;
    let store = state.store();
    let response = run_task(
        &state,
        REPLAY_TASK,
        &idempotency,
        async {
            let sent = store
                .replay_missing(&endpoint, input.since, until, now())
                .await?;
            Ok(json!({ "messagesSent": sent }))
        },
        |task| JsonBytes::new(StatusCode::ACCEPTED, &TaskStartedOut::from(task)),
    )
    .await?;
    state.dispatcher().wake();
    Ok(response)
}

#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/endpoint/{ep}/bulk-replay",
    operation_id = "v1.endpoint.bulk-replay",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    request_body = BulkReplayIn,
    responses(
        (status = 202, description = "Replayed; the task (`data.messagesSent`) is readable at `/api/v1/background-task/{id}`", body = TaskStartedOut),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
        (status = 422, description = "A filter is wrong, or `since` is not before `until`", body = ValidationErrorBody),
    )
)]
pub(crate) async fn bulk_replay(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    idempotency: IdempotencyKey,
    Json(input): Json<BulkReplayIn>,
) -> ApiResult<JsonBytes> {
    let until = window(input.since, input.until)?;
    let status = input
        .status
        .map(|code| {
            DeliveryStatus::from_code(code)
                .ok_or_else(|| ApiError::invalid(&["body", "status"], "must be 0, 1, 2, 3 or 4"))
        })
        .transpose()?;
    if let Some(class) = input.status_code_class
        && !matches!(class, 0 | 100 | 200 | 300 | 400 | 500)
    {
        return Err(ApiError::invalid(
            &["body", "statusCodeClass"],
            "must be 0, 100, 200, 300, 400 or 500",
        ));
    }
    let filter = ReplayFilter {
        since: input.since,
        until,
        event_types: input.event_types.unwrap_or_default(),
        channel: input.channel.filter(|channel| !channel.is_empty()),
        tag: input.tag.filter(|tag| !tag.is_empty()),
        status,
        status_code_class: input.status_code_class,
    };
    let (_, endpoint) = locate(&state, &app, &ep).await?;
    refuse_polling(&endpoint, "bulk-replay")?;
    let store = state.store();
    let response = run_task(
        &state,
        BULK_REPLAY_TASK,
        &idempotency,
        async {
            let sent = store
                .replay_deliveries(&endpoint.id, &filter, now())
                .await?;
            Ok(json!({ "messagesSent": sent }))
        },
        |task| JsonBytes::new(StatusCode::ACCEPTED, &TaskStartedOut::from(task)),
    )
    .await?;
    state.dispatcher().wake();
    Ok(response)
}

/// The `exampleIndex`-th of the `examples` of the event type's schemas (version 1 first, then
/// the others in order), if there is one.
fn schema_example(schemas: Option<&Value>, index: usize) -> Option<&Value> {
    let schemas = schemas?.as_object()?;
    let mut versions: Vec<(&String, &Value)> = schemas.iter().collect();
    versions.sort_by_key(|(version, _)| (version.as_str() != "1", version.as_str()));
    versions.into_iter().find_map(|(_, schema)| {
        schema
            .get("examples")
            .and_then(Value::as_array)
            .and_then(|examples| examples.get(index))
    })
}

#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/endpoint/{ep}/send-example",
    operation_id = "v1.endpoint.send-example",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    request_body = EventExampleIn,
    responses(
        (status = 202, description = "The example message, on its way to this endpoint alone", body = MessageOut),
        (status = 404, description = "No such application, endpoint or event type", body = ErrorBody),
        (status = 422, description = "The event type's schemas hold no example at this index", body = ValidationErrorBody),
    )
)]
pub(crate) async fn send_example(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    Json(input): Json<EventExampleIn>,
) -> ApiResult<JsonBytes> {
    let (app, endpoint) = locate(&state, &app, &ep).await?;
    refuse_polling(&endpoint, "send-example")?;
    let payload = match input.payload {
        Some(payload) => Value::Object(payload),
        None => {
            let event_type = state
                .store()
                .get_event_type(&input.event_type)
                .await?
                .ok_or_else(|| ApiError::not_found("event type"))?;
            let index = input.example_index.unwrap_or(0);
            let example = schema_example(event_type.schemas.as_ref(), index)
                .filter(|example| example.is_object())
                .ok_or_else(|| {
                    ApiError::invalid(
                        &["body", "exampleIndex"],
                        format!(
                            "the event type `{}` has no example object at index {index} in \
                             its schemas",
                            input.event_type
                        ),
                    )
                })?;
            example.clone()
        }
    };
    let message = Message {
        id: MessageId::new(),
        app_id: app.id,
        event_type: input.event_type,
        event_id: None,
        payload: Bytes::from(serde_json::to_vec(&payload).map_err(|error| {
            ApiError::Internal(format!("an example did not serialize: {error}"))
        })?),
        channels: Vec::new(),
        tags: Vec::new(),
        created_at: now(),
        deliver_at: None,
        retain_payload_until: None,
    };
    let dispatcher = state.dispatcher();
    // An ordered endpoint's example waits for its turn in the line, unclaimed.
    let lease = dispatcher.lease().filter(|_| !endpoint.ordered);
    state
        .store()
        .create_message_to(&message, &endpoint.id, lease.as_ref())
        .await?;
    let response = JsonBytes::new(StatusCode::ACCEPTED, &MessageOut::of(&message, true))?;
    if endpoint.ordered {
        dispatcher.wake();
    } else {
        dispatcher.submit(message, vec![endpoint.id]);
    }
    Ok(response)
}

/// Counts of the endpoint's finished deliveries, of messages created in the window the query
/// gives (`since`, `until`; either may be left out).
#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/endpoint/{ep}/attempt-stats",
    operation_id = "v1.endpoint.get-attempt-stats",
    tag = "Endpoint",
    params(
        ("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid"),
        StatsQuery,
    ),
    responses(
        (status = 200, description = "Finished deliveries by status", body = AttemptStatsOut),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
        (status = 422, description = "`since` or `until` is not a timestamp, or `since` is after `until`", body = ValidationErrorBody),
    )
)]
pub(crate) async fn attempt_stats(
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
    JsonBytes::new(
        StatusCode::OK,
        &AttemptStatsOut {
            success: stats.success,
            fail: stats.fail,
            canceled: stats.canceled,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_come_from_version_one_first_by_index() {
        let schemas = json!({
            "2": {"examples": [{"v": 2}]},
            "1": {"examples": [{"v": 1, "n": 0}, {"v": 1, "n": 1}]},
        });
        assert_eq!(
            schema_example(Some(&schemas), 0),
            Some(&json!({"v": 1, "n": 0}))
        );
        assert_eq!(
            schema_example(Some(&schemas), 1),
            Some(&json!({"v": 1, "n": 1}))
        );
        assert_eq!(schema_example(Some(&schemas), 2), None);
        assert_eq!(schema_example(Some(&json!({"1": {}})), 0), None);
        assert_eq!(schema_example(None, 0), None);
    }
}
