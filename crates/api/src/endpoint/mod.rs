//! `/api/v1/app/{app}/endpoint`: an application's endpoints, the destination URLs its messages
//! are delivered to, with their filters, rate limit, signing secret and custom headers.
//!
//! `{app}` and `{ep}` take an id or a uid. PUT is create-or-update: an unknown key that is not
//! an id becomes the new endpoint's uid. Svix's older and newer field names are both accepted
//! (`filterTypes`/`eventTypes`, `rateLimit`/`throttleRate`; the newer one wins when a body has
//! both) and both are emitted. Every change tells this node's engine
//! (`Dispatcher::endpoint_changed`), which drops what it cached of the endpoint.
//!
//! Submodules, one per sub-resource: `secret` (read and rotate the signing secret), `headers`
//! (custom headers, sensitive ones redacted), `recover` (re-queue failed deliveries, and the
//! delivery counts), `replay` (replay what it missed or got, send an example),
//! `operational_webhook` (the operational endpoints: endpoints of the reserved operational
//! application, under their own routes), `health` (webhookd's own: last attempt, failing
//! since, success rate), `options` (the payload filter and the delivery overrides, and the
//! route that tests a filter), `patch` (the PATCH body).

pub(crate) mod headers;
pub(crate) mod health;
mod names;
pub(crate) mod operational_webhook;
pub(crate) mod options;
mod patch;
pub(crate) mod recover;
pub(crate) mod replay;
pub(crate) mod secret;

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::ToSchema;
use webhookd_core::model::{Application, Endpoint, POLLING_URL};
use webhookd_core::retry::RetrySchedule;
use webhookd_core::signing::{Secret, SignatureType};
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_core::{AppId, EndpointId, validate};
use webhookd_core::{EndpointKey, Key};
use webhookd_store::Order;

use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency::{self, IdempotencyKey};
use crate::query::ListQuery;
use crate::wire::{
    JsonBytes, ListResponse, check_metadata, check_rate, check_text, check_uid, rate,
};
use names::{check_names, event_types};
use patch::EndpointPatch;

/// The most channels an endpoint may listen to.
const MAX_CHANNELS: usize = 10;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route(
            "/app/{app}/endpoint",
            get(list).merge(idempotency::post_with_effect(create)),
        )
        .route(
            "/app/{app}/endpoint/{ep}",
            get(read).put(put).patch(patch).delete(delete),
        )
        .merge(secret::router())
        .merge(headers::router())
        .merge(recover::router())
        .merge(replay::router())
        .merge(operational_webhook::router())
        .merge(health::router())
        .merge(options::router())
}

/// The body of create and PUT. Absent and `null` fields take their defaults.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndpointIn {
    /// Where messages are POSTed: `http` or `https`, with a host and no credentials; or
    /// `poll:`, a polling endpoint, whose consumer reads its messages through the poller API.
    #[schema(format = "uri", max_length = 2048)]
    url: String,
    #[serde(default)]
    #[schema(max_length = 1024)]
    description: Option<String>,
    #[serde(default)]
    #[schema(minimum = 1)]
    version: Option<i64>,
    #[serde(default)]
    disabled: Option<bool>,
    /// The older name of `eventTypes`.
    #[serde(default)]
    #[schema(max_items = 100)]
    filter_types: Option<Vec<String>>,
    /// The event types delivered to the endpoint; none means every type.
    #[serde(default)]
    #[schema(max_items = 100)]
    event_types: Option<Vec<String>>,
    /// The endpoint receives messages on any of these channels; none means every message.
    #[serde(default)]
    #[schema(max_items = 10)]
    channels: Option<Vec<String>>,
    /// The older name of `throttleRate`.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 65535)]
    rate_limit: Option<u32>,
    /// The most messages per second delivered to the endpoint; no limit when absent.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 65535)]
    throttle_rate: Option<u32>,
    /// webhookd's extension: deliver to the endpoint in order (FIFO), one message at a time,
    /// each only after every earlier one was delivered or finally failed. Off when absent on
    /// create; kept when absent on update.
    #[serde(default)]
    ordered: Option<bool>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = r"^[a-zA-Z0-9\-_.]{1,256}$"
    )]
    uid: Option<String>,
    /// The signing secret: `whsec_` and the base64 of 24 to 64 bytes (HMAC), or `whsk_` and
    /// the base64 of an ed25519 secret key (signatures `v1a,`); generated when absent, of the
    /// kind `WEBHOOKD_SIGNATURE_TYPE` says.
    #[serde(default)]
    secret: Option<String>,
    /// Custom headers sent with every delivery.
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    /// A CEL expression a message must satisfy to be delivered here (`payload`, `eventType`,
    /// `channels`); one that errs counts as no match. Every message when absent.
    #[serde(default)]
    #[schema(max_length = 4096)]
    payload_filter: Option<String>,
    /// The delays after the first attempt (`"5s"`, `"5m"`), instead of the node's schedule;
    /// `[]` never retries.
    #[serde(default)]
    #[schema(max_items = 20)]
    retry_schedule: Option<Vec<String>>,
    /// How long one attempt may take (`"10s"`), instead of the node's; at least `1s` and at
    /// most half the node's lease.
    #[serde(default)]
    request_timeout: Option<String>,
}

