//! The two backends the suite runs on, and the fixtures its tests build objects with.
//!
//! SQLite runs always, in a temporary directory. PostgreSQL runs when
//! `WEBHOOKD_TEST_DATABASE_URL` names a server: each test creates a database of its own
//! (random name), runs against it, and drops it with `WITH (FORCE)` whether it passed or not.
//! Without the variable the PostgreSQL half says how to enable it and passes, except under
//! `CI=true`, where a missing variable or an unreachable server fails the test.

use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use time::{Duration, OffsetDateTime};
use webhookd_core::cipher::SecretCipher;
use webhookd_core::model::{
    Application, Attempt, DeliveryStatus, Endpoint, EventType, Message, TriggerType,
};
use webhookd_core::time::now;
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId};
use webhookd_store::postgres::PostgresStore;
use webhookd_store::sqlite::SqliteStore;
use webhookd_store::{AttemptRecord, DeliveryUpdate, Lease, QueueDepth, SecretCodec, Store};

pub(crate) const DATABASE_ENV: &str = "WEBHOOKD_TEST_DATABASE_URL";

/// One conformance test: an async function of a store.
pub(crate) type Test = for<'a> fn(&'a dyn Store) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// Every test runs with endpoint secrets sealed at rest, so both backends are held to opening
/// what they sealed (the plain default is what the API and end-to-end suites use).
fn sealing() -> SecretCodec {
    let cipher =
        SecretCipher::parse("q6Hx7nVYJ1c0mJpM4Jg5bJ8Gz0s3kQ2fWc9tY1r8aXE=").expect("a valid key");
    SecretCodec::sealed(cipher)
}

pub(crate) async fn on_sqlite(test: Test) {
    let directory = tempfile::tempdir().expect("a temporary directory");
    let store = SqliteStore::open(&directory.path().join("webhookd.db"))
        .expect("SQLite opens")
        .with_secret_codec(sealing());
    test(&store).await;
}

pub(crate) async fn on_postgres(test: Test) {
    let Some(database) = postgres_database().await else {
        return;
    };
    let url = database.url.clone();
    database
        .run(async move {
            let store = PostgresStore::connect(&url)
                .await
                .expect("PostgreSQL store connects")
                .with_secret_codec(sealing());
            test(&store).await;
        })
        .await;
}

/// A database of its own for one test, or `None` (having said why) when the PostgreSQL half
/// of the suite is not enabled.
pub(crate) async fn postgres_database() -> Option<TestDatabase> {
    let in_ci = std::env::var("CI").is_ok_and(|value| value == "true");
    let Ok(server) = std::env::var(DATABASE_ENV) else {
        assert!(
            !in_ci,
            "{DATABASE_ENV} must name a PostgreSQL server under CI=true"
        );
        eprintln!(
            "skipped: the PostgreSQL half of the storage conformance suite runs when \
             {DATABASE_ENV} is set, e.g. {DATABASE_ENV}=postgres://postgres@127.0.0.1:5432/test"
        );
        return None;
    };
    let admin = match Admin::connect(&server).await {
        Ok(admin) => admin,
        Err(error) if !in_ci => {
            eprintln!("skipped: cannot reach the PostgreSQL server in {DATABASE_ENV}: {error}");
            return None;
        }
        Err(error) => panic!("cannot reach the PostgreSQL server in {DATABASE_ENV}: {error}"),
    };
    let (name, url) = admin.create_database(&server).await;
    Some(TestDatabase { admin, name, url })
}

/// A fresh database on the test server, dropped by [`TestDatabase::run`].
pub(crate) struct TestDatabase {
    admin: Admin,
    name: String,
    pub(crate) url: String,
}

impl TestDatabase {
    /// Runs `test` as a task of its own, so that a panic in it is caught, drops the database,
    /// then passes the panic on.
    pub(crate) async fn run(self, test: impl Future<Output = ()> + Send + 'static) {
        let outcome = tokio::spawn(test).await;
        self.admin.drop_database(&self.name).await;
        if let Err(error) = outcome {
            std::panic::resume_unwind(error.into_panic());
        }
    }
}

/// A connection to the server's maintenance database, to create and drop test databases.
struct Admin {
    client: tokio_postgres::Client,
}

impl Admin {
    /// Connects, or says why not (with the cause, which the client error's text leaves out).
    async fn connect(url: &str) -> Result<Self, String> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|error| match std::error::Error::source(&error) {
                Some(cause) => format!("{error}: {cause}"),
                None => error.to_string(),
            })?;
        tokio::spawn(connection);
        Ok(Self { client })
    }

    /// A fresh database: its name and the URL of `server` pointing at it.
    async fn create_database(&self, server: &str) -> (String, String) {
        let suffix = webhookd_core::TaskId::new()
            .as_str()
            .trim_start_matches("qtask_")
            .to_lowercase();
        let name = format!("webhookd_conformance_{suffix}");
        self.client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .expect("the test database is created");
        let mut url = url::Url::parse(server).expect(DATABASE_ENV);
        url.set_path(&name);
        (name, url.to_string())
    }

    async fn drop_database(&self, name: &str) {
        if let Err(error) = self
            .client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
        {
            eprintln!("could not drop the test database {name}: {error}");
        }
    }
}

// --- fixtures ----------------------------------------------------------------------------

pub(crate) fn application(uid: Option<&str>) -> Application {
    let at = now();
    Application {
        id: AppId::new(),
        uid: uid.map(str::to_owned),
        name: "Acme".into(),
        metadata: serde_json::Map::from_iter([("plan".to_owned(), "gold".into())]),
        throttle_rate: None,
        created_at: at,
        updated_at: at,
    }
}

