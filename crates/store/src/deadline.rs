//! Wrappers of a store: [`Wrapped`] forwards every call to an inner store through an
//! [`Around`], which may bound, refuse or observe it; the list of forwarded methods is written
//! once, here.
//!
//! [`DeadlineStore`] puts a deadline on every store call: it answers
//! [`StoreError::Unavailable`] when a call has not finished in time, so that a database that is
//! frozen, unreachable or stuck on a lock makes requests fail fast (503 with `Retry-After`) and
//! the engine back off, instead of hanging for as long as the database does.
//!
//! A call cut off by its deadline may still complete in the database afterwards (a write that
//! was already sent commits or not, as the database decides): a caller that retries must be
//! idempotent, as the API is with an `idempotency-key` and the engine is with its leases.
//! Giving back every lease at the start of a single node (`release_all_leases`) and rewriting
//! the files after a re-encryption (`scrub`) are not bounded: they may take long on a large
//! store, and nothing else waits for them.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use webhookd_core::model::{
    Application, Attempt, BackgroundTask, Delivery, Endpoint, EndpointStats, EventType, Message,
};
use webhookd_core::{
    AppId, AppKey, AttemptId, EndpointId, EndpointKey, MessageId, MessageKey, TaskId, TokenId,
};

use crate::{
    AccessStore, ApiTokenRecord, AppTokenRecord, AppUsage, AttemptFilter, AttemptRecord,
    AttemptScope, BulkStore, Due, EndpointHealthCounts, IdempotentResponse, Lease, MessageFilter,
    Page, PageRequest, PollStore, PollerTokenRecord, QueueDepth, ReplayFilter, Result,
    RetentionPurge, RollupMinute, SessionRecord, Store, StoreError, StreamPosition,
};

/// What a [`Wrapped`] store does around each call of its inner store: `call` is the method's
/// name, `work` the inner store's call, not started yet.
pub trait Around: Send + Sync + 'static {
    fn around<T, F>(&self, call: &'static str, work: F) -> impl Future<Output = Result<T>> + Send
    where
        T: Send,
        F: Future<Output = Result<T>> + Send;
}

/// A store that forwards every call to `inner` through `around`.
pub struct Wrapped<A> {
    inner: Arc<dyn Store>,
    around: A,
}

impl<A: Around> Wrapped<A> {
    pub fn around(inner: Arc<dyn Store>, around: A) -> Self {
        Self { inner, around }
    }

    /// The wrapper's own state.
    pub fn wrapper(&self) -> &A {
        &self.around
    }
}

/// The deadline of every store call but the unbounded ones (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    limit: Duration,
}

/// The calls a deadline does not bound.
const UNBOUNDED: [&str; 2] = ["release_all_leases", "scrub"];

impl Around for Deadline {
    async fn around<T, F>(&self, call: &'static str, work: F) -> Result<T>
    where
        T: Send,
        F: Future<Output = Result<T>> + Send,
    {
        if UNBOUNDED.contains(&call) {
            return work.await;
        }
        match tokio::time::timeout(self.limit, work).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(call, limit = ?self.limit, "the store did not answer in time");
                Err(StoreError::Unavailable(format!(
                    "the database did not answer within {:?}",
                    self.limit
                )))
            }
        }
    }
}

/// A store whose every call (but those the module docs name) ends within a limit.
pub type DeadlineStore = Wrapped<Deadline>;

impl DeadlineStore {
    pub fn new(inner: Arc<dyn Store>, limit: Duration) -> Self {
        Self::around(inner, Deadline { limit })
    }
}

