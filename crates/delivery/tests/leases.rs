//! The scheduler renews the leases the engine holds, and only those: work waiting in memory
//! longer than a lease keeps it, and a lease the store granted to this node that the engine
//! never got (a write cut off by the store's deadline that committed anyway) expires and its
//! delivery is sent. The engine runs on a SQLite store and sends to a receiver on loopback.

mod refusing;
mod support;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use webhookd_core::MessageId;
use webhookd_core::model::Message;
use webhookd_core::time::now;
use webhookd_delivery::EngineConfig;
use webhookd_store::sqlite::SqliteStore;
use webhookd_store::{Lease, Store, Wrapped};

use refusing::Refusing;
use support::{application_with_endpoint, http, ingest, start_receiver};

fn sqlite(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap())
}

async fn wait_for_arrivals(arrivals: &support::Arrivals, count: usize, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while arrivals.lock().unwrap().len() < count {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A message committed leased to this node but never handed to its engine: the lease is not
/// renewed, expires, and the scheduler claims and sends the delivery.
#[tokio::test]
async fn a_lease_the_engine_does_not_hold_expires_and_its_delivery_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(&dir);
    let (url, arrivals) = start_receiver(Duration::ZERO).await;
    let app = application_with_endpoint(store.as_ref(), "orphan", url).await;
    let config = EngineConfig {
        lease: Duration::from_secs(1),
        poll_interval: Duration::from_millis(100),
        ..EngineConfig::new("node-orphan".into())
    };
    let lease = Lease {
        owner: config.node_id.clone(),
        until: now() + config.lease,
    };
    let (_dispatcher, engine) = webhookd_delivery::start(Arc::clone(&store), config, http());

    let message = Message {
        id: MessageId::new(),
        app_id: app,
        event_type: "orphan.test".into(),
        event_id: None,
        payload: Bytes::from_static(br#"{"orphan":true}"#),
        channels: Vec::new(),
        tags: Vec::new(),
        created_at: now(),
        deliver_at: None,
        retain_payload_until: None,
    };
    let fanned = store
        .create_message(&message, Some(&lease), None)
        .await
        .unwrap();
    assert_eq!(
        fanned.len(),
        1,
        "the delivery is created leased to the node"
    );

    wait_for_arrivals(
        &arrivals,
        1,
        "the delivery leased to the node but not held by its engine was never sent: its lease is still renewed",
    )
    .await;
    assert_eq!(*arrivals.lock().unwrap(), vec![message.id.to_string()]);
    engine.shutdown().await;
}

/// Deliveries queued behind a request that takes longer than a lease keep their leases: when
/// the first request returns, another node's claim finds nothing to take.
#[tokio::test]
async fn work_held_longer_than_a_lease_keeps_it() {
    const MESSAGES: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let unwrapped = sqlite(&dir);
    // The engine's own claims are refused, so that an expired lease is not taken back by this
    // node (which would hide it) but stays for another node's claim to find.
    let store: Arc<dyn Store> = Arc::new(Wrapped::around(
        Arc::clone(&unwrapped),
        Refusing::new("claim_due", usize::MAX),
    ));
    let lease = Duration::from_secs(3);
    // Each request outlasts a lease by two seconds.
    let (url, arrivals) = start_receiver(lease + Duration::from_secs(2)).await;
    let app = application_with_endpoint(store.as_ref(), "held", url).await;
    let config = EngineConfig {
        lease,
        endpoint_concurrency: 1,
        ..EngineConfig::new("node-held".into())
    };
    let (dispatcher, engine) = webhookd_delivery::start(Arc::clone(&store), config, http());
    let sent = ingest(store.as_ref(), &dispatcher, &app, "held.test", MESSAGES).await;

    wait_for_arrivals(&arrivals, 1, "the first request never returned").await;
    // The first message took longer than a lease, so the others waited longer than one.
    let intruder = Lease {
        owner: "node-intruder".into(),
        until: now() + Duration::from_secs(60),
    };
    let taken = unwrapped
        .claim_due(&intruder, now(), 100, &[])
        .await
        .unwrap();
    let taken: Vec<&MessageId> = taken.iter().map(|due| &due.message.id).collect();
    assert!(
        taken.is_empty(),
        "another node took deliveries this node holds: their leases were not renewed ({taken:?} of {sent:?})"
    );
    engine.shutdown().await;
}
