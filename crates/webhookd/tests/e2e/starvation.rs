//! Black-hole endpoints must not starve answering ones: many endpoints whose sockets accept the
//! connection and never answer, beside a few that answer at once. The answering endpoints'
//! p99 (send → arrival) with the black holes busy stays within a small factor of their p99
//! alone. The node's in-flight budget is lowered so that a few dozen black holes are enough to
//! hold every slot of a node that hands slots out in plain turns.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::harness::{Receiver, TestServer};

const DEAD_ENDPOINTS: usize = 40;
const LIVE_ENDPOINTS: usize = 4;
/// Messages to every black hole, so that each keeps a queue for the whole test.
const DEAD_MESSAGES: usize = 10;
/// Messages to the answering endpoints per phase, one every `PACE`.
const LIVE_MESSAGES: usize = 80;
const PACE: Duration = Duration::from_millis(40);

/// A loopback listener that accepts every connection and holds it open, never answering.
struct BlackHole {
    address: String,
    task: JoinHandle<()>,
}

impl BlackHole {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = format!("http://{}", listener.local_addr().expect("an address"));
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Self { address, task }
    }
}

impl Drop for BlackHole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends `LIVE_MESSAGES` to the answering application at a steady pace and answers the p99 of
/// their deliveries' latency, send → arrival, over every endpoint.
async fn live_p99(server: &TestServer, receiver: &Receiver, app: &str, phase: &str) -> Duration {
    let before = receiver.requests().len();
    let mut sent_at = HashMap::new();
    let mut pace = tokio::time::interval(PACE);
    for n in 0..LIVE_MESSAGES {
        pace.tick().await;
        let at = Instant::now();
        let id = server
            .send_event(app, json!({"phase": phase, "n": n}))
            .await;
        sent_at.insert(id, at);
    }
    let expected = LIVE_MESSAGES * LIVE_ENDPOINTS;
    let requests = receiver
        .wait_for(&format!("every {phase} delivery"), |requests| {
            requests.len() >= before + expected
        })
        .await;
    let mut latencies: Vec<Duration> = requests[before..]
        .iter()
        .filter_map(|request| {
            let sent = sent_at.get(request.webhook_id())?;
            Some(request.arrived.duration_since(*sent))
        })
        .collect();
    assert_eq!(latencies.len(), expected, "each {phase} delivery once");
    latencies.sort();
    latencies[(latencies.len() * 99).div_ceil(100) - 1]
}

#[tokio::test(flavor = "multi_thread")]
async fn black_hole_endpoints_do_not_starve_answering_ones() {
    let receiver = Receiver::start().await;
    let black_hole = BlackHole::start().await;
    let server = TestServer::start(&[
        ("WEBHOOKD_MAX_IN_FLIGHT", "32"),
        ("WEBHOOKD_REQUEST_TIMEOUT", "4s"),
        ("WEBHOOKD_LEASE", "30s"),
    ])
    .await;
    let (dead_app, live_app) = (server.create_app().await, server.create_app().await);
    for n in 0..DEAD_ENDPOINTS {
        let url = format!("{}/dead/{n}", black_hole.address);
        server.create_endpoint(&dead_app, json!({"url": url})).await;
    }
    for n in 0..LIVE_ENDPOINTS {
        server
            .create_endpoint(
                &live_app,
                json!({"url": receiver.url(&format!("/live/{n}"))}),
            )
            .await;
    }

    let alone = live_p99(&server, &receiver, &live_app, "alone").await;
    for n in 0..DEAD_MESSAGES {
        server.send_event(&dead_app, json!({"n": n})).await;
    }
    let beside_black_holes = live_p99(&server, &receiver, &live_app, "beside").await;

    // Generous for a loaded two-core machine, and still far below the request timeout that a
    // delivery waiting behind the black holes would sit out.
    let bound = (alone * 5).max(Duration::from_millis(1500));
    assert!(
        beside_black_holes <= bound,
        "answering endpoints' p99 was {beside_black_holes:?} beside {DEAD_ENDPOINTS} black \
         holes, {alone:?} alone (bound {bound:?})"
    );
}
