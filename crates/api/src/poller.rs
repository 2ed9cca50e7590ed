//! `/api/v1/app/{app}/poller/{ep}`: the message stream of a polling endpoint (URL `poll:`),
//! read by its consumer instead of pushed to it; and the endpoint's poller token.
//!
//! **The stream** is the application's messages created after the endpoint was (or after
//! `after`), those the endpoint wants (`Endpoint::wants`: its event types and channels), in
//! the store's commit order (see the store's `poll` module: a message committed late is never
//! stepped over). An iterator is the stream's start time and a place in that order.
//!
//! **Consumers** (`…/consumer/{consumer}`) have their iterator kept by the server: each read
//! starts at `iterator` when one is given, else at the consumer's offset (a new consumer at
//! the stream's start), and moves the offset to the end of what it answered. With `peek=true`
//! (ours) the read leaves the offset where it was; `seek` moves it, to a time (`after`) or,
//! ours, to an `iterator`. A consumer that must not lose a message it was given reads with
//! `peek` and seeks to the answer's iterator once it has handled the batch (`webhookd listen`
//! does).
//!
//! **A poller token** (`pollsk_…`) reads its endpoint's poller routes and nothing else
//! (`auth::scopes`). Rotating makes a new one and gives the previous one `oldTokenExpiry`
//! seconds more; reading the token makes one when the endpoint has none.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de;
use serde::{Deserialize, Deserializer, Serialize};
use time::{Duration, OffsetDateTime};
use utoipa::{IntoParams, ToSchema};
use webhookd_core::model::{Application, Endpoint, Message};
use webhookd_core::time::{from_unix_ms, now, serde_rfc3339, to_unix_ms};
use webhookd_core::{TokenId, validate};
use webhookd_store::{PollerTokenRecord, StreamPosition, passes_payload_filter};

use crate::ApiState;
use crate::auth::{POLLER_TOKEN_PREFIX, generate_secret_with_prefix, hash_hex};
use crate::error::{ApiError, ApiResult, ErrorBody, ValidationErrorBody};
use crate::extract::{Json, Path};
use crate::idempotency;
use crate::message_out::MessageOut;
use crate::query::{self, Query};
use crate::wire::JsonBytes;

/// The most messages one answer looks at: a stream that filters out most of the application's
/// messages answers `done: false` with an iterator past them rather than reading for long.
const SCAN_BUDGET: usize = 2_500;
/// Messages read from the store at a time.
const READ_BATCH: usize = 250;
/// How long a poller token lives by default and at most, and how long the previous one
/// still works after a rotation by default and at most.
const TOKEN_LIFETIME: Duration = Duration::days(365);
const DEFAULT_OLD_TOKEN_EXPIRY: i64 = 300;
const MAX_OLD_TOKEN_EXPIRY: i64 = 86_400;
/// The longest consumer id.
const MAX_CONSUMER_ID: usize = 256;

pub(crate) fn router() -> Router<ApiState> {
    Router::new()
        .route("/app/{app}/poller/{ep}", get(poll))
        .route(
            "/app/{app}/poller/{ep}/consumer/{consumer}",
            get(consumer_poll),
        )
        .route(
            "/app/{app}/poller/{ep}/consumer/{consumer}/seek",
            idempotency::post(consumer_seek),
        )
        .route("/auth/app/{app}/poller/{ep}/token", get(get_token))
        .route(
            "/auth/app/{app}/poller/{ep}/token/rotate",
            idempotency::post(rotate_token),
        )
}

/// A place in a polling endpoint's stream, as the iterator a client holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StreamIterator {
    /// Only messages created after this time.
    since: OffsetDateTime,
    position: StreamPosition,
}

impl StreamIterator {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!(
            "{}.{}.{}",
            to_unix_ms(self.since),
            self.position.seq,
            self.position.msg
        ))
    }

    fn decode(text: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.splitn(3, '.');
        let since = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let msg = parts.next()?.to_owned();
        Some(Self {
            since: from_unix_ms(since),
            position: StreamPosition { seq, msg },
        })
    }

    /// The iterator of `field`, or 422.
    fn parse(loc: &[&str], text: &str) -> ApiResult<Self> {
        Self::decode(text)
            .ok_or_else(|| ApiError::invalid(loc, "is not an iterator of a polling endpoint"))
    }
}

