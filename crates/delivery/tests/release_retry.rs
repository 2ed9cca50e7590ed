//! A release of leases that fails is tried again: the overflow of a full endpoint is given back
//! to the store, the store refuses the first release, and the deliveries must still be sent,
//! without a restart and long before their lease (ten minutes here) could expire. The engine
//! runs on a SQLite store behind a wrapper that refuses `release_leases` once, and sends to a
//! receiver on loopback.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::{Request, State};
use axum::routing::post;
use bytes::Bytes;
use time::OffsetDateTime;
use webhookd_core::model::{
    Application, Attempt, BackgroundTask, Delivery, Endpoint, EndpointStats, EventType, Message,
};
use webhookd_core::ssrf::AllowPrivate;
use webhookd_core::time::now;
use webhookd_core::{
    AppId, AppKey, AttemptId, EndpointId, EndpointKey, MessageId, MessageKey, TaskId, TokenId,
};
use webhookd_delivery::EngineConfig;
use webhookd_delivery::http::{HttpClient, HttpConfig};
use webhookd_store::sqlite::SqliteStore;
use webhookd_store::{
    AccessStore, ApiTokenRecord, AppTokenRecord, AppUsage, AttemptFilter, AttemptRecord,
    AttemptScope, BulkStore, Due, EndpointHealthCounts, IdempotentResponse, Lease, MessageFilter,
    Page, PageRequest, PollStore, PollerTokenRecord, QueueDepth, ReplayFilter, RetentionPurge,
    RollupMinute, SessionRecord, Store, StoreError, StreamPosition,
};

type Result<T> = webhookd_store::Result<T>;

const MESSAGES: usize = 30;
const ENDPOINT_QUEUE: usize = 2;

/// A store that refuses its first `failures_left` calls of `release_leases` and forwards
/// everything else.
struct FlakyReleases {
    inner: Arc<dyn Store>,
    failures_left: AtomicUsize,
    releases: AtomicUsize,
}

/// Implements a store trait by forwarding each listed method to the inner store; `extra`
/// holds the methods written out.
macro_rules! forward_store {
    (
        impl $trait:ident { $($extra:item)* }
        $(fn $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty;)*
    ) => {
        #[async_trait]
        impl $trait for FlakyReleases {
            $(
                async fn $name(&self, $($arg: $ty),*) -> $ret {
                    self.inner.$name($($arg),*).await
                }
            )*

            $($extra)*
        }
    };
}

forward_store! {
    impl BulkStore {}
    fn create_message_to(message: &Message, endpoint: &EndpointId, lease: Option<&Lease>) -> Result<()>;
    fn replay_missing(endpoint: &Endpoint, since: OffsetDateTime, until: OffsetDateTime, now: OffsetDateTime) -> Result<u64>;
    fn replay_deliveries(endpoint: &EndpointId, filter: &ReplayFilter, now: OffsetDateTime) -> Result<u64>;
    fn expunge_contents(app: &AppId, msgs: &[MessageId], now: OffsetDateTime) -> Result<Vec<MessageId>>;
    fn expunge_attempt_content(app: &AppId, msg: &MessageId, attempt: &AttemptId) -> Result<bool>;
    fn expunge_app_contents(app: &AppId, now: OffsetDateTime) -> Result<u64>;
    fn usage_by_app(apps: Option<&[AppId]>, since: OffsetDateTime, until: OffsetDateTime) -> Result<Vec<AppUsage>>;
}

