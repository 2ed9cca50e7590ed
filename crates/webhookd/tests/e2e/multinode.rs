//! Several nodes over one PostgreSQL database : real `webhookd` child
//! processes, each on a port of its own, sharing one fresh database.
//!
//! - Messages posted round-robin to three nodes are each delivered, exactly once in a run
//!   without failures.
//! - A node killed with SIGKILL while it holds in-flight deliveries and pending retries: the
//!   surviving node delivers every message the dead one acknowledged, once its leases expire.
//! - `WEBHOOKD_ROLE`: an API-only node ingests, a worker node delivers and serves only the
//!   operational routes; a resend posted to the API node is one manual attempt by the worker.
//! - Idempotency keys and `eventId` uniqueness hold across nodes, sequential and concurrent.
//!
//! The nodes run with a lease of 4 s (twice the request timeout), so a dead node's work is
//! taken over within seconds. These tests run only when PostgreSQL is enabled (see
//! `harness::database`).

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::harness::{
    Api, HOOK, Received, Receiver, Reply, ServerProcess, TestDatabase, TestEndpoint, eventually,
    eventually_within, expect_status, free_port,
};

/// Every node's settings: a short lease, so that a dead node's work is taken over quickly.
const SETTINGS: [(&str, &str); 3] = [
    ("WEBHOOKD_LEASE", "4s"),
    ("WEBHOOKD_REQUEST_TIMEOUT", "2s"),
    ("WEBHOOKD_RETRY_SCHEDULE", "1s,1s,2s"),
];
/// Concurrent senders of messages.
const SENDERS: usize = 4;

/// A node with the multi-node settings and this `WEBHOOKD_ROLE`, on a port of its own.
async fn node(database: &TestDatabase, role: &str) -> ServerProcess {
    let mut settings = SETTINGS.to_vec();
    settings.push(("WEBHOOKD_ROLE", role));
    ServerProcess::start(database, free_port(), &settings).await
}

/// What the senders did, shared between them.
#[derive(Debug, Default)]
struct Sent {
    /// The ids of acknowledged (202) messages, in order of acknowledgement.
    acknowledged: Mutex<Vec<String>>,
    /// Requests that got no answer (their node was killed).
    unanswered: AtomicUsize,
}

impl Sent {
    fn acknowledged(&self) -> Vec<String> {
        self.acknowledged.lock().unwrap().clone()
    }
}

/// Sends messages `0..count` with [`SENDERS`] concurrent senders, message `n` to node
/// `n % nodes.len()`. A sender stops at its first unanswered request; any answer but 202 fails
/// the test.
async fn send_round_robin(nodes: Vec<Api>, app: String, count: usize, sent: Arc<Sent>) {
    let nodes = Arc::new(nodes);
    let next = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (nodes, app, sent, next) = (
                Arc::clone(&nodes),
                app.clone(),
                Arc::clone(&sent),
                Arc::clone(&next),
            );
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return;
                    }
                    let body = json!({"eventType": "e2e.multinode", "payload": {"n": n}});
                    let path = format!("/api/v1/app/{app}/msg");
                    let node = &nodes[n % nodes.len()];
                    match node
                        .try_request(Method::POST, &path, Some(body.to_string().into_bytes()))
                        .await
                    {
                        Ok((StatusCode::ACCEPTED, body)) => {
                            let id = body["id"].as_str().expect("a message id").to_owned();
                            sent.acknowledged.lock().unwrap().push(id);
                        }
                        Ok((status, body)) => panic!("message {n} answered {status}: {body}"),
                        Err(_) => {
                            sent.unanswered.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("a sender");
    }
}

/// The `webhook-id`s the receiver answered 200.
fn delivered(requests: &[Received]) -> HashSet<&str> {
    requests
        .iter()
        .filter(|request| request.status == 200)
        .map(Received::webhook_id)
        .collect()
}

/// Waits (up to `limit`) until every message in `acknowledged` was answered 200 at least once;
/// answers every request so far.
async fn wait_until_delivered(
    receiver: &Receiver,
    acknowledged: &[String],
    limit: Duration,
) -> Vec<Received> {
    eventually_within(limit, "every acknowledged message answered 200", || {
        let requests = receiver.requests();
        let delivered = delivered(&requests);
        let missing: Vec<&String> = acknowledged
            .iter()
            .filter(|id| !delivered.contains(id.as_str()))
            .collect();
        let answer = if missing.is_empty() {
            Ok(requests)
        } else {
            Err(format!(
                "{} of {} acknowledged messages not delivered, e.g. {:?}",
                missing.len(),
                acknowledged.len(),
                &missing[..missing.len().min(5)]
            ))
        };
        std::future::ready(answer)
    })
    .await
}