/// An answer of the stream.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PollingEndpointOut<'a> {
    data: Vec<MessageOut<'a>>,
    /// Where the next read starts.
    iterator: String,
    /// True when the stream has nothing more now.
    done: bool,
}

/// The query of `poll`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PollQuery {
    /// How many messages to return at most: 1 to 250, 50 by default.
    #[serde(default = "default_limit", deserialize_with = "query::limit")]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 250)]
    limit: usize,
    /// The `iterator` of a previous answer.
    #[serde(default, deserialize_with = "stream_iterator")]
    #[param(value_type = Option<String>)]
    iterator: Option<StreamIterator>,
    /// Only messages of this event type (besides the endpoint's own filter).
    #[serde(default, deserialize_with = "event_type")]
    event_type: Option<String>,
    /// Only messages on this channel (besides the endpoint's own filter).
    #[serde(default, deserialize_with = "channel")]
    channel: Option<String>,
    /// Without an iterator: start with the messages created after this time, instead of
    /// after the endpoint's creation.
    #[serde(default, deserialize_with = "serde_rfc3339::option::deserialize")]
    after: Option<OffsetDateTime>,
}

/// The query of `consumer-poll`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConsumerPollQuery {
    /// How many messages to return at most: 1 to 250, 50 by default.
    #[serde(default = "default_limit", deserialize_with = "query::limit")]
    #[param(value_type = Option<i64>, minimum = 1, maximum = 250)]
    limit: usize,
    /// Start here instead of at the consumer's offset.
    #[serde(default, deserialize_with = "stream_iterator")]
    #[param(value_type = Option<String>)]
    iterator: Option<StreamIterator>,
    /// Read without moving the consumer's offset (false by default).
    #[serde(default)]
    peek: bool,
}

fn default_limit() -> usize {
    query::DEFAULT_LIMIT
}

/// `iterator`: an iterator of a previous answer.
fn stream_iterator<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<StreamIterator>, D::Error> {
    let text = String::deserialize(deserializer)?;
    StreamIterator::decode(&text)
        .map(Some)
        .ok_or_else(|| de::Error::custom("is not an iterator of a polling endpoint"))
}

/// `event_type`: an event type's name.
fn event_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    validate::name(&text).map_err(de::Error::custom)?;
    Ok(Some(text))
}

/// `channel`: a channel.
fn channel<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let text = String::deserialize(deserializer)?;
    validate::channel(&text).map_err(de::Error::custom)?;
    Ok(Some(text))
}

/// What to read, beyond the endpoint's filter.
struct Read {
    limit: usize,
    event_type: Option<String>,
    channel: Option<String>,
}

impl Read {
    /// Whether the consumer reads `message`: the endpoint's event types and channels, its
    /// payload filter (`filter`, compiled once per request; one that does not compile, which
    /// validation on write rules out, lets nothing through), and this read's own filters.
    fn wants(&self, endpoint: &Endpoint, message: &Message) -> bool {
        endpoint.wants(message)
            && passes_payload_filter(
                endpoint.payload_filter.as_deref(),
                &message.payload,
                &message.event_type,
                &message.channels,
            )
            && self
                .event_type
                .as_ref()
                .is_none_or(|event_type| *event_type == message.event_type)
            && self
                .channel
                .as_ref()
                .is_none_or(|channel| message.channels.contains(channel))
    }
}

/// The application and its polling endpoint, or 404 (none) or 400 (a push endpoint).
async fn locate(state: &ApiState, app: &str, ep: &str) -> ApiResult<(Application, Endpoint)> {
    let app = state.application(app).await?;
    let endpoint = state.endpoint(&app, ep).await?;
    if !endpoint.is_polling() {
        return Err(ApiError::BadRequest {
            code: "not_polling_endpoint",
            detail: "this endpoint is sent to; only an endpoint made with the URL `poll:` is \
                     read through the poller API"
                .into(),
        });
    }
    Ok((app, endpoint))
}

