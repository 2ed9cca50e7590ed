//! Under sustained overload, delivery order stays close to arrival order: messages are
//! accepted faster than one slow endpoint takes them, so its queue overflows into the store,
//! and what overflowed must come back oldest first while intake continues, not only once it
//! stops. The engine runs on a SQLite store with a small per-endpoint queue, and sends to a
//! receiver on loopback that takes 20 ms per request.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use webhookd_core::MessageId;
use webhookd_delivery::EngineConfig;
use webhookd_store::Store;
use webhookd_store::sqlite::SqliteStore;

use support::{application_with_endpoint, http, ingest, start_receiver};

const MESSAGES: usize = 300;
const ENDPOINT_QUEUE: usize = 20;

#[tokio::test]
async fn overflow_is_delivered_in_arrival_order_while_intake_continues() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let (url, arrivals) = start_receiver(Duration::from_millis(20)).await;
    let app = application_with_endpoint(store.as_ref(), "overload", url).await;
    let config = EngineConfig {
        endpoint_concurrency: 1,
        endpoint_queue: ENDPOINT_QUEUE,
        ..EngineConfig::new("node-overload".into())
    };
    let (dispatcher, engine) = webhookd_delivery::start(Arc::clone(&store), config, http());

    let sent = ingest(store.as_ref(), &dispatcher, &app, "load.test", MESSAGES).await;
    let order: HashMap<MessageId, usize> = sent.into_iter().zip(0..).collect();
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
