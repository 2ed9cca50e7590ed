//! The machine's rules, step by step, without a runtime: each test feeds events, performs
//! the effects as the driver would (answering loads, finishing attempts) and checks what
//! started, what went back to the store and what the window holds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use webhookd_core::model::{Delivery, DeliveryStatus, Endpoint, Message};
use webhookd_core::outcome::Outcome;
use webhookd_core::time::now;
use webhookd_core::{AppId, EndpointId, MessageId};
use webhookd_store::Due;

use super::{Effect, Event, Limits, Machine};
use crate::attempt::Job;
use crate::engine::window::Window;

/// The machine and what its effects did so far.
struct Harness {
    machine: Machine,
    window: Arc<Window>,
    window_max: usize,
    now: Instant,
    /// Attempts started and not finished, oldest first.
    running: Vec<(EndpointId, Job, bool)>,
    /// Every attempt started, as (endpoint, message).
    started: Vec<(EndpointId, MessageId)>,
    released: Vec<(MessageId, EndpointId)>,
    /// Deliveries forgotten with their canceled endpoint (no longer renewed).
    let_go: Vec<(MessageId, EndpointId)>,
    loads: Vec<EndpointId>,
    wakes: usize,
    /// The most requests to endpoints not known to answer ever in flight at once.
    most_unproven: usize,
}

impl Harness {
    fn new(window: usize, endpoint_queue: usize, max_in_flight: usize) -> Self {
        let shared = Arc::new(Window::new(window));
        let limits = Limits {
            endpoint_concurrency: 8,
            endpoint_queue,
            max_in_flight,
        };
        Self {
            machine: Machine::new(limits, Arc::clone(&shared)),
            window: shared,
            window_max: window,
            now: Instant::now(),
            running: Vec::new(),
            started: Vec::new(),
            released: Vec::new(),
            let_go: Vec::new(),
            loads: Vec::new(),
            wakes: 0,
            most_unproven: 0,
        }
    }

    /// Feeds one event and performs its effects; the window is checked after every step.
    fn step(&mut self, event: Event) {
        self.now += Duration::from_millis(1);
        self.machine.handle(self.now, event);
        while let Some(effect) = self.machine.poll_effect() {
            match effect {
                Effect::Start {
                    endpoint,
                    job,
                    unproven,
                } => {
                    self.started
                        .push((endpoint.id.clone(), job.message.id.clone()));
                    self.running.push((endpoint.id.clone(), job, unproven));
                }
                Effect::Load(id) => self.loads.push(id),
                Effect::Release(keys) => self.released.extend(keys),
                Effect::LetGo(keys) => self.let_go.extend(keys),
                Effect::WakeScheduler => self.wakes += 1,
            }
        }
        let unproven = self.running.iter().filter(|(.., u)| *u).count();
        self.most_unproven = self.most_unproven.max(unproven);
        assert!(
            self.window.held() <= self.window_max,
            "{} held in a window of {}",
            self.window.held(),
            self.window_max
        );
    }

    fn submit(&mut self, endpoint: &EndpointId) -> MessageId {
        let message = message();
        let id = message.id.clone();
        self.step(Event::Submitted {
            message,
            endpoints: vec![endpoint.clone()],
        });
        id
    }

    /// A claim as the scheduler makes it: room reserved first, the rest given back.
    fn claim(&mut self, due: Vec<(EndpointId, MessageId)>, drained: bool) {
        let reserved = self.window.reserve(due.len());
        assert_eq!(reserved, due.len(), "the claim did not fit in the window");
        let due = due.into_iter().map(|(e, m)| self::due(e, m)).collect();
        self.step(Event::Claimed { due, drained });
    }

    /// Answers every pending load with the endpoint's configuration.
    fn load_all(&mut self) {
        for id in std::mem::take(&mut self.loads) {
            self.step(Event::Loaded {
                found: Some(Box::new(endpoint(&id))),
                endpoint: id,
            });
        }
    }

    /// Finishes the oldest running attempt to `endpoint`.
    fn finish(&mut self, endpoint: &EndpointId, answered: bool) {
        let index = self
            .running
            .iter()
            .position(|(id, ..)| id == endpoint)
            .expect("an attempt to this endpoint is running");
        let (endpoint, job, unproven) = self.running.remove(index);
        self.step(Event::Done {
            endpoint,
            manual: job.manual,
            outcome: if answered {
                Outcome::Delivered
            } else {
                Outcome::Retry {
                    after: Duration::from_secs(5),
                }
            },
            health: None,
            answered,
            unproven,
        });
    }

    fn queued_starts(&self, endpoint: &EndpointId) -> usize {
        self.started.iter().filter(|(id, _)| id == endpoint).count()
    }
}