/// Refuses `what`, which sends to the endpoint, for a polling endpoint: nothing is ever sent
/// to one, its consumer reads its stream.
pub(crate) fn refuse_polling(endpoint: &Endpoint, what: &str) -> ApiResult<()> {
    if endpoint.is_polling() {
        return Err(ApiError::BadRequest {
            code: "polling_endpoint",
            detail: format!(
                "{what} sends messages to an endpoint, and nothing is sent to a polling \
                 endpoint: its consumer reads them through the poller API"
            ),
        });
    }
    Ok(())
}

/// The stream's beginning: messages created after `since`.
async fn start(
    state: &ApiState,
    app: &Application,
    since: OffsetDateTime,
) -> ApiResult<StreamIterator> {
    Ok(StreamIterator {
        since,
        position: state.store().stream_start(&app.id, since).await?,
    })
}

/// Reads from `from` up to `read.limit` messages the endpoint wants; the messages and the
/// answer's iterator and `done`.
async fn read_stream(
    state: &ApiState,
    endpoint: &Endpoint,
    from: &StreamIterator,
    read: &Read,
) -> ApiResult<(Vec<Message>, StreamIterator, bool)> {
    let mut position = from.position.clone();
    let mut wanted = Vec::new();
    let mut scanned = 0;
    loop {
        let batch = state
            .store()
            .read_stream(&endpoint.app_id, from.since, &position, READ_BATCH)
            .await?;
        let at_end = batch.len() < READ_BATCH;
        for (at, message) in batch {
            position = at;
            scanned += 1;
            if read.wants(endpoint, &message) {
                wanted.push(message);
                if wanted.len() == read.limit {
                    let next = StreamIterator {
                        since: from.since,
                        position,
                    };
                    return Ok((wanted, next, false));
                }
            }
        }
        if at_end || scanned >= SCAN_BUDGET {
            let next = StreamIterator {
                since: from.since,
                position,
            };
            return Ok((wanted, next, at_end));
        }
    }
}

fn answer(messages: &[Message], next: &StreamIterator, done: bool) -> ApiResult<JsonBytes> {
    JsonBytes::new(
        StatusCode::OK,
        &PollingEndpointOut {
            data: messages
                .iter()
                .map(|message| MessageOut::of(message, true))
                .collect(),
            iterator: next.encode(),
            done,
        },
    )
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/poller/{ep}",
    operation_id = "v1.message.poller.poll",
    tag = "Message",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The polling endpoint's id or uid"), PollQuery),
    responses(
        (status = 200, description = "The next messages of the endpoint's stream", body = PollingEndpointOut),
        (status = 400, description = "Not a polling endpoint", body = ErrorBody),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn poll(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    Query(query): Query<PollQuery>,
) -> ApiResult<JsonBytes> {
    let (app, endpoint) = locate(&state, &app, &ep).await?;
    let read = Read {
        limit: query.limit,
        event_type: query.event_type,
        channel: query.channel,
    };
    let from = match query.iterator {
        Some(from) => from,
        None => {
            let since = query.after.unwrap_or(endpoint.created_at);
            start(&state, &app, since).await?
        }
    };
    let (messages, next, done) = read_stream(&state, &endpoint, &from, &read).await?;
    answer(&messages, &next, done)
}

/// Checks a consumer id: 1 to 256 characters.
fn check_consumer(consumer: &str) -> ApiResult<()> {
    if consumer.is_empty() || consumer.chars().count() > MAX_CONSUMER_ID {
        return Err(ApiError::invalid(
            &["path", "consumer_id"],
            format!("must be 1 to {MAX_CONSUMER_ID} characters long"),
        ));
    }
    Ok(())
}

#[utoipa::path(
    get,
    path = "/api/v1/app/{app}/poller/{ep}/consumer/{consumer}",
    operation_id = "v1.message.poller.consumer-poll",
    tag = "Message",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The polling endpoint's id or uid"), ("consumer" = String, Path, description = "The consumer's id, chosen by the consumer"), ConsumerPollQuery),
    responses(
        (status = 200, description = "The consumer's next messages; its offset moves to the answer's iterator unless `peek`", body = PollingEndpointOut),
        (status = 400, description = "Not a polling endpoint", body = ErrorBody),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
        (status = 422, description = "A query parameter is wrong", body = ValidationErrorBody),
    )
)]
pub(crate) async fn consumer_poll(
    State(state): State<ApiState>,
    Path((app, ep, consumer)): Path<(String, String, String)>,
    Query(query): Query<ConsumerPollQuery>,
) -> ApiResult<JsonBytes> {
    check_consumer(&consumer)?;
    let (app, endpoint) = locate(&state, &app, &ep).await?;
    let read = Read {
        limit: query.limit,
        event_type: None,
        channel: None,
    };
    let from = match query.iterator {
        Some(from) => from,
        None => match state
            .store()
            .get_poll_offset(&endpoint.id, &consumer)
            .await?
        {
            // An offset is only ever stored by this module, from a valid iterator.
            Some(stored) => StreamIterator::parse(&["path", "consumer_id"], &stored)?,
            None => start(&state, &app, endpoint.created_at).await?,
        },
    };
    let (messages, next, done) = read_stream(&state, &endpoint, &from, &read).await?;
    if !query.peek {
        state
            .store()
            .set_poll_offset(&app.id, &endpoint.id, &consumer, &next.encode(), now())
            .await?;
    }
    answer(&messages, &next, done)
}

