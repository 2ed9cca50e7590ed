//! `/api/v1/operational-webhook/endpoint`: the operational endpoints, where webhookd sends
//! events about itself (`endpoint.*`, `message.attempt.*`, `background_task.finished`; see
//! `webhookd_core::operational`). The SDK's `operational_webhook_endpoint` resource.
//!
//! An operational endpoint is an endpoint of the reserved operational application, so it is
//! validated, stored, signed and delivered exactly as an application's endpoint is, by the same
//! code: this module is only the routes, with Svix's shapes. Its event types must be
//! operational event types. Changes to operational endpoints raise no events.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;
use webhookd_core::EndpointId;
use webhookd_core::model::Endpoint;
use webhookd_core::operational::{EVENT_TYPES, operational_app};
use webhookd_core::signing::SignatureType;
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_core::{EndpointKey, Key};
use webhookd_store::Order;

use super::headers::{HeadersOut, check_all, redact};
use super::secret::{RotateIn, SecretOut, rotate_to};
use super::{EndpointIn, ensure_room, save};
use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency::{self, IdempotencyKey};
use crate::query::ListQuery;
use crate::wire::{JsonBytes, ListResponse, check_uid};

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route(
            "/operational-webhook/endpoint",
            get(list).merge(idempotency::post(create)),
        )
        .route(
            "/operational-webhook/endpoint/{endpoint_id}",
            get(read).put(upsert).delete(delete),
        )
        .route(
            "/operational-webhook/endpoint/{endpoint_id}/headers",
            get(read_headers).put(replace_headers),
        )
        .route(
            "/operational-webhook/endpoint/{endpoint_id}/secret",
            get(read_secret),
        )
        .route(
            "/operational-webhook/endpoint/{endpoint_id}/secret/rotate",
            idempotency::post(rotate),
        )
}

/// The body of create (`OperationalWebhookEndpointIn`) and of PUT
/// (`OperationalWebhookEndpointUpsertIn`, which has no `secret` or `headers`).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OperationalWebhookEndpointIn {
    #[schema(format = "uri", max_length = 2048)]
    url: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1, maximum = 65535)]
    throttle_rate: Option<u32>,
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.]{1,256}$"
    )]
    uid: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
    /// Operational event types to receive; none means every one.
    #[serde(default)]
    event_types: Option<Vec<String>>,
    /// `whsec_` and the base64 of 24 to 64 bytes; generated when absent.
    #[serde(default)]
    secret: Option<String>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

impl OperationalWebhookEndpointIn {
    /// The same input as an application's endpoint, once its event types are known ones.
    fn into_endpoint_in(self) -> ApiResult<EndpointIn> {
        for (index, name) in self.event_types.iter().flatten().enumerate() {
            if !EVENT_TYPES.contains(&name.as_str()) {
                return Err(ApiError::invalid(
                    &["body", "eventTypes", &index.to_string()],
                    format!(
                        "`{name}` is not an operational event type (one of {})",
                        EVENT_TYPES.join(", ")
                    ),
                ));
            }
        }
        if self.url == webhookd_core::model::POLLING_URL {
            return Err(ApiError::invalid(
                &["body", "url"],
                "an operational endpoint is sent to; it cannot be a polling endpoint",
            ));
        }
        Ok(EndpointIn {
            url: self.url,
            description: self.description,
            disabled: self.disabled,
            event_types: self.event_types,
            throttle_rate: self.throttle_rate,
            metadata: self.metadata,
            uid: self.uid,
            secret: self.secret,
            headers: self.headers,
            ..EndpointIn::default()
        })
    }
}

