//! Operations over many messages at once, for the SDK's replays, content erasure and usage
//! counts (and a message sent to one endpoint alone): replaying what an endpoint missed or already got, erasing payloads and response
//! bodies (GDPR), and counting deliveries per application.
//!
//! A supertrait of [`crate::Store`], so every store has them and `dyn Store` callers reach
//! them; they live apart from the core interface because none of them is on the delivery path.
//!
//! Erasure is real: an erased payload or response body is overwritten in the database, not
//! hidden. Payloads are erased by each backend's `retention::erase_payloads`, which the
//! retention purge uses too.

use async_trait::async_trait;
use time::OffsetDateTime;
use webhookd_core::model::{DeliveryStatus, Endpoint, Message};
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId};

use crate::{Lease, Result};

/// Which of an endpoint's deliveries a bulk replay sends again. Times bound the messages'
/// creation; every filter given must hold.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayFilter {
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
    /// Empty means every type.
    pub event_types: Vec<String>,
    pub channel: Option<String>,
    pub tag: Option<String>,
    /// The delivery's status.
    pub status: Option<DeliveryStatus>,
    /// 0 (no response), 100, 200, 300, 400 or 500: one of the delivery's attempts answered
    /// with a code of this class.
    pub status_code_class: Option<u16>,
}

/// Deliveries made for one application within a window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppUsage {
    pub app_id: AppId,
    pub app_uid: Option<String>,
    /// Deliveries (message × endpoint) created in the window.
    pub message_destinations: u64,
}

/// How many messages' contents one call of [`BulkStore::expunge_app_contents`] erases at most,
/// so that no call holds locks for long.
pub const EXPUNGE_BATCH: usize = 1000;

#[async_trait]
pub trait BulkStore: Send + Sync {
    /// Stores the message with one pending delivery, to this endpoint alone, whatever its
    /// filters (an example sent to one endpoint). With a lease, the delivery is created claimed
    /// by its owner. Conflict when the eventId is taken.
    async fn create_message_to(
        &self,
        message: &Message,
        endpoint: &EndpointId,
        lease: Option<&Lease>,
    ) -> Result<()>;

    /// Creates a pending delivery to the endpoint, due at `now`, for every message of its
    /// application created in `[since, until]` that the endpoint's event types and channels
    /// accept and that has no delivery to it at all (created before the endpoint existed, or
    /// while it was disabled). Messages whose content was erased are skipped. Returns how many.
    async fn replay_missing(
        &self,
        endpoint: &Endpoint,
        since: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64>;

    /// Makes every delivery to the endpoint that matches the filter and is finished (success,
    /// fail or canceled) pending again, due at `now`, its attempt count reset. Messages whose
    /// content was erased are skipped. Returns how many.
    async fn replay_deliveries(
        &self,
        endpoint: &EndpointId,
        filter: &ReplayFilter,
        now: OffsetDateTime,
    ) -> Result<u64>;

    /// Erases the payloads of these messages of the application (overwritten, marked
    /// expunged) and cancels their pending deliveries, which have nothing left to send.
    /// Returns the ids of the messages found.
    async fn expunge_contents(
        &self,
        app: &AppId,
        msgs: &[MessageId],
        now: OffsetDateTime,
    ) -> Result<Vec<MessageId>>;

    /// Erases the response body of one attempt. False when there is no such attempt.
    async fn expunge_attempt_content(
        &self,
        app: &AppId,
        msg: &MessageId,
        attempt: &AttemptId,
    ) -> Result<bool>;

    /// Erases the contents of up to [`EXPUNGE_BATCH`] messages of the application that still
    /// have theirs, as [`Self::expunge_contents`] does. Returns how many; call again until 0.
    async fn expunge_app_contents(&self, app: &AppId, now: OffsetDateTime) -> Result<u64>;

    /// Deliveries created in `[since, until]`, per application: of these applications, or of
    /// every application that has any when `apps` is `None`. Applications are in id order;
    /// named applications with none are listed with 0.
    async fn usage_by_app(
        &self,
        apps: Option<&[AppId]>,
        since: OffsetDateTime,
        until: OffsetDateTime,
    ) -> Result<Vec<AppUsage>>;
}
