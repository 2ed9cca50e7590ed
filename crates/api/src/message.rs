//! `/api/v1/app/{app}/msg`: posting events and reading them back.
//!
//! Creating a message is the hot path of the whole service, so it is kept to the minimum:
//!
//! 1. parse and validate the body; the payload is kept as the exact bytes it arrived as (a
//!    `RawValue`), never parsed into a tree and written out again;
//! 2. one read to resolve the application (and, when the body carries an `application` and
//!    the path's uid is unknown, one write to create it);
//! 3. the `MessageOut` answer is serialized once, before the write, so that the idempotency
//!    record commits in the same (group-committed) transaction as the message and its fan-out;
//! 4. the fresh deliveries, created leased to this node, go straight to the dispatcher.
//!
//! What is delivered is the payload's bytes, or, when `transformationsParams.rawPayload` is a
//! string (the SDKs' helper for raw bodies), that string's bytes. Reading a message shows the
//! stored bytes when they hold a JSON object, and `{}` otherwise (a raw payload that is not a
//! JSON object, a payload expunged by retention, or `with_content=false`).
//!
//! A message is addressed by its id or by its `eventId`. An `eventId` that starts with `msg_`
//! is stored, but it can only be read back by the message's id, since `msg_…` names an id.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use webhookd_core::MessageKey;
use webhookd_core::model::{Application, Message};
use webhookd_core::time::{now, serde_rfc3339};
use webhookd_core::{AppId, MessageId, validate};
use webhookd_store::{MessageFilter, Order, Page, Taken};

use crate::ApiState;
use crate::application::ApplicationIn;
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency::{self, IdempotencyKey};
use crate::message_out::{MessageOut, PayloadOut};
use crate::query::{self, ListQuery, Query};
use crate::wire::{JsonBytes, ListResponse, non_empty};

/// The most channels, and the most tags, a message may carry.
const MAX_CHANNELS: usize = 10;
const MAX_TAGS: usize = 10;
/// The longest `eventId`, in characters.
const MAX_EVENT_ID_LENGTH: usize = 256;
/// `payloadRetentionPeriod` (days) and `payloadRetentionHours` bounds.
const MAX_RETENTION_DAYS: i64 = 90;
const MAX_RETENTION_HOURS: i64 = MAX_RETENTION_DAYS * 24;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route(
            "/app/{app}/msg",
            get(list).merge(idempotency::post_with_effect(create)),
        )
        .route("/app/{app}/msg/{msg}", get(read))
}

/// The body of a create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageIn {
    /// The event type: letters, digits and `-_.:*/`.
    // Optional in Rust only so that its absence is reported at `["body", "eventType"]`.
    #[serde(default)]
    #[schema(required, value_type = String, min_length = 1, max_length = 256, pattern = r"^[a-zA-Z0-9\-_.:*/]{1,256}$")]
    event_type: Option<String>,
    /// A JSON object, delivered byte for byte; required unless
    /// `transformationsParams.rawPayload` is given.
    #[serde(default)]
    #[schema(value_type = Object)]
    payload: Option<Box<RawValue>>,
    /// Your own key for the message, unique in the application while the message is kept.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256)]
    event_id: Option<String>,
    #[serde(default)]
    #[schema(max_items = 10)]
    channels: Option<Vec<String>>,
    #[serde(default)]
    #[schema(max_items = 10)]
    tags: Option<Vec<String>>,
    /// The first attempt waits until then.
    #[serde(default, with = "serde_rfc3339::option")]
    deliver_at: Option<OffsetDateTime>,
    /// How long the payload is kept, in days: 1 to 90.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 90)]
    payload_retention_period: Option<i64>,
    /// How long the payload is kept, in hours: 1 to 2160; wins over the period in days.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 2160)]
    payload_retention_hours: Option<i64>,
    /// Creates the application, with the path's key as its uid, when there is none.
    #[serde(default)]
    application: Option<ApplicationIn>,
    #[serde(default)]
    transformations_params: Option<TransformationsParams>,
}

/// Of Svix's transformation parameters only `rawPayload` means something here; the SDK helper
/// for raw bodies also sends `headers.content-type`, which is ignored: deliveries are always
/// `application/json`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TransformationsParams {
    /// Delivered instead of `payload`, byte for byte; not empty.
    #[serde(default)]
    raw_payload: Option<String>,
}

