//! Delivery attempts and delivery states, as the application (and its customers) read them,
//! and the manual resend.
//!
//! - `/app/{app}/attempt/msg/{msg}` and `/app/{app}/attempt/endpoint/{ep}`: attempts, newest
//!   first, filtered by `status`, `status_code_class`, `event_types`, `channel`, `tag`,
//!   `endpoint_id`, `before`, `after`. With `with_content=false` (the SDKs' default) each
//!   response body reads `{}`, as Svix's does; `with_msg=true` embeds the message in each
//!   attempt (`msg`). `expanded_statuses` is accepted and changes nothing.
//! - `/app/{app}/msg/{msg}/attempt/{id}`: one attempt.
//! - `/app/{app}/msg/{msg}/endpoint`: the message's delivery to each endpoint it fanned out to.
//! - `/app/{app}/endpoint/{ep}/msg`: the endpoint's deliveries, newest message first.
//! - `POST /app/{app}/msg/{msg}/endpoint/{ep}/resend`: one manual attempt, 202 `{}`.
//!
//! A resend is handed to this node's engine. On a node that does not deliver
//! (`WEBHOOKD_ROLE=api`) it is queued in the store, and a delivering node takes it from there
//! and makes the one manual attempt.
//!
//! Every id or key in a path that is malformed or unknown answers 404.

use std::collections::HashMap;
use std::str::FromStr;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use webhookd_core::model::{Application, Attempt, Delivery, DeliveryStatus, Endpoint, Message};
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_core::{AttemptId, EndpointId, MessageId};
use webhookd_core::{Key, MessageKey};
use webhookd_store::{AttemptFilter, AttemptScope, Order};

use crate::ApiState;
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::Path;
use crate::idempotency;
use crate::message::borrowed;
use crate::message_out::{MessageOut, PayloadOut};
use crate::poller::refuse_polling;
use crate::query::{self, ListQuery};
use crate::wire::{Empty, JsonBytes, ListResponse, non_empty};

/// The values `status_code_class` takes: 0 is "no response".
const STATUS_CODE_CLASSES: [u16; 6] = [0, 100, 200, 300, 400, 500];

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/app/{app}/attempt/msg/{msg}", get(list_by_message))
        .route("/app/{app}/attempt/endpoint/{ep}", get(list_by_endpoint))
        .route("/app/{app}/msg/{msg}/attempt/{id}", get(read))
        .route(
            "/app/{app}/msg/{msg}/endpoint",
            get(list_message_deliveries),
        )
        .route(
            "/app/{app}/endpoint/{ep}/msg",
            get(list_endpoint_deliveries),
        )
        .route(
            "/app/{app}/msg/{msg}/endpoint/{ep}/resend",
            idempotency::post(resend),
        )
}

/// One HTTP request made to deliver a message to an endpoint.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageAttemptOut {
    #[schema(value_type = String, example = "atmpt_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E")]
    id: AttemptId,
    #[schema(value_type = String)]
    msg_id: MessageId,
    #[schema(value_type = String)]
    endpoint_id: EndpointId,
    url: String,
    #[schema(schema_with = crate::schema::status_code)]
    status: i64,
    #[schema(schema_with = crate::schema::status_text)]
    status_text: &'static str,
    /// The endpoint's body (its first 1,024 bytes), or why there was no response.
    response: String,
    /// 0 when there was no response.
    response_status_code: u16,
    response_duration_ms: u64,
    /// 0 scheduled, 1 manual.
    #[schema(minimum = 0, maximum = 1)]
    trigger_type: i64,
    #[serde(with = "serde_rfc3339")]
    timestamp: OffsetDateTime,
    /// The message, in lists asked `with_msg=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::message_out::MessageOut>)]
    msg: Option<Box<RawValue>>,
}

impl From<Attempt> for MessageAttemptOut {
    fn from(attempt: Attempt) -> Self {
        Self {
            id: attempt.id,
            msg_id: attempt.msg_id,
            endpoint_id: attempt.endpoint_id,
            url: attempt.url,
            status: attempt.status.code(),
            status_text: attempt.status.text(),
            response: attempt.response,
            response_status_code: attempt.response_status_code,
            response_duration_ms: attempt.duration_ms,
            trigger_type: attempt.trigger_type.code(),
            timestamp: attempt.created_at,
            msg: None,
        }
    }
}

