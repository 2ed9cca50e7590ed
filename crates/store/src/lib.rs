//! Storage: the one interface through which the API and the delivery engine read and write
//! state, and its implementations (SQLite, embedded and default; PostgreSQL for many nodes).
//!
//! Architecture invariant: every SQL string lives in this crate. Callers speak in domain types
//! from `webhookd_core::model` and never see rows, connections or dialects. Errors are mapped
//! once, here, to the few kinds callers act on (conflict, not found, unavailable), so that a
//! 409 means the same on every backend.
//!
//! What both backends do alike is written once (statements over `db::Db`, the traits over
//! `backend::Backend`, see `stores`); `sqlite` and `postgres` keep what each does its own way.

mod access;
mod admin;
mod backend;
mod bulk;
mod columns;
mod conflict;
mod db;
mod deadline;
mod engine;
mod fanout;
mod lists;
mod migrations;
mod operational;
mod ordered;
mod overrides;
mod page;
mod poll;
pub mod postgres;
mod reads;
mod resources;
mod retention;
pub mod rollup;
mod rows;
mod secrets;
pub mod sqlite;
mod status;
mod stores;

use async_trait::async_trait;
use time::OffsetDateTime;
use webhookd_core::id::Prefixed;
use webhookd_core::model::{
    Application, Attempt, BackgroundTask, Delivery, DeliveryStatus, Endpoint, EndpointStats,
    EventType, Message,
};
use webhookd_core::{
    AppId, AppKey, AttemptId, EndpointId, EndpointKey, Key, MessageId, MessageKey, TaskId, TokenId,
};

pub use access::{AccessStore, AppTokenRecord, SessionRecord, SessionSubject};
pub use bulk::{AppUsage, BulkStore, EXPUNGE_BATCH, ReplayFilter};
pub use conflict::{Conflict, Taken};
pub use deadline::{Around, Deadline, DeadlineStore, Wrapped};
pub use fanout::passes as passes_payload_filter;
pub use page::{Cursor, Order, Page, PageRequest};
pub use poll::{PollStore, PollerTokenRecord, StreamPosition};
pub use rollup::{ROLLUP_RETENTION, RollupMinute};
pub use secrets::SecretCodec;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The column a key is looked up in (`id`, or `name_column` for a name) and its text.
pub(crate) fn key_column<'a, I: Prefixed>(
    key: &'a Key<I>,
    name_column: &'static str,
) -> (&'static str, &'a str) {
    match key {
        Key::Id(id) => ("id", id.as_str()),
        Key::Name(name) => (name_column, name),
    }
}

/// What can go wrong in storage, in the terms callers act on.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken: what was taken, and the sentence that names it.
    #[error("{0}")]
    Conflict(Conflict),
    /// The object to change does not exist.
    #[error("not found")]
    NotFound,
    /// The input cannot be stored as given; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// The store cannot take the operation now (locked, full, shutting down): retry later.
    #[error("the store is unavailable: {0}")]
    Unavailable(String),
    /// Anything else. The text is for the log, never for clients.
    #[error("storage failure: {0}")]
    Internal(String),
}

/// The identity of a node and how long its claims hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub until: OffsetDateTime,
}

/// The bounds of an endpoint's counts as stored times (milliseconds): an open bound is the
/// widest one.
pub(crate) fn stats_bounds(
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
) -> (i64, i64) {
    let ms = webhookd_core::time::to_unix_ms;
    (since.map_or(i64::MIN, ms), until.map_or(i64::MAX, ms))
}

/// When a new message's deliveries first fall due: at its `deliverAt`, never before the
/// message was made.
pub(crate) fn first_due(message: &Message) -> OffsetDateTime {
    message
        .deliver_at
        .map_or(message.created_at, |at| at.max(message.created_at))
}

/// Gives back every lease of every owner (a single node at start), in both dialects. Only
/// pending deliveries are leased (every other status is written with the lease ended), so the
/// statements read them through their indexes: unordered ones by `deliveries_due`, numbered
/// ones by `deliveries_line`.
pub(crate) const RELEASE_ALL_LEASES: [&str; 2] = [
    const_format::formatcp!(
        "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL \
         WHERE status = {} AND seq IS NULL AND lease_owner IS NOT NULL",
        status::PENDING
    ),
    const_format::formatcp!(
        "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL \
         WHERE status = {} AND seq IS NOT NULL AND lease_owner IS NOT NULL",
        status::PENDING
    ),
];

