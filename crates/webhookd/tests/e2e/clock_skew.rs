//! Two nodes on one PostgreSQL database whose clocks are 60 s apart (one runs under libfaketime,
//! Debian's `faketime`): leases are measured by the database's clock, so the node ahead does
//! not see the other's live leases as expired and take its work. Every message is delivered
//! once.
//!
//! Needs the `faketime` command; without it the test says so and passes, except under
//! `CI=true`, where it fails.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;

use crate::harness::{
    Receiver, Reply, ServerProcess, TestDatabase, free_port, webhookd_with_clock,
};

const MESSAGES: usize = 24;
/// Lease and timeout of both nodes: the node behind renews its leases every 2.5 s, each for
/// 10 s, which the node 60 s ahead would take for long expired by its own clock.
const SETTINGS: [(&str, &str); 3] = [
    ("WEBHOOKD_LEASE", "10s"),
    ("WEBHOOKD_REQUEST_TIMEOUT", "5s"),
    ("WEBHOOKD_ENDPOINT_CONCURRENCY", "2"),
];

async fn faketime_available() -> bool {
    let found = tokio::process::Command::new("faketime")
        .args(["-f", "+0s", "true"])
        .status()
        .await
        .is_ok_and(|status| status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the clock-skew test needs the `faketime` command under CI=true (apt-get install faketime)"
        );
        eprintln!("skipped: the clock-skew test needs the `faketime` command");
    }
    found
}

/// The creation time of an application made now on `node`: the node's clock.
async fn created_now(node: &ServerProcess) -> time::OffsetDateTime {
    let app = node.create_app().await;
    let (_, body) = node.get(&format!("/api/v1/app/{app}")).await;
    let at = body["createdAt"].as_str().expect("createdAt");
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339)
        .expect("createdAt is RFC 3339")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_whose_clock_is_ahead_does_not_take_live_leases() {
    if !faketime_available().await {
        return;
    }
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    // Slow answers keep the first node's deliveries queued, leased and renewed for seconds.
    receiver.fallback(
        "/hook",
        Reply::status(200).after(Duration::from_millis(500)),
    );
    let behind = ServerProcess::start(&database, free_port(), &SETTINGS).await;
    let ahead = ServerProcess::start_with(
        webhookd_with_clock("+60s"),
        &database,
        free_port(),
        &SETTINGS,
    )
    .await;
    // The node ahead really runs 60 s ahead: what each node creates carries its own clock.
    let skew = created_now(&ahead).await - created_now(&behind).await;
    assert!(
        skew > time::Duration::seconds(50),
        "the node under libfaketime is not ahead: {skew}"
    );
    let app = behind.create_app().await;
    let endpoint = behind
        .create_endpoint(&app, json!({"url": receiver.url("/hook")}))
        .await
        .id;

    let mut sent = Vec::new();
    for n in 0..MESSAGES {
        sent.push(behind.send_event(&app, json!({"n": n})).await);
    }
    // Once every delivery is recorded as delivered, a copy taken by the node ahead has been
    // sent too (it is sent before it is recorded).
    for msg in &sent {
        behind
            .wait_for_delivery_status(&app, msg, &endpoint, 0)
            .await;
    }
    let requests = receiver.requests();
    let mut per_message: BTreeMap<&str, usize> = BTreeMap::new();
    for request in &requests {
        *per_message.entry(request.webhook_id()).or_default() += 1;
    }
    let twice: Vec<_> = per_message.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(per_message.len(), MESSAGES, "every message arrived");
    drop(ahead);
}