/// Implements a store trait for [`Wrapped`] by forwarding each listed method to the inner
/// store through the wrapper; `extra` holds the trait's methods written out.
macro_rules! wrapped_store {
    (
        impl $trait:ident { $($extra:item)* }
        $(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*
    ) => {
        #[async_trait]
        impl<A: Around> $trait for Wrapped<A> {
            $(
                async fn $name(&self, $($arg: $ty),*) -> $ret {
                    self.around.around(stringify!($name), self.inner.$name($($arg),*)).await
                }
            )*

            $($extra)*
        }
    };
}

wrapped_store! {
    impl BulkStore {}
    fn create_message_to(message: &Message, endpoint: &EndpointId, lease: Option<&Lease>) -> Result<()>;
    fn replay_missing(endpoint: &Endpoint, since: OffsetDateTime, until: OffsetDateTime, now: OffsetDateTime) -> Result<u64>;
    fn replay_deliveries(endpoint: &EndpointId, filter: &ReplayFilter, now: OffsetDateTime) -> Result<u64>;
    fn expunge_contents(app: &AppId, msgs: &[MessageId], now: OffsetDateTime) -> Result<Vec<MessageId>>;
    fn expunge_attempt_content(app: &AppId, msg: &MessageId, attempt: &AttemptId) -> Result<bool>;
    fn expunge_app_contents(app: &AppId, now: OffsetDateTime) -> Result<u64>;
    fn usage_by_app(apps: Option<&[AppId]>, since: OffsetDateTime, until: OffsetDateTime) -> Result<Vec<AppUsage>>;
}

wrapped_store! {
    impl AccessStore {}
    fn create_app_token(token: &AppTokenRecord) -> Result<()>;
    fn find_app_token(hash: &str) -> Result<Option<AppTokenRecord>>;
    fn get_app_token(id: &TokenId) -> Result<Option<AppTokenRecord>>;
    fn expire_app_tokens(app: &AppId, labels: &[String], at: OffsetDateTime) -> Result<u64>;
    fn expire_app_token(id: &TokenId, at: OffsetDateTime) -> Result<bool>;
    fn create_session(session: &SessionRecord) -> Result<()>;
    fn find_session(hash: &str) -> Result<Option<SessionRecord>>;
    fn delete_session(hash: &str) -> Result<bool>;
    fn prune_access(before: OffsetDateTime) -> Result<u64>;
}

wrapped_store! {
    impl PollStore {}
    fn stream_start(app: &AppId, since: OffsetDateTime) -> Result<StreamPosition>;
    fn read_stream(app: &AppId, since: OffsetDateTime, after: &StreamPosition, limit: usize) -> Result<Vec<(StreamPosition, Message)>>;
    fn get_poll_offset(endpoint: &EndpointId, consumer: &str) -> Result<Option<String>>;
    fn set_poll_offset(app: &AppId, endpoint: &EndpointId, consumer: &str, iterator: &str, now: OffsetDateTime) -> Result<()>;
    fn rotate_poller_token(token: &PollerTokenRecord, retire_others_at: OffsetDateTime) -> Result<()>;
    fn find_poller_token(hash: &str) -> Result<Option<PollerTokenRecord>>;
    fn current_poller_token(endpoint: &EndpointId, now: OffsetDateTime) -> Result<Option<PollerTokenRecord>>;
    fn reseal_poller_tokens() -> Result<u64>;
}

wrapped_store! {
    impl Store {
        fn due_notifications(&self) -> Option<Arc<tokio::sync::Notify>> {
            self.inner.due_notifications()
        }
    }
    fn create_application(app: &Application, idempotency: Option<&IdempotentResponse>) -> Result<()>;
    fn get_application(key: &AppKey) -> Result<Option<Application>>;
    fn list_applications(page: &PageRequest) -> Result<Page<Application>>;
    fn update_application(app: &Application) -> Result<()>;
    fn delete_application(id: &AppId) -> Result<bool>;
    fn create_endpoint(endpoint: &Endpoint, idempotency: Option<&IdempotentResponse>) -> Result<()>;
    fn get_endpoint(app: &AppId, key: &EndpointKey) -> Result<Option<Endpoint>>;
    fn get_endpoints(ids: &[EndpointId]) -> Result<Vec<Endpoint>>;
    fn list_endpoints(app: &AppId, page: &PageRequest) -> Result<Page<Endpoint>>;
    fn update_endpoint(endpoint: &Endpoint) -> Result<()>;
    fn delete_endpoint(app: &AppId, id: &EndpointId, now: OffsetDateTime) -> Result<bool>;
    fn endpoint_stats(endpoint: &EndpointId, since: Option<OffsetDateTime>, until: Option<OffsetDateTime>) -> Result<EndpointStats>;
    fn count_endpoints(app: &AppId) -> Result<u64>;
    fn create_event_type(event_type: &EventType, idempotency: Option<&IdempotentResponse>) -> Result<()>;
    fn get_event_type(name: &str) -> Result<Option<EventType>>;
    fn list_event_types(page: &PageRequest, include_archived: bool) -> Result<Page<EventType>>;
    fn put_event_type(event_type: &EventType) -> Result<()>;
    fn delete_event_type(name: &str, expunge: bool, now: OffsetDateTime) -> Result<bool>;
    fn create_message(message: &Message, lease: Option<&Lease>, idempotency: Option<&IdempotentResponse>) -> Result<Vec<EndpointId>>;
    fn get_message(app: &AppId, key: &MessageKey) -> Result<Option<Message>>;
    fn list_messages(app: &AppId, filter: &MessageFilter, page: &PageRequest) -> Result<Page<Message>>;
    fn list_attempts(app: &AppId, scope: &AttemptScope, filter: &AttemptFilter, page: &PageRequest) -> Result<Page<Attempt>>;
    fn get_attempt(app: &AppId, msg: &MessageId, id: &AttemptId) -> Result<Option<Attempt>>;
    fn list_message_deliveries(app: &AppId, msg: &MessageId, page: &PageRequest) -> Result<Page<(Endpoint, Delivery)>>;
    fn list_endpoint_deliveries(app: &AppId, endpoint: &EndpointId, filter: &AttemptFilter, page: &PageRequest) -> Result<Page<(Message, Delivery)>>;
    fn get_delivery(msg: &MessageId, endpoint: &EndpointId) -> Result<Option<Delivery>>;
    fn claim_due(lease: &Lease, now: OffsetDateTime, limit: usize, skip_endpoints: &[EndpointId]) -> Result<Vec<Due>>;
    fn renew_leases(lease: &Lease, keys: &[(MessageId, EndpointId)]) -> Result<u64>;
    fn release_leases(owner: &str, keys: &[(MessageId, EndpointId)]) -> Result<()>;
    fn record_attempts(records: &[AttemptRecord]) -> Result<()>;
    fn next_due_at(after: OffsetDateTime) -> Result<Option<OffsetDateTime>>;
    fn recover(endpoint: &EndpointId, since: OffsetDateTime, until: OffsetDateTime, now: OffsetDateTime) -> Result<u64>;
    fn requeue(app: &AppId, msg: &MessageId, endpoint: &EndpointId, now: OffsetDateTime) -> Result<()>;
    fn queue_depth(now: OffsetDateTime) -> Result<QueueDepth>;
    fn endpoint_health_counts() -> Result<EndpointHealthCounts>;
    fn request_resend(app: &AppId, msg: &MessageId, endpoint: &EndpointId, now: OffsetDateTime) -> Result<()>;
    fn take_resends(limit: usize) -> Result<Vec<(AppId, MessageId, EndpointId)>>;
    fn apply_retention(cutoff: OffsetDateTime, now: OffsetDateTime) -> Result<RetentionPurge>;
    fn put_task(task: &BackgroundTask, idempotency: Option<&IdempotentResponse>) -> Result<()>;
    fn get_task(id: &TaskId) -> Result<Option<BackgroundTask>>;
    fn create_token(token: &ApiTokenRecord) -> Result<()>;
    fn list_tokens() -> Result<Vec<ApiTokenRecord>>;
    fn revoke_token(key: &str) -> Result<bool>;
    fn find_token(hash: &str) -> Result<Option<ApiTokenRecord>>;
    fn count_tokens() -> Result<u64>;
    fn get_idempotent_response(key_hash: &str, not_before: OffsetDateTime) -> Result<Option<IdempotentResponse>>;
    fn save_idempotent_response(response: &IdempotentResponse) -> Result<()>;
    fn prune_idempotency(before: OffsetDateTime) -> Result<u64>;
    fn ping() -> Result<()>;
    fn list_all_endpoints(page: &PageRequest) -> Result<Page<Endpoint>>;
    fn count_unsealed_endpoints() -> Result<u64>;
    fn had_tokens() -> Result<bool>;
    fn reseal_idempotent_responses() -> Result<u64>;
    fn rollup_minutes(since: OffsetDateTime) -> Result<Vec<RollupMinute>>;
    fn prune_rollup(before: OffsetDateTime) -> Result<u64>;
    fn release_all_leases() -> Result<u64>;
    fn scrub() -> Result<()>;
}