/// Waits until the endpoint's deliveries, as `node` reads them from the store, are settled
/// (none pending or sending) with `success` of them delivered; answers the counts.
async fn wait_until_settled(
    node: &Api,
    app: &str,
    endpoint: &TestEndpoint,
    success: impl Fn(u64) -> bool,
) -> Value {
    eventually("every delivery of the endpoint settled", || async {
        let stats = node.stats(app, &endpoint.id).await;
        let delivered = stats["success"].as_u64().expect("a `success` count");
        if stats["pending"] == 0 && stats["sending"] == 0 && success(delivered) {
            Ok(stats)
        } else {
            Err(stats.to_string())
        }
    })
    .await
}

/// How often each `webhook-id` was received.
fn per_message(requests: &[Received]) -> BTreeMap<&str, usize> {
    let mut counts = BTreeMap::new();
    for request in requests {
        *counts.entry(request.webhook_id()).or_default() += 1;
    }
    counts
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_posted_round_robin_to_three_nodes_are_each_delivered_once() {
    const MESSAGES: usize = 300;
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    // Started at once: they migrate the one database under a lock.
    let (first, second, third) = tokio::join!(
        node(&database, "all"),
        node(&database, "all"),
        node(&database, "all")
    );
    let app = first.create_app().await;
    let endpoint = first
        .create_endpoint(&app, json!({"url": receiver.url(HOOK)}))
        .await;

    let sent = Arc::new(Sent::default());
    let nodes = vec![(*first).clone(), (*second).clone(), (*third).clone()];
    send_round_robin(nodes, app.clone(), MESSAGES, Arc::clone(&sent)).await;
    let acknowledged = sent.acknowledged();
    assert_eq!(acknowledged.len(), MESSAGES, "every message acknowledged");
    let unique: HashSet<&String> = acknowledged.iter().collect();
    assert_eq!(unique.len(), MESSAGES, "every message has an id of its own");

    wait_until_delivered(&receiver, &acknowledged, crate::harness::DEADLINE).await;
    // Once the store holds every delivery as succeeded, no node can claim one again.
    wait_until_settled(&third, &app, &endpoint, |n| n == MESSAGES as u64).await;
    let requests = receiver.requests();
    let duplicates: Vec<(&str, usize)> = per_message(&requests)
        .into_iter()
        .filter(|(_, count)| *count > 1)
        .collect();
    assert!(
        duplicates.is_empty(),
        "a run without failures delivers each message once; received twice or more: {duplicates:?}"
    );
    assert_eq!(requests.len(), MESSAGES, "one request per message");
    for request in &requests {
        assert!(unique.contains(&request.webhook_id().to_owned()));
        request.assert_verifies(&endpoint.secret);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_nodes_retries_and_in_flight_deliveries_are_taken_over() {
    const MESSAGES: usize = 100;
    /// Node A is killed once this many messages are acknowledged (and it holds work).
    const KILL_AFTER: usize = 50;
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    // The first attempt of every message fails, one in three of them slowly (but within the
    // request timeout): the node holds retries due later and requests in flight.
    receiver.first_sights(
        HOOK,
        [
            Reply::status(500),
            Reply::status(500),
            Reply::status(500).after(Duration::from_millis(1500)),
        ],
    );
    let (node_a, node_b) = tokio::join!(node(&database, "all"), node(&database, "all"));
    let app = node_a.create_app().await;
    let endpoint = node_a
        .create_endpoint(&app, json!({"url": receiver.url(HOOK)}))
        .await;

    let sent = Arc::new(Sent::default());
    let sending = tokio::spawn(send_round_robin(
        vec![(*node_a).clone()],
        app.clone(),
        MESSAGES,
        Arc::clone(&sent),
    ));
    let held = eventually(
        "node A to hold in-flight deliveries and pending retries, with enough acknowledged",
        || {
            let acknowledged = sent.acknowledged.lock().unwrap().len();
            let requests = receiver.requests();
            let delivered = delivered(&requests);
            let in_flight = requests
                .iter()
                .filter(|request| request.answered.is_none())
                .count();
            let awaiting_retry = requests
                .iter()
                .filter(|request| request.status == 500 && request.answered.is_some())
                .filter(|request| !delivered.contains(request.webhook_id()))
                .count();
            let observed = format!(
                "{acknowledged} acknowledged, {in_flight} in flight, {awaiting_retry} awaiting \
                 a retry"
            );
            std::future::ready(
                if acknowledged >= KILL_AFTER && in_flight > 0 && awaiting_retry > 0 {
                    Ok(observed)
                } else {
                    Err(observed)
                },
            )
        },
    )
    .await;
    node_a.kill().await;
    sending.await.expect("the senders");
    let acknowledged = sent.acknowledged();
    let undelivered_at_kill = {
        let requests = receiver.requests();
        let delivered = delivered(&requests);
        acknowledged
            .iter()
            .filter(|id| !delivered.contains(id.as_str()))
            .count()
    };
    assert!(
        undelivered_at_kill > 0,
        "node A was killed while it held work ({held})"
    );

    // Node B waits out A's leases (4 s), then sends what A held; retries follow the schedule.
    let requests = wait_until_delivered(&receiver, &acknowledged, Duration::from_secs(60)).await;
    for request in &requests {
        request.assert_verifies(&endpoint.secret);
    }
    // Messages whose request got no answer at the kill may be stored too.
    let stats =
        wait_until_settled(&node_b, &app, &endpoint, |n| n >= acknowledged.len() as u64).await;
    assert_eq!(
        stats["fail"], 0,
        "no delivery failed for good (at the kill: {held}; {undelivered_at_kill} acknowledged \
         messages undelivered): {stats}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_node_ingests_and_a_worker_node_delivers() {
    const MESSAGES: usize = 20;
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    let (api, worker) = tokio::join!(node(&database, "api"), node(&database, "worker"));

    // The worker serves the operational routes only; the rest is a JSON 404.
    let (status, body) = worker.get("/api/v1/health").await;
    expect_status(
        "GET /api/v1/health on the worker",
        status,
        StatusCode::NO_CONTENT,
        &body,
    );
    for (method, path) in [(Method::GET, "/api/v1/app"), (Method::POST, "/api/v1/app")] {
        let what = format!("{method} {path} on the worker");
        let (status, body) = worker
            .try_request(method, path, Some(b"{}".to_vec()))
            .await
            .unwrap_or_else(|error| panic!("{what} got no answer: {error}"));
        expect_status(&what, status, StatusCode::NOT_FOUND, &body);
        assert!(body["code"].is_string(), "{what}: the error shape: {body}");
    }

    let app = api.create_app().await;
    let endpoint = api
        .create_endpoint(&app, json!({"url": receiver.url(HOOK)}))
        .await;
    let mut messages = Vec::new();
    for n in 0..MESSAGES {
        messages.push(api.send_event(&app, json!({"n": n})).await);
    }
    let requests = wait_until_delivered(&receiver, &messages, crate::harness::DEADLINE).await;
    for request in &requests {
        request.assert_verifies(&endpoint.secret);
    }
    wait_until_settled(&api, &app, &endpoint, |n| n == MESSAGES as u64).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_resend_posted_to_an_api_node_is_sent_by_the_worker() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    let (api, _worker) = tokio::join!(node(&database, "api"), node(&database, "worker"));
    let app = api.create_app().await;
    let endpoint = api
        .create_endpoint(&app, json!({"url": receiver.url(HOOK)}))
        .await;
    let msg = api.send_event(&app, json!({"n": 1})).await;
    api.wait_for_delivery_status(&app, &msg, &endpoint.id, 0)
        .await;

    // A delivered message sent again by hand, as an operator does for a receiver that lost it.
    let route = format!(
        "/api/v1/app/{app}/msg/{msg}/endpoint/{}/resend",
        endpoint.id
    );
    let (status, body) = api.post(&route, json!({})).await;
    expect_status(
        &format!("POST {route}"),
        status,
        StatusCode::ACCEPTED,
        &body,
    );
    let requests = receiver.wait_for_count(HOOK, 2).await;
    assert_eq!(requests[1].webhook_id(), msg);
    requests[1].assert_verifies(&endpoint.secret);
    let attempts = api.wait_for_attempts(&app, &msg, 2).await;
    assert_eq!(
        attempts[1]["triggerType"], 1,
        "a resend is a manual attempt: {attempts:?}"
    );
}

/// `POST …/msg` with this body and `idempotency-key`, if any.
async fn post_message(
    node: &Api,
    app: &str,
    body: Value,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let headers: Vec<(&str, &str)> = key
        .map(|key| ("idempotency-key", key))
        .into_iter()
        .collect();
    node.post_with(&format!("/api/v1/app/{app}/msg"), body, &headers)
        .await
}

/// The application's messages, as `node` lists them.
async fn message_count(node: &Api, app: &str) -> usize {
    let path = format!("/api/v1/app/{app}/msg?limit=250");
    let (status, body) = node.get(&path).await;
    expect_status(&format!("GET {path}"), status, StatusCode::OK, &body);
    body["data"].as_array().expect("a `data` list").len()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_and_an_event_id_hold_across_nodes() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    let (first, second, app, endpoint) = two_nodes(&database, &receiver).await;

    let message = json!({"eventType": "e2e.order", "payload": {"order": 42}});
    let key = Some("order-42-created");
    let (status, on_first) = post_message(&first, &app, message.clone(), key).await;
    expect_status(
        "POST …/msg to node 1",
        status,
        StatusCode::ACCEPTED,
        &on_first,
    );
    let (status, on_second) = post_message(&second, &app, message, key).await;
    expect_status(
        "the same key to node 2",
        status,
        StatusCode::ACCEPTED,
        &on_second,
    );
    assert_eq!(
        on_second["id"], on_first["id"],
        "the same key, the same message"
    );
    let msg = on_first["id"].as_str().expect("a message id");
    second
        .wait_for_delivery_status(&app, msg, &endpoint.id, 0)
        .await;
    assert_eq!(message_count(&second, &app).await, 1, "one message stored");

    let event = json!({"eventType": "e2e.order", "payload": {}, "eventId": "evt-order-43"});
    let (status, body) = post_message(&first, &app, event.clone(), None).await;
    expect_status("an eventId to node 1", status, StatusCode::ACCEPTED, &body);
    let (status, body) = post_message(&second, &app, event, None).await;
    expect_status(
        "the same eventId to node 2",
        status,
        StatusCode::CONFLICT,
        &body,
    );
    assert!(body["code"].is_string(), "the error shape: {body}");

    // Two messages stored, each delivered once.
    let stats = wait_until_settled(&first, &app, &endpoint, |n| n == 2).await;
    assert_eq!(message_count(&first, &app).await, 2, "{stats}");
    let requests = receiver.requests();
    assert_eq!(
        per_message(&requests).get(msg),
        Some(&1),
        "the idempotent message is delivered once: {requests:?}"
    );
    assert_eq!(
        requests.len(),
        2,
        "one request per stored message: {requests:?}"
    );
}

/// Two nodes on one fresh database, an application and an endpoint pointing at `receiver`.
async fn two_nodes(
    database: &TestDatabase,
    receiver: &Receiver,
) -> (ServerProcess, ServerProcess, String, TestEndpoint) {
    let (first, second) = tokio::join!(node(database, "all"), node(database, "all"));
    let app = first.create_app().await;
    let endpoint = first
        .create_endpoint(&app, json!({"url": receiver.url(HOOK)}))
        .await;
    (first, second, app, endpoint)
}

/// How many rounds of a race between two nodes each concurrency test runs.
const ROUNDS: usize = 8;

#[tokio::test(flavor = "multi_thread")]
async fn one_idempotency_key_posted_to_two_nodes_at_once_stores_one_message() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    let (first, second, app, endpoint) = two_nodes(&database, &receiver).await;

    for round in 0..ROUNDS {
        // One message, whichever node wins; the other answers the same message, or 409 while
        // the first is still running.
        let key = format!("race-{round}");
        let message = json!({"eventType": "e2e.race", "payload": {"round": round}});
        let (one, two) = tokio::join!(
            post_message(&first, &app, message.clone(), Some(&key)),
            post_message(&second, &app, message, Some(&key)),
        );
        for (status, body) in [&one, &two] {
            assert!(
                *status == StatusCode::ACCEPTED || *status == StatusCode::CONFLICT,
                "key {key}: answered {status} {body} (both: {one:?} {two:?})"
            );
        }
        let accepted: HashSet<&str> = [&one, &two]
            .into_iter()
            .filter(|(status, _)| *status == StatusCode::ACCEPTED)
            .map(|(_, body)| body["id"].as_str().expect("a message id"))
            .collect();
        assert_eq!(
            accepted.len(),
            1,
            "key {key}: one message id in {one:?} and {two:?}"
        );
    }

    assert_eq!(
        message_count(&second, &app).await,
        ROUNDS,
        "one message per key"
    );
    let stats = wait_until_settled(&second, &app, &endpoint, |n| n == ROUNDS as u64).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), ROUNDS, "one request per key: {stats}");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_event_id_posted_to_two_nodes_at_once_is_stored_once() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    let (first, second, app, endpoint) = two_nodes(&database, &receiver).await;

    for round in 0..ROUNDS {
        let event_id = format!("evt-{round}");
        let event = json!({"eventType": "e2e.race", "payload": {}, "eventId": event_id});
        let (one, two) = tokio::join!(
            post_message(&first, &app, event.clone(), None),
            post_message(&second, &app, event, None),
        );
        let mut statuses = [one.0, two.0];
        statuses.sort();
        assert_eq!(
            statuses,
            [StatusCode::ACCEPTED, StatusCode::CONFLICT],
            "eventId {event_id}: {one:?} {two:?}"
        );
    }

    assert_eq!(
        message_count(&second, &app).await,
        ROUNDS,
        "one message per eventId"
    );
    let stats = wait_until_settled(&second, &app, &endpoint, |n| n == ROUNDS as u64).await;
    let requests = receiver.requests();
    assert_eq!(requests.len(), ROUNDS, "one request per eventId: {stats}");
}