/// The lease that claims a new message's deliveries as they are stored: the ingesting node's
/// (it sends them at once), unless `deliverAt` holds them, when a scheduler picks them up as
/// they fall due. (An ordered endpoint's delivery behind others of its line is left unclaimed
/// by each backend's numbering, which alone knows the line.)
pub(crate) fn claim_at_insert<'a>(
    message: &Message,
    lease: Option<&'a Lease>,
) -> Option<&'a Lease> {
    lease.filter(|_| first_due(message) <= message.created_at)
}

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// A response to replay for a repeated `idempotency-key`, written in the same transaction as
/// the effect it answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResponse {
    /// A hash of (token, method, path, key); the key itself is never stored.
    pub key_hash: String,
    pub status: u16,
    pub body: Vec<u8>,
    pub created_at: OffsetDateTime,
}

/// Filters of the message list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MessageFilter {
    pub event_types: Vec<String>,
    pub channel: Option<String>,
    pub tag: Option<String>,
    pub before: Option<OffsetDateTime>,
    pub after: Option<OffsetDateTime>,
}

/// How far a message's `created_at` may lie from the time its id carries. The API makes both
/// at once; the message list's time filters walk the range of ids this allows around them.
pub const MESSAGE_ID_CLOCK_SLACK: time::Duration = time::Duration::minutes(1);

impl MessageFilter {
    /// The label table a filtered list walks in id order instead of the messages themselves:
    /// `(table, column, value)` for the tag, else the channel. `None` without either.
    pub(crate) fn label_index(&self) -> Option<(&'static str, &'static str, &str)> {
        match (&self.tag, &self.channel) {
            (Some(tag), _) => Some(("message_tags", "tag", tag.as_str())),
            (None, Some(channel)) => Some(("message_channels", "channel", channel.as_str())),
            (None, None) => None,
        }
    }

    /// The ids (`low` inclusive, `high` exclusive) that can hold messages created within
    /// `after`/`before`, given [`MESSAGE_ID_CLOCK_SLACK`].
    pub(crate) fn id_range(&self) -> (Option<MessageId>, Option<MessageId>) {
        (
            self.after
                .map(|after| MessageId::lowest_at(after - MESSAGE_ID_CLOCK_SLACK)),
            self.before
                .map(|before| MessageId::lowest_at(before + MESSAGE_ID_CLOCK_SLACK)),
        )
    }
}

/// Filters of the attempt lists and of an endpoint's deliveries.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AttemptFilter {
    pub status: Option<DeliveryStatus>,
    /// 0 (no response), 100, 200, 300, 400 or 500.
    pub status_code_class: Option<u16>,
    pub event_types: Vec<String>,
    pub channel: Option<String>,
    /// Only attempts of messages with this tag.
    pub tag: Option<String>,
    pub endpoint_id: Option<EndpointId>,
    pub before: Option<OffsetDateTime>,
    pub after: Option<OffsetDateTime>,
}

/// Whose attempts to list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptScope {
    Message(MessageId),
    Endpoint(EndpointId),
}

/// A delivery the engine claimed, with what it needs to send it.
#[derive(Debug, Clone, PartialEq)]
pub struct Due {
    pub delivery: Delivery,
    pub message: Message,
}

/// How a recorded attempt changes its delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryUpdate {
    Delivered,
    RetryAt(OffsetDateTime),
    Failed,
    /// A manual resend's result: it never schedules, and a failure does not disturb a delivery
    /// that is still pending on its own schedule.
    Manual {
        success: bool,
    },
}

/// How a recorded attempt changes its endpoint's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointHealth {
    /// A run of failures began at this time.
    FailingSince(OffsetDateTime),
    /// A success ended the run of failures.
    Healthy,
    /// Disable the endpoint (410, or failing for longer than `disable_after`), cancelling its
    /// pending deliveries.
    Disable,
}

