//! A release of leases that fails is tried again: the overflow of a full endpoint is given back
//! to the store, the store refuses the first release, and the deliveries must still be sent,
//! without a restart and long before their lease (ten minutes here) could expire. The engine
//! runs on a SQLite store behind a wrapper that refuses `release_leases` once, and sends to a
//! receiver on loopback.

mod refusing;
mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use webhookd_delivery::EngineConfig;
use webhookd_store::sqlite::SqliteStore;
use webhookd_store::{Store, Wrapped};

use refusing::Refusing;
use support::{application_with_endpoint, http, ingest, start_receiver};

const MESSAGES: usize = 30;
const ENDPOINT_QUEUE: usize = 2;

#[tokio::test]
async fn a_refused_release_is_retried_and_its_deliveries_are_sent() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
    let wrapped = Arc::new(Wrapped::around(sqlite, Refusing::new("release_leases", 1)));
    let store: Arc<dyn Store> = Arc::clone(&wrapped) as Arc<dyn Store>;
    let flaky = wrapped.wrapper();
    let (url, arrivals) = start_receiver(Duration::from_millis(5)).await;
    let app = application_with_endpoint(store.as_ref(), "release", url).await;
    // A lease far longer than the test: only a release can make the overflow claimable.
    let config = EngineConfig {
        endpoint_concurrency: 1,
        endpoint_queue: ENDPOINT_QUEUE,
        lease: Duration::from_secs(600),
        ..EngineConfig::new("node-release".into())
    };
    let (dispatcher, engine) = webhookd_delivery::start(Arc::clone(&store), config, http());

    // The endpoint's queue holds two, so most of these overflow and have their leases given
    // back.
    let sent: HashSet<String> = ingest(store.as_ref(), &dispatcher, &app, "release.test", MESSAGES)
        .await
        .iter()
        .map(ToString::to_string)
        .collect();

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while arrivals.lock().unwrap().len() < MESSAGES {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} of {MESSAGES} messages arrived (releases tried {} times, {} refusals left)",
            arrivals.lock().unwrap().len(),
            flaky.calls.load(Ordering::SeqCst),
            flaky.failures_left.load(Ordering::SeqCst),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        flaky.failures_left.load(Ordering::SeqCst),
        0,
        "no release was refused: the overflow never reached the store"
    );
    assert!(flaky.calls.load(Ordering::SeqCst) >= 2);
    let arrived: HashSet<String> = arrivals.lock().unwrap().iter().cloned().collect();
    assert_eq!(arrived, sent);
    engine.shutdown().await;
}