/// An [`EndpointIn`] whose every field passed validation, defaults filled in.
struct CheckedEndpoint {
    uid: Option<String>,
    url: String,
    description: String,
    version: i64,
    disabled: bool,
    event_types: Vec<String>,
    channels: Vec<String>,
    throttle_rate: Option<u32>,
    ordered: Option<bool>,
    metadata: Map<String, Value>,
    secret: Option<Secret>,
    headers: Option<BTreeMap<String, String>>,
    payload_filter: Option<String>,
    retry_schedule: Option<RetrySchedule>,
    request_timeout: Option<Duration>,
}

impl EndpointIn {
    /// An input with this URL and every other field at its default (a generated secret).
    pub(crate) fn for_url(url: String) -> Self {
        Self {
            url,
            ..Self::default()
        }
    }

    fn check(self, lease: Duration) -> ApiResult<CheckedEndpoint> {
        let url = check_url(&self.url)?;
        let version = self.version.unwrap_or(1);
        check_version(version)?;
        let throttle_rate = rate(self.throttle_rate, self.rate_limit);
        check_rate("throttleRate", throttle_rate)?;
        check_uid(self.uid.as_deref())?;
        if let Some(description) = &self.description {
            check_text("description", description, validate::MAX_DESCRIPTION_LENGTH)?;
        }
        if let Some(metadata) = &self.metadata {
            check_metadata(metadata)?;
        }
        Ok(CheckedEndpoint {
            event_types: event_types(self.event_types, self.filter_types)?,
            channels: check_names("channels", self.channels.unwrap_or_default(), MAX_CHANNELS)?,
            secret: self
                .secret
                .as_deref()
                .map(|text| parse_secret("secret", text))
                .transpose()?,
            headers: self.headers.map(headers::check_all).transpose()?,
            payload_filter: options::check_filter(self.payload_filter)?,
            retry_schedule: options::check_schedule(self.retry_schedule)?,
            request_timeout: options::check_timeout(self.request_timeout, lease)?,
            uid: self.uid,
            url,
            description: self.description.unwrap_or_default(),
            version,
            disabled: self.disabled.unwrap_or(false),
            throttle_rate,
            ordered: self.ordered,
            metadata: self.metadata.unwrap_or_default(),
        })
    }
}

impl CheckedEndpoint {
    /// The new endpoint; without a secret given, one of `kind` is generated.
    fn into_endpoint(self, app_id: AppId, kind: SignatureType) -> Endpoint {
        let at = now();
        Endpoint {
            id: EndpointId::new(),
            app_id,
            uid: self.uid,
            url: self.url,
            description: self.description,
            version: self.version,
            disabled: self.disabled,
            event_types: self.event_types,
            channels: self.channels,
            throttle_rate: self.throttle_rate,
            ordered: self.ordered.unwrap_or(false),
            metadata: self.metadata,
            headers: self.headers.unwrap_or_default(),
            secret: self.secret.unwrap_or_else(|| Secret::generate_of(kind)),
            retired_secrets: Vec::new(),
            failing_since: None,
            payload_filter: self.payload_filter,
            retry_schedule: self.retry_schedule,
            request_timeout: self.request_timeout,
            created_at: at,
            updated_at: at,
        }
    }

