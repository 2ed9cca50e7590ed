//! The load generator: posts the messages through the public API and keeps the [`Ledger`].
//!
//! Message `seq` goes to application `seq mod apps` with the body
//! `{"eventType":"bench.event","payload":{"seq":<seq>,"pad":"…"}}` and the idempotency key
//! `bench_<run>_<seq>`. Its send instant is written just before the POST, and whether it was
//! acknowledged (202) once the answer is in.
//!
//! Two pacings:
//! - **closed loop**: `concurrency` senders, each taking the next sequence number and posting
//!   it as soon as its previous POST is answered;
//! - **open loop**: message `seq` is due at `start + seq / rate`; a single pacer sleeps until
//!   the next one is due and sends every message that is due by then (a late timer sends a
//!   burst to catch up), each in its own task, with at most `max_in_flight` outstanding.
//!
//! The generator shares the machine's cores with the server, so it is kept lean: one pooled
//! keep-alive client, bodies built from a fixed prefix and suffix, and no locks but the one
//! around the rare failure counts.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::Uri;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::Clock;
use crate::tools::client::{Api, Posted, idempotency_key};

/// What was sent and what the server acknowledged.
pub(crate) struct Ledger {
    /// Per message: when its first POST started, as [`Clock::now`]; 0 before.
    sent_at: Box<[AtomicU64]>,
    acked: Box<[AtomicBool]>,
    acked_count: AtomicU64,
    failed_count: AtomicU64,
    first_send: AtomicU64,
    last_answer: AtomicU64,
    /// Failures by status code or reason. Only failures take the lock.
    failures: Mutex<BTreeMap<String, u64>>,
}

impl Ledger {
    pub(crate) fn new(messages: u64) -> Self {
        let slots = usize::try_from(messages).unwrap_or(usize::MAX);
        Self {
            sent_at: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            acked: (0..slots).map(|_| AtomicBool::new(false)).collect(),
            acked_count: AtomicU64::new(0),
            failed_count: AtomicU64::new(0),
            first_send: AtomicU64::new(u64::MAX),
            last_answer: AtomicU64::new(0),
            failures: Mutex::default(),
        }
    }

    fn sent(&self, seq: usize, now: u64) {
        if let Some(slot) = self.sent_at.get(seq) {
            slot.store(now, Ordering::Relaxed);
        }
        self.first_send.fetch_min(now, Ordering::Relaxed);
    }

    fn answered(&self, seq: usize, posted: Posted, now: u64) {
        self.last_answer.fetch_max(now, Ordering::Relaxed);
        if posted == Posted::Accepted {
            if let Some(flag) = self.acked.get(seq) {
                flag.store(true, Ordering::Relaxed);
            }
            self.acked_count.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.failed_count.fetch_add(1, Ordering::Relaxed);
        let reason = match posted {
            Posted::Rejected(status) => status.as_u16().to_string(),
            Posted::Failed(reason) => reason.to_owned(),
            Posted::Accepted => return,
        };
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *failures.entry(reason).or_default() += 1;
    }

    /// When message `seq` was sent, if it was acknowledged.
    pub(crate) fn acked_send(&self, seq: u64) -> Option<u64> {
        let seq = usize::try_from(seq).ok()?;
        if !self.acked.get(seq)?.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.sent_at.get(seq)?.load(Ordering::Relaxed))
    }

    pub(crate) fn acked(&self) -> u64 {
        self.acked_count.load(Ordering::Relaxed)
    }

    pub(crate) fn failed(&self) -> u64 {
        self.failed_count.load(Ordering::Relaxed)
    }

    /// Messages answered so far, acknowledged or not.
    pub(crate) fn answered_count(&self) -> u64 {
        self.acked() + self.failed()
    }

    /// The first send, as [`Clock::now`], or `None` before any.
    pub(crate) fn first_send(&self) -> Option<u64> {
        Some(self.first_send.load(Ordering::Relaxed)).filter(|&at| at != u64::MAX)
    }

    /// The last answer, as [`Clock::now`].
    pub(crate) fn last_answer(&self) -> u64 {
        self.last_answer.load(Ordering::Relaxed)
    }

