//! `/api/v1/stats/usage/*`: usage figures, computed as background tasks whose results are read
//! at `/api/v1/background-task/{id}`, in the shapes Svix describes:
//!
//! - `POST /stats/usage/app` `{since, until, appIds?}`: task `application.stats`, data
//!   `{"appStats": [{"appId", "appUid", "messageDestinations"}]}` — the deliveries (message ×
//!   endpoint) created in the window, per application (every application with any when
//!   `appIds` is absent). Ids or uids that name no application are answered in
//!   `unresolvedAppIds`; when none resolves, the answer is a 422.
//! - `PUT /stats/usage/event-types`: task `event-type.aggregate`, data `{"event_types":
//!   [{"appId", "explicitlySubscribedEventTypes", "hasCatchAllEndpoint"}]}` for every
//!   application with endpoints.
//!
//! Both run within the request (see `background_task::run_task`).

use std::collections::BTreeSet;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::put;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;
use utoipa::ToSchema;
use webhookd_core::AppId;
use webhookd_core::AppKey;
use webhookd_core::time::serde_rfc3339;
use webhookd_store::{Cursor, Order, PageRequest, Store, StoreError};

use crate::ApiState;
use crate::background_task::{TaskStartedOut, run_task};
use crate::error::{ApiError, ApiResult, ValidationErrorBody};
use crate::extract::Json;
use crate::idempotency::{self, IdempotencyKey};
use crate::wire::JsonBytes;

const APP_STATS_TASK: &str = "application.stats";
const EVENT_TYPES_TASK: &str = "event-type.aggregate";
/// The most applications one request names.
const MAX_APP_IDS: usize = 1000;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/stats/usage/app", idempotency::post(app_usage))
        .route("/stats/usage/event-types", put(event_types))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppUsageStatsIn {
    #[serde(with = "serde_rfc3339")]
    since: OffsetDateTime,
    #[serde(with = "serde_rfc3339")]
    until: OffsetDateTime,
    /// Applications by id or uid; every application when absent.
    #[serde(default)]
    #[schema(max_items = 1000)]
    app_ids: Option<Vec<String>>,
}

/// The task, and the ids or uids that named no application.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppUsageStatsOut {
    #[serde(flatten)]
    task: TaskStartedOut,
    unresolved_app_ids: Vec<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/stats/usage/app",
    operation_id = "v1.statistics.aggregate-app-stats",
    tag = "Statistics",
    request_body = AppUsageStatsIn,
    responses(
        (status = 202, description = "Counted; `data.appStats` of the task at `/api/v1/background-task/{id}`", body = AppUsageStatsOut),
        (status = 422, description = "`since` is not before `until`, or no id names an application", body = ValidationErrorBody),
    )
)]
pub(crate) async fn app_usage(
    State(state): State<ApiState>,
    idempotency: IdempotencyKey,
    Json(input): Json<AppUsageStatsIn>,
) -> ApiResult<JsonBytes> {
    if input.since >= input.until {
        return Err(ApiError::invalid(
            &["body", "since"],
            "must be before `until`",
        ));
    }
    let mut unresolved = Vec::new();
    let apps = match input.app_ids {
        None => None,
        Some(keys) if keys.len() > MAX_APP_IDS => {
            return Err(ApiError::invalid(
                &["body", "appIds"],
                format!("must hold at most {MAX_APP_IDS} ids"),
            ));
        }
        Some(keys) => {
            let mut found: Vec<AppId> = Vec::new();
            for key in keys {
                match state.store().get_application(&AppKey::parse(&key)).await? {
                    Some(app) if !found.contains(&app.id) => found.push(app.id),
                    Some(_) => {}
                    None => unresolved.push(key),
                }
            }
            if found.is_empty() {
                return Err(ApiError::invalid(
                    &["body", "appIds"],
                    "none of these ids or uids names an application",
                ));
            }
            Some(found)
        }
    };
    let store = state.store();
    run_task(
        &state,
        APP_STATS_TASK,
        &idempotency,
        async {
            let usage = store
                .usage_by_app(apps.as_deref(), input.since, input.until)
                .await?;
            let stats: Vec<Value> = usage
                .into_iter()
                .map(|usage| {
                    json!({
                        "appId": usage.app_id,
                        "appUid": usage.app_uid,
                        "messageDestinations": usage.message_destinations,
                    })
                })
                .collect();
            Ok(json!({ "appStats": stats }))
        },
        |task| {
            JsonBytes::new(
                StatusCode::ACCEPTED,
                &AppUsageStatsOut {
                    task: TaskStartedOut::from(task),
                    unresolved_app_ids: unresolved,
                },
            )
        },
    )
    .await
}

#[utoipa::path(
    put,
    path = "/api/v1/stats/usage/event-types",
    operation_id = "v1.statistics.aggregate-event-types",
    tag = "Statistics",
    responses(
        (status = 202, description = "Aggregated; `data.event_types` of the task at `/api/v1/background-task/{id}`", body = TaskStartedOut),
    )
)]
pub(crate) async fn event_types(
    State(state): State<ApiState>,
    idempotency: IdempotencyKey,
) -> ApiResult<JsonBytes> {
    let store = state.store();
    run_task(
        &state,
        EVENT_TYPES_TASK,
        &idempotency,
        subscriptions(store),
        |task| JsonBytes::new(StatusCode::ACCEPTED, &TaskStartedOut::from(task)),
    )
    .await
}

/// A page request that starts after `cursor`, in id order.
fn page_after(cursor: Option<String>) -> PageRequest {
    PageRequest {
        limit: 250,
        cursor: cursor.map(|key| Cursor {
            key,
            backward: false,
        }),
        order: Order::Ascending,
    }
}

/// Every application with endpoints: the event types its endpoints name, and whether one of
/// them takes every type.
async fn subscriptions(store: &dyn Store) -> Result<Value, StoreError> {
    let mut out = Vec::new();
    let mut apps_cursor = None;
    loop {
        let apps = store.list_applications(&page_after(apps_cursor)).await?;
        for app in &apps.items {
            let (mut types, mut catch_all, mut any) = (BTreeSet::new(), false, false);
            let mut endpoints_cursor = None;
            loop {
                let endpoints = store
                    .list_endpoints(&app.id, &page_after(endpoints_cursor))
                    .await?;
                for endpoint in &endpoints.items {
                    any = true;
                    catch_all |= endpoint.event_types.is_empty();
                    types.extend(endpoint.event_types.iter().cloned());
                }
                match endpoints.items.last() {
                    Some(last) if !endpoints.done => endpoints_cursor = Some(last.id.to_string()),
                    _ => break,
                }
            }
            if any {
                out.push(json!({
                    "appId": app.id,
                    "explicitlySubscribedEventTypes": types,
                    "hasCatchAllEndpoint": catch_all,
                }));
            }
        }
        match apps.items.last() {
            Some(last) if !apps.done => apps_cursor = Some(last.id.to_string()),
            _ => break,
        }
    }
    Ok(json!({ "event_types": out }))
}