fn message() -> Arc<Message> {
    Arc::new(Message {
        id: MessageId::new(),
        app_id: AppId::new(),
        event_type: "test.event".into(),
        event_id: None,
        payload: bytes::Bytes::from_static(b"{}"),
        channels: Vec::new(),
        tags: Vec::new(),
        created_at: now(),
        deliver_at: None,
        retain_payload_until: None,
    })
}

fn endpoint(id: &EndpointId) -> Endpoint {
    let at = now();
    Endpoint {
        id: id.clone(),
        ..Endpoint::new(AppId::new(), "http://127.0.0.1:9/", at)
    }
}

fn due(endpoint: EndpointId, msg: MessageId) -> Due {
    let mut message = (*message()).clone();
    message.id = msg.clone();
    let at = now();
    Due {
        delivery: Delivery {
            msg_id: msg,
            endpoint_id: endpoint,
            app_id: message.app_id.clone(),
            status: DeliveryStatus::Pending,
            attempts: 1,
            next_attempt_at: None,
            created_at: at,
            updated_at: at,
        },
        message,
    }
}

#[test]
fn fresh_deliveries_beyond_the_window_go_back_to_the_store() {
    let mut h = Harness::new(5, 100, 4);
    let a = EndpointId::new();
    let sent: Vec<MessageId> = (0..8).map(|_| h.submit(&a)).collect();
    assert_eq!(h.window.held(), 5);
    let released: Vec<&MessageId> = h.released.iter().map(|(m, _)| m).collect();
    assert_eq!(released, sent[5..].iter().collect::<Vec<_>>());
    // A claim can only have the room left, and there is none.
    assert_eq!(h.window.reserve(10), 0);
    h.load_all();
    assert_eq!(
        h.running.len(),
        1,
        "an unknown endpoint has one request in flight"
    );
    assert_eq!(h.window.held(), 5, "a delivery in flight is still held");
}

#[test]
fn every_way_out_of_memory_gives_the_place_back() {
    let mut h = Harness::new(100, 3, 4);
    let (a, b, c) = (EndpointId::new(), EndpointId::new(), EndpointId::new());
    // Finished: the place comes back.
    h.submit(&a);
    h.load_all();
    assert_eq!(h.window.held(), 1);
    h.finish(&a, true);
    assert_eq!(h.window.held(), 0);
    // Released: a claim for a lane that is full.
    let mut queued: Vec<MessageId> = (0..3).map(|_| h.submit(&b)).collect();
    queued.sort();
    let late = MessageId::new();
    h.claim(vec![(b.clone(), late.clone())], false);
    assert_eq!(h.window.held(), 3);
    assert!(h.released.contains(&(late, b.clone())));
    // Dropped: the endpoint was deleted while its deliveries were queued.
    h.step(Event::EndpointChanged(b.clone()));
    let reload = h
        .loads
        .pop()
        .expect("a changed endpoint with work is read again");
    h.step(Event::Loaded {
        endpoint: reload,
        found: None,
    });
    assert_eq!(h.window.held(), 0);
    let mut let_go: Vec<MessageId> = h.let_go.iter().map(|(msg, _)| msg.clone()).collect();
    let_go.sort();
    assert_eq!(
        let_go, queued,
        "the dropped deliveries are no longer renewed"
    );
    assert!(h.let_go.iter().all(|(_, endpoint)| *endpoint == b));
    // Shutdown: queued work, work arriving after it and attempts in flight all give back.
    h.submit(&c);
    h.submit(&c);
    h.load_all();
    assert_eq!((h.running.len(), h.window.held()), (1, 2));
    h.released.clear();
    h.step(Event::Shutdown);
    assert_eq!(h.released.len(), 1, "the queued delivery is released");
    h.claim(vec![(c.clone(), MessageId::new())], false);
    h.submit(&c);
    assert_eq!(
        h.released.len(),
        3,
        "what arrives after shutdown is released"
    );
    assert!(
        h.running.len() == 1 && h.started.len() == 2,
        "nothing starts"
    );
    h.finish(&c, true);
    assert_eq!((h.window.held(), h.machine.in_flight()), (0, 0));
}

#[test]
fn a_full_endpoint_spills_and_is_skipped_until_it_drains_to_half() {
    let mut h = Harness::new(100, 4, 8);
    let a = EndpointId::new();
    for _ in 0..6 {
        h.submit(&a);
    }
    assert_eq!(h.window.held(), 4);
    assert_eq!(h.released.len(), 2);
    assert!(h.window.is_full(&a), "the scheduler skips a full endpoint");
    h.load_all();
    // It answers, so its allowance grows; the queue drains as attempts finish.
    while h.window.is_full(&a) {
        assert_eq!(h.wakes, 0);
        h.finish(&a, true);
    }
    assert_eq!(
        h.wakes, 1,
        "the scheduler is woken once the endpoint is no longer full"
    );
    assert!(h.machine.lanes[&a].queue.len() <= 2);
}