/// Where to move a consumer's offset: a time (Svix), or an iterator (ours). One of them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PollingEndpointConsumerSeekIn {
    /// Read next the messages created after this time.
    #[serde(default, with = "serde_rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    after: Option<OffsetDateTime>,
    /// Read next from this iterator (of a previous answer).
    #[serde(default)]
    iterator: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PollingEndpointConsumerSeekOut {
    /// The consumer's offset now.
    iterator: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/app/{app}/poller/{ep}/consumer/{consumer}/seek",
    operation_id = "v1.message.poller.consumer-seek",
    tag = "Message",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The polling endpoint's id or uid"), ("consumer" = String, Path, description = "The consumer's id")),
    request_body = PollingEndpointConsumerSeekIn,
    responses(
        (status = 200, description = "The consumer's offset moved", body = PollingEndpointConsumerSeekOut),
        (status = 400, description = "Not a polling endpoint, or malformed JSON", body = ErrorBody),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
        (status = 422, description = "Neither or both of `after` and `iterator`, or a bad one", body = ValidationErrorBody),
    )
)]
pub(crate) async fn consumer_seek(
    State(state): State<ApiState>,
    Path((app, ep, consumer)): Path<(String, String, String)>,
    Json(input): Json<PollingEndpointConsumerSeekIn>,
) -> ApiResult<JsonBytes> {
    check_consumer(&consumer)?;
    let (app, endpoint) = locate(&state, &app, &ep).await?;
    let to = match (input.after, input.iterator) {
        (Some(after), None) => start(&state, &app, after).await?,
        (None, Some(text)) => StreamIterator::parse(&["body", "iterator"], &text)?,
        _ => {
            return Err(ApiError::invalid(
                &["body", "after"],
                "give either `after` or `iterator`",
            ));
        }
    };
    let iterator = to.encode();
    state
        .store()
        .set_poll_offset(&app.id, &endpoint.id, &consumer, &iterator, now())
        .await?;
    JsonBytes::new(StatusCode::OK, &PollingEndpointConsumerSeekOut { iterator })
}

/// A poller token, as Svix's `ApiTokenOut`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ApiTokenOut {
    token: String,
    #[schema(value_type = String, example = "tok_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E")]
    id: TokenId,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    created_at: OffsetDateTime,
    #[serde(with = "serde_rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    expires_at: OffsetDateTime,
}

impl From<PollerTokenRecord> for ApiTokenOut {
    fn from(record: PollerTokenRecord) -> Self {
        Self {
            token: record.token,
            id: record.id,
            created_at: record.created_at,
            expires_at: record.expires_at,
        }
    }
}

/// The body of a rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RotatePollerTokenIn {
    /// How long the new token lives, in seconds: 1 to 31,536,000 (a year, the default).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 31_536_000)]
    expiry: Option<i64>,
    /// How long the previous token still works, in seconds: 0 (revoked at once) to 86,400;
    /// 300 by default.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 86_400)]
    old_token_expiry: Option<i64>,
}

