//! Endpoint options end to end, on both backends: a payload filter delivers exactly the
//! matching messages; an endpoint's own retry schedule is followed while the node's is long;
//! an endpoint's own request timeout cuts a receiver the node's timeout would wait for.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Backend, HOOK, OneEndpoint, Reply, on_both_backends};

async fn a_payload_filter_delivers_exactly_the_matching_messages(backend: Backend) {
    let setup = OneEndpoint::start(
        backend,
        &[],
        json!({"payloadFilter": r#"payload.amount > 100 && payload.currency == "EUR""#}),
    )
    .await;
    let payloads = [
        (json!({"amount": 150, "currency": "EUR"}), true),
        (json!({"amount": 50, "currency": "EUR"}), false),
        (json!({"amount": 500, "currency": "USD"}), false),
        (json!({"currency": "EUR"}), false), // no amount: the filter errs, no match
        (json!({"amount": 100.5, "currency": "EUR"}), true),
    ];
    let mut matching = Vec::new();
    for (payload, matches) in payloads {
        let msg = setup.send(payload).await;
        let deliveries = setup.server.deliveries(&setup.app, &msg).await;
        // Fan-out happens at ingest: a message that does not match has no delivery at all.
        assert_eq!(
            deliveries.len(),
            usize::from(matches),
            "{msg}: {deliveries:?}"
        );
        if matches {
            matching.push(msg);
        }
    }
    for msg in &matching {
        setup.wait_for_status(msg, 0).await;
    }
    let mut received: Vec<String> = setup
        .receiver
        .requests_to(HOOK)
        .iter()
        .map(|request| {
            request.assert_verifies(&setup.endpoint.secret);
            request.webhook_id().to_owned()
        })
        .collect();
    received.sort();
    matching.sort();
    assert_eq!(received, matching);
}

async fn an_endpoint_retry_schedule_replaces_the_node_one(backend: Backend) {
    // The node waits an hour before a retry; the endpoint 100 ms, then 200 ms.
    let setup = OneEndpoint::start(
        backend,
        &[("WEBHOOKD_RETRY_SCHEDULE", "1h,1h")],
        json!({"retrySchedule": ["100ms", "200ms"]}),
    )
    .await;
    setup
        .receiver
        .script(HOOK, [Reply::status(500), Reply::status(500)]);
    let msg = setup.send(json!({"n": 1})).await;

    setup.wait_for_status(&msg, 0).await;
    let attempts = setup.wait_for_attempts(&msg, 3).await;
    let codes: Vec<_> = attempts
        .iter()
        .map(|attempt| attempt["responseStatusCode"].as_i64().unwrap())
        .collect();
    assert_eq!(codes, [500, 500, 200], "{attempts:?}");

    // An empty schedule never retries, whatever the node's.
    let route = format!("/api/v1/app/{}/endpoint/{}", setup.app, setup.endpoint.id);
    let (status, body) = setup
        .server
        .patch(&route, json!({"retrySchedule": []}))
        .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    setup.receiver.script(HOOK, [Reply::status(500)]);
    let once = setup.send(json!({"n": 2})).await;
    setup.wait_for_status(&once, 2).await;
    assert_eq!(setup.wait_for_attempts(&once, 1).await.len(), 1);
}

async fn an_endpoint_request_timeout_cuts_a_slow_receiver(backend: Backend) {
    // The node would wait 4 s for the receiver's 2.5 s answer; the endpoint waits 1 s.
    let setup = OneEndpoint::start(
        backend,
        &[
            ("WEBHOOKD_REQUEST_TIMEOUT", "4s"),
            ("WEBHOOKD_RETRY_SCHEDULE", "200ms"),
        ],
        json!({"requestTimeout": "1s"}),
    )
    .await;
    setup.receiver.script(
        HOOK,
        [Reply::status(200).after(Duration::from_millis(2500))],
    );
    let msg = setup.send(json!({"n": 1})).await;

    setup.wait_for_status(&msg, 0).await;
    let attempts = setup.wait_for_attempts(&msg, 2).await;
    assert_eq!(attempts[0]["responseStatusCode"], 0, "{attempts:?}");
    let reason = attempts[0]["response"].as_str().unwrap_or_default();
    assert!(reason.contains("timed out after 1s"), "{attempts:?}");
    assert_eq!(attempts[1]["responseStatusCode"], 200, "{attempts:?}");
}

on_both_backends! {
    a_payload_filter_delivers_exactly_the_matching_messages,
    an_endpoint_retry_schedule_replaces_the_node_one,
    an_endpoint_request_timeout_cuts_a_slow_receiver,
}
