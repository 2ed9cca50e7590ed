//! SIGTERM gives back every lease of work the node had queued and not started, before the
//! process exits: other nodes on the database can take that work at once instead of waiting
//! for the leases to expire. PostgreSQL only (on SQLite the next start releases every lease).

use serde_json::json;

use crate::harness::{Receiver, ServerProcess, TestDatabase, free_port};

/// Messages queued behind a throttle of one per second: nearly all of them are still queued
/// when the node stops.
const QUEUED: usize = 40;

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_releases_the_leases_of_queued_work_before_exiting() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    let node = ServerProcess::start(&database, free_port(), &[("WEBHOOKD_LEASE", "60s")]).await;
    let app = node.create_app().await;
    node.create_endpoint(
        &app,
        json!({"url": receiver.url("/slow"), "throttleRate": 1}),
    )
    .await;
    for n in 0..QUEUED {
        node.send_event(&app, json!({"n": n})).await;
    }
    receiver.wait_for_count("/slow", 1).await;
    assert!(
        database.leased_deliveries().await > 0,
        "the queued deliveries are leased to the node while it runs"
    );

    let status = node.terminate().await;
    assert!(status.success(), "exit status after SIGTERM: {status}");
    // Read as soon as the process is gone: nothing may still hold a lease.
    assert_eq!(
        database.leased_deliveries().await,
        0,
        "deliveries still leased to the stopped node"
    );
}