/// When the delivery will be tried next: only a delivery still under way has a next attempt.
fn next_attempt(delivery: &Delivery) -> Option<OffsetDateTime> {
    match delivery.status {
        DeliveryStatus::Pending | DeliveryStatus::Sending => delivery.next_attempt_at,
        _ => None,
    }
}

/// An endpoint with the state of one message's delivery to it (Svix's `MessageEndpointOut`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageEndpointOut<'a> {
    #[schema(value_type = String)]
    id: &'a EndpointId,
    #[schema(required)]
    uid: Option<&'a str>,
    url: &'a str,
    description: &'a str,
    disabled: bool,
    #[schema(required, value_type = Option<Vec<String>>)]
    filter_types: Option<&'a [String]>,
    #[schema(required, value_type = Option<Vec<String>>)]
    event_types: Option<&'a [String]>,
    #[schema(required, value_type = Option<Vec<String>>)]
    channels: Option<&'a [String]>,
    #[schema(required)]
    rate_limit: Option<u32>,
    #[schema(required)]
    throttle_rate: Option<u32>,
    #[schema(value_type = Map<String, Value>)]
    metadata: &'a Map<String, Value>,
    #[serde(with = "serde_rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "serde_rfc3339")]
    updated_at: OffsetDateTime,
    version: i64,
    #[schema(schema_with = crate::schema::status_code)]
    status: i64,
    #[schema(schema_with = crate::schema::status_text)]
    status_text: &'static str,
    /// When the delivery is tried next; `null` unless it is pending or sending.
    #[serde(with = "serde_rfc3339::option")]
    #[schema(required)]
    next_attempt: Option<OffsetDateTime>,
}

impl<'a> MessageEndpointOut<'a> {
    fn of((endpoint, delivery): &'a (Endpoint, Delivery)) -> Self {
        Self {
            id: &endpoint.id,
            uid: endpoint.uid.as_deref(),
            url: &endpoint.url,
            description: &endpoint.description,
            disabled: endpoint.disabled,
            filter_types: non_empty(&endpoint.event_types),
            event_types: non_empty(&endpoint.event_types),
            channels: non_empty(&endpoint.channels),
            rate_limit: endpoint.throttle_rate,
            throttle_rate: endpoint.throttle_rate,
            metadata: &endpoint.metadata,
            created_at: endpoint.created_at,
            updated_at: endpoint.updated_at,
            version: endpoint.version,
            status: delivery.status.code(),
            status_text: delivery.status.text(),
            next_attempt: next_attempt(delivery),
        }
    }
}

/// A message with the state of its delivery to one endpoint (Svix's `EndpointMessageOut`).
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EndpointMessageOut<'a> {
    #[schema(value_type = String)]
    id: &'a MessageId,
    event_type: &'a str,
    #[schema(required)]
    event_id: Option<&'a str>,
    /// The payload when it is a JSON object, else `{}` (also with `with_content=false`).
    #[schema(value_type = Object)]
    payload: PayloadOut<'a>,
    #[schema(required, value_type = Option<Vec<String>>)]
    channels: Option<&'a [String]>,
    #[schema(required, value_type = Option<Vec<String>>)]
    tags: Option<&'a [String]>,
    #[serde(with = "serde_rfc3339")]
    timestamp: OffsetDateTime,
    #[serde(
        with = "serde_rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    deliver_at: Option<OffsetDateTime>,
    #[schema(schema_with = crate::schema::status_code)]
    status: i64,
    #[schema(schema_with = crate::schema::status_text)]
    status_text: &'static str,
    /// When the delivery is tried next; `null` unless it is pending or sending.
    #[serde(with = "serde_rfc3339::option")]
    #[schema(required)]
    next_attempt: Option<OffsetDateTime>,
}

impl<'a> EndpointMessageOut<'a> {
    fn of((message, delivery): &'a (Message, Delivery), with_content: bool) -> Self {
        Self {
            id: &message.id,
            event_type: &message.event_type,
            event_id: message.event_id.as_deref(),
            payload: PayloadOut::shown(&message.payload, with_content),
            channels: non_empty(&message.channels),
            tags: non_empty(&message.tags),
            timestamp: message.created_at,
            deliver_at: message.deliver_at,
            status: delivery.status.code(),
            status_text: delivery.status.text(),
            next_attempt: next_attempt(delivery),
        }
    }
}