/// A validated `MessageIn`, ready to become a `Message`.
struct Validated {
    event_type: String,
    /// The payload as given, unless a raw payload replaces it.
    payload: Option<Box<RawValue>>,
    raw_payload: Option<String>,
    event_id: Option<String>,
    channels: Vec<String>,
    tags: Vec<String>,
    deliver_at: Option<OffsetDateTime>,
    retention: Option<time::Duration>,
    application: Option<ApplicationIn>,
}

impl MessageIn {
    fn validate(self, max_payload_bytes: usize) -> ApiResult<Validated> {
        let event_type = self
            .event_type
            .ok_or_else(|| ApiError::invalid(&["body", "eventType"], "is required"))?;
        validate::name(&event_type)
            .map_err(|msg| ApiError::invalid(&["body", "eventType"], msg))?;

        let raw_payload = self
            .transformations_params
            .and_then(|params| params.raw_payload);
        if let Some(payload) = &self.payload {
            if !payload.get().trim_start().starts_with('{') {
                return Err(ApiError::invalid(
                    &["body", "payload"],
                    "must be a JSON object",
                ));
            }
        } else if raw_payload.is_none() {
            return Err(ApiError::invalid(&["body", "payload"], "is required"));
        }
        let delivered_len = match (&raw_payload, &self.payload) {
            (Some(raw), _) => raw.len(),
            (None, Some(payload)) => payload.get().len(),
            (None, None) => 0,
        };
        if raw_payload.as_deref() == Some("") {
            return Err(ApiError::invalid(
                &["body", "transformationsParams", "rawPayload"],
                "must not be empty",
            ));
        }
        if delivered_len > max_payload_bytes {
            return Err(ApiError::PayloadTooLarge(format!(
                "the payload is {delivered_len} bytes; the limit is {max_payload_bytes} bytes \
                 (WEBHOOKD_MAX_PAYLOAD_BYTES)"
            )));
        }
        if let Some(payload) = &self.payload {
            validate::payload_depth(payload.get())
                .map_err(|msg| ApiError::invalid(&["body", "payload"], msg))?;
        }

        if let Some(event_id) = &self.event_id {
            let length = event_id.chars().count();
            if !(1..=MAX_EVENT_ID_LENGTH).contains(&length) {
                return Err(ApiError::invalid(
                    &["body", "eventId"],
                    format!("must be 1 to {MAX_EVENT_ID_LENGTH} characters long"),
                ));
            }
        }
        let channels = self.channels.unwrap_or_default();
        if channels.len() > MAX_CHANNELS {
            return Err(ApiError::invalid(
                &["body", "channels"],
                format!("at most {MAX_CHANNELS} channels"),
            ));
        }
        for channel in &channels {
            validate::channel(channel)
                .map_err(|msg| ApiError::invalid(&["body", "channels"], msg))?;
        }
        let tags = self.tags.unwrap_or_default();
        if tags.len() > MAX_TAGS {
            return Err(ApiError::invalid(
                &["body", "tags"],
                format!("at most {MAX_TAGS} tags"),
            ));
        }
        if tags
            .iter()
            .any(|tag| tag.is_empty() || tag.len() > validate::MAX_CHANNEL_LENGTH)
        {
            return Err(ApiError::invalid(
                &["body", "tags"],
                format!(
                    "each tag must be 1 to {} characters long",
                    validate::MAX_CHANNEL_LENGTH
                ),
            ));
        }

        let retention = match (self.payload_retention_hours, self.payload_retention_period) {
            (Some(hours), _) if !(1..=MAX_RETENTION_HOURS).contains(&hours) => {
                return Err(ApiError::invalid(
                    &["body", "payloadRetentionHours"],
                    format!("must be between 1 and {MAX_RETENTION_HOURS}"),
                ));
            }
            (Some(hours), _) => Some(time::Duration::hours(hours)),
            (None, Some(days)) if !(1..=MAX_RETENTION_DAYS).contains(&days) => {
                return Err(ApiError::invalid(
                    &["body", "payloadRetentionPeriod"],
                    format!("must be between 1 and {MAX_RETENTION_DAYS} days"),
                ));
            }
            (None, Some(days)) => Some(time::Duration::days(days)),
            (None, None) => None,
        };

        if let Some(application) = &self.application {
            application
                .validate()
                .map_err(|error| within("application", error))?;
        }

        Ok(Validated {
            event_type,
            payload: self.payload,
            raw_payload,
            event_id: self.event_id,
            channels,
            tags,
            deliver_at: self.deliver_at,
            retention,
            application: self.application,
        })
    }
}