    /// PUT on an existing endpoint: every field is replaced, except that an absent uid keeps
    /// the old one, absent headers keep the old ones, an absent `ordered` keeps the old
    /// setting (clients that do not know it leave it alone), and a new secret is adopted as by a
    /// rotation with the default grace period (the old one keeps signing for a while).
    fn replace(self, endpoint: &mut Endpoint, at: OffsetDateTime) {
        endpoint.uid = self.uid.or(endpoint.uid.take());
        endpoint.url = self.url;
        endpoint.description = self.description;
        endpoint.version = self.version;
        set_disabled(endpoint, self.disabled);
        endpoint.event_types = self.event_types;
        endpoint.channels = self.channels;
        endpoint.throttle_rate = self.throttle_rate;
        if let Some(ordered) = self.ordered {
            endpoint.ordered = ordered;
        }
        endpoint.metadata = self.metadata;
        endpoint.payload_filter = self.payload_filter;
        endpoint.retry_schedule = self.retry_schedule;
        endpoint.request_timeout = self.request_timeout;
        if let Some(headers) = self.headers {
            endpoint.headers = headers;
        }
        if let Some(secret) = self.secret {
            secret::adopt(endpoint, secret, at);
        }
        endpoint.updated_at = at;
    }
}

/// A new endpoint of the application from this input, validated; its secret is generated
/// unless the input gives one. Shared by create and the `/webhooks` registration.
/// The most endpoints one application may have.
pub(crate) const MAX_ENDPOINTS_PER_APPLICATION: u64 = 1_000;

/// Refuses a new endpoint when the application already has the most it may have.
pub(crate) async fn ensure_room(state: &ApiState, app: &AppId) -> ApiResult<()> {
    if state.store().count_endpoints(app).await? >= MAX_ENDPOINTS_PER_APPLICATION {
        return Err(ApiError::invalid(
            &["body"],
            format!(
                "an application may have at most {MAX_ENDPOINTS_PER_APPLICATION} endpoints; \
                 delete one first"
            ),
        ));
    }
    Ok(())
}

pub(crate) fn new_endpoint(
    app_id: &AppId,
    input: EndpointIn,
    kind: SignatureType,
    lease: Duration,
) -> ApiResult<Endpoint> {
    Ok(input.check(lease)?.into_endpoint(app_id.clone(), kind))
}

/// An endpoint as the API shows it. Never carries the secret or the custom headers, which have
/// routes of their own.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndpointOut {
    #[schema(value_type = String, example = "ep_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E")]
    id: EndpointId,
    #[schema(required)]
    uid: Option<String>,
    url: String,
    description: String,
    version: i64,
    disabled: bool,
    /// The same as `eventTypes`, under Svix's older name.
    #[schema(required)]
    filter_types: Option<Vec<String>>,
    /// `null` when the endpoint receives every type.
    #[schema(required)]
    event_types: Option<Vec<String>>,
    /// `null` when the endpoint receives every message.
    #[schema(required)]
    channels: Option<Vec<String>>,
    /// The same as `throttleRate`, under Svix's older name.
    #[schema(required)]
    rate_limit: Option<u32>,
    #[schema(required)]
    throttle_rate: Option<u32>,
    /// Present (`true`) only when the endpoint delivers in order.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    ordered: bool,
    metadata: Map<String, Value>,
    /// Absent when the endpoint has no payload filter.
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_filter: Option<String>,
    /// Absent when the node's retry schedule applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    retry_schedule: Option<Vec<String>>,
    /// Absent when the node's request timeout applies.
    #[serde(skip_serializing_if = "Option::is_none")]
    request_timeout: Option<String>,
    #[serde(with = "serde_rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "serde_rfc3339")]
    updated_at: OffsetDateTime,
}

