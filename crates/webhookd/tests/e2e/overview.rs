//! The console's figures after real deliveries: the overview's buckets count the attempts the
//! engine recorded (through the store's rollup, so they are right on any node), and an
//! endpoint's health shows its last attempt and recent success rate. Each runs on both
//! backends.

use serde_json::{Value, json};

use crate::harness::{Backend, HOOK, OneEndpoint, Reply, eventually, on_both_backends};

fn total(overview: &Value, field: &str) -> u64 {
    overview["buckets"]
        .as_array()
        .map(|buckets| buckets.iter().filter_map(|b| b[field].as_u64()).sum())
        .unwrap_or_default()
}

async fn the_overview_counts_what_was_delivered_retried_and_failed(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    // The first request fails and is retried; the rest succeed, but one client error.
    setup.receiver.script(HOOK, [Reply::status(503)]);
    let first = setup.send(json!({"n": 1})).await;
    setup.wait_for_status(&first, 0).await;
    setup.receiver.script(HOOK, [Reply::status(400)]);
    let refused = setup.send(json!({"n": 2})).await;
    setup.wait_for_status(&refused, 2).await;
    for n in 3..6 {
        let msg = setup.send(json!({"n": n})).await;
        setup.wait_for_status(&msg, 0).await;
    }

    for period in ["1h", "1d"] {
        let path = format!("/api/v1/stats/overview?period={period}");
        let overview = eventually("the overview to count every attempt", || async {
            let (_, overview) = setup.server.get(&path).await;
            if total(&overview, "attempts") == 6 {
                Ok(overview)
            } else {
                Err(overview.to_string())
            }
        })
        .await;
        assert_eq!(overview["period"], period);
        assert_eq!(total(&overview, "delivered"), 4, "{overview}");
        assert_eq!(total(&overview, "retried"), 1, "{overview}");
        assert_eq!(total(&overview, "failed"), 1, "{overview}");
        let latest = overview["buckets"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find(|bucket| bucket["delivered"] != 0)
            .expect("a bucket with deliveries")
            .clone();
        let (p50, p99) = (latest["p50Ms"].as_f64(), latest["p99Ms"].as_f64());
        assert!(
            p50.is_some_and(|p50| p50 > 0.0) && p99 >= p50,
            "latency estimated: {latest}"
        );
        assert_eq!(overview["queue"]["due"], 0, "{overview}");
        assert_eq!(overview["endpoints"]["disabled"], 0, "{overview}");
    }

    let health_path = format!(
        "/api/v1/app/{}/endpoint/{}/health",
        setup.app, setup.endpoint.id
    );
    let (_, health) = setup.server.get(&health_path).await;
    assert_eq!(health["disabled"], false, "{health}");
    assert_eq!(health["failingSince"], Value::Null, "{health}");
    assert_eq!(health["lastAttempt"]["statusText"], "success", "{health}");
    assert_eq!(
        health["recent"],
        json!({"attempts": 6, "succeeded": 4, "successRate": 4.0 / 6.0}),
        "{health}"
    );
}

on_both_backends! {
    the_overview_counts_what_was_delivered_retried_and_failed,
}