#[test]
fn a_flooded_endpoint_does_not_starve_a_quiet_one() {
    let mut h = Harness::new(1000, 1000, 1);
    let (loud, quiet) = (EndpointId::new(), EndpointId::new());
    for _ in 0..200 {
        h.submit(&loud);
    }
    h.load_all();
    let quiet_message = h.submit(&quiet);
    h.load_all();
    assert_eq!(h.started.len(), 1, "one slot in the node");
    h.finish(&loud, true);
    assert_eq!(
        h.started.last(),
        Some(&(quiet.clone(), quiet_message)),
        "the quiet endpoint takes the next turn"
    );
    h.finish(&quiet, true);
    assert_eq!(h.queued_starts(&loud), 2);
}

#[test]
fn an_endpoint_spilled_at_intake_sends_fresh_work_behind_it() {
    let mut h = Harness::new(10, 100, 1);
    let (a, b) = (EndpointId::new(), EndpointId::new());
    h.step(Event::Spilled(vec![a.clone()]));
    // Fresh work of the spilled endpoint waits in the store behind what spilled; others run.
    let behind = h.submit(&a);
    assert_eq!(h.released, [(behind.clone(), a.clone())]);
    assert_eq!(h.window.held(), 0, "what was released holds no place");
    h.submit(&b);
    assert_eq!(h.released.len(), 1);
    // Once the scheduler has claimed it back and nothing more is due, fresh work fits again.
    h.claim(vec![(a.clone(), behind)], true);
    h.submit(&a);
    assert_eq!(h.released.len(), 1);
}

#[test]
fn overflow_comes_back_oldest_first() {
    let mut h = Harness::new(2, 100, 1);
    let a = EndpointId::new();
    let first = [h.submit(&a), h.submit(&a)];
    let spilled = h.submit(&a);
    assert_eq!(h.released, [(spilled.clone(), a.clone())]);
    h.load_all();
    h.finish(&a, true);
    // A place is free, but a fresh delivery waits in the store behind the one that spilled.
    let behind = h.submit(&a);
    assert_eq!(h.released.last(), Some(&(behind.clone(), a.clone())));
    assert_eq!(h.window.held(), 1);
    h.finish(&a, true);
    assert_eq!(h.window.held(), 0);
    // The scheduler claims them back, oldest first, and has nothing more due for the endpoint.
    h.claim(
        vec![(a.clone(), spilled.clone()), (a.clone(), behind.clone())],
        true,
    );
    h.finish(&a, true);
    // Fresh work fits again once what spilled came back.
    let later = h.submit(&a);
    assert_eq!(h.released.len(), 2);
    h.finish(&a, true);
    h.finish(&a, true);
    let order: Vec<MessageId> = h.started.iter().map(|(_, m)| m.clone()).collect();
    assert_eq!(
        order,
        [first[0].clone(), first[1].clone(), spilled, behind, later]
    );
    assert_eq!(h.window.held(), 0);
}

#[test]
fn endpoints_that_never_answer_hold_at_most_the_unproven_share() {
    // Eight slots: two are reserved for endpoints that answer.
    let mut h = Harness::new(1000, 100, 8);
    let live = EndpointId::new();
    h.submit(&live);
    h.load_all();
    h.finish(&live, true);
    let dead: Vec<EndpointId> = (0..10).map(|_| EndpointId::new()).collect();
    for id in &dead {
        h.submit(id);
    }
    h.load_all();
    assert_eq!(
        h.running.len(),
        6,
        "one probe each, up to the unproven share"
    );
    // The answering endpoint still finds its reserved slots.
    for _ in 0..2 {
        h.submit(&live);
    }
    assert_eq!(h.running.len(), 8);
    assert_eq!(h.queued_starts(&live), 3);
    // A dead endpoint's probe times out: the lane parked longest takes the slot.
    let first_parked = dead[6].clone();
    h.finish(&dead[0], false);
    assert_eq!(h.running.last().map(|(id, ..)| id), Some(&first_parked));
    while let Some((id, ..)) = h.running.first().cloned() {
        let answered = id == live;
        h.finish(&id, answered);
    }
    assert_eq!(h.most_unproven, 6);
    assert_eq!(h.started.len(), 13, "every delivery was started");
}

#[test]
fn manual_attempts_take_no_place_in_the_window() {
    let mut h = Harness::new(1, 1, 4);
    let a = EndpointId::new();
    h.submit(&a);
    h.step(Event::Resend {
        message: message(),
        endpoint: Box::new(endpoint(&a)),
    });
    assert_eq!(h.window.held(), 1);
    assert!(h.released.is_empty(), "a manual attempt is never released");
    h.finish(&a, true);
    h.finish(&a, true);
    assert_eq!(h.window.held(), 0);
}