/// Moves a validation error of a nested object under its field: `["body", "name"]` becomes
/// `["body", "application", "name"]`.
pub(crate) fn within(field: &str, error: ApiError) -> ApiError {
    match error {
        ApiError::Validation(mut errors) => {
            for error in &mut errors {
                let at = usize::from(error.loc.first().is_some_and(|first| first == "body"));
                error.loc.insert(at, field.to_owned());
            }
            ApiError::Validation(errors)
        }
        other => other,
    }
}

/// A page of borrowed items, so that wire types may borrow from what the store returned.
pub(crate) fn borrowed<T>(page: &Page<T>) -> Page<&T> {
    Page {
        items: page.items.iter().collect(),
        done: page.done,
    }
}

/// The query of `create` and `read`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ContentQuery {
    /// Include the payload (true by default).
    #[serde(default = "query::yes")]
    with_content: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/msg",
    operation_id = "v1.message.create",
    tag = "Message",
    params(
        ("app" = String, Path, description = "The application's id or uid"),
        ContentQuery,
    ),
    request_body = MessageIn,
    responses(
        (status = 202, description = "Stored; deliveries are on their way", body = MessageOut),
        (status = 404, description = "No such application (and no `application` in the body)", body = ErrorBody),
        (status = 409, description = "The application has a message with this `eventId`", body = ErrorBody),
        (status = 413, description = "The payload is larger than `WEBHOOKD_MAX_PAYLOAD_BYTES`", body = ErrorBody),
    )
)]
pub(crate) async fn create(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    Query(ContentQuery { with_content }): Query<ContentQuery>,
    idempotency: IdempotencyKey,
    Json(input): Json<MessageIn>,
) -> ApiResult<JsonBytes> {
    let input = input.validate(state.config().max_payload_bytes)?;
    // The SDKs send `with_content=false` on create unless asked otherwise.
    let app = match state.application_cached(&key).await? {
        Some(app) => app.id,
        None => match input.application {
            Some(application) => create_application(&state, key, application).await?,
            None => return Err(ApiError::not_found("application")),
        },
    };

    let id = MessageId::new();
    let created_at = now();
    // Serialized once, before the write, so that the idempotency record commits with it.
    let response = JsonBytes::new(
        StatusCode::ACCEPTED,
        &MessageOut {
            id: &id,
            event_type: &input.event_type,
            payload: match (&input.raw_payload, &input.payload) {
                _ if !with_content => PayloadOut::Empty,
                (Some(raw), _) => PayloadOut::of(raw.as_bytes()),
                (None, Some(payload)) => PayloadOut::Raw(payload),
                (None, None) => PayloadOut::Empty,
            },
            event_id: input.event_id.as_deref(),
            channels: non_empty(&input.channels),
            tags: non_empty(&input.tags),
            timestamp: created_at,
            deliver_at: input.deliver_at,
        },
    )?;
    let payload = match (input.raw_payload, input.payload) {
        (Some(raw), _) => Bytes::from(raw),
        (None, Some(payload)) => Bytes::from(String::from(Box::<str>::from(payload))),
        (None, None) => Bytes::new(),
    };
    let record = idempotency.record_message(&app, &id, with_content);
    let message = Message {
        id,
        app_id: app,
        event_type: input.event_type,
        event_id: input.event_id,
        payload,
        channels: input.channels,
        tags: input.tags,
        created_at,
        deliver_at: input.deliver_at,
        retain_payload_until: input.retention.map(|retention| created_at + retention),
    };
    let dispatcher = state.dispatcher();
    let endpoints = state
        .store()
        .create_message(&message, dispatcher.lease().as_ref(), record.as_ref())
        .await?;
    dispatcher.submit(message, endpoints);
    metrics::counter!("webhookd_messages_ingested_total").increment(1);
    Ok(response.recorded())
}

