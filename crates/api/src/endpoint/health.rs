//! `GET /api/v1/app/{app}/endpoint/{ep}/health`: what the console shows of an endpoint's
//! health, beyond Svix's endpoint shape (which stays as it is): whether it is disabled, since
//! when it has been failing, its last attempt, and its success rate over its latest attempts.
//!
//! Everything here is read through indexes that do not grow with the endpoint's history: the
//! endpoint row, and its newest attempts (at most [`RECENT`]) in id order.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use webhookd_core::EndpointId;
use webhookd_core::model::DeliveryStatus;
use webhookd_core::time::serde_rfc3339;
use webhookd_store::{AttemptScope, Order, PageRequest};

use super::locate;
use crate::ApiState;
use crate::attempt::MessageAttemptOut;
use crate::error::{ApiResult, ErrorBody};
use crate::extract::Path;
use crate::wire::JsonBytes;

/// The latest attempts the success rate is computed over.
const RECENT: usize = 100;

pub(crate) fn router() -> Router<ApiState> {
    Router::new().route("/app/{app}/endpoint/{ep}/health", get(health))
}

/// An endpoint's health.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndpointHealthOut {
    #[schema(value_type = String)]
    endpoint_id: EndpointId,
    disabled: bool,
    /// When its current run of failures began (every attempt since has failed); `null` when
    /// its last attempt succeeded or it has none.
    #[serde(with = "serde_rfc3339::option")]
    #[schema(required)]
    failing_since: Option<OffsetDateTime>,
    /// Its newest attempt, with the response; `null` before the first.
    #[schema(required)]
    last_attempt: Option<MessageAttemptOut>,
    recent: RecentOut,
}

/// The endpoint's latest attempts (at most 100).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecentOut {
    attempts: u64,
    succeeded: u64,
    /// `succeeded / attempts`, from 0 to 1; `null` without attempts.
    #[schema(required)]
    success_rate: Option<f64>,
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/endpoint/{ep}/health",
    operation_id = "webhookd.endpoint.health",
    tag = "Endpoint",
    params(
        ("app" = String, Path, description = "The application's id or uid"),
        ("ep" = String, Path, description = "The endpoint's id or uid"),
    ),
    responses(
        (status = 200, description = "The endpoint's health (a webhookd extension)", body = EndpointHealthOut),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn health(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
) -> ApiResult<JsonBytes> {
    let (app, endpoint) = locate(&state, &app, &ep).await?;
    let newest = PageRequest {
        limit: RECENT,
        cursor: None,
        order: Order::Descending,
    };
    let attempts = state
        .store()
        .list_attempts(
            &app.id,
            &AttemptScope::Endpoint(endpoint.id.clone()),
            &Default::default(),
            &newest,
        )
        .await?
        .items;
    let total = attempts.len() as u64;
    let succeeded = attempts
        .iter()
        .filter(|attempt| attempt.status == DeliveryStatus::Success)
        .count() as u64;
    let health = EndpointHealthOut {
        endpoint_id: endpoint.id,
        disabled: endpoint.disabled,
        failing_since: endpoint.failing_since,
        last_attempt: attempts.into_iter().next().map(MessageAttemptOut::from),
        recent: RecentOut {
            attempts: total,
            succeeded,
            success_rate: (total > 0).then(|| succeeded as f64 / total as f64),
        },
    };
    JsonBytes::new(StatusCode::OK, &health)
}
