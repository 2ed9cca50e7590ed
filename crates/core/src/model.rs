//! The domain model shared by the store, the engine and the API.
//!
//! These are plain data: the API maps them to and from its wire types, the store maps them to
//! and from rows. A message's payload is kept as the exact bytes that are signed and sent.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::id::{AppId, AttemptId, EndpointId, MessageId, TaskId};
use crate::retry::RetrySchedule;
use crate::signing::Secret;

/// The state of one message's delivery to one endpoint, and of one attempt.
/// The numbers are Svix's and are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    Success = 0,
    Pending = 1,
    Fail = 2,
    Sending = 3,
    Canceled = 4,
}

impl DeliveryStatus {
    pub const ALL: [DeliveryStatus; 5] = [
        Self::Success,
        Self::Pending,
        Self::Fail,
        Self::Sending,
        Self::Canceled,
    ];

    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.code() == code)
    }

    pub fn text(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Pending => "pending",
            Self::Fail => "fail",
            Self::Sending => "sending",
            Self::Canceled => "canceled",
        }
    }
}

/// Why an attempt was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerType {
    Scheduled = 0,
    Manual = 1,
}

impl TriggerType {
    pub fn code(self) -> i64 {
        self as i64
    }

    pub fn from_code(code: i64) -> Self {
        if code == 1 {
            Self::Manual
        } else {
            Self::Scheduled
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub id: AppId,
    pub uid: Option<String>,
    pub name: String,
    pub metadata: Map<String, Value>,
    pub throttle_rate: Option<u32>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// A secret that still signs beside the current one until it expires (rotation grace period).
#[derive(Debug, Clone, PartialEq)]
pub struct RetiredSecret {
    pub secret: Secret,
    pub expires_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub id: EndpointId,
    pub app_id: AppId,
    pub uid: Option<String>,
    pub url: String,
    pub description: String,
    pub version: i64,
    pub disabled: bool,
    /// Empty means every event type.
    pub event_types: Vec<String>,
    /// Empty means every channel.
    pub channels: Vec<String>,
    pub throttle_rate: Option<u32>,
    /// FIFO delivery: one message in flight at a time, each only after every earlier one is
    /// delivered or has finally failed (see the store's claim rule).
    pub ordered: bool,
    pub metadata: Map<String, Value>,
    pub headers: BTreeMap<String, String>,
    pub secret: Secret,
    pub retired_secrets: Vec<RetiredSecret>,
    /// When the current run of failures began; `None` after a success.
    pub failing_since: Option<OffsetDateTime>,
    /// A CEL expression a message must satisfy to be delivered here (`crate::filter`).
    pub payload_filter: Option<String>,
    /// The delays between this endpoint's scheduled attempts, instead of the node's schedule.
    pub retry_schedule: Option<RetrySchedule>,
    /// How long one attempt may take, instead of the node's request timeout.
    pub request_timeout: Option<Duration>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The URL of a polling endpoint: its consumer reads its stream instead of receiving pushes.
pub const POLLING_URL: &str = "poll:";

impl Endpoint {
    /// A new endpoint of `app_id` sending to `url`, made at `at`: a fresh id and secret, every
    /// event type and channel, version 1, enabled, and none of the options.
    pub fn new(app_id: AppId, url: impl Into<String>, at: OffsetDateTime) -> Self {
        Self {
            id: EndpointId::new(),
            app_id,
            uid: None,
            url: url.into(),
            description: String::new(),
            version: 1,
            disabled: false,
            event_types: Vec::new(),
            channels: Vec::new(),
            throttle_rate: None,
            ordered: false,
            metadata: Map::new(),
            headers: BTreeMap::new(),
            secret: Secret::generate(),
            retired_secrets: Vec::new(),
            failing_since: None,
            payload_filter: None,
            retry_schedule: None,
            request_timeout: None,
            created_at: at,
            updated_at: at,
        }
    }

    /// Whether the consumer polls this endpoint (URL [`POLLING_URL`]): the engine never sends
    /// to it, and fan-out gives it no deliveries.
    pub fn is_polling(&self) -> bool {
        self.url == POLLING_URL
    }

    /// Whether `message` belongs to this endpoint's stream by its event type and channels (a
    /// polling endpoint's reader also applies the endpoint's payload filter).
    pub fn wants(&self, message: &Message) -> bool {
        self.matches(&message.event_type, &message.channels)
    }

    /// Whether a message of this type on these channels goes to this endpoint.
    pub fn accepts(&self, event_type: &str, channels: &[String]) -> bool {
        !self.disabled && self.matches(event_type, channels)
    }

    /// Whether the endpoint's event types and channels let such a message through, enabled or
    /// not (replays ask this of messages sent while it was disabled).
    pub fn matches(&self, event_type: &str, channels: &[String]) -> bool {
        selects(&self.event_types, &self.channels, event_type, channels)
    }

    /// The secrets that sign a request made at `now`: the current one, then every retired one
    /// still within its grace period.
    pub fn signing_secrets(&self, now: OffsetDateTime) -> impl Iterator<Item = &Secret> {
        std::iter::once(&self.secret).chain(
            self.retired_secrets
                .iter()
                .filter(move |retired| retired.expires_at > now)
                .map(|retired| &retired.secret),
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventType {
    pub name: String,
    pub description: String,
    pub archived: bool,
    pub deprecated: bool,
    pub schemas: Option<Value>,
    /// Svix's `featureFlags`: the type is shown only to holders of one of them.
    pub feature_flags: Vec<String>,
    /// Svix's `groupName`: the group the type is listed under.
    pub group_name: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub app_id: AppId,
    pub event_type: String,
    pub event_id: Option<String>,
    /// The exact bytes delivered and signed. Empty once expunged by retention.
    pub payload: Bytes,
    pub channels: Vec<String>,
    pub tags: Vec<String>,
    pub created_at: OffsetDateTime,
    /// The first attempt waits until then.
    pub deliver_at: Option<OffsetDateTime>,
    /// The payload is expunged after then (`payloadRetentionPeriod`), unless still pending;
    /// `None` follows the server's retention.
    pub retain_payload_until: Option<OffsetDateTime>,
}

/// One message's delivery to one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub app_id: AppId,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// One HTTP request made for a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub id: AttemptId,
    pub msg_id: MessageId,
    pub endpoint_id: EndpointId,
    pub app_id: AppId,
    pub url: String,
    pub status: DeliveryStatus,
    /// 0 when there was no response.
    pub response_status_code: u16,
    /// The endpoint's body (capped), or the reason when there was no response.
    pub response: String,
    pub duration_ms: u64,
    pub trigger_type: TriggerType,
    pub created_at: OffsetDateTime,
}

/// Counts of an endpoint's deliveries by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointStats {
    pub success: u64,
    pub pending: u64,
    pub sending: u64,
    pub fail: u64,
    pub canceled: u64,
}

impl EndpointStats {
    /// Adds `count` deliveries of the stored status `code` (an unknown code counts nowhere).
    pub fn add(&mut self, code: i64, count: u64) {
        let slot = match DeliveryStatus::from_code(code) {
            Some(DeliveryStatus::Success) => &mut self.success,
            Some(DeliveryStatus::Pending) => &mut self.pending,
            Some(DeliveryStatus::Fail) => &mut self.fail,
            Some(DeliveryStatus::Sending) => &mut self.sending,
            Some(DeliveryStatus::Canceled) => &mut self.canceled,
            None => return,
        };
        *slot += count;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Running,
    Finished,
    Failed,
}

impl TaskStatus {
    pub fn text(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Finished => "finished",
            Self::Failed => "failed",
        }
    }
}

/// A background task (`endpoint.recover`), readable at `/api/v1/background-task/{id}`.
#[derive(Debug, Clone, PartialEq)]
pub struct BackgroundTask {
    pub id: TaskId,
    pub kind: String,
    pub status: TaskStatus,
    pub data: Value,
    pub updated_at: OffsetDateTime,
}

/// The most bytes of an endpoint's response kept in an attempt record.
pub const RESPONSE_BODY_CAP: usize = 1024;

/// Cuts a response body to its first `RESPONSE_BODY_CAP` bytes at a character boundary,
/// replacing invalid UTF-8.
pub fn truncate_response(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(RESPONSE_BODY_CAP)]);
    let mut cut = text.len().min(RESPONSE_BODY_CAP);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_owned()
}

/// The fan-out rule on an endpoint's event types and channels (`endpoint_types`,
/// `endpoint_channels`; empty lets everything through) for a message of `event_type` on
/// `channels`: for stores that read the endpoint's columns without building an [`Endpoint`].
pub fn selects(
    endpoint_types: &[String],
    endpoint_channels: &[String],
    event_type: &str,
    channels: &[String],
) -> bool {
    (endpoint_types.is_empty() || endpoint_types.iter().any(|t| t == event_type))
        && (endpoint_channels.is_empty() || endpoint_channels.iter().any(|c| channels.contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_keep_their_svix_numbers() {
        for status in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::from_code(status.code()), Some(status));
        }
        assert_eq!(DeliveryStatus::Canceled.code(), 4);
        assert_eq!(DeliveryStatus::Fail.text(), "fail");
    }

    #[test]
    fn responses_are_cut_at_a_character_boundary() {
        let long = "é".repeat(1000);
        let cut = truncate_response(long.as_bytes());
        assert!(cut.len() <= RESPONSE_BODY_CAP);
        assert_eq!(cut.len(), 1024);
        let invalid = [0xffu8, b'o', b'k'];
        assert_eq!(truncate_response(&invalid), "\u{fffd}ok");
    }
}