/// The parameters of the attempt and delivery lists, besides their page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AttemptListParams {
    /// Only this delivery status: 0 success, 1 pending, 2 fail, 3 sending, 4 canceled.
    #[serde(default, deserialize_with = "delivery_status")]
    #[param(value_type = Option<i64>, minimum = 0, maximum = 4)]
    status: Option<DeliveryStatus>,
    /// Only responses of this class: 0 (no response), 100, 200, 300, 400 or 500.
    #[serde(default, deserialize_with = "status_code_class")]
    status_code_class: Option<u16>,
    /// Only messages of these types (repeated, or comma-separated).
    #[serde(default)]
    event_types: Vec<String>,
    /// Only messages on this channel.
    channel: Option<String>,
    /// Only this endpoint (an id or uid of the application's).
    endpoint_id: Option<String>,
    /// Only before this time.
    #[serde(default, deserialize_with = "serde_rfc3339::option::deserialize")]
    before: Option<OffsetDateTime>,
    /// Only after this time.
    #[serde(default, deserialize_with = "serde_rfc3339::option::deserialize")]
    after: Option<OffsetDateTime>,
    /// Response bodies read `{}` when false (true by default).
    #[serde(default = "query::yes")]
    with_content: bool,
    /// Accepted, as the SDKs send it.
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "read so that a wrong value answers 422; it changes nothing"
    )]
    expanded_statuses: bool,
    /// Embed each attempt's message as `msg` (false by default).
    #[serde(default)]
    with_msg: bool,
    /// Only messages with this tag.
    tag: Option<String>,
}

/// `status`: a delivery status by its number.
fn delivery_status<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DeliveryStatus>, D::Error> {
    let code = i64::deserialize(deserializer)?;
    DeliveryStatus::from_code(code).map(Some).ok_or_else(|| {
        serde::de::Error::custom(
            "must be 0 (success), 1 (pending), 2 (fail), 3 (sending) or 4 (canceled)",
        )
    })
}

/// `status_code_class`: one of [`STATUS_CODE_CLASSES`].
fn status_code_class<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u16>, D::Error> {
    let class = u16::deserialize(deserializer)?;
    if STATUS_CODE_CLASSES.contains(&class) {
        Ok(Some(class))
    } else {
        Err(serde::de::Error::custom(
            "must be 0 (no response), 100, 200, 300, 400 or 500",
        ))
    }
}

/// The store's filter of these parameters; `endpoint_id` (an id or a uid) must name an
/// endpoint of the application.
async fn attempt_filter(
    state: &ApiState,
    app: &Application,
    params: &AttemptListParams,
) -> ApiResult<AttemptFilter> {
    let endpoint_id = match &params.endpoint_id {
        Some(key) => Some(state.endpoint(app, key).await?.id),
        None => None,
    };
    Ok(AttemptFilter {
        status: params.status,
        status_code_class: params.status_code_class,
        event_types: params.event_types.clone(),
        channel: params.channel.clone(),
        tag: params.tag.clone(),
        endpoint_id,
        before: params.before,
        after: params.after,
    })
}

async fn message(state: &ApiState, app: &Application, key: &str) -> ApiResult<Message> {
    state
        .store()
        .get_message(&app.id, &MessageKey::parse(key))
        .await?
        .ok_or_else(|| ApiError::not_found("message"))
}

async fn list_attempts(
    state: &ApiState,
    app: &Application,
    scope: AttemptScope,
    ListQuery { page, params }: ListQuery<AttemptListParams>,
) -> ApiResult<JsonBytes> {
    let filter = attempt_filter(state, app, &params).await?;
    let with_content = params.with_content;
    let attempts = state
        .store()
        .list_attempts(&app.id, &scope, &filter, &page.page(Order::Descending))
        .await?;
    let messages = if params.with_msg {
        embedded_messages(state, app, &attempts.items).await?
    } else {
        HashMap::new()
    };
    let list = ListResponse::from_page(
        attempts,
        |attempt| attempt.id.to_string(),
        |attempt| {
            let msg = messages.get(&attempt.msg_id).cloned();
            let mut out = MessageAttemptOut::from(attempt);
            if !with_content {
                out.response = "{}".to_owned();
            }
            out.msg = msg;
            out
        },
    );
    JsonBytes::new(StatusCode::OK, &list)
}