/// One attempt's outcome, written back in batches by the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptRecord {
    pub attempt: Attempt,
    pub delivery: DeliveryUpdate,
    pub endpoint_health: Option<EndpointHealth>,
    /// The lease holder, released by this write.
    pub owner: String,
    /// The endpoint delivers in order: a delivery this write finishes lets the next of its
    /// line go (the store wakes the other nodes).
    pub ordered: bool,
    /// Operational events the attempt raises (`message.attempt.*`), stored with it.
    pub events: Vec<webhookd_core::operational::OperationalEvent>,
}

/// What one batch of retention removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPurge {
    /// Message payloads erased.
    pub payloads: u64,
    /// Attempt records deleted.
    pub attempts: u64,
}

impl RetentionPurge {
    /// Whether the batch found nothing left to purge.
    pub fn is_empty(&self) -> bool {
        self.payloads == 0 && self.attempts == 0
    }
}

/// Work waiting in the store, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueDepth {
    /// Pending and due now.
    pub due: u64,
    /// Pending with a later next attempt.
    pub scheduled: u64,
    /// Claimed by a node.
    pub leased: u64,
}

/// Endpoints by health, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndpointHealthCounts {
    /// Enabled, with every attempt failing since some time.
    pub failing: u64,
    pub disabled: u64,
}

/// A stored API token (only a hash of the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    pub id: TokenId,
    pub name: String,
    pub hash: String,
    pub created_at: OffsetDateTime,
}

