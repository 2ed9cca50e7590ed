//! Under sustained overload, delivery order stays close to arrival order: messages are
//! accepted faster than one slow endpoint takes them, so its queue overflows into the store,
//! and what overflowed must come back oldest first while intake continues, not only once it
//! stops. The engine runs on a SQLite store with a small per-endpoint queue, and sends to a
//! receiver on loopback that takes 20 ms per request.

use std::collections::HashMap;
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
use webhookd_store::Store;
use webhookd_store::sqlite::SqliteStore;

const MESSAGES: usize = 300;
const ENDPOINT_QUEUE: usize = 20;

/// The `webhook-id` of each first arrival, in order.
type Arrivals = Arc<Mutex<Vec<String>>>;

async fn receive(State(arrivals): State<Arrivals>, request: Request) -> &'static str {
    tokio::time::sleep(Duration::from_millis(20)).await;
    let id = request
        .headers()
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut arrivals = arrivals.lock().unwrap();
    if !arrivals.contains(&id) {
        arrivals.push(id);
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
async fn overflow_is_delivered_in_arrival_order_while_intake_continues() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let arrivals = Arrivals::default();
    let url = start_receiver(Arc::clone(&arrivals)).await;
    let at = now();
    let app = Application {
        id: AppId::new(),
        uid: None,
        name: "overload".into(),
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
    let config = EngineConfig {
        endpoint_concurrency: 1,
        endpoint_queue: ENDPOINT_QUEUE,
        ..EngineConfig::new("node-overload".into())
    };
    let (dispatcher, engine) = webhookd_delivery::start(Arc::clone(&store), config, http);

    // Intake as the API does it: commit leased to this node, then hand over in memory.
    let mut order: HashMap<MessageId, usize> = HashMap::new();
    for n in 0..MESSAGES {
        let message = Message {
            id: MessageId::new(),
            app_id: app.id.clone(),
            event_type: "load.test".into(),
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
        order.insert(message.id.clone(), n);
        dispatcher.submit(message, fanned);
    }
    let intake_done = arrivals.lock().unwrap().len();
    assert!(
        intake_done < MESSAGES - 4 * ENDPOINT_QUEUE,
        "the endpoint kept up ({intake_done} of {MESSAGES} delivered during intake): no overload"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while arrivals.lock().unwrap().len() < MESSAGES {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {MESSAGES} messages arrived",
            arrivals.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    engine.shutdown().await;

    let arrived = arrivals.lock().unwrap().clone();
    let displacements: Vec<usize> = arrived
        .iter()
        .enumerate()
        .map(|(rank, id)| {
            let n = order[&MessageId::from_trusted(id.clone())];
            rank.abs_diff(n)
        })
        .collect();
    let worst = displacements.iter().max().copied().unwrap_or_default();
    // A few queue lengths of slack: the queue in memory, requests in flight, claim batches.
    assert!(
        worst <= 3 * ENDPOINT_QUEUE,
        "a message arrived {worst} places away from its place in arrival order \
         ({intake_done} of {MESSAGES} had arrived when intake stopped)"
    );
}
