//! `WEBHOOKD_HEARTBEAT`: a demo event sent to every application on an interval, so that a
//! newcomer sees deliveries arrive without writing a line of code.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use webhookd_core::MessageId;
use webhookd_core::model::Message;
use webhookd_core::time::{format_timestamp, now};
use webhookd_delivery::Dispatcher;
use webhookd_store::Store;

use crate::walk;

/// The event type of heartbeat messages.
pub const EVENT_TYPE: &str = "webhookd.heartbeat";

pub async fn run(store: Arc<dyn Store>, dispatcher: Dispatcher, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        if let Err(error) = beat(store.as_ref(), &dispatcher).await {
            tracing::warn!(%error, "heartbeat failed");
        }
    }
}

/// Sends one heartbeat to every application.
async fn beat(
    store: &dyn Store,
    dispatcher: &Dispatcher,
) -> Result<(), webhookd_store::StoreError> {
    for app in walk::applications(store).await? {
        let at = now();
        let name = app.uid.as_deref().unwrap_or(&app.name);
        let text = format!("Hello {name}, current time is {}", format_timestamp(at));
        let payload = serde_json::json!({ "message": text });
        let message = Message {
            id: MessageId::new(),
            app_id: app.id.clone(),
            event_type: EVENT_TYPE.into(),
            event_id: None,
            payload: Bytes::from(payload.to_string()),
            channels: vec![],
            tags: vec![],
            created_at: at,
            deliver_at: None,
            retain_payload_until: None,
        };
        let endpoints = store
            .create_message(&message, dispatcher.lease().as_ref(), None)
            .await?;
        dispatcher.submit(message, endpoints);
    }
    Ok(())
}
