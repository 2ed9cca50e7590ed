//! `/api/v1/app`: applications, one per customer of the service's user.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use webhookd_core::model::Application;
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_core::{AppId, validate};
use webhookd_core::{AppKey, Key};
use webhookd_store::Order;

use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency::{self, IdempotencyKey};
use crate::query::{ListQuery, Query};
use crate::wire::{
    JsonBytes, ListResponse, check_metadata, check_rate, check_text, check_uid, nullable, rate,
};

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route(
            "/app",
            get(list).merge(idempotency::post_with_effect(create)),
        )
        .route("/app/{app}", get(read).put(put).patch(patch).delete(delete))
}

/// The body of create and PUT.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApplicationIn {
    /// The display name; 1 to 256 characters.
    #[schema(min_length = 1, max_length = 256)]
    name: String,
    /// Your own key for the application, usable wherever its id is.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.]{1,256}$"
    )]
    uid: Option<String>,
    /// The older name of `throttleRate`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 65535)]
    rate_limit: Option<u32>,
    /// Messages per second; stored and returned (limits are enforced per endpoint).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 65535)]
    throttle_rate: Option<u32>,
    /// At most 16 KiB of JSON.
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

impl ApplicationIn {
    pub(crate) fn validate(&self) -> ApiResult<()> {
        if self.name.trim().is_empty() {
            return Err(ApiError::invalid(&["body", "name"], "must not be empty"));
        }
        check_text("name", &self.name, validate::MAX_APP_NAME_LENGTH)?;
        if let Some(metadata) = &self.metadata {
            check_metadata(metadata)?;
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

/// The body of PATCH: absent fields are kept; `null` clears `uid` and the rate limit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApplicationPatch {
    #[serde(default)]
    name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 256)]
    #[schema(pattern = r"^[a-zA-Z0-9\-_.]{1,256}$")]
    uid: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 65535)]
    rate_limit: Option<Option<u32>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u32>, minimum = 1, maximum = 65535)]
    throttle_rate: Option<Option<u32>>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApplicationOut {
    #[schema(value_type = String, example = "app_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E")]
    id: AppId,
    #[schema(required)]
    uid: Option<String>,
    name: String,
    /// The same as `throttleRate`, under Svix's older name.
    #[schema(required)]
    rate_limit: Option<u32>,
    #[schema(required)]
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

#[utoipa::path(
    get,
    path = "/api/v1/app",
    operation_id = "v1.application.list",
    tag = "Application",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of applications, oldest first", body = ListResponse<ApplicationOut>),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<ApiState>, query: ListQuery) -> ApiResult<JsonBytes> {
    let page = query.page.page(Order::Ascending);
    let apps = state.store().list_applications(&page).await?;
    let list = ListResponse::from_page(apps, |app| app.id.to_string(), ApplicationOut::from);
    JsonBytes::new(StatusCode::OK, &list)
}