pub(crate) fn endpoint(app: &AppId, uid: Option<&str>) -> Endpoint {
    let at = now();
    Endpoint {
        uid: uid.map(str::to_owned),
        throttle_rate: Some(10),
        headers: [("x-team".to_owned(), "blue".to_owned())].into(),
        ..Endpoint::new(app.clone(), "https://example.com/hook", at)
    }
}

pub(crate) fn event_type(name: &str) -> EventType {
    let at = now();
    EventType {
        name: name.into(),
        description: format!("{name} happened"),
        archived: false,
        deprecated: false,
        schemas: Some(serde_json::json!({"1": {"type": "object"}})),
        feature_flags: vec!["beta".into()],
        group_name: Some("users".into()),
        created_at: at,
        updated_at: at,
    }
}

pub(crate) fn message(app: &AppId, event_type: &str) -> Message {
    message_at(app, event_type, now())
}

/// A message created at `created_at`; its id carries that time, as the store expects.
pub(crate) fn message_at(app: &AppId, event_type: &str, created_at: OffsetDateTime) -> Message {
    let id = if (created_at - now()).abs() < webhookd_store::MESSAGE_ID_CLOCK_SLACK {
        // Ids made now keep the order they are made in.
        MessageId::new()
    } else {
        MessageId::made_at(created_at)
    };
    Message {
        id,
        app_id: app.clone(),
        event_type: event_type.into(),
        event_id: None,
        payload: Bytes::from_static(br#"{"answer":42}"#),
        channels: Vec::new(),
        tags: Vec::new(),
        created_at,
        deliver_at: None,
        retain_payload_until: None,
    }
}

/// A delivery's key.
pub(crate) type Key = (MessageId, EndpointId);

/// Claims for `owner` at `at`, with a lease of a minute; returns what was claimed.
pub(crate) async fn claim(
    store: &dyn Store,
    owner: &str,
    at: OffsetDateTime,
    limit: usize,
    skip: &[EndpointId],
) -> Vec<Key> {
    let claimed = store
        .claim_due(&lease(owner, at + minutes(1)), at, limit, skip)
        .await
        .unwrap();
    claimed
        .into_iter()
        .map(|due| (due.delivery.msg_id, due.delivery.endpoint_id))
        .collect()
}

/// A delivery's status, attempt count and next attempt.
pub(crate) async fn status(
    store: &dyn Store,
    msg: &MessageId,
    endpoint: &EndpointId,
) -> (DeliveryStatus, u32, Option<OffsetDateTime>) {
    let delivery = store
        .get_delivery(msg, endpoint)
        .await
        .unwrap()
        .expect("the delivery exists");
    (delivery.status, delivery.attempts, delivery.next_attempt_at)
}

pub(crate) fn depth(due: u64, scheduled: u64, leased: u64) -> QueueDepth {
    QueueDepth {
        due,
        scheduled,
        leased,
    }
}

pub(crate) fn lease(owner: &str, until: OffsetDateTime) -> Lease {
    Lease {
        owner: owner.into(),
        until,
    }
}

pub(crate) fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}

/// An attempt at delivering `msg` to `endpoint` and its effect, as the engine records it.
pub(crate) fn attempt_record(
    app: &AppId,
    msg: &MessageId,
    endpoint: &EndpointId,
    update: DeliveryUpdate,
    owner: &str,
) -> AttemptRecord {
    let (status, code, trigger) = match update {
        DeliveryUpdate::Delivered => (DeliveryStatus::Success, 200, TriggerType::Scheduled),
        DeliveryUpdate::RetryAt(_) => (DeliveryStatus::Pending, 503, TriggerType::Scheduled),
        DeliveryUpdate::Failed => (DeliveryStatus::Fail, 500, TriggerType::Scheduled),
        DeliveryUpdate::Manual { success: true } => {
            (DeliveryStatus::Success, 200, TriggerType::Manual)
        }
        DeliveryUpdate::Manual { success: false } => (DeliveryStatus::Fail, 0, TriggerType::Manual),
    };
    AttemptRecord {
        attempt: Attempt {
            id: AttemptId::new(),
            msg_id: msg.clone(),
            endpoint_id: endpoint.clone(),
            app_id: app.clone(),
            url: "https://example.com/hook".into(),
            status,
            response_status_code: code,
            response: "ok".into(),
            duration_ms: 12,
            trigger_type: trigger,
            created_at: now(),
        },
        delivery: update,
        endpoint_health: None,
        owner: owner.into(),
        ordered: false,
        events: Vec::new(),
    }
}

/// An application with `endpoints` plain endpoints, stored.
pub(crate) async fn app_with_endpoints(
    store: &dyn Store,
    endpoints: usize,
) -> (Application, Vec<Endpoint>) {
    let app = application(None);
    store
        .create_application(&app, None)
        .await
        .expect("application created");
    let mut created = Vec::new();
    for _ in 0..endpoints {
        let endpoint = endpoint(&app.id, None);
        store
            .create_endpoint(&endpoint, None)
            .await
            .expect("endpoint created");
        created.push(endpoint);
    }
    (app, created)
}

/// Waits for a wake-up, up to a deadline.
pub(crate) async fn woken(due: &tokio::sync::Notify, what: &str) {
    let deadline = std::time::Duration::from_secs(10);
    if tokio::time::timeout(deadline, due.notified())
        .await
        .is_err()
    {
        panic!("no wake-up within {deadline:?} after {what}");
    }
}
