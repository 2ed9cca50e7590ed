//! An endpoint's payload filter and delivery overrides: their checks on write, their wire form,
//! and `POST /api/v1/app/{app}/endpoint/payload-filter/test`, which tries a filter against a
//! sample payload without saving anything.
//!
//! - `payloadFilter`: a CEL expression (`webhookd_core::filter`); a syntax error is a 422 that
//!   gives its line and column.
//! - `retrySchedule`: the delays after the first attempt, as durations (`"5s"`, `"5m"`), in
//!   place of `WEBHOOKD_RETRY_SCHEDULE`; `[]` means never retry.
//! - `requestTimeout`: how long one attempt may take, in place of `WEBHOOKD_REQUEST_TIMEOUT`;
//!   at least a second and at most half the node's lease, which must outlast two attempts.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use webhookd_core::filter::{FilterInput, MAX_FILTER_LENGTH, PayloadFilter};
use webhookd_core::retry::RetrySchedule;
use webhookd_core::time::{format_duration, parse_duration};
use webhookd_core::validate;

use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency;
use crate::wire::JsonBytes;

/// The most delays a retry schedule may hold.
pub(crate) const MAX_RETRY_DELAYS: usize = 20;
/// The shortest delay between two attempts.
const MIN_RETRY_DELAY: Duration = Duration::from_millis(100);
/// The longest delay between two attempts.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(24 * 3600);
/// The shortest request timeout.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route(
        "/app/{app}/endpoint/payload-filter/test",
        idempotency::post(test_filter),
    )
}

/// A payload filter to store, checked: it compiles, within its bounds. 422 with the position
/// of the first error otherwise.
pub(super) fn check_filter(filter: Option<String>) -> ApiResult<Option<String>> {
    filter
        .map(|source| {
            PayloadFilter::compile(&source)
                .map(|_| source)
                .map_err(|error| ApiError::invalid(&["body", "payloadFilter"], error.to_string()))
        })
        .transpose()
}

/// A retry schedule from its wire form, checked.
pub(super) fn check_schedule(delays: Option<Vec<String>>) -> ApiResult<Option<RetrySchedule>> {
    let Some(delays) = delays else {
        return Ok(None);
    };
    if delays.len() > MAX_RETRY_DELAYS {
        return Err(ApiError::invalid(
            &["body", "retrySchedule"],
            format!("must hold at most {MAX_RETRY_DELAYS} delays"),
        ));
    }
    let mut parsed = Vec::with_capacity(delays.len());
    for (index, text) in delays.iter().enumerate() {
        let loc = ["body", "retrySchedule", &index.to_string()];
        let delay =
            parse_duration(text).map_err(|error| ApiError::invalid(&loc, error.to_string()))?;
        if !(MIN_RETRY_DELAY..=MAX_RETRY_DELAY).contains(&delay) {
            return Err(ApiError::invalid(
                &loc,
                format!(
                    "must be between {} and {}",
                    format_duration(MIN_RETRY_DELAY),
                    format_duration(MAX_RETRY_DELAY)
                ),
            ));
        }
        parsed.push(delay);
    }
    Ok(Some(RetrySchedule::new(parsed)))
}

/// A request timeout from its wire form, checked against the node's lease: a delivery's lease
/// must last at least twice its request timeout.
pub(super) fn check_timeout(text: Option<String>, lease: Duration) -> ApiResult<Option<Duration>> {
    let Some(text) = text else {
        return Ok(None);
    };
    let loc = ["body", "requestTimeout"];
    let timeout =
        parse_duration(&text).map_err(|error| ApiError::invalid(&loc, error.to_string()))?;
    if timeout < MIN_REQUEST_TIMEOUT {
        return Err(ApiError::invalid(&loc, "must be at least 1s"));
    }
    if timeout.saturating_mul(2) > lease {
        return Err(ApiError::invalid(
            &loc,
            format!(
                "must be at most {}: this node's lease ({}, WEBHOOKD_LEASE) must stay at least \
                 twice the request timeout",
                format_duration(lease / 2),
                format_duration(lease)
            ),
        ));
    }
    Ok(Some(timeout))
}

/// A retry schedule in its wire form.
pub(super) fn schedule_out(schedule: Option<&RetrySchedule>) -> Option<Vec<String>> {
    schedule.map(|schedule| {
        schedule
            .delays()
            .iter()
            .map(|delay| format_duration(*delay))
            .collect()
    })
}

/// A request timeout in its wire form.
pub(super) fn timeout_out(timeout: Option<Duration>) -> Option<String> {
    timeout.map(format_duration)
}

/// A filter to try and the message to try it on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PayloadFilterTestIn {
    /// The CEL expression, as it would be stored in `payloadFilter`.
    #[schema(
        max_length = 4096,
        example = "payload.amount > 100 && payload.currency == \"EUR\""
    )]
    payload_filter: String,
    /// A sample message payload, seen by the filter as `payload`.
    #[schema(value_type = Object)]
    payload: Value,
    /// The sample message's event type, seen as `eventType`; empty when absent.
    #[serde(default)]
    #[schema(max_length = 256)]
    event_type: Option<String>,
    /// The sample message's channels, seen as `channels`; none when absent.
    #[serde(default)]
    #[schema(max_items = 10)]
    channels: Option<Vec<String>>,
}

/// The filter's verdict on the sample.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PayloadFilterTestOut {
    /// Whether a message like the sample would be delivered to an endpoint with this filter.
    matches: bool,
    /// Why the filter did not evaluate to a boolean (a missing field, a type mismatch), which
    /// counts as "does not match"; absent when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Tries a payload filter against a sample message, as fan-out would evaluate it. Nothing is
/// stored; a filter that does not compile is a 422 giving the line and column of the error.
#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/endpoint/payload-filter/test",
    operation_id = "v1.endpoint.payload-filter-test",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid")),
    request_body = PayloadFilterTestIn,
    responses(
        (status = 200, description = "The filter's verdict", body = PayloadFilterTestOut),
        (status = 404, description = "No such application", body = ErrorBody),
        (status = 422, description = "The filter does not compile (its line and column are given), or the sample is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn test_filter(
    State(state): State<ApiState>,
    Path(app): Path<String>,
    Json(input): Json<PayloadFilterTestIn>,
) -> ApiResult<JsonBytes> {
    state.application(&app).await?;
    if input.payload_filter.len() > MAX_FILTER_LENGTH {
        return Err(ApiError::invalid(
            &["body", "payloadFilter"],
            format!("must be at most {MAX_FILTER_LENGTH} bytes long"),
        ));
    }
    let filter = PayloadFilter::compile(&input.payload_filter)
        .map_err(|error| ApiError::invalid(&["body", "payloadFilter"], error.to_string()))?;
    let event_type = input.event_type.unwrap_or_default();
    if !event_type.is_empty() {
        validate::name(&event_type)
            .map_err(|msg| ApiError::invalid(&["body", "eventType"], msg))?;
    }
    let channels = input.channels.unwrap_or_default();
    let sample = FilterInput::from_json(&input.payload, &event_type, &channels);
    let verdict = filter.evaluate(&sample);
    JsonBytes::new(
        StatusCode::OK,
        &PayloadFilterTestOut {
            matches: verdict == Ok(true),
            error: verdict.err(),
        },
    )
}
