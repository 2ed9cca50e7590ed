//! Crash safety: a 202 means the message and its fan-out are on disk, so a process
//! killed with SIGKILL in the middle of a stream of messages loses none that were
//! acknowledged.
//!
//! The real binary runs as a child process. The receiver fails the first attempt of every
//! message, so that at the moment of the kill many deliveries wait for a retry in the store,
//! others are in flight, and others are still being ingested. The node is restarted on the same
//! database and port, the rest of the messages are sent, and the test waits until every
//! acknowledged message has been answered 200 at least once. Duplicates are allowed (after a
//! crash, at-least-once may send twice), so they are not counted against the node.
//!
//! On SQLite the restarted node releases the dead one's leases at start; on PostgreSQL (where
//! another node may still be alive) it waits for them to expire, so the lease is short here.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use reqwest::{Method, StatusCode};
use serde_json::json;
use tokio::sync::Notify;

use crate::harness::{
    Api, Backend, DEADLINE, HOOK, Receiver, Reply, ServerProcess, TestDatabase, eventually,
    free_port, on_both_backends,
};

const MESSAGES: usize = 300;
const SENDERS: usize = 4;
/// The node is killed as soon as this many messages are acknowledged.
const KILL_AFTER: usize = 150;
/// A lease the restarted node waits out on PostgreSQL (at least twice the request timeout).
const SETTINGS: [(&str, &str); 1] = [("WEBHOOKD_LEASE", "4s")];

/// What the senders did, shared between them.
#[derive(Debug, Default)]
struct Sent {
    /// Acknowledged (202) messages: number and id.
    acknowledged: Mutex<Vec<(usize, String)>>,
    /// Messages whose request got no answer: stored or not, nobody knows. Sent again later.
    unanswered: Mutex<Vec<usize>>,
    /// Wakes the test when `KILL_AFTER` messages are acknowledged.
    enough: Notify,
}

fn message(n: usize) -> Vec<u8> {
    json!({"eventType": "e2e.crash", "payload": {"n": n}})
        .to_string()
        .into_bytes()
}

/// Sends message `n`; answers whether it got an answer (which must then be a 202).
async fn send(api: &Api, app: &str, n: usize, sent: &Sent) -> bool {
    match api
        .try_request(
            Method::POST,
            &format!("/api/v1/app/{app}/msg"),
            Some(message(n)),
        )
        .await
    {
        Ok((StatusCode::ACCEPTED, body)) => {
            let id = body["id"].as_str().expect("a message id").to_owned();
            let mut acknowledged = sent.acknowledged.lock().unwrap();
            acknowledged.push((n, id));
            if acknowledged.len() == KILL_AFTER {
                sent.enough.notify_one();
            }
            true
        }
        Ok((status, body)) => panic!("message {n} answered {status}: {body}"),
        Err(_) => {
            sent.unanswered.lock().unwrap().push(n);
            false
        }
    }
}

/// Sends `numbers` with `SENDERS` concurrent senders; a sender stops at its first unanswered
/// request (the node is gone).
async fn send_all(api: &Api, app: &str, numbers: Vec<usize>, sent: &Arc<Sent>) {
    let queue = Arc::new(numbers);
    let next = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (api, app, sent, queue, next) = (
                api.clone(),
                app.to_owned(),
                Arc::clone(sent),
                Arc::clone(&queue),
                Arc::clone(&next),
            );
            tokio::spawn(async move {
                while let Some(&n) = queue.get(next.fetch_add(1, Ordering::Relaxed)) {
                    if !send(&api, &app, n, &sent).await {
                        break;
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.expect("a sender");
    }
}

async fn a_sigkill_loses_no_acknowledged_message(backend: Backend) {
    let receiver = Receiver::start().await;
    receiver.first_sight(HOOK, Reply::status(500));
    let database = TestDatabase::create(backend).await;
    let port = free_port();
    let server = ServerProcess::start(&database, port, &SETTINGS).await;
    let app = server.create_app().await;
    let endpoint = server
        .create_endpoint(&app, json!({"url": receiver.url(HOOK)}))
        .await;
    let sent = Arc::new(Sent::default());

    // Send everything; kill the node, mid-stream, once KILL_AFTER messages are acknowledged.
    let sending = tokio::spawn({
        let (api, app, sent) = ((*server).clone(), app.clone(), Arc::clone(&sent));
        async move { send_all(&api, &app, (0..MESSAGES).collect(), &sent).await }
    });
    if tokio::time::timeout(DEADLINE, sent.enough.notified())
        .await
        .is_err()
    {
        panic!("{KILL_AFTER} messages were not acknowledged within {DEADLINE:?}");
    }
    server.kill().await;
    sending.await.expect("the senders");
    let before_kill: HashSet<String> = sent
        .acknowledged
        .lock()
        .unwrap()
        .iter()
        .map(|(_, id)| id.clone())
        .collect();
    assert!(
        !sent.unanswered.lock().unwrap().is_empty(),
        "the kill came mid-stream"
    );

    // Restart on the same database and port, and send what was not acknowledged.
    let server = ServerProcess::start(&database, port, &SETTINGS).await;
    let done: HashSet<usize> = sent
        .acknowledged
        .lock()
        .unwrap()
        .iter()
        .map(|(n, _)| *n)
        .collect();
    sent.unanswered.lock().unwrap().clear();
    send_all(
        &server,
        &app,
        (0..MESSAGES).filter(|n| !done.contains(n)).collect(),
        &sent,
    )
    .await;
    assert!(
        sent.unanswered.lock().unwrap().is_empty(),
        "the restarted node answers every message"
    );
    let acknowledged: HashSet<String> = sent
        .acknowledged
        .lock()
        .unwrap()
        .iter()
        .map(|(_, id)| id.clone())
        .collect();
    assert_eq!(
        acknowledged.len(),
        MESSAGES,
        "every message acknowledged, {} of them before the kill",
        before_kill.len()
    );

    let requests = eventually(
        "every acknowledged message answered 200 at least once",
        || {
            let requests = receiver.requests();
            let delivered: HashSet<&str> = requests
                .iter()
                .filter(|request| request.status == 200)
                .map(|request| request.webhook_id())
                .collect();
            let missing: Vec<&String> = acknowledged
                .iter()
                .filter(|id| !delivered.contains(id.as_str()))
                .collect();
            let answer = if missing.is_empty() {
                Ok(requests)
            } else {
                let lost_in_crash = missing
                    .iter()
                    .filter(|id| before_kill.contains(**id))
                    .count();
                Err(format!(
                    "{} of {} acknowledged messages not delivered ({lost_in_crash} of them \
                     acknowledged before the kill), e.g. {:?}",
                    missing.len(),
                    acknowledged.len(),
                    &missing[..missing.len().min(5)]
                ))
            };
            std::future::ready(answer)
        },
    )
    .await;
    let received: HashSet<&str> = requests
        .iter()
        .map(|request| request.webhook_id())
        .collect();
    assert!(
        acknowledged.iter().all(|id| received.contains(id.as_str())),
        "the received webhook-ids include every acknowledged message"
    );
    for request in &requests {
        request.assert_verifies(&endpoint.secret);
    }
    server.terminate().await;
}

on_both_backends! {
    a_sigkill_loses_no_acknowledged_message,
}
