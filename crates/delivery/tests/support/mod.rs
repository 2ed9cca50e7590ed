//! What the engine's integration tests share: a receiver on loopback, an application with one
//! endpoint that sends to it, the HTTP client, and intake as the API does it.

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
use webhookd_delivery::Dispatcher;
use webhookd_delivery::http::{HttpClient, HttpConfig};
use webhookd_store::Store;

/// The `webhook-id` of each first arrival, in order.
pub(crate) type Arrivals = Arc<Mutex<Vec<String>>>;

#[derive(Clone)]
struct Receiver {
    arrivals: Arrivals,
    delay: Duration,
}

async fn receive(State(receiver): State<Receiver>, request: Request) -> &'static str {
    tokio::time::sleep(receiver.delay).await;
    let id = request
        .headers()
        .get("webhook-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut arrivals = receiver.arrivals.lock().unwrap();
    if !arrivals.contains(&id) {
        arrivals.push(id);
    }
    "ok"
}

/// A receiver on loopback that takes `delay` per request; its URL and what arrived.
pub(crate) async fn start_receiver(delay: Duration) -> (String, Arrivals) {
    let arrivals = Arrivals::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = Router::new()
        .route("/hook", post(receive))
        .with_state(Receiver {
            arrivals: Arc::clone(&arrivals),
            delay,
        });
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{address}/hook"), arrivals)
}

/// An application named `name` with one endpoint sending to `url`.
pub(crate) async fn application_with_endpoint(store: &dyn Store, name: &str, url: String) -> AppId {
    let at = now();
    let app = Application {
        id: AppId::new(),
        uid: None,
        name: name.into(),
        metadata: Default::default(),
        throttle_rate: None,
        created_at: at,
        updated_at: at,
    };
    store.create_application(&app, None).await.unwrap();
    store
        .create_endpoint(&Endpoint::new(app.id.clone(), url, at), None)
        .await
        .unwrap();
    app.id
}

/// The engine's client, allowed to send to loopback.
pub(crate) fn http() -> HttpClient {
    HttpClient::new(HttpConfig {
        allow_private: AllowPrivate::All,
        ..HttpConfig::default()
    })
    .unwrap()
}

/// Intake as the API does it: each message committed leased to the dispatcher's node, then
/// handed over in memory. The messages' ids, in the order sent.
pub(crate) async fn ingest(
    store: &dyn Store,
    dispatcher: &Dispatcher,
    app: &AppId,
    event_type: &str,
    count: usize,
) -> Vec<MessageId> {
    let mut sent = Vec::with_capacity(count);
    for n in 0..count {
        let message = Message {
            id: MessageId::new(),
            app_id: app.clone(),
            event_type: event_type.into(),
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
        sent.push(message.id.clone());
        dispatcher.submit(message, fanned);
    }
    sent
}