/// Makes and stores a new poller token for the endpoint.
async fn new_token(
    state: &ApiState,
    endpoint: &Endpoint,
    lifetime: Duration,
    old_token_expiry: Duration,
) -> ApiResult<PollerTokenRecord> {
    let at = now();
    let token = generate_secret_with_prefix(POLLER_TOKEN_PREFIX);
    let record = PollerTokenRecord {
        id: TokenId::new(),
        hash: hash_hex(&token),
        app_id: endpoint.app_id.clone(),
        endpoint_id: endpoint.id.clone(),
        token,
        created_at: at,
        expires_at: at + lifetime,
    };
    state
        .store()
        .rotate_poller_token(&record, at + old_token_expiry)
        .await?;
    Ok(record)
}

#[utoipa::path(
    get,
    path = "/api/v1/auth/app/{app}/poller/{ep}/token",
    operation_id = "v1.authentication.get-poller-token",
    tag = "Authentication",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The polling endpoint's id or uid")),
    responses(
        (status = 200, description = "The endpoint's current poller token (made now if it had none)", body = ApiTokenOut),
        (status = 400, description = "Not a polling endpoint", body = ErrorBody),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
    )
)]
pub(crate) async fn get_token(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
) -> ApiResult<JsonBytes> {
    let (_, endpoint) = locate(&state, &app, &ep).await?;
    let record = match state
        .store()
        .current_poller_token(&endpoint.id, now())
        .await?
    {
        Some(record) => record,
        None => new_token(&state, &endpoint, TOKEN_LIFETIME, Duration::ZERO).await?,
    };
    JsonBytes::new(StatusCode::OK, &ApiTokenOut::from(record))
}

#[utoipa::path(
    post,
    path = "/api/v1/auth/app/{app}/poller/{ep}/token/rotate",
    operation_id = "v1.authentication.rotate-poller-token",
    tag = "Authentication",
    params(("app" = String, Path, description = "The application's id or uid"), ("ep" = String, Path, description = "The polling endpoint's id or uid")),
    request_body = RotatePollerTokenIn,
    responses(
        (status = 201, description = "The new poller token", body = ApiTokenOut),
        (status = 400, description = "Not a polling endpoint, or malformed JSON", body = ErrorBody),
        (status = 404, description = "No such application or endpoint", body = ErrorBody),
        (status = 422, description = "An expiry out of range", body = ValidationErrorBody),
    )
)]
pub(crate) async fn rotate_token(
    State(state): State<ApiState>,
    Path((app, ep)): Path<(String, String)>,
    Json(input): Json<RotatePollerTokenIn>,
) -> ApiResult<JsonBytes> {
    let (_, endpoint) = locate(&state, &app, &ep).await?;
    let lifetime = match input.expiry {
        None => TOKEN_LIFETIME,
        Some(seconds) if (1..=TOKEN_LIFETIME.whole_seconds()).contains(&seconds) => {
            Duration::seconds(seconds)
        }
        Some(_) => {
            return Err(ApiError::invalid(
                &["body", "expiry"],
                "must be between 1 and 31536000 seconds",
            ));
        }
    };
    let old = input.old_token_expiry.unwrap_or(DEFAULT_OLD_TOKEN_EXPIRY);
    if !(0..=MAX_OLD_TOKEN_EXPIRY).contains(&old) {
        return Err(ApiError::invalid(
            &["body", "oldTokenExpiry"],
            "must be between 0 and 86400 seconds",
        ));
    }
    let record = new_token(&state, &endpoint, lifetime, Duration::seconds(old)).await?;
    JsonBytes::new(StatusCode::CREATED, &ApiTokenOut::from(record))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterators_round_trip_and_refuse_garbage() {
        let iterator = StreamIterator {
            since: from_unix_ms(1_700_000_000_123),
            position: StreamPosition {
                seq: 42,
                msg: "msg_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E".into(),
            },
        };
        assert_eq!(StreamIterator::decode(&iterator.encode()), Some(iterator));
        assert_eq!(StreamIterator::decode("not an iterator"), None);
        assert_eq!(
            StreamIterator::decode(&URL_SAFE_NO_PAD.encode("1.x.")),
            None
        );
    }
}
