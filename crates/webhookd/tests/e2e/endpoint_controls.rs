//! What an operator does to an endpoint, and what its receiver sees: secret rotation (both
//! secrets verify during the grace period), `throttleRate` pacing, a manual resend, and
//! `recover` of failed deliveries. Each runs on both backends.

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use webhookd_core::time::{format_timestamp, now};

use crate::harness::{Backend, HOOK, OneEndpoint, Reply, expect_status, on_both_backends};

async fn after_a_rotation_deliveries_verify_with_the_old_and_the_new_secret(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    let (app, endpoint) = (&setup.app, &setup.endpoint.id);
    let old = setup.endpoint.secret.clone();
    let route = format!("/api/v1/app/{app}/endpoint/{endpoint}/secret/rotate");
    let (status, body) = setup.server.post(&route, json!({})).await;
    expect_status(&format!("POST {route}"), status, StatusCode::OK, &body);
    let new = body["key"].as_str().expect("the new `key`").to_owned();
    assert_ne!(new, old, "rotation makes a new secret");
    assert_eq!(
        setup.server.secret(app, endpoint).await,
        new,
        "the new secret is current"
    );

    setup.send(json!({"n": 1})).await;
    let request = &setup.receiver.wait_for_count(HOOK, 1).await[0];
    request.assert_verifies(&old);
    request.assert_verifies(&new);
    let signatures: Vec<&str> = request
        .header("webhook-signature")
        .split_whitespace()
        .collect();
    assert_eq!(
        signatures.len(),
        2,
        "one signature per live secret: {signatures:?}"
    );
    assert!(
        signatures
            .iter()
            .all(|signature| signature.starts_with("v1,")),
        "{signatures:?}"
    );
}

async fn a_throttled_endpoint_receives_at_its_rate(backend: Backend) {
    const MESSAGES: usize = 20;
    let setup = OneEndpoint::start(backend, &[], json!({"throttleRate": 5})).await;
    for n in 0..MESSAGES {
        setup.send(json!({"n": n})).await;
    }

    let requests = setup.receiver.wait_for_count(HOOK, MESSAGES).await;
    let ids: std::collections::BTreeSet<&str> = requests
        .iter()
        .map(|request| request.webhook_id())
        .collect();
    assert_eq!(ids.len(), MESSAGES, "every message once");
    // 5 per second: the 20th request cannot go out less than ~3 s after the first.
    let span = requests[MESSAGES - 1].arrived - requests[0].arrived;
    assert!(
        span >= Duration::from_secs(3),
        "20 requests at 5/s arrived within {span:?}"
    );
}

async fn a_resend_makes_one_manual_attempt(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    setup.receiver.script(HOOK, [Reply::status(400)]);
    let msg = setup.send(json!({"n": 1})).await;
    setup.wait_for_status(&msg, 2).await;

    let route = format!(
        "/api/v1/app/{}/msg/{msg}/endpoint/{}/resend",
        setup.app, setup.endpoint.id
    );
    let (status, body) = setup.server.post(&route, json!({})).await;
    expect_status(
        &format!("POST {route}"),
        status,
        StatusCode::ACCEPTED,
        &body,
    );
    assert_eq!(body, json!({}));

    let requests = setup.receiver.wait_for_count(HOOK, 2).await;
    assert_eq!(requests[1].webhook_id(), msg);
    requests[1].assert_verifies(&setup.endpoint.secret);
    let attempts = setup.wait_for_attempts(&msg, 2).await;
    let triggers: Vec<_> = attempts
        .iter()
        .map(|attempt| (attempt["triggerType"].clone(), attempt["status"].clone()))
        .collect();
    assert_eq!(
        triggers,
        [(json!(0), json!(2)), (json!(1), json!(0))],
        "(triggerType, status): {attempts:?}"
    );
    assert_eq!(
        setup.receiver.requests_to(HOOK).len(),
        2,
        "a resend is one request"
    );
}

async fn recover_sends_failed_deliveries_again(backend: Backend) {
    const MESSAGES: usize = 3;
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    setup
        .receiver
        .script(HOOK, vec![Reply::status(400); MESSAGES]);
    let since = format_timestamp(now() - Duration::from_secs(60));
    let mut messages = Vec::new();
    for n in 0..MESSAGES {
        messages.push(setup.send(json!({"n": n})).await);
    }
    for msg in &messages {
        setup.wait_for_status(msg, 2).await;
    }

    let route = format!(
        "/api/v1/app/{}/endpoint/{}/recover",
        setup.app, setup.endpoint.id
    );
    let (status, task) = setup.server.post(&route, json!({"since": since})).await;
    expect_status(
        &format!("POST {route}"),
        status,
        StatusCode::ACCEPTED,
        &task,
    );
    assert_eq!(task["task"], "endpoint.recover", "{task}");
    assert!(
        task["status"] == "running" || task["status"] == "finished",
        "{task}"
    );

    let requests = setup.receiver.wait_for_count(HOOK, 2 * MESSAGES).await;
    let mut per_message: BTreeMap<&str, usize> = BTreeMap::new();
    for request in &requests {
        request.assert_verifies(&setup.endpoint.secret);
        *per_message.entry(request.webhook_id()).or_default() += 1;
    }
    let expected: BTreeMap<&str, usize> = messages.iter().map(|msg| (msg.as_str(), 2)).collect();
    assert_eq!(per_message, expected, "each failed message sent once more");
    for msg in &messages {
        setup.wait_for_status(msg, 0).await;
    }
    let route = format!(
        "/api/v1/background-task/{}",
        task["id"].as_str().expect("a task id")
    );
    let (status, task) = setup.server.get(&route).await;
    expect_status(&format!("GET {route}"), status, StatusCode::OK, &task);
    assert_eq!(task["status"], "finished", "{task}");
}

on_both_backends! {
    after_a_rotation_deliveries_verify_with_the_old_and_the_new_secret,
    a_throttled_endpoint_receives_at_its_rate,
    a_resend_makes_one_manual_attempt,
    recover_sends_failed_deliveries_again,
}
