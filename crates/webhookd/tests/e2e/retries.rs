//! The outcome classes and the retry schedule, with the test schedule
//! `1s,1s,2s`: what is retried (5xx, 429 with `Retry-After`, timeouts), what fails at once
//! (4xx), what disables the endpoint (410) until it is enabled again, and that the schedule ends after 1 + 3 attempts.
//! Every attempt is checked to be signed afresh, with its own timestamp. Each runs on both
//! backends.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{
    Backend, HOOK, OneEndpoint, Received, Reply, eventually, expect_status, on_both_backends, unix,
};

/// Every request verifies with `secret`, and each retry was signed after the attempt before it
/// had arrived: its timestamp is no earlier than that arrival (whole seconds).
#[track_caller]
fn assert_signed_afresh(requests: &[Received], secret: &str) {
    for request in requests {
        request.assert_verifies(secret);
    }
    for pair in requests.windows(2) {
        let (earlier, later) = (&pair[0], &pair[1]);
        assert!(
            later.timestamp() >= unix(earlier.arrived_at),
            "a retry carries webhook-timestamp {}, older than the previous attempt's arrival ({})",
            later.timestamp(),
            unix(earlier.arrived_at)
        );
    }
}

/// `(status, responseStatusCode)` of each attempt.
fn outcomes(attempts: &[Value]) -> Vec<(i64, i64)> {
    attempts
        .iter()
        .map(|attempt| {
            (
                attempt["status"].as_i64().unwrap(),
                attempt["responseStatusCode"].as_i64().unwrap(),
            )
        })
        .collect()
}

async fn two_server_errors_then_success_is_delivered_on_the_third_attempt(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    setup
        .receiver
        .script(HOOK, [Reply::status(500), Reply::status(500)]);
    let msg = setup.send(json!({"n": 1})).await;

    setup.wait_for_status(&msg, 0).await;
    let attempts = setup.wait_for_attempts(&msg, 3).await;
    assert_eq!(
        outcomes(&attempts),
        [(2, 500), (2, 500), (0, 200)],
        "{attempts:?}"
    );
    let requests = setup.receiver.requests_to(HOOK);
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert!(requests.iter().all(|request| request.webhook_id() == msg));
    assert_signed_afresh(&requests, &setup.endpoint.secret);
    assert!(
        requests[2].timestamp() > requests[0].timestamp(),
        "the third attempt, two delays after the first, has a later timestamp"
    );
}

async fn a_client_error_is_one_attempt_and_a_final_failure(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    // Were the 400 retried, the retry would succeed and the delivery would not end failed.
    setup.receiver.script(HOOK, [Reply::status(400)]);
    let msg = setup.send(json!({"n": 1})).await;

    setup.wait_for_status(&msg, 2).await;
    let attempts = setup.wait_for_attempts(&msg, 1).await;
    assert_eq!(outcomes(&attempts), [(2, 400)], "{attempts:?}");
    assert_eq!(setup.receiver.requests_to(HOOK).len(), 1);
}

async fn too_many_requests_with_retry_after_and_unavailable_are_retried(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    setup.receiver.script(
        HOOK,
        [
            Reply::status(429).header("retry-after", "1"),
            Reply::status(503),
        ],
    );
    let msg = setup.send(json!({"n": 1})).await;

    setup.wait_for_status(&msg, 0).await;
    let attempts = setup.wait_for_attempts(&msg, 3).await;
    assert_eq!(
        outcomes(&attempts),
        [(2, 429), (2, 503), (0, 200)],
        "{attempts:?}"
    );
    let requests = setup.receiver.requests_to(HOOK);
    assert_eq!(requests.len(), 3, "{requests:?}");
    assert_signed_afresh(&requests, &setup.endpoint.secret);
}

async fn a_receiver_slower_than_the_request_timeout_is_retried(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    // The test servers time requests out after 2 s.
    setup
        .receiver
        .script(HOOK, [Reply::status(200).after(Duration::from_secs(3))]);
    let msg = setup.send(json!({"n": 1})).await;

    setup.wait_for_status(&msg, 0).await;
    let attempts = setup.wait_for_attempts(&msg, 2).await;
    assert_eq!(outcomes(&attempts), [(2, 0), (0, 200)], "{attempts:?}");
    let reason = attempts[0]["response"]
        .as_str()
        .expect("a string `response`");
    assert!(
        !reason.trim().is_empty(),
        "a timed-out attempt records a reason: {attempts:?}"
    );
    let requests = setup.receiver.requests_to(HOOK);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_signed_afresh(&requests, &setup.endpoint.secret);
}