impl From<&Endpoint> for EndpointOut {
    fn from(endpoint: &Endpoint) -> Self {
        let non_empty = |list: &Vec<String>| (!list.is_empty()).then(|| list.clone());
        Self {
            id: endpoint.id.clone(),
            uid: endpoint.uid.clone(),
            url: endpoint.url.clone(),
            description: endpoint.description.clone(),
            version: endpoint.version,
            disabled: endpoint.disabled,
            filter_types: non_empty(&endpoint.event_types),
            event_types: non_empty(&endpoint.event_types),
            channels: non_empty(&endpoint.channels),
            rate_limit: endpoint.throttle_rate,
            throttle_rate: endpoint.throttle_rate,
            ordered: endpoint.ordered,
            metadata: endpoint.metadata.clone(),
            payload_filter: endpoint.payload_filter.clone(),
            retry_schedule: options::schedule_out(endpoint.retry_schedule.as_ref()),
            request_timeout: options::timeout_out(endpoint.request_timeout),
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
        }
    }
}

/// The URL to store (see `validate::stored_destination`), or 422. `poll:` makes a polling
/// endpoint.
fn check_url(url: &str) -> ApiResult<String> {
    if url == POLLING_URL {
        return Ok(url.to_owned());
    }
    validate::stored_destination(url).map_err(|msg| ApiError::invalid(&["body", "url"], msg))
}

/// Refuses to make a push endpoint a polling one or back: deliveries already queued to it, or
/// the stream its consumers read, would be left in between.
pub(super) fn check_same_kind(endpoint: &Endpoint, url: &str) -> ApiResult<()> {
    if endpoint.is_polling() != (url == POLLING_URL) {
        return Err(ApiError::invalid(
            &["body", "url"],
            "a polling endpoint (`poll:`) stays one, and a push endpoint cannot become one: \
             create another endpoint instead",
        ));
    }
    Ok(())
}

fn check_version(version: i64) -> ApiResult<()> {
    if version < 1 {
        return Err(ApiError::invalid(
            &["body", "version"],
            "must be at least 1",
        ));
    }
    Ok(())
}

/// Parses a `whsec_…` or `whsk_…` secret given in the body field `field`.
fn parse_secret(field: &str, text: &str) -> ApiResult<Secret> {
    Secret::parse(text).map_err(|error| ApiError::invalid(&["body", field], error.to_string()))
}

/// Enabling an endpoint again forgets its run of failures, so that the engine does not
/// disable it again at its next failure.
fn set_disabled(endpoint: &mut Endpoint, disabled: bool) {
    if endpoint.disabled && !disabled {
        endpoint.failing_since = None;
    }
    endpoint.disabled = disabled;
}

/// The application and the endpoint a path names, or 404.
async fn locate(state: &ApiState, app: &str, ep: &str) -> ApiResult<(Application, Endpoint)> {
    let app = state.application(app).await?;
    let endpoint = state.endpoint(&app, ep).await?;
    Ok((app, endpoint))
}

