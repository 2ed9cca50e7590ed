//! Ordered endpoints (`"ordered": true`): every message arrives in the order it was sent, each
//! only after every earlier one was acknowledged, through retries of the head of the line, a
//! node killed mid-way and restarted, and (PostgreSQL) two nodes sharing the endpoint.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{
    Api, Backend, HOOK, OneEndpoint, Received, Receiver, Reply, ServerProcess, TestDatabase,
    eventually_within, expect_status, free_port, on_both_backends,
};

/// A short retry schedule, so that a failing head holds the line only briefly.
const RETRIES: (&str, &str) = ("WEBHOOKD_RETRY_SCHEDULE", "100ms,100ms,100ms,100ms");

/// Waits until every message of `sent` was answered 200; answers every request so far.
async fn wait_until_delivered(receiver: &Receiver, sent: &[String]) -> Vec<Received> {
    eventually_within(Duration::from_secs(60), "every message delivered", || {
        let requests = receiver.requests_to(HOOK);
        let missing = sent
            .iter()
            .filter(|id| {
                !requests
                    .iter()
                    .any(|request| request.status == 200 && request.webhook_id() == id.as_str())
            })
            .count();
        std::future::ready(if missing == 0 {
            Ok(requests)
        } else {
            Err(format!("{missing} of {} not delivered yet", sent.len()))
        })
    })
    .await
}

/// The order of first successful deliveries is the order of sending, and no message arrived
/// before the one sent before it had been acknowledged (answered 200).
#[track_caller]
fn assert_in_order(requests: &[Received], sent: &[String]) {
    let mut firsts: Vec<&str> = Vec::new();
    for request in requests.iter().filter(|request| request.status == 200) {
        if !firsts.contains(&request.webhook_id()) {
            firsts.push(request.webhook_id());
        }
    }
    let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
    assert_eq!(
        firsts, sent,
        "first successful deliveries out of send order"
    );
    for pair in sent.windows(2) {
        let (earlier, later) = (pair[0], pair[1]);
        let acknowledged = requests
            .iter()
            .filter(|request| request.webhook_id() == earlier && request.status == 200)
            .filter_map(|request| request.answered)
            .min()
            .expect("the earlier message was answered");
        let first_arrival = requests
            .iter()
            .filter(|request| request.webhook_id() == later)
            .map(|request| request.arrived)
            .min()
            .expect("the later message arrived");
        assert!(
            first_arrival >= acknowledged,
            "{later} arrived before {earlier} was acknowledged"
        );
    }
}

async fn send_numbered(api: &Api, app: &str, range: std::ops::Range<usize>) -> Vec<String> {
    let mut sent = Vec::new();
    for n in range {
        sent.push(api.send_event(app, json!({ "n": n })).await);
    }
    sent
}

/// The first message fails twice: the line waits for its retries, and every message still
/// arrives in send order.
async fn a_retried_head_holds_the_line(backend: Backend) {
    let fixture = OneEndpoint::start(backend, &[RETRIES], json!({"ordered": true})).await;
    assert_eq!(
        fixture
            .server
            .endpoint(&fixture.app, &fixture.endpoint.id)
            .await["ordered"],
        Value::Bool(true)
    );
    fixture
        .receiver
        .script(HOOK, [Reply::status(500), Reply::status(500)]);
    let sent = send_numbered(&fixture.server, &fixture.app, 0..20).await;
    let requests = wait_until_delivered(&fixture.receiver, &sent).await;
    assert_in_order(&requests, &sent);
    // The head was tried three times, before anything else arrived.
    let head: Vec<&Received> = requests
        .iter()
        .filter(|request| request.webhook_id() == sent[0])
        .collect();
    assert_eq!(head.len(), 3);
    assert!(
        requests[..3]
            .iter()
            .all(|request| request.webhook_id() == sent[0])
    );
}

/// The node is killed mid-way (SIGKILL) and started again on the same database: the rest
/// arrives in order.
async fn a_restart_mid_way_keeps_the_order(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let receiver = Receiver::start().await;
    // Slow answers, so that the kill finds the line half-way.
    receiver.fallback(HOOK, Reply::status(200).after(Duration::from_millis(50)));
    let settings = [RETRIES, ("WEBHOOKD_LEASE", "4s")];
    let port = free_port();
    let node = ServerProcess::start(&database, port, &settings).await;
    let app = node.create_app().await;
    node.create_endpoint(&app, json!({"url": receiver.url(HOOK), "ordered": true}))
        .await;
    let sent = send_numbered(&node, &app, 0..30).await;
    receiver
        .wait_for("a few messages delivered", |requests| requests.len() >= 5)
        .await;
    node.kill().await;
    let node = ServerProcess::start(&database, port, &settings).await;
    let requests = wait_until_delivered(&receiver, &sent).await;
    assert_in_order(&requests, &sent);
    drop(node);
}

/// A message that fails for good (400) releases the next; resending it queues it again at the
/// end of the line, where it is delivered.
async fn a_final_failure_releases_the_line_and_a_resend_rejoins_it(backend: Backend) {
    let fixture = OneEndpoint::start(backend, &[RETRIES], json!({"ordered": true})).await;
    fixture.receiver.script(HOOK, [Reply::status(400)]);
    let sent = send_numbered(&fixture.server, &fixture.app, 0..3).await;
    fixture.wait_for_status(&sent[0], 2).await;
    wait_until_delivered(&fixture.receiver, &sent[1..]).await;

    let route = format!(
        "/api/v1/app/{}/msg/{}/endpoint/{}/resend",
        fixture.app, sent[0], fixture.endpoint.id
    );
    let (status, body) = fixture.server.post(&route, json!({})).await;
    expect_status(
        &format!("POST {route}"),
        status,
        StatusCode::ACCEPTED,
        &body,
    );
    fixture.wait_for_status(&sent[0], 0).await;
    let order: Vec<(String, u16)> = fixture
        .receiver
        .requests_to(HOOK)
        .iter()
        .map(|request| (request.webhook_id().to_owned(), request.status))
        .collect();
    assert_eq!(
        order,
        [
            (sent[0].clone(), 400),
            (sent[1].clone(), 200),
            (sent[2].clone(), 200),
            (sent[0].clone(), 200)
        ]
    );
}

on_both_backends! {
    a_retried_head_holds_the_line,
    a_final_failure_releases_the_line_and_a_resend_rejoins_it,
    a_restart_mid_way_keeps_the_order,
}

/// Two nodes on one PostgreSQL database share an ordered endpoint, messages are posted to
/// both in turn, and the first one fails twice: they arrive in send order.
#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_keep_one_line() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let receiver = Receiver::start().await;
    receiver.script(HOOK, [Reply::status(500), Reply::status(500)]);
    receiver.fallback(HOOK, Reply::status(200).after(Duration::from_millis(10)));
    let settings = [RETRIES, ("WEBHOOKD_LEASE", "4s")];
    let (first, second) = tokio::join!(
        ServerProcess::start(&database, free_port(), &settings),
        ServerProcess::start(&database, free_port(), &settings)
    );
    let app = first.create_app().await;
    first
        .create_endpoint(&app, json!({"url": receiver.url(HOOK), "ordered": true}))
        .await;
    let mut sent = Vec::new();
    for n in 0..30 {
        let node = if n % 2 == 0 { &first } else { &second };
        sent.push(node.send_event(&app, json!({ "n": n })).await);
    }
    let requests = wait_until_delivered(&receiver, &sent).await;
    assert_in_order(&requests, &sent);
}