async fn an_exhausted_schedule_fails_after_one_attempt_per_delay_plus_one(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    setup.receiver.fallback(HOOK, Reply::status(500));
    let msg = setup.send(json!({"n": 1})).await;

    setup.wait_for_status(&msg, 2).await;
    let attempts = setup.wait_for_attempts(&msg, 4).await;
    assert_eq!(
        outcomes(&attempts),
        [(2, 500); 4],
        "1 + len(1s,1s,2s) attempts: {attempts:?}"
    );
    let requests = setup.receiver.requests_to(HOOK);
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert_signed_afresh(&requests, &setup.endpoint.secret);
}

async fn gone_disables_the_endpoint_and_nothing_more_is_sent_to_it(backend: Backend) {
    let setup = OneEndpoint::start(backend, &[], json!({})).await;
    setup.receiver.script(HOOK, [Reply::status(410)]);
    let first = setup.send(json!({"n": 1})).await;

    setup.wait_for_status(&first, 2).await;
    eventually("the endpoint to be disabled after a 410", || async {
        let endpoint = setup.server.endpoint(&setup.app, &setup.endpoint.id).await;
        if endpoint["disabled"] == true {
            Ok(())
        } else {
            Err(endpoint.to_string())
        }
    })
    .await;
    let attempts = setup.wait_for_attempts(&first, 1).await;
    assert_eq!(outcomes(&attempts), [(2, 410)], "{attempts:?}");

    let second = setup.send(json!({"n": 2})).await;
    let deliveries = setup.server.deliveries(&setup.app, &second).await;
    assert!(
        deliveries.is_empty(),
        "a disabled endpoint gets no delivery: {deliveries:?}"
    );
    assert_eq!(
        setup.receiver.requests_to(HOOK).len(),
        1,
        "no request after the 410"
    );

    // Until it is enabled again.
    let route = format!("/api/v1/app/{}/endpoint/{}", setup.app, setup.endpoint.id);
    let (status, body) = setup.server.patch(&route, json!({"disabled": false})).await;
    expect_status(&format!("PATCH {route}"), status, StatusCode::OK, &body);
    let third = setup.send(json!({"n": 3})).await;
    let requests = setup.receiver.wait_for_count(HOOK, 2).await;
    assert_eq!(
        requests[1].webhook_id(),
        third,
        "the first message after re-enabling"
    );
}

on_both_backends! {
    two_server_errors_then_success_is_delivered_on_the_third_attempt,
    a_client_error_is_one_attempt_and_a_final_failure,
    too_many_requests_with_retry_after_and_unavailable_are_retried,
    a_receiver_slower_than_the_request_timeout_is_retried,
    an_exhausted_schedule_fails_after_one_attempt_per_delay_plus_one,
    gone_disables_the_endpoint_and_nothing_more_is_sent_to_it,
}

/// Retries shorter than the scheduler's one-second poll are sent when they fall due, not at
/// the next poll: the scheduler sleeping when a retry is recorded is woken to wait for it.
/// Messages are spaced out so that no retry finds the scheduler already waiting for another.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_shorter_than_the_poll_is_sent_when_due() {
    const MESSAGES: usize = 10;
    const DELAY: Duration = Duration::from_millis(200);
    // Jitter (10 %) plus generous room for a loaded machine; a retry caught by the poll
    // instead comes up to 800 ms late.
    const LIMIT: Duration = Duration::from_millis(220 + 350);
    let setup = OneEndpoint::start(
        Backend::Sqlite,
        &[("WEBHOOKD_RETRY_SCHEDULE", "200ms,200ms")],
        json!({}),
    )
    .await;
    setup.receiver.first_sight(HOOK, Reply::status(500));
    let mut sent = Vec::new();
    for n in 0..MESSAGES {
        sent.push(setup.send(json!({"n": n})).await);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let requests = setup.receiver.wait_for_count(HOOK, 2 * MESSAGES).await;
    let gaps: Vec<Duration> = sent
        .iter()
        .map(|msg| {
            let arrivals: Vec<_> = requests
                .iter()
                .filter(|request| request.webhook_id() == msg)
                .map(|request| request.arrived)
                .collect();
            assert_eq!(arrivals.len(), 2, "one failure and one retry of {msg}");
            arrivals[1] - arrivals[0]
        })
        .collect();
    assert!(
        gaps.iter().all(|gap| *gap >= DELAY.mul_f64(0.9)),
        "no retry before its delay: {gaps:?}"
    );
    let late = gaps.iter().filter(|gap| **gap > LIMIT).count();
    assert!(
        late <= 1,
        "{late} of {MESSAGES} retries came over {LIMIT:?} after the failure (delay {DELAY:?}): \
         {gaps:?}"
    );
}
