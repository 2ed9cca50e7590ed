//! `/api/v1/app`: applications, one per customer of the service's user.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use webhookd_core::AppId;
use webhookd_core::model::Application;
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_store::Order;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, QueryParams};
use crate::idempotency::IdempotencyKey;
use crate::wire::{JsonBytes, ListResponse, check_rate, check_uid, nullable, rate};
use crate::ApiState;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/app", get(list).post(create))
        .route("/app/{app}", get(read).put(put).patch(patch).delete(delete))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApplicationIn {
    name: String,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    rate_limit: Option<u32>,
    #[serde(default)]
    throttle_rate: Option<u32>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

impl ApplicationIn {
    pub(crate) fn validate(&self) -> ApiResult<()> {
        if self.name.trim().is_empty() {
            return Err(ApiError::invalid(&["body", "name"], "must not be empty"));
        }
        check_uid(self.uid.as_deref())?;
        check_rate("throttleRate", rate(self.throttle_rate, self.rate_limit))
    }

    /// A new application from this input.
    pub(crate) fn into_application(self) -> Application {
        let at = now();
        Application {
            id: AppId::new(),
            throttle_rate: rate(self.throttle_rate, self.rate_limit),
            uid: self.uid,
            name: self.name,
            metadata: self.metadata.unwrap_or_default(),
            created_at: at,
            updated_at: at,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ApplicationPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    uid: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    rate_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    throttle_rate: Option<Option<u32>>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApplicationOut {
    id: AppId,
    uid: Option<String>,
    name: String,
    rate_limit: Option<u32>,
    throttle_rate: Option<u32>,
    metadata: Map<String, Value>,
    #[serde(with = "serde_rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "serde_rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<Application> for ApplicationOut {
    fn from(app: Application) -> Self {
        Self {
            id: app.id,
            uid: app.uid,
            name: app.name,
            rate_limit: app.throttle_rate,
            throttle_rate: app.throttle_rate,
            metadata: app.metadata,
            created_at: app.created_at,
            updated_at: app.updated_at,
        }
    }
}

async fn list(State(state): State<ApiState>, query: QueryParams) -> ApiResult<JsonBytes> {
    let page = query.page(Order::Ascending)?;
    let apps = state.store().list_applications(&page).await?;
    let list = ListResponse::from_page(apps, |app| app.id.to_string(), ApplicationOut::from);
    JsonBytes::new(StatusCode::OK, &list)
}

async fn create(
    State(state): State<ApiState>,
    query: QueryParams,
    idempotency: IdempotencyKey,
    Json(input): Json<ApplicationIn>,
) -> ApiResult<JsonBytes> {
    input.validate()?;
    if query.bool("get_if_exists", false)?
        && let Some(uid) = &input.uid
        && let Some(existing) = state.store().get_application(uid).await?
    {
        return JsonBytes::new(StatusCode::OK, &ApplicationOut::from(existing));
    }
    let app = input.into_application();
    let response = JsonBytes::new(StatusCode::CREATED, &ApplicationOut::from(app.clone()))?;
    state.store().create_application(&app, idempotency.record(&response).as_ref()).await?;
    Ok(response.recorded())
}

async fn read(State(state): State<ApiState>, Path(key): Path<String>) -> ApiResult<JsonBytes> {
    let app = state.application(&key).await?;
    JsonBytes::new(StatusCode::OK, &ApplicationOut::from(app))
}

/// Create-or-update: an unknown key that is not an id becomes the new application's uid.
async fn put(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    Json(input): Json<ApplicationIn>,
) -> ApiResult<JsonBytes> {
    input.validate()?;
    match state.store().get_application(&key).await? {
        Some(mut app) => {
            app.throttle_rate = rate(input.throttle_rate, input.rate_limit);
            app.name = input.name;
            app.uid = input.uid.or(app.uid);
            app.metadata = input.metadata.unwrap_or_default();
            app.updated_at = now();
            state.store().update_application(&app).await?;
            JsonBytes::new(StatusCode::OK, &ApplicationOut::from(app))
        }
        None if AppId::looks_like(&key) => Err(ApiError::not_found("application")),
        None => {
            let mut input = input;
            if input.uid.as_deref().is_some_and(|uid| uid != key) {
                return Err(ApiError::invalid(&["body", "uid"], "must match the uid in the path"));
            }
            check_uid(Some(&key)).map_err(|_| ApiError::not_found("application"))?;
            input.uid = Some(key);
            let app = input.into_application();
            state.store().create_application(&app, None).await?;
            JsonBytes::new(StatusCode::CREATED, &ApplicationOut::from(app))
        }
    }
}

async fn patch(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    Json(input): Json<ApplicationPatch>,
) -> ApiResult<JsonBytes> {
    let mut app = state.application(&key).await?;
    if let Some(name) = input.name {
        if name.trim().is_empty() {
            return Err(ApiError::invalid(&["body", "name"], "must not be empty"));
        }
        app.name = name;
    }
    if let Some(uid) = input.uid {
        check_uid(uid.as_deref())?;
        app.uid = uid;
    }
    if let Some(throttle_rate) = input.throttle_rate.or(input.rate_limit) {
        check_rate("throttleRate", throttle_rate)?;
        app.throttle_rate = throttle_rate;
    }
    if let Some(metadata) = input.metadata {
        app.metadata = metadata;
    }
    app.updated_at = now();
    state.store().update_application(&app).await?;
    JsonBytes::new(StatusCode::OK, &ApplicationOut::from(app))
}

async fn delete(State(state): State<ApiState>, Path(key): Path<String>) -> ApiResult<StatusCode> {
    let app = state.application(&key).await?;
    state.store().delete_application(&app.id).await?;
    Ok(StatusCode::NO_CONTENT)
}
