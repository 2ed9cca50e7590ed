//! A message as the API shows it (`MessageOut`): the answer of a message's create, which a
//! replayed `idempotency-key` renders again from the stored message, and the message as read
//! back, listed, embedded in attempts and streamed to a polling endpoint.
//!
//! A payload is shown as the stored bytes when they hold a JSON object, and `{}` otherwise (a
//! raw payload that is not a JSON object, a payload expunged by retention, or
//! `with_content=false`).

use axum::http::StatusCode;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use time::OffsetDateTime;
use utoipa::ToSchema;
use webhookd_core::MessageId;
use webhookd_core::model::Message;
use webhookd_core::time::serde_rfc3339;

use crate::error::ApiResult;
use crate::wire::{JsonBytes, non_empty};

/// A payload as shown: the stored JSON object, written out as its own bytes, or `{}`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PayloadOut<'a> {
    Raw(&'a RawValue),
    Empty,
}

impl<'a> PayloadOut<'a> {
    /// The stored bytes when they hold a JSON object, else `{}`.
    pub(crate) fn of(bytes: &'a [u8]) -> Self {
        match serde_json::from_slice::<&RawValue>(bytes) {
            Ok(raw) if raw.get().trim_start().starts_with('{') => Self::Raw(raw),
            _ => Self::Empty,
        }
    }

    /// As [`Self::of`], or `{}` when the content is not wanted.
    pub(crate) fn shown(bytes: &'a [u8], with_content: bool) -> Self {
        if with_content {
            Self::of(bytes)
        } else {
            Self::Empty
        }
    }
}

impl Serialize for PayloadOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Raw(raw) => raw.serialize(serializer),
            Self::Empty => serializer.serialize_map(Some(0))?.end(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MessageOut<'a> {
    #[schema(value_type = String, example = "msg_2yZwUhtZW9Qj6Px3ZzwkHtXXi1E")]
    pub(crate) id: &'a MessageId,
    pub(crate) event_type: &'a str,
    /// The payload when it is a JSON object, else `{}` (also with `with_content=false`).
    #[schema(value_type = Object)]
    pub(crate) payload: PayloadOut<'a>,
    #[schema(required)]
    pub(crate) event_id: Option<&'a str>,
    #[schema(required, value_type = Option<Vec<String>>)]
    pub(crate) channels: Option<&'a [String]>,
    #[schema(required, value_type = Option<Vec<String>>)]
    pub(crate) tags: Option<&'a [String]>,
    #[serde(with = "serde_rfc3339")]
    pub(crate) timestamp: OffsetDateTime,
    #[serde(
        with = "serde_rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub(crate) deliver_at: Option<OffsetDateTime>,
}

/// A message's answer, as its create answered it (a replayed `idempotency-key` renders it
/// again from the stored message).
pub(crate) fn answer(
    status: StatusCode,
    message: &Message,
    with_content: bool,
) -> ApiResult<JsonBytes> {
    JsonBytes::new(status, &MessageOut::of(message, with_content))
}

impl<'a> MessageOut<'a> {
    pub(crate) fn of(message: &'a Message, with_content: bool) -> Self {
        Self {
            id: &message.id,
            event_type: &message.event_type,
            payload: PayloadOut::shown(&message.payload, with_content),
            event_id: message.event_id.as_deref(),
            channels: non_empty(&message.channels),
            tags: non_empty(&message.tags),
            timestamp: message.created_at,
            deliver_at: message.deliver_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_show_objects_and_hide_the_rest() {
        let shown = |bytes: &[u8]| serde_json::to_string(&PayloadOut::of(bytes)).unwrap();
        assert_eq!(shown(br#"{"a":  1}"#), r#"{"a":  1}"#);
        assert_eq!(shown(b"[1, 2]"), "{}");
        assert_eq!(shown(b"not json"), "{}");
        assert_eq!(shown(b""), "{}");
        let hidden = serde_json::to_string(&PayloadOut::shown(b"{\"a\":1}", false)).unwrap();
        assert_eq!(hidden, "{}");
    }
}