/// An operational endpoint as the API shows it (`OperationalWebhookEndpointOut`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OperationalWebhookEndpointOut {
    #[schema(value_type = String, example = "ep_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E")]
    id: EndpointId,
    #[schema(required)]
    uid: Option<String>,
    url: String,
    description: String,
    #[schema(required)]
    throttle_rate: Option<u32>,
    disabled: bool,
    /// `null` when the endpoint receives every operational event type.
    #[schema(required)]
    event_types: Option<Vec<String>>,
    metadata: Map<String, Value>,
    #[serde(with = "serde_rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "serde_rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<&Endpoint> for OperationalWebhookEndpointOut {
    fn from(endpoint: &Endpoint) -> Self {
        Self {
            id: endpoint.id.clone(),
            uid: endpoint.uid.clone(),
            url: endpoint.url.clone(),
            description: endpoint.description.clone(),
            throttle_rate: endpoint.throttle_rate,
            disabled: endpoint.disabled,
            event_types: (!endpoint.event_types.is_empty()).then(|| endpoint.event_types.clone()),
            metadata: endpoint.metadata.clone(),
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

/// The complete set of custom headers (`OperationalWebhookEndpointHeadersIn`).
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct OperationalWebhookEndpointHeadersIn {
    headers: BTreeMap<String, String>,
}

/// The operational endpoint with this id or uid, or 404.
async fn locate(state: &ApiState, key: &str) -> ApiResult<Endpoint> {
    state
        .store()
        .get_endpoint(&operational_app(), &EndpointKey::parse(key))
        .await?
        .ok_or_else(|| ApiError::not_found("operational webhook endpoint"))
}

fn json(status: StatusCode, endpoint: &Endpoint) -> ApiResult<JsonBytes> {
    JsonBytes::new(status, &OperationalWebhookEndpointOut::from(endpoint))
}

#[utoipa::path(
    get,
    path = "/api/v1/operational-webhook/endpoint",
    operation_id = "v1.operational-webhook.endpoint.list",
    tag = "Operational Webhook",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of operational endpoints, oldest first", body = ListResponse<OperationalWebhookEndpointOut>),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn list(State(state): State<ApiState>, query: ListQuery) -> ApiResult<JsonBytes> {
    let page = query.page.page(Order::Ascending);
    let endpoints = state
        .store()
        .list_endpoints(&operational_app(), &page)
        .await?;
    let list = ListResponse::from_page(
        endpoints,
        |endpoint| endpoint.id.to_string(),
        |endpoint| OperationalWebhookEndpointOut::from(&endpoint),
    );
    JsonBytes::new(StatusCode::OK, &list)
}

#[utoipa::path(
    post,
    path = "/api/v1/operational-webhook/endpoint",
    operation_id = "v1.operational-webhook.endpoint.create",
    tag = "Operational Webhook",
    request_body = OperationalWebhookEndpointIn,
    responses(
        (status = 201, description = "Created", body = OperationalWebhookEndpointOut),
        (status = 409, description = "The `uid` is taken", body = ErrorBody),
        (status = 422, description = "A field is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    idempotency: IdempotencyKey,
    Json(input): Json<OperationalWebhookEndpointIn>,
) -> ApiResult<JsonBytes> {
    let app = operational_app();
    let endpoint = super::new_endpoint(
        &app,
        input.into_endpoint_in()?,
        SignatureType::Hmac,
        state.config().lease,
    )?;
    ensure_room(&state, &app).await?;
    let response = json(StatusCode::CREATED, &endpoint)?;
    state
        .store()
        .create_endpoint(&endpoint, idempotency.record(&response).as_ref())
        .await?;
    state.dispatcher().endpoint_changed(&endpoint.id);
    Ok(response.recorded())
}

#[utoipa::path(
    get,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}",
    operation_id = "v1.operational-webhook.endpoint.get",
    tag = "Operational Webhook",
    params(("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    responses(
        (status = 200, description = "The operational endpoint", body = OperationalWebhookEndpointOut),
        (status = 404, description = "No such operational endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn read(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> ApiResult<JsonBytes> {
    json(StatusCode::OK, &locate(&state, &key).await?)
}

/// Create-or-update: an unknown key that is not an id becomes the new endpoint's uid.
#[utoipa::path(
    put,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}",
    operation_id = "v1.operational-webhook.endpoint.upsert",
    tag = "Operational Webhook",
    params(("endpoint_id" = String, Path, description = "The endpoint's id or uid; an unknown uid creates it")),
    request_body = OperationalWebhookEndpointIn,
    responses(
        (status = 200, description = "Replaced", body = OperationalWebhookEndpointOut),
        (status = 201, description = "Created, with the path's uid", body = OperationalWebhookEndpointOut),
        (status = 404, description = "No operational endpoint has this id", body = ErrorBody),
        (status = 409, description = "The `uid` is taken", body = ErrorBody),
    )
)]
pub(crate) async fn upsert(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    Json(input): Json<OperationalWebhookEndpointIn>,
) -> ApiResult<JsonBytes> {
    let app = operational_app();
    let mut checked = input.into_endpoint_in()?.check(state.config().lease)?;
    let key = EndpointKey::parse(&key);
    match (state.store().get_endpoint(&app, &key).await?, key) {
        (Some(mut endpoint), _) => {
            checked.replace(&mut endpoint, now());
            save(&state, &endpoint).await?;
            json(StatusCode::OK, &endpoint)
        }
        (None, Key::Id(_)) => Err(ApiError::not_found("operational webhook endpoint")),
        (None, Key::Name(key)) => {
            if checked.uid.as_deref().is_some_and(|uid| uid != key) {
                return Err(ApiError::invalid(
                    &["body", "uid"],
                    "must match the uid in the path",
                ));
            }
            check_uid(Some(&key))
                .map_err(|_| ApiError::not_found("operational webhook endpoint"))?;
            checked.uid = Some(key);
            ensure_room(&state, &app).await?;
            let endpoint = checked.into_endpoint(app, SignatureType::Hmac);
            state.store().create_endpoint(&endpoint, None).await?;
            state.dispatcher().endpoint_changed(&endpoint.id);
            json(StatusCode::CREATED, &endpoint)
        }
    }
}