forward_store! {
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

forward_store! {
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

forward_store! {
    impl Store {
        async fn release_all_leases(&self) -> Result<u64> {
            self.inner.release_all_leases().await
        }

        async fn scrub(&self) -> Result<()> {
            self.inner.scrub().await
        }

        fn due_notifications(&self) -> Option<Arc<tokio::sync::Notify>> {
            self.inner.due_notifications()
        }

        async fn release_leases(&self, owner: &str, keys: &[(MessageId, EndpointId)]) -> Result<()> {
            self.releases.fetch_add(1, Ordering::SeqCst);
            if self.failures_left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| left.checked_sub(1)).is_ok() {
                return Err(StoreError::Unavailable("a release refused by the test".into()));
            }
            self.inner.release_leases(owner, keys).await
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
    fn endpoint_stats(endpoint: &EndpointId) -> Result<EndpointStats>;
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
    fn renew_leases(lease: &Lease) -> Result<u64>;
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
}

/// The `webhook-id`s that arrived.
type Arrivals = Arc<Mutex<HashSet<String>>>;

async fn receive(State(arrivals): State<Arrivals>, request: Request) -> &'static str {
    tokio::time::sleep(Duration::from_millis(5)).await;
    if let Some(id) = request
        .headers()
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
    {
        arrivals.lock().unwrap().insert(id.to_owned());
    }
    "ok"
}

async fn start_receiver(arrivals: Arrivals) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/hook", post(receive))
        .with_state(arrivals);
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}/hook")
}

fn endpoint(app: &AppId, url: String) -> Endpoint {
    let at = now();
    Endpoint::new(app.clone(), url, at)
}

#[tokio::test]
async fn a_refused_release_is_retried_and_its_deliveries_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let flaky = Arc::new(FlakyReleases {
        inner: sqlite,
        failures_left: AtomicUsize::new(1),
        releases: AtomicUsize::new(0),
    });
    let store: Arc<dyn Store> = Arc::clone(&flaky) as Arc<dyn Store>;
    let arrivals = Arrivals::default();
    let url = start_receiver(Arc::clone(&arrivals)).await;
    let at = now();
    let app = Application {
        id: AppId::new(),
        uid: None,
        name: "release".into(),
        metadata: Default::default(),
        throttle_rate: None,
        created_at: at,
        updated_at: at,
    };
    store.create_application(&app, None).await.unwrap();
    store
        .create_endpoint(&endpoint(&app.id, url), None)
        .await
        .unwrap();
    let http = HttpClient::new(HttpConfig {
        allow_private: AllowPrivate::All,
        ..HttpConfig::default()
    })
    .unwrap();
    // A lease far longer than the test: only a release can make the overflow claimable.
    let config = EngineConfig {
        endpoint_concurrency: 1,
        endpoint_queue: ENDPOINT_QUEUE,
        lease: Duration::from_secs(600),
        ..EngineConfig::new("node-release".into())
    };
    let (dispatcher, engine) = webhookd_delivery::start(Arc::clone(&store), config, http);

    // Intake as the API does it: commit leased to this node, then hand over in memory. The
    // endpoint's queue holds two, so most of these overflow and have their leases given back.
    let mut sent = HashSet::new();
    for n in 0..MESSAGES {
        let message = Message {
            id: MessageId::new(),
            app_id: app.id.clone(),
            event_type: "release.test".into(),
            event_id: None,
            payload: Bytes::from(format!(r#"{{"n":{n}}}"#)),
            channels: Vec::new(),
            tags: Vec::new(),
            created_at: now(),
            deliver_at: None,
            retain_payload_until: None,
        };
        let lease = dispatcher.lease().unwrap();
        let fanned = store
            .create_message(&message, Some(&lease), None)
            .await
            .unwrap();
        sent.insert(message.id.to_string());
        dispatcher.submit(message, fanned);
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while arrivals.lock().unwrap().len() < MESSAGES {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {MESSAGES} messages arrived (releases tried {} times, {} refusals left)",
            arrivals.lock().unwrap().len(),
            flaky.releases.load(Ordering::SeqCst),
            flaky.failures_left.load(Ordering::SeqCst),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        flaky.failures_left.load(Ordering::SeqCst),
        0,
        "no release was refused: the overflow never reached the store"
    );
    assert!(flaky.releases.load(Ordering::SeqCst) >= 2);
    assert_eq!(*arrivals.lock().unwrap(), sent);
    engine.shutdown().await;
}