/// Saves a changed endpoint and tells the engine.
async fn save(state: &ApiState, endpoint: &Endpoint) -> ApiResult<()> {
    state.store().update_endpoint(endpoint).await?;
    state.dispatcher().endpoint_changed(&endpoint.id);
    Ok(())
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/endpoint",
    operation_id = "v1.endpoint.list",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ListQuery),
    responses(
        (status = 200, description = "A page of endpoints, oldest first", body = ListResponse<EndpointOut>),
        (status = 404, description = "No such application", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    Path(app): Path<String>,
    query: ListQuery,
) -> ApiResult<JsonBytes> {
    let page = query.page.page(Order::Ascending);
    let app = state.application(&app).await?;
    let endpoints = state.store().list_endpoints(&app.id, &page).await?;
    let list = ListResponse::from_page(
        endpoints,
        |endpoint| endpoint.id.to_string(),
        |endpoint| EndpointOut::from(&endpoint),
    );
    JsonBytes::new(StatusCode::OK, &list)
}

#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/endpoint",
    operation_id = "v1.endpoint.create",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid")),
    request_body = EndpointIn,
    responses(
        (status = 201, description = "Created", body = EndpointOut),
        (status = 404, description = "No such application", body = ErrorBody),
        (status = 409, description = "The `uid` is taken in this application", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    Path(app): Path<String>,
    idempotency: IdempotencyKey,
    Json(input): Json<EndpointIn>,
) -> ApiResult<JsonBytes> {
    let app = state.application(&app).await?;
    let config = state.config();
    let endpoint = new_endpoint(&app.id, input, config.signature_type, config.lease)?;
    ensure_room(&state, &app.id).await?;
    let response = JsonBytes::new(StatusCode::CREATED, &EndpointOut::from(&endpoint))?;
    state
        .store()
        .create_endpoint(&endpoint, idempotency.record(&response).as_ref())
        .await?;
    state.dispatcher().endpoint_changed(&endpoint.id);
    Ok(response.recorded())
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/endpoint/{ep}",
    operation_id = "v1.endpoint.get",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointOut),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn read(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
) -> ApiResult<JsonBytes> {
    let (_, endpoint) = locate(&state, &app, &ep).await?;
    JsonBytes::new(StatusCode::OK, &EndpointOut::from(&endpoint))
}

/// Create-or-update: an unknown key that is not an id becomes the new endpoint's uid.
#[utoipa::path(
    put,
    path = "/api/v1/app/{app}/endpoint/{ep}",
    operation_id = "v1.endpoint.update",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid; an unknown uid creates it")),
    request_body = EndpointIn,
    responses(
        (status = 200, description = "Replaced", body = EndpointOut),
        (status = 201, description = "Created, with the path's uid", body = EndpointOut),
        (status = 404, description = "No such application, or no endpoint has this id", body = ErrorBody),
        (status = 409, description = "The `uid` is taken in this application", body = ErrorBody),
    )
)]
pub(crate) async fn put(
    State(state): State<ApiState>,
    Path((app, key)): Path<(String, String)>,
    Json(input): Json<EndpointIn>,
) -> ApiResult<JsonBytes> {
    let app = state.application(&app).await?;
    let mut checked = input.check(state.config().lease)?;
    let key = EndpointKey::parse(&key);
    match (state.store().get_endpoint(&app.id, &key).await?, key) {
        (Some(mut endpoint), _) => {
            check_same_kind(&endpoint, &checked.url)?;
            checked.replace(&mut endpoint, now());
            save(&state, &endpoint).await?;
            JsonBytes::new(StatusCode::OK, &EndpointOut::from(&endpoint))
        }
        (None, Key::Id(_)) => Err(ApiError::not_found("endpoint")),
        (None, Key::Name(key)) => {
            if checked.uid.as_deref().is_some_and(|uid| uid != key) {
                return Err(ApiError::invalid(
                    &["body", "uid"],
                    "must match the uid in the path",
                ));
            }
            check_uid(Some(&key)).map_err(|_| ApiError::not_found("endpoint"))?;
            checked.uid = Some(key);
            ensure_room(&state, &app.id).await?;
            let endpoint = checked.into_endpoint(app.id, state.config().signature_type);
            state.store().create_endpoint(&endpoint, None).await?;
            state.dispatcher().endpoint_changed(&endpoint.id);
            JsonBytes::new(StatusCode::CREATED, &EndpointOut::from(&endpoint))
        }
    }
}

#[utoipa::path(
    patch,
    path = "/api/v1/app/{app}/endpoint/{ep}",
    operation_id = "v1.endpoint.patch",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    request_body = EndpointPatch,
    responses(
        (status = 200, description = "Updated", body = EndpointOut),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
        (status = 409, description = "The `uid` is taken in this application", body = ErrorBody),
    )
)]
pub(crate) async fn patch(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    Json(input): Json<EndpointPatch>,
) -> ApiResult<JsonBytes> {
    let (_, mut endpoint) = locate(&state, &app, &ep).await?;
    input.apply(&mut endpoint, now(), state.config().lease)?;
    save(&state, &endpoint).await?;
    JsonBytes::new(StatusCode::OK, &EndpointOut::from(&endpoint))
}

/// Deletes the endpoint; the store cancels its pending deliveries.
#[utoipa::path(
    delete,
    path = "/api/v1/app/{app}/endpoint/{ep}",
    operation_id = "v1.endpoint.delete",
    tag = "Endpoint",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn delete(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let (app, endpoint) = locate(&state, &app, &ep).await?;
    if !state
        .store()
        .delete_endpoint(&app.id, &endpoint.id, now())
        .await?
    {
        return Err(ApiError::not_found("endpoint"));
    }
    state.dispatcher().endpoint_changed(&endpoint.id);
    Ok(StatusCode::NO_CONTENT)
}