/// The messages of these attempts, each as its `MessageOut`, by id.
async fn embedded_messages(
    state: &ApiState,
    app: &Application,
    attempts: &[Attempt],
) -> ApiResult<HashMap<MessageId, Box<RawValue>>> {
    let mut messages = HashMap::new();
    for attempt in attempts {
        if messages.contains_key(&attempt.msg_id) {
            continue;
        }
        if let Some(message) = state
            .store()
            .get_message(&app.id, &Key::Id(attempt.msg_id.clone()))
            .await?
        {
            let shown = serde_json::to_string(&MessageOut::of(&message, true))
                .and_then(RawValue::from_string)
                .map_err(|error| {
                    ApiError::Internal(format!("a message did not serialize: {error}"))
                })?;
            messages.insert(attempt.msg_id.clone(), shown);
        }
    }
    Ok(messages)
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/attempt/msg/{msg}",
    operation_id = "v1.message-attempt.list-by-msg",
    tag = "Message Attempt",
    params(
        ("app" = String, Path, description = "The application's id or uid"),
        ("msg" = String, Path, description = "The message's id or `eventId`"),
        ListQuery<AttemptListParams>,
    ),
    responses(
        (status = 200, description = "A page of the message's attempts, newest first", body = ListResponse<MessageAttemptOut>),
        (status = 404, description = "No such application, message or `endpoint_id`", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn list_by_message(
    State(state): State<ApiState>,
    Path((app, msg)): Path<(String, String)>,
    query: ListQuery<AttemptListParams>,
) -> ApiResult<JsonBytes> {
    let app = state.application(&app).await?;
    let message = message(&state, &app, &msg).await?;
    list_attempts(&state, &app, AttemptScope::Message(message.id), query).await
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/attempt/endpoint/{ep}",
    operation_id = "v1.message-attempt.list-by-endpoint",
    tag = "Message Attempt",
    params(
        ("app" = String, Path, description = "The application's id or uid"),
        ("ep" = String, Path, description = "The endpoint's id or uid"),
        ListQuery<AttemptListParams>,
    ),
    responses(
        (status = 200, description = "A page of the endpoint's attempts, newest first", body = ListResponse<MessageAttemptOut>),
        (status = 404, description = "No such application, endpoint or `endpoint_id`", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn list_by_endpoint(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    query: ListQuery<AttemptListParams>,
) -> ApiResult<JsonBytes> {
    let app = state.application(&app).await?;
    let endpoint = state.endpoint(&app, &ep).await?;
    list_attempts(&state, &app, AttemptScope::Endpoint(endpoint.id), query).await
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/msg/{msg}/attempt/{id}",
    operation_id = "v1.message-attempt.get",
    tag = "Message Attempt",
    params(
        ("app" = String, Path, description = "The application's id or uid"),
        ("msg" = String, Path, description = "The message's id or `eventId`"),
        ("id" = String, Path, description = "The attempt's id"),
    ),
    responses(
        (status = 200, description = "The attempt", body = MessageAttemptOut),
        (status = 404, description = "No such application, message or attempt", body = ErrorBody),
    )
)]
pub(crate) async fn read(
    State(state): State<ApiState>,
    Path((app, msg, id)): Path<(String, String, String)>,
) -> ApiResult<JsonBytes> {
    let not_found = || ApiError::not_found("attempt");
    let id = AttemptId::from_str(&id).map_err(|_| not_found())?;
    let app = state.application(&app).await?;
    let message = message(&state, &app, &msg).await?;
    let attempt = state
        .store()
        .get_attempt(&app.id, &message.id, &id)
        .await?
        .ok_or_else(not_found)?;
    JsonBytes::new(StatusCode::OK, &MessageAttemptOut::from(attempt))
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/msg/{msg}/endpoint",
    operation_id = "v1.message-attempt.list-attempted-destinations",
    tag = "Message Attempt",
    params(("app" = String, Path, description = "The application's id or uid"), ("msg" = String, Path, description = "The message's id or `eventId`"), ListQuery),
    responses(
        (status = 200, description = "A page of the endpoints the message fanned out to, with the state of each delivery", body = ListResponse<MessageEndpointOut>),
        (status = 404, description = "No such application or message", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn list_message_deliveries(
    State(state): State<ApiState>,
    Path((app, msg)): Path<(String, String)>,
    query: ListQuery,
) -> ApiResult<JsonBytes> {
    let page = query.page.page(Order::Ascending);
    let app = state.application(&app).await?;
    let message = message(&state, &app, &msg).await?;
    let deliveries = state
        .store()
        .list_message_deliveries(&app.id, &message.id, &page)
        .await?;
    let list = ListResponse::from_page(
        borrowed(&deliveries),
        |(endpoint, _)| endpoint.id.to_string(),
        MessageEndpointOut::of,
    );
    JsonBytes::new(StatusCode::OK, &list)
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/endpoint/{ep}/msg",
    operation_id = "v1.message-attempt.list-attempted-messages",
    tag = "Message Attempt",
    params(
        ("app" = String, Path, description = "The application's id or uid"),
        ("ep" = String, Path, description = "The endpoint's id or uid"),
        ListQuery<AttemptListParams>,
    ),
    responses(
        (status = 200, description = "A page of the messages delivered to the endpoint, newest first, with the state of each delivery", body = ListResponse<EndpointMessageOut>),
        (status = 404, description = "No such application, endpoint or `endpoint_id`", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn list_endpoint_deliveries(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    ListQuery { page, params }: ListQuery<AttemptListParams>,
) -> ApiResult<JsonBytes> {
    let with_content = params.with_content;
    let app = state.application(&app).await?;
    let endpoint = state.endpoint(&app, &ep).await?;
    let filter = attempt_filter(&state, &app, &params).await?;
    let deliveries = state
        .store()
        .list_endpoint_deliveries(
            &app.id,
            &endpoint.id,
            &filter,
            &page.page(Order::Descending),
        )
        .await?;
    let list = ListResponse::from_page(
        borrowed(&deliveries),
        |(message, _)| message.id.to_string(),
        |delivery| EndpointMessageOut::of(delivery, with_content),
    );
    JsonBytes::new(StatusCode::OK, &list)
}

/// One manual attempt of the message to the endpoint. For an ordered endpoint, the message
/// is queued again at the end of its line instead (left there when still pending).
#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/msg/{msg}/endpoint/{ep}/resend",
    operation_id = "v1.message-attempt.resend",
    tag = "Message Attempt",
    params(("app" = String, Path, description = "The application's id or uid"), ("msg" = String, Path, description = "The message's id or `eventId`"), ("ep" = String, Path, description = "The endpoint's id or uid")),
    responses(
        (status = 202, description = "The attempt is on its way", body = Empty),
        (status = 400, description = "The payload was deleted by retention (`payload_expunged`)", body = ErrorBody),
        (status = 404, description = "No such application, message or endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn resend(
    State(state): State<ApiState>,
    Path((app, msg, ep)): Path<(String, String, String)>,
) -> ApiResult<JsonBytes> {
    let app = state.application(&app).await?;
    let message = message(&state, &app, &msg).await?;
    let endpoint = state.endpoint(&app, &ep).await?;
    refuse_polling(&endpoint, "resend")?;
    if message.payload.is_empty() {
        return Err(ApiError::BadRequest {
            code: "payload_expunged",
            detail: "the message's payload was deleted by retention; it cannot be sent again"
                .into(),
        });
    }
    let response = JsonBytes::new(StatusCode::ACCEPTED, &Empty {})?;
    let (app_id, msg_id, endpoint_id) = (app.id.clone(), message.id.clone(), endpoint.id.clone());
    if endpoint.ordered {
        // An attempt out of turn would break the endpoint's order: the message is queued
        // again at the end of its line instead (or left in it, when still pending).
        state
            .store()
            .requeue(&app_id, &msg_id, &endpoint_id, now())
            .await?;
        state.dispatcher().wake();
        return Ok(response);
    }
    if !state.dispatcher().resend(message, endpoint) {
        // Not a delivering node: queue the manual attempt for the nodes that deliver.
        state
            .store()
            .request_resend(&app_id, &msg_id, &endpoint_id, now())
            .await?;
    }
    Ok(response)
}
