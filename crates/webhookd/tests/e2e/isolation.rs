//! Isolation between endpoints: a slow endpoint fills only its own slots, so every
//! message to a fast endpoint arrives before the slow one has answered even its first request.
//! This is an ordering of events at the receiver, not a timing threshold.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Receiver, Reply, TestServer};

const SLOW: &str = "/slow";
const FAST: &str = "/fast";
const MESSAGES: usize = 20;

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_endpoint_does_not_delay_a_fast_one() {
    let receiver = Receiver::start().await;
    receiver.fallback(SLOW, Reply::status(200).after(Duration::from_secs(5)));
    // A timeout above the slow endpoint's 5 s, so that it does answer.
    let server = TestServer::start(&[
        ("WEBHOOKD_REQUEST_TIMEOUT", "10s"),
        ("WEBHOOKD_LEASE", "30s"),
    ])
    .await;
    let (slow_app, fast_app) = (server.create_app().await, server.create_app().await);
    server
        .create_endpoint(&slow_app, json!({"url": receiver.url(SLOW)}))
        .await;
    server
        .create_endpoint(&fast_app, json!({"url": receiver.url(FAST)}))
        .await;

    // The slow endpoint's messages first, so that it is busy when the fast one's are sent.
    for n in 0..MESSAGES {
        server.send_event(&slow_app, json!({"n": n})).await;
    }
    for n in 0..MESSAGES {
        server.send_event(&fast_app, json!({"n": n})).await;
    }

    let requests = receiver
        .wait_for(
            "every fast message, and the slow endpoint's first answer",
            |requests| {
                let fast = requests
                    .iter()
                    .filter(|request| request.path == FAST)
                    .count();
                let slow_answered = requests
                    .iter()
                    .any(|request| request.path == SLOW && request.answered.is_some());
                fast >= MESSAGES && slow_answered
            },
        )
        .await;
    let fast: Vec<_> = requests
        .iter()
        .filter(|request| request.path == FAST)
        .collect();
    let slow: Vec<_> = requests
        .iter()
        .filter(|request| request.path == SLOW)
        .collect();
    let first_slow_answer = slow
        .iter()
        .filter_map(|request| request.answered)
        .min()
        .expect("an answer");
    let first_slow_arrival = slow
        .iter()
        .map(|request| request.arrived)
        .min()
        .expect("a slow request");
    let last_fast_arrival = fast
        .iter()
        .map(|request| request.arrived)
        .max()
        .expect("a fast request");
    assert!(
        first_slow_arrival < last_fast_arrival,
        "the slow endpoint was already being delivered to while the fast one received"
    );
    assert!(
        last_fast_arrival < first_slow_answer,
        "a fast message arrived {:?} after the slow endpoint's first answer",
        last_fast_arrival - first_slow_answer
    );
    assert_eq!(fast.len(), MESSAGES, "each fast message once");
    // The node is dropped, not stopped: a graceful stop would wait for the slow requests.
}
