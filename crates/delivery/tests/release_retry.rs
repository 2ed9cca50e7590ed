//! A release of leases that fails is tried again: the overflow of a full endpoint is given back
//! to the store, the store refuses the first release, and the deliveries must still be sent,
//! without a restart and long before their lease (ten minutes here) could expire. The engine
//! runs on a SQLite store behind a wrapper that refuses `release_leases` once, and sends to a
//! receiver on loopback.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::routing::post;
use bytes::Bytes;
use webhookd_core::model::{Application, Endpoint, Message};
use webhookd_core::ssrf::AllowPrivate;
use webhookd_core::time::now;
use webhookd_core::{AppId, MessageId};
use webhookd_delivery::EngineConfig;
use webhookd_delivery::http::{HttpClient, HttpConfig};
use webhookd_store::sqlite::SqliteStore;
use webhookd_store::{Around, Result, Store, StoreError, Wrapped};

const MESSAGES: usize = 30;
const ENDPOINT_QUEUE: usize = 2;

/// Refuses the first `failures_left` calls of `release_leases`; every other call goes through.
struct FlakyReleases {
    failures_left: AtomicUsize,
    releases: AtomicUsize,
}

impl Around for FlakyReleases {
    async fn around<T, F>(&self, call: &'static str, work: F) -> Result<T>
    where
        T: Send,
        F: Future<Output = Result<T>> + Send,
    {
        if call == "release_leases" {
            self.releases.fetch_add(1, Ordering::SeqCst);
            let refuse = self
                .failures_left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
            if refuse {
                return Err(StoreError::Unavailable(
                    "a release refused by the test".into(),
                ));
            }
        }
        work.await
    }
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
    let wrapped = Arc::new(Wrapped::around(
        sqlite,
        FlakyReleases {
            failures_left: AtomicUsize::new(1),
            releases: AtomicUsize::new(0),
        },
    ));
    let store: Arc<dyn Store> = Arc::clone(&wrapped) as Arc<dyn Store>;
    let flaky = wrapped.wrapper();
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