/// The storage interface. Every method is one transaction; writes from concurrent callers may
/// share a commit (group commit) but each succeeds or fails on its own.
#[async_trait]
pub trait Store: BulkStore + AccessStore + PollStore + Send + Sync + 'static {
    // --- applications -------------------------------------------------------------------
    /// Conflict when the uid is taken.
    async fn create_application(
        &self,
        app: &Application,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()>;
    /// By id or uid.
    async fn get_application(&self, key: &AppKey) -> Result<Option<Application>>;
    async fn list_applications(&self, page: &PageRequest) -> Result<Page<Application>>;
    /// NotFound, or Conflict when the new uid is taken.
    async fn update_application(&self, app: &Application) -> Result<()>;
    /// Deletes its endpoints, messages, deliveries and attempts. False when absent.
    async fn delete_application(&self, id: &AppId) -> Result<bool>;

    // --- endpoints ----------------------------------------------------------------------
    /// Conflict when the uid is taken within the application.
    async fn create_endpoint(
        &self,
        endpoint: &Endpoint,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()>;
    /// By id or uid, within the application.
    async fn get_endpoint(&self, app: &AppId, key: &EndpointKey) -> Result<Option<Endpoint>>;
    /// By id alone, for the engine.
    async fn get_endpoints(&self, ids: &[EndpointId]) -> Result<Vec<Endpoint>>;
    async fn list_endpoints(&self, app: &AppId, page: &PageRequest) -> Result<Page<Endpoint>>;
    /// Every application's endpoints (the operational endpoints excepted), paged by id.
    async fn list_all_endpoints(&self, page: &PageRequest) -> Result<Page<Endpoint>>;
    /// How many endpoints hold a secret or a sensitive custom header that is not sealed with
    /// the current key (plain, or sealed with an older key). Zero without a key.
    async fn count_unsealed_endpoints(&self) -> Result<u64>;
    /// Replaces the endpoint. Disabling it cancels its pending deliveries.
    async fn update_endpoint(&self, endpoint: &Endpoint) -> Result<()>;
    /// Cancels its pending deliveries (as of `now`). False when absent.
    async fn delete_endpoint(
        &self,
        app: &AppId,
        id: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<bool>;
    /// Counts of the endpoint's deliveries by status, of those created in `[since, until]`
    /// (either bound may be open).
    async fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
    ) -> Result<EndpointStats>;
    /// How many endpoints the application has.
    async fn count_endpoints(&self, app: &AppId) -> Result<u64>;

    // --- event types --------------------------------------------------------------------
    /// Conflict when a type of that name exists and is not archived; an archived one is
    /// replaced (un-archived).
    async fn create_event_type(
        &self,
        event_type: &EventType,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()>;
    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>>;
    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> Result<Page<EventType>>;
    /// Creates or replaces.
    async fn put_event_type(&self, event_type: &EventType) -> Result<()>;
    /// Archives (as of `now`), or deletes with `expunge`. False when absent.
    async fn delete_event_type(
        &self,
        name: &str,
        expunge: bool,
        now: OffsetDateTime,
    ) -> Result<bool>;

    // --- messages -----------------------------------------------------------------------
    /// Stores the message and one pending delivery per matching endpoint, in one transaction.
    /// The message's id carries its creation time (within [`MESSAGE_ID_CLOCK_SLACK`]).
    /// With a lease, the deliveries are created claimed by its owner (the ingesting node sends
    /// them at once), except a delivery to an ordered endpoint that has other pending
    /// deliveries: it waits unclaimed for its turn. Conflict when the eventId is taken.
    /// Returns the endpoints fanned out to, without those unclaimed ones when a lease is given
    /// (so the result is what the caller may hand to its engine).
    async fn create_message(
        &self,
        message: &Message,
        lease: Option<&Lease>,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<Vec<EndpointId>>;
    /// By id or eventId, within the application.
    async fn get_message(&self, app: &AppId, key: &MessageKey) -> Result<Option<Message>>;
    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Page<Message>>;

    // --- deliveries and attempts ---------------------------------------------------------
    async fn list_attempts(
        &self,
        app: &AppId,
        scope: &AttemptScope,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<Attempt>>;
    async fn get_attempt(
        &self,
        app: &AppId,
        msg: &MessageId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>>;
    /// The message's delivery to each endpoint, paged by endpoint id.
    async fn list_message_deliveries(
        &self,
        app: &AppId,
        msg: &MessageId,
        page: &PageRequest,
    ) -> Result<Page<(Endpoint, Delivery)>>;
    /// The endpoint's deliveries, paged by message id.
    async fn list_endpoint_deliveries(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<(Message, Delivery)>>;
    async fn get_delivery(
        &self,
        msg: &MessageId,
        endpoint: &EndpointId,
    ) -> Result<Option<Delivery>>;

    // --- the engine ---------------------------------------------------------------------
    /// Claims up to `limit` pending deliveries that are due at `now` and not leased by a live
    /// claim, skipping `skip_endpoints`, oldest due first. Of an ordered endpoint, only the
    /// head of its line (the earliest pending delivery), and only while no other delivery of
    /// that endpoint holds a live lease.
    async fn claim_due(
        &self,
        lease: &Lease,
        now: OffsetDateTime,
        limit: usize,
        skip_endpoints: &[EndpointId],
    ) -> Result<Vec<Due>>;
    /// Extends the leases `lease.owner` holds on these deliveries, while pending, to
    /// `lease.until`; returns how many. Any other lease of the owner is left to expire (one it
    /// took by a write it believes failed, say), so a node renews only what it works on.
    async fn renew_leases(&self, lease: &Lease, keys: &[(MessageId, EndpointId)]) -> Result<u64>;
    /// Gives back claims the owner will not work on; they become due at once.
    async fn release_leases(&self, owner: &str, keys: &[(MessageId, EndpointId)]) -> Result<()>;
    /// Gives back every claim of every owner (a single-node store at start).
    async fn release_all_leases(&self) -> Result<u64>;
    /// Writes attempts and their consequences, and adds them to the delivery rollup, in one
    /// transaction.
    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()>;
    /// The earliest next attempt strictly after `after` among unleased pending deliveries.
    /// Work already due is left out: what is due and not claimed waits on something else
    /// (memory, a full queue), not on the clock.
    async fn next_due_at(&self, after: OffsetDateTime) -> Result<Option<OffsetDateTime>>;
    /// Makes every failed or canceled delivery of the endpoint created within the window
    /// pending again, due at `now`. Returns how many.
    async fn recover(
        &self,
        endpoint: &EndpointId,
        since: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64>;
    /// Queues the message again for an ordered endpoint, in its turn (the resend of an ordered
    /// endpoint: a manual attempt out of turn would break its order). A finished delivery is
    /// made pending again, due at `now`, at the end of the endpoint's line; a pending one is
    /// left as it is (it is sent in its turn); a missing one is created pending, at the end.
    /// `app` is the message's application.
    async fn requeue(
        &self,
        app: &AppId,
        msg: &MessageId,
        endpoint: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<()>;
    async fn queue_depth(&self, now: OffsetDateTime) -> Result<QueueDepth>;
    async fn endpoint_health_counts(&self) -> Result<EndpointHealthCounts>;
    /// The delivery rollup's minutes (see [`rollup`]) that start at or after `since`, oldest
    /// first. `record_attempts` adds to them.
    async fn rollup_minutes(&self, since: OffsetDateTime) -> Result<Vec<RollupMinute>>;
    /// Deletes the rollup's minutes that start before `before`; returns how many.
    async fn prune_rollup(&self, before: OffsetDateTime) -> Result<u64>;
    /// Queues one manual attempt for a delivering node to make (asked of a node that does not
    /// deliver). A second request for the same pair before it is taken is the same request.
    async fn request_resend(
        &self,
        app: &AppId,
        msg: &MessageId,
        endpoint: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<()>;
    /// Takes up to `limit` queued manual attempts, oldest first; each is handed out once.
    async fn take_resends(&self, limit: usize) -> Result<Vec<(AppId, MessageId, EndpointId)>>;
    /// One small batch of retention: deletes attempts made before `cutoff` and erases the
    /// payloads of messages created before `cutoff` or past their own retention
    /// (`payloadRetentionPeriod`), except the payloads of messages with a delivery still
    /// pending. Call again until it purges nothing; each call is a short transaction. `now`
    /// is the time a message's own retention is measured against.
    async fn apply_retention(
        &self,
        cutoff: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<RetentionPurge>;

    // --- background tasks ---------------------------------------------------------------
    async fn put_task(
        &self,
        task: &BackgroundTask,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()>;
    async fn get_task(&self, id: &TaskId) -> Result<Option<BackgroundTask>>;

    // --- API tokens and idempotency -----------------------------------------------------
    /// Also records, for good, that the store has had a token (see [`Store::had_tokens`]).
    async fn create_token(&self, token: &ApiTokenRecord) -> Result<()>;
    /// Whether a token was ever stored, even if every one has since been revoked: such a store
    /// needs an explicit opt-in to be served without authentication again.
    async fn had_tokens(&self) -> Result<bool>;
    async fn list_tokens(&self) -> Result<Vec<ApiTokenRecord>>;
    /// By id or name. False when absent.
    async fn revoke_token(&self, key: &str) -> Result<bool>;
    async fn find_token(&self, hash: &str) -> Result<Option<ApiTokenRecord>>;
    async fn count_tokens(&self) -> Result<u64>;
    /// A stored response for the key, if one was saved at or after `not_before`.
    async fn get_idempotent_response(
        &self,
        key_hash: &str,
        not_before: OffsetDateTime,
    ) -> Result<Option<IdempotentResponse>>;
    /// For effects that are not a single store write (resend, recover, /webhooks).
    async fn save_idempotent_response(&self, response: &IdempotentResponse) -> Result<()>;
    async fn prune_idempotency(&self, before: OffsetDateTime) -> Result<u64>;
    /// Seals every stored idempotency answer with the current key (some hold a secret), or
    /// opens them without a key. Returns how many were rewritten.
    async fn reseal_idempotent_responses(&self) -> Result<u64>;

    /// Makes sure rewritten data leaves no readable copy behind in the store's files (after
    /// `webhookd secrets reencrypt`): SQLite checkpoints and truncates its write-ahead log
    /// (deleted content is already zeroed, `secure_delete`). Nothing to do by default.
    async fn scrub(&self) -> Result<()> {
        Ok(())
    }

    // --- readiness ------------------------------------------------------------------------
    /// Answers once the database has answered a trivial query: whether this node can serve
    /// requests that need the store now.
    async fn ping(&self) -> Result<()>;

    // --- waking other nodes ---------------------------------------------------------------
    /// Notified when another node signals work due now (released leases, recovered
    /// deliveries, messages stored without a lease), so that a scheduler waiting for its next
    /// poll claims at once. `None` (the default) when the store has no such signal: a single
    /// node learns of its own work in memory.
    fn due_notifications(&self) -> Option<std::sync::Arc<tokio::sync::Notify>> {
        None
    }
}