    pub(crate) fn failures(&self) -> BTreeMap<String, u64> {
        self.failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Builds the request bodies: a fixed prefix, the sequence number, a fixed suffix.
struct Bodies {
    prefix: &'static [u8],
    suffix: Vec<u8>,
}

impl Bodies {
    /// Bodies whose payload is about `payload_bytes` long for the largest sequence number.
    fn new(payload_bytes: usize, messages: u64) -> Self {
        let digits = messages.to_string().len();
        // The payload is `{"seq":` + digits + `,"pad":"` + pad + `"}`.
        let pad = payload_bytes.saturating_sub(7 + digits + 8 + 2);
        let mut suffix = Vec::with_capacity(pad + 12);
        suffix.extend_from_slice(b",\"pad\":\"");
        suffix.resize(suffix.len() + pad, b'x');
        suffix.extend_from_slice(b"\"}}");
        Self {
            prefix: br#"{"eventType":"bench.event","payload":{"seq":"#,
            suffix,
        }
    }

    fn body(&self, seq: u64) -> Bytes {
        let mut body = Vec::with_capacity(self.prefix.len() + 20 + self.suffix.len());
        body.extend_from_slice(self.prefix);
        // Writing into a Vec cannot fail.
        let _ = write!(body, "{seq}");
        body.extend_from_slice(&self.suffix);
        Bytes::from(body)
    }
}

/// Sends the messages of one run.
pub(crate) struct Load {
    api: Arc<Api>,
    /// The message URI of each application.
    targets: Vec<Uri>,
    bodies: Bodies,
    run_id: String,
    clock: Clock,
    ledger: Arc<Ledger>,
}

impl Load {
    pub(crate) fn new(
        api: Arc<Api>,
        targets: Vec<Uri>,
        payload_bytes: usize,
        messages: u64,
        run_id: String,
        clock: Clock,
        ledger: Arc<Ledger>,
    ) -> Self {
        Self {
            api,
            targets,
            bodies: Bodies::new(payload_bytes, messages),
            run_id,
            clock,
            ledger,
        }
    }

    /// Sends message `seq` and records the outcome.
    async fn send(&self, seq: u64) {
        let (Ok(index), Ok(app)) = (
            usize::try_from(seq),
            usize::try_from(seq % self.targets.len() as u64),
        ) else {
            return;
        };
        let body = self.bodies.body(seq);
        let key = match idempotency_key(&format!("bench_{}_{seq}", self.run_id)) {
            Ok(key) => key,
            Err(_) => {
                return self
                    .ledger
                    .answered(index, Posted::Failed("key"), self.clock.now());
            }
        };
        self.ledger.sent(index, self.clock.now());
        let posted = self.api.post_message(&self.targets[app], &key, &body).await;
        self.ledger.answered(index, posted, self.clock.now());
    }

    /// Closed loop: `concurrency` senders back to back until `messages` are sent.
    pub(crate) async fn closed_loop(self: Arc<Self>, messages: u64, concurrency: usize) {
        let next = Arc::new(AtomicU64::new(0));
        let mut senders = JoinSet::new();
        for _ in 0..concurrency {
            let load = Arc::clone(&self);
            let next = Arc::clone(&next);
            senders.spawn(async move {
                loop {
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= messages {
                        break;
                    }
                    load.send(seq).await;
                }
            });
        }
        while senders.join_next().await.is_some() {}
    }

    /// Open loop: message `seq` is due `seq / rate` seconds after the start.
    pub(crate) async fn open_loop(self: Arc<Self>, messages: u64, rate: f64, max_in_flight: usize) {
        let permits = u32::try_from(max_in_flight).unwrap_or(u32::MAX);
        let in_flight = Arc::new(Semaphore::new(permits as usize));
        let start = Instant::now();
        for seq in 0..messages {
            let due = start + Duration::from_secs_f64(seq as f64 / rate);
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
                break;
            };
            let load = Arc::clone(&self);
            tokio::spawn(async move {
                load.send(seq).await;
                drop(permit);
            });
        }
        // Every permit back means every request is answered.
        let _ = in_flight.acquire_many(permits).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_carry_the_sequence_number_and_the_asked_size() {
        let bodies = Bodies::new(100, 20_000);
        let body = bodies.body(12_345);
        let envelope: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        assert_eq!(envelope["eventType"], "bench.event");
        assert_eq!(envelope["payload"]["seq"], 12_345);
        let payload = serde_json::to_string(&envelope["payload"]).expect("serializes");
        assert_eq!(payload.len(), 100);
        assert_eq!(super::super::sink::seq_of(&body), Some(12_345));
    }
}