/// Creates the application named by the path from the body's `application`, the path's key
/// becoming its uid. Another request may create it at the same moment: then that one is used.
pub(crate) async fn create_application(
    state: &ApiState,
    key: String,
    input: ApplicationIn,
) -> ApiResult<AppId> {
    // A uid never looks like an id, so an unknown `app_…` stays unknown.
    if validate::uid(&key).is_err() {
        return Err(ApiError::not_found("application"));
    }
    let mut app: Application = input.into_application();
    app.uid = Some(key);
    match state.store().create_application(&app, None).await {
        Ok(()) => Ok(app.id),
        Err(error) if error.is_taken(Taken::ApplicationUid) => {
            let uid = app.uid.unwrap_or_default();
            Ok(state.application(&uid).await?.id)
        }
        Err(error) => Err(error.into()),
    }
}

/// The parameters of `list`, besides its page.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Include the payloads (true by default).
    #[serde(default = "query::yes")]
    with_content: bool,
    /// Only these types (repeated, or comma-separated).
    #[serde(default)]
    event_types: Vec<String>,
    /// Only messages on this channel.
    channel: Option<String>,
    /// Only messages with this tag.
    tag: Option<String>,
    /// Only messages created before this time.
    #[serde(default, deserialize_with = "serde_rfc3339::option::deserialize")]
    before: Option<OffsetDateTime>,
    /// Only messages created after this time.
    #[serde(default, deserialize_with = "serde_rfc3339::option::deserialize")]
    after: Option<OffsetDateTime>,
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/msg",
    operation_id = "v1.message.list",
    tag = "Message",
    params(
        ("app" = String, Path, description = "The application's id or uid"),
        ListQuery<ListParams>,
    ),
    responses(
        (status = 200, description = "A page of messages, newest first", body = ListResponse<MessageOut>),
        (status = 404, description = "No such application", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn list(
    State(state): State<ApiState>,
    Path(key): Path<String>,
    ListQuery { page, params }: ListQuery<ListParams>,
) -> ApiResult<JsonBytes> {
    let with_content = params.with_content;
    let filter = MessageFilter {
        event_types: params.event_types,
        channel: params.channel,
        tag: params.tag,
        before: params.before,
        after: params.after,
    };
    let app = state.application(&key).await?;
    let messages = state
        .store()
        .list_messages(&app.id, &filter, &page.page(Order::Descending))
        .await?;
    let list = ListResponse::from_page(
        borrowed(&messages),
        |message| message.id.to_string(),
        |message| MessageOut::of(message, with_content),
    );
    JsonBytes::new(StatusCode::OK, &list)
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/msg/{msg}",
    operation_id = "v1.message.get",
    tag = "Message",
    params(
        ("app" = String, Path, description = "The application's id or uid"),
        ("msg" = String, Path, description = "The message's id or `eventId`"),
        ContentQuery,
    ),
    responses(
        (status = 200, description = "The message", body = MessageOut),
        (status = 404, description = "No such application or message", body = ErrorBody),
        (status = 422, description = "`with_content` is not a boolean", body = ValidationErrorBody),
    )
)]
pub(crate) async fn read(
    State(state): State<ApiState>,
    Path((app, msg)): Path<(String, String)>,
    Query(ContentQuery { with_content }): Query<ContentQuery>,
) -> ApiResult<JsonBytes> {
    let app = state.application(&app).await?;
    let message = state
        .store()
        .get_message(&app.id, &MessageKey::parse(&msg))
        .await?
        .ok_or_else(|| ApiError::not_found("message"))?;
    JsonBytes::new(StatusCode::OK, &MessageOut::of(&message, with_content))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_payload_values_survive_the_body_parser() {
        let input: MessageIn =
            crate::extract::parse_json(br#"{"eventType": "a", "payload": {"x" : [1,  2]}}"#)
                .unwrap();
        assert_eq!(input.payload.unwrap().get(), r#"{"x" : [1,  2]}"#);
    }

    #[test]
    fn nested_errors_are_located_under_their_field() {
        let error = within(
            "application",
            ApiError::invalid(&["body", "name"], "must not be empty"),
        );
        let ApiError::Validation(errors) = error else {
            panic!("still a validation error")
        };
        assert_eq!(errors[0].loc, ["body", "application", "name"]);
    }
}