#[utoipa::path(
    delete,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}",
    operation_id = "v1.operational-webhook.endpoint.delete",
    tag = "Operational Webhook",
    params(("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such operational endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    let endpoint = locate(&state, &key).await?;
    if !state
        .store()
        .delete_endpoint(&operational_app(), &endpoint.id, now())
        .await?
    {
        return Err(ApiError::not_found("operational webhook endpoint"));
    }
    state.dispatcher().endpoint_changed(&endpoint.id);
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers",
    operation_id = "v1.operational-webhook.endpoint.get-headers",
    tag = "Operational Webhook",
    params(("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    responses(
        (status = 200, description = "The custom headers", body = HeadersOut),
        (status = 404, description = "No such operational endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn read_headers(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> ApiResult<JsonBytes> {
    let endpoint = locate(&state, &key).await?;
    JsonBytes::new(StatusCode::OK, &redact(endpoint.headers, false))
}

#[utoipa::path(
    put,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/headers",
    operation_id = "v1.operational-webhook.endpoint.set-headers",
    tag = "Operational Webhook",
    params(("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = OperationalWebhookEndpointHeadersIn,
    responses(
        (status = 204, description = "Replaced"),
        (status = 404, description = "No such operational endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn replace_headers(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    Json(input): Json<OperationalWebhookEndpointHeadersIn>,
) -> ApiResult<StatusCode> {
    let headers = check_all(input.headers)?;
    let mut endpoint = locate(&state, &key).await?;
    endpoint.headers = headers;
    endpoint.updated_at = now();
    save(&state, &endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret",
    operation_id = "v1.operational-webhook.endpoint.get-secret",
    tag = "Operational Webhook",
    params(("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    responses(
        (status = 200, description = "The current signing secret", body = SecretOut),
        (status = 404, description = "No such operational endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn read_secret(
    State(state): State<ApiState>,
    Path(key): Path<String>,
) -> ApiResult<JsonBytes> {
    let endpoint = locate(&state, &key).await?;
    JsonBytes::new(StatusCode::OK, &SecretOut::of(&endpoint))
}

/// Answers 204, as Svix does for operational endpoints; the old secret keeps signing for the
/// grace period.
#[utoipa::path(
    post,
    path = "/api/v1/operational-webhook/endpoint/{endpoint_id}/secret/rotate",
    operation_id = "v1.operational-webhook.endpoint.rotate-secret",
    tag = "Operational Webhook",
    params(("endpoint_id" = String, Path, description = "The endpoint's id or uid")),
    request_body = RotateIn,
    responses(
        (status = 204, description = "Rotated"),
        (status = 404, description = "No such operational endpoint", body = ErrorBody),
        (status = 422, description = "A field is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn rotate(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    Json(input): Json<RotateIn>,
) -> ApiResult<StatusCode> {
    let mut endpoint = locate(&state, &key).await?;
    rotate_to(&mut endpoint, input)?;
    save(&state, &endpoint).await?;
    Ok(StatusCode::NO_CONTENT)
}