/// The query of `create`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CreateQuery {
    /// Answer 200 with the application of this `uid` when there is one.
    #[serde(default)]
    get_if_exists: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/app",
    operation_id = "v1.application.create",
    tag = "Application",
    params(CreateQuery),
    request_body = ApplicationIn,
    responses(
        (status = 201, description = "Created", body = ApplicationOut),
        (status = 200, description = "It existed (`get_if_exists=true`)", body = ApplicationOut),
        (status = 409, description = "The `uid` is taken", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    Query(query): Query<CreateQuery>,
    idempotency: IdempotencyKey,
    Json(input): Json<ApplicationIn>,
) -> ApiResult<JsonBytes> {
    input.validate()?;
    if query.get_if_exists
        && let Some(uid) = &input.uid
        && let Some(existing) = state
            .store()
            .get_application(&Key::Name(uid.clone()))
            .await?
    {
        return JsonBytes::new(StatusCode::OK, &ApplicationOut::from(existing));
    }
    let app = input.into_application();
    let response = JsonBytes::new(StatusCode::CREATED, &ApplicationOut::from(app.clone()))?;
    state
        .store()
        .create_application(&app, idempotency.record(&response).as_ref())
        .await?;
    Ok(response.recorded())
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}",
    operation_id = "v1.application.get",
    tag = "Application",
    params(("app" = String, Path, description = "The application's id or uid")),
    responses(
        (status = 200, description = "The application", body = ApplicationOut),
        (status = 404, description = "No such application", body = ErrorBody),
    )
)]
pub(crate) async fn read(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> ApiResult<JsonBytes> {
    let app = state.application(&key).await?;
    JsonBytes::new(StatusCode::OK, &ApplicationOut::from(app))
}

/// Create-or-update: an unknown key that is not an id becomes the new application's uid.
#[utoipa::path(
    put,
    path = "/api/v1/app/{app}",
    operation_id = "v1.application.update",
    tag = "Application",
    params(("app" = String, Path, description = "The application's id or uid; an unknown uid creates it")),
    request_body = ApplicationIn,
    responses(
        (status = 200, description = "Replaced", body = ApplicationOut),
        (status = 201, description = "Created, with the path's uid", body = ApplicationOut),
        (status = 404, description = "No application has this id", body = ErrorBody),
        (status = 409, description = "The `uid` is taken", body = ErrorBody),
    )
)]
pub(crate) async fn put(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    Json(input): Json<ApplicationIn>,
) -> ApiResult<JsonBytes> {
    input.validate()?;
    let key = AppKey::parse(&key);
    match (state.store().get_application(&key).await?, key) {
        (Some(mut app), _) => {
            app.throttle_rate = rate(input.throttle_rate, input.rate_limit);
            app.name = input.name;
            app.uid = input.uid.or(app.uid);
            app.metadata = input.metadata.unwrap_or_default();
            app.updated_at = now();
            state.store().update_application(&app).await?;
            state.applications_changed();
            JsonBytes::new(StatusCode::OK, &ApplicationOut::from(app))
        }
        (None, Key::Id(_)) => Err(ApiError::not_found("application")),
        (None, Key::Name(key)) => {
            let mut input = input;
            if input.uid.as_deref().is_some_and(|uid| uid != key) {
                return Err(ApiError::invalid(
                    &["body", "uid"],
                    "must match the uid in the path",
                ));
            }
            check_uid(Some(&key)).map_err(|_| ApiError::not_found("application"))?;
            input.uid = Some(key);
            let app = input.into_application();
            state.store().create_application(&app, None).await?;
            JsonBytes::new(StatusCode::CREATED, &ApplicationOut::from(app))
        }
    }
}

#[utoipa::path(
    patch,
    path = "/api/v1/app/{app}",
    operation_id = "v1.application.patch",
    tag = "Application",
    params(("app" = String, Path, description = "The application's id or uid")),
    request_body = ApplicationPatch,
    responses(
        (status = 200, description = "Updated", body = ApplicationOut),
        (status = 404, description = "No such application", body = ErrorBody),
        (status = 409, description = "The `uid` is taken", body = ErrorBody),
    )
)]
pub(crate) async fn patch(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    Json(input): Json<ApplicationPatch>,
) -> ApiResult<JsonBytes> {
    let mut app = state.application(&key).await?;
    if let Some(name) = input.name {
        if name.trim().is_empty() {
            return Err(ApiError::invalid(&["body", "name"], "must not be empty"));
        }
        check_text("name", &name, validate::MAX_APP_NAME_LENGTH)?;
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
        check_metadata(&metadata)?;
        app.metadata = metadata;
    }
    app.updated_at = now();
    state.store().update_application(&app).await?;
    state.applications_changed();
    JsonBytes::new(StatusCode::OK, &ApplicationOut::from(app))
}

#[utoipa::path(
    delete,
    path = "/api/v1/app/{app}",
    operation_id = "v1.application.delete",
    tag = "Application",
    params(("app" = String, Path, description = "The application's id or uid")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such application", body = ErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    let app = state.application(&key).await?;
    state.store().delete_application(&app.id).await?;
    state.applications_changed();
    Ok(StatusCode::NO_CONTENT)
}
