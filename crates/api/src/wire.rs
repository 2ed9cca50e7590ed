//! Wire shapes shared by every resource: the list envelope and JSON responses whose bytes are
//! made once (so that the same bytes can be stored for idempotent replay), and the markers that
//! tell the idempotency layer how a response was kept.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use webhookd_store::Page;

use crate::error::{ApiError, ApiResult};

/// `{"data": [...], "iterator", "prevIterator", "done"}`; both iterators are always present.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListResponse<T> {
    pub data: Vec<T>,
    /// The cursor of the next page (the last item's key), `null` when the page is empty.
    #[schema(required)]
    pub iterator: Option<String>,
    /// The cursor of the previous page (`-` and the first item's key), `null` when the page is
    /// empty.
    #[schema(required)]
    pub prev_iterator: Option<String>,
    /// Whether this is the last page in this direction.
    pub done: bool,
}

impl<T> ListResponse<T> {
    /// Wraps a page: `key` gives an item's cursor key (its id, or an event type's name).
    pub fn from_page<U>(
        page: Page<U>,
        key: impl Fn(&U) -> String,
        map: impl FnMut(U) -> T,
    ) -> Self {
        let iterator = page.items.last().map(&key);
        let prev_iterator = page.items.first().map(|first| format!("-{}", key(first)));
        Self {
            data: page.items.into_iter().map(map).collect(),
            iterator,
            prev_iterator,
            done: page.done,
        }
    }
}

/// Marks a response whose idempotency record was written with its effect, so that the
/// idempotency layer does not save it again.
#[derive(Debug, Clone, Copy)]
pub struct Recorded;

/// Marks a response that is never stored for replay, because it shows a secret once (a new
/// app-scoped token): a retry with the same key makes a new one instead.
#[derive(Debug, Clone, Copy)]
pub struct NotStored;

/// A JSON response serialized once.
#[derive(Debug, Clone)]
pub struct JsonBytes {
    pub status: StatusCode,
    pub body: Vec<u8>,
    /// Set when the idempotency record was written with the effect.
    pub recorded: bool,
}

impl JsonBytes {
    pub fn new(status: StatusCode, value: &impl Serialize) -> ApiResult<Self> {
        let body = serde_json::to_vec(value)
            .map_err(|error| ApiError::Internal(format!("cannot serialize a response: {error}")))?;
        Ok(Self {
            status,
            body,
            recorded: false,
        })
    }

    pub fn recorded(mut self) -> Self {
        self.recorded = true;
        self
    }
}

impl IntoResponse for JsonBytes {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.recorded {
            response.extensions_mut().insert(Recorded);
        }
        response
    }
}

/// Serializes as `{}`: Svix's empty answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct Empty {}

/// For PATCH bodies: tells an absent field (`None`) from an explicit `null` (`Some(None)`).
/// Use with `#[serde(default, deserialize_with = "wire::nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(deserializer).map(Some)
}

/// Svix's older and newer names for a rate limit: `throttleRate` wins over `rateLimit`.
pub fn rate(throttle_rate: Option<u32>, rate_limit: Option<u32>) -> Option<u32> {
    throttle_rate.or(rate_limit)
}

/// Checks a rate limit in messages per second.
pub fn check_rate(loc: &str, rate: Option<u32>) -> ApiResult<()> {
    match rate {
        Some(0) => Err(ApiError::invalid(
            &["body", loc],
            "must be at least 1 message per second",
        )),
        Some(rate) if rate > u32::from(u16::MAX) => Err(ApiError::invalid(
            &["body", loc],
            "must be at most 65535 messages per second",
        )),
        _ => Ok(()),
    }
}

/// Checks the length of a free-text body field, in characters.
pub fn check_text(loc: &str, value: &str, max: usize) -> ApiResult<()> {
    webhookd_core::validate::text(value, max).map_err(|msg| ApiError::invalid(&["body", loc], msg))
}

/// Checks the size of a `metadata` object.
pub fn check_metadata(metadata: &serde_json::Map<String, serde_json::Value>) -> ApiResult<()> {
    let value = serde_json::Value::Object(metadata.clone());
    webhookd_core::validate::json_size(&value, webhookd_core::validate::MAX_METADATA_BYTES)
        .map_err(|msg| ApiError::invalid(&["body", "metadata"], msg))
}

/// Checks an optional uid.
pub fn check_uid(uid: Option<&str>) -> ApiResult<()> {
    match uid {
        Some(uid) => webhookd_core::validate::uid(uid)
            .map_err(|msg| ApiError::invalid(&["body", "uid"], msg)),
        None => Ok(()),
    }
}

/// `None` for an empty list: Svix shows absent channels and tags as `null`.
pub(crate) fn non_empty(list: &[String]) -> Option<&[String]> {
    (!list.is_empty()).then_some(list)
}
