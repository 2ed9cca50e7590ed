//! The engine's rules as a state machine: events in, effects out, as plain data. It owns the
//! lanes, their turns, the throttle timers, the in-flight budget and the overflow to the store;
//! it spawns nothing, calls no store and reads no clock (the time comes with each event). The
//! loop in `mod.rs` feeds it and performs its effects, so every rule here is unit-tested
//! without a runtime or a socket (`machine/tests.rs`).
//!
//! **Invariants** (the tests check each one):
//! - `held` never exceeds the window, and every delivery that leaves memory gives its place
//!   back: finished, released to the store, dropped with its endpoint, or released at shutdown
//!   (see `window`).
//! - A lane holds at most `endpoint_queue` deliveries; what does not fit is released to the
//!   store and the endpoint is marked full, so the scheduler claims nothing for it until its
//!   queue has drained to half.
//! - Lanes take turns, one request per turn: a flooded endpoint does not starve a quiet one.
//! - Once an endpoint has spilled, its fresh deliveries go to the store behind the spilled
//!   ones, until a claim finds nothing more due for it: overflow comes back oldest first.
//! - Endpoints not known to answer hold at most the unproven share of `max_in_flight`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use webhookd_core::model::{Endpoint, Message};
use webhookd_core::outcome::Outcome;
use webhookd_core::{EndpointId, MessageId};
use webhookd_store::{Due, EndpointHealth};

use super::admission::{Admit, Budget};
use super::lane::Lane;
use super::window::Window;
use crate::attempt::Job;

#[cfg(test)]
mod tests;

/// Lanes kept for idle endpoints before the idle ones are dropped.
const MAX_IDLE_LANES: usize = 10_000;

/// Everything that makes the engine act: the closed set of its inputs.
#[derive(Debug)]
pub(crate) enum Event {
    /// A committed message's fresh deliveries, leased to this node at insert and not yet
    /// counted in the window.
    Submitted {
        message: Arc<Message>,
        endpoints: Vec<EndpointId>,
    },
    /// Fresh deliveries of these endpoints were given back to the store at intake (beyond its
    /// bound, before the loop took them in): they wait there, and later fresh ones go behind
    /// them, as behind any overflow.
    Spilled(Vec<EndpointId>),
    /// Due deliveries claimed by the scheduler (already counted in the window). `drained`:
    /// the store had no more due work but for the endpoints skipped as full.
    Claimed { due: Vec<Due>, drained: bool },
    /// An endpoint's configuration was read (`None`: it no longer exists).
    Loaded {
        endpoint: EndpointId,
        found: Option<Box<Endpoint>>,
    },
    /// One manual attempt, with the endpoint as it was just read.
    Resend {
        message: Arc<Message>,
        endpoint: Box<Endpoint>,
    },
    /// An endpoint was changed or deleted: what is cached of it is stale.
    EndpointChanged(EndpointId),
    /// An attempt finished.
    Done {
        endpoint: EndpointId,
        manual: bool,
        outcome: Outcome,
        health: Option<EndpointHealth>,
        /// Whether the endpoint sent an HTTP answer.
        answered: bool,
        /// Whether it was started in the budget's unproven share.
        unproven: bool,
    },
    /// A throttle timer may have expired (see [`Machine::next_timer`]).
    Timer,
    /// The node stops: nothing more starts, and whatever is queued is released.
    Shutdown,
}

/// What the engine asks its driver to do.
#[derive(Debug)]
pub(crate) enum Effect {
    /// Send one attempt; its result comes back as [`Event::Done`].
    Start {
        endpoint: Arc<Endpoint>,
        job: Job,
        unproven: bool,
    },
    /// Read an endpoint's configuration; it comes back as [`Event::Loaded`].
    Load(EndpointId),
    /// Give these leases back to the store in one write: the deliveries wait there, due.
    Release(Vec<(MessageId, EndpointId)>),
    /// Stop renewing these leases: the store canceled the deliveries (their endpoint was
    /// disabled or deleted), and the machine forgot them.
    LetGo(Vec<(MessageId, EndpointId)>),
    /// Due work may be claimable again (an endpoint is no longer full).
    WakeScheduler,
}

/// The limits the machine applies, from the engine's configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) endpoint_concurrency: usize,
    pub(crate) endpoint_queue: usize,
    pub(crate) max_in_flight: usize,
}

pub(crate) struct Machine {
    limits: Limits,
    window: Arc<Window>,
    lanes: HashMap<EndpointId, Lane>,
    /// Lanes that can start a request, in turn.
    ready: VecDeque<EndpointId>,
    /// Throttled lanes, by when they may send again.
    timers: BTreeMap<Instant, Vec<EndpointId>>,
    /// Endpoints with deliveries that did not fit in memory and wait in the store. Their fresh
    /// deliveries go to the store behind them, and the scheduler claims them back oldest first,
    /// so that under overload delivery order stays close to arrival order instead of the
    /// newest arrivals taking every slot that frees while the oldest wait for intake to stop.
    spilled: HashSet<EndpointId>,
    /// Lanes of endpoints not known to answer, waiting for the unproven share of the budget.
    parked: VecDeque<EndpointId>,
    /// Requests in flight against `max_in_flight` and its reserved share.
    budget: Budget,
    /// Leases to give back, written at the end of the step as one release.
    to_release: Vec<(MessageId, EndpointId)>,
    /// Deliveries forgotten in this step (their queue dropped), let go at its end.
    to_let_go: Vec<(MessageId, EndpointId)>,
    effects: VecDeque<Effect>,
    shutting_down: bool,
}

impl Machine {
    pub(crate) fn new(limits: Limits, window: Arc<Window>) -> Self {
        Self {
            limits,
            window,
            lanes: HashMap::new(),
            ready: VecDeque::new(),
            timers: BTreeMap::new(),
            spilled: HashSet::new(),
            parked: VecDeque::new(),
            budget: Budget::new(limits.max_in_flight),
            to_release: Vec::new(),
            to_let_go: Vec::new(),
            effects: VecDeque::new(),
            shutting_down: false,
        }
    }

    /// Requests in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.budget.in_flight()
    }

    /// When the earliest throttled lane may send again: the driver sends [`Event::Timer`] then.
    pub(crate) fn next_timer(&self) -> Option<Instant> {
        self.timers.keys().next().copied()
    }

    /// The next effect to perform, in the order the machine decided them.
    pub(crate) fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// One step: applies the event, starts what may start, and collects the leases to give
    /// back into one release.
    pub(crate) fn handle(&mut self, now: Instant, event: Event) {
        if self.shutting_down {
            self.handle_stopping(event);
        } else {
            self.apply(now, event);
            if !self.shutting_down {
                self.pump(now);
            }
        }
        if !self.to_release.is_empty() {
            let keys = std::mem::take(&mut self.to_release);
            self.effects.push_back(Effect::Release(keys));
        }
        if !self.to_let_go.is_empty() {
            let keys = std::mem::take(&mut self.to_let_go);
            self.effects.push_back(Effect::LetGo(keys));
        }
    }

    fn apply(&mut self, now: Instant, event: Event) {
        match event {
            Event::Submitted { message, endpoints } => {
                for endpoint in endpoints {
                    let job = Job {
                        message: Arc::clone(&message),
                        attempts_made: 0,
                        manual: false,
                    };
                    self.enqueue(now, endpoint, job, true);
                }
            }
            Event::Spilled(endpoints) => self.spilled.extend(endpoints),
            Event::Claimed { due, drained } => {
                for Due { delivery, message } in due {
                    let job = Job {
                        message: Arc::new(message),
                        attempts_made: delivery.attempts,
                        manual: false,
                    };
                    self.enqueue(now, delivery.endpoint_id, job, false);
                }
                if drained {
                    // What spilled has come back, but for endpoints still full.
                    let window = &self.window;
                    self.spilled.retain(|id| window.is_full(id));
                }
            }
            Event::Loaded { endpoint, found } => self.on_loaded(now, endpoint, found),
            Event::Resend { message, endpoint } => self.resend(now, message, *endpoint),
            Event::EndpointChanged(id) => {
                if let Some(lane) = self.lanes.get_mut(&id) {
                    lane.endpoint = None;
                    lane.loaded_at = None;
                    if lane.is_idle() {
                        self.lanes.remove(&id);
                    } else {
                        self.load(&id);
                    }
                }
            }
            Event::Done {
                endpoint,
                manual,
                outcome,
                health,
                answered,
                unproven,
            } => self.on_done(endpoint, manual, outcome, health, answered, unproven),
            Event::Timer => self.on_timers(now),
            Event::Shutdown => self.stop(),
        }
    }

    /// Shutdown: nothing starts any more. What is queued, and what reaches the machine from
    /// now on, is released; finished attempts only give their places back.
    fn stop(&mut self) {
        self.shutting_down = true;
        for (id, lane) in &mut self.lanes {
            let queued: Vec<Job> = lane.queue.drain(..).filter(|job| !job.manual).collect();
            self.window.give_back(queued.len());
            self.to_release.extend(
                queued
                    .into_iter()
                    .map(|job| (job.message.id.clone(), id.clone())),
            );
        }
    }

    fn handle_stopping(&mut self, event: Event) {
        match event {
            Event::Submitted { message, endpoints } => self
                .to_release
                .extend(endpoints.into_iter().map(|id| (message.id.clone(), id))),
            Event::Claimed { due, .. } => {
                self.window.give_back(due.len());
                self.to_release.extend(
                    due.into_iter()
                        .map(|Due { delivery, message }| (message.id, delivery.endpoint_id)),
                );
            }
            Event::Done {
                manual, unproven, ..
            } => {
                self.budget.finish(unproven);
                if !manual {
                    self.window.give_back(1);
                }
            }
            Event::Loaded { .. }
            | Event::Spilled(_)
            | Event::Resend { .. }
            | Event::EndpointChanged(_)
            | Event::Timer
            | Event::Shutdown => {}
        }
    }

    fn on_done(
        &mut self,
        endpoint: EndpointId,
        manual: bool,
        outcome: Outcome,
        health: Option<EndpointHealth>,
        answered: bool,
        unproven: bool,
    ) {
        self.budget.finish(unproven);
        if !manual {
            self.window.give_back(1);
        }
        let Some(lane) = self.lanes.get_mut(&endpoint) else {
            return;
        };
        lane.in_flight -= 1;
        lane.allowance
            .finished(answered, self.limits.endpoint_concurrency);
        if lane.parked && !lane.allowance.standing().unproven() {
            // It answered while parked: it no longer waits for the unproven share.
            lane.parked = false;
            lane.scheduled = false;
        }
        if let (Some(health), Some(config)) = (health, lane.endpoint.as_mut()) {
            let config = Arc::make_mut(config);
            match health {
                EndpointHealth::FailingSince(since) => config.failing_since = Some(since),
                EndpointHealth::Healthy => config.failing_since = None,
                EndpointHealth::Disable => config.disabled = true,
            }
        }
        if matches!(
            outcome,
            Outcome::Failed {
                disable_endpoint: true
            }
        ) || lane.endpoint.as_ref().is_some_and(|config| config.disabled)
        {
            self.drop_queue(&endpoint);
        }
        self.after_change(&endpoint);
    }

    /// Queues one manual attempt, with the endpoint as it was just read.
    fn resend(&mut self, now: Instant, message: Arc<Message>, endpoint: Endpoint) {
        let id = endpoint.id.clone();
        let lane = self.lanes.entry(id.clone()).or_default();
        lane.endpoint = Some(Arc::new(endpoint));
        lane.loaded_at = Some(now);
        let job = Job {
            message,
            attempts_made: 0,
            manual: true,
        };
        self.enqueue(now, id, job, false);
    }

    fn on_timers(&mut self, now: Instant) {
        let due: Vec<Instant> = self.timers.range(..=now).map(|(at, _)| *at).collect();
        for at in due {
            for id in self.timers.remove(&at).unwrap_or_default() {
                if let Some(lane) = self.lanes.get_mut(&id) {
                    lane.scheduled = false;
                }
                self.mark_ready(&id);
            }
        }
    }

    /// Queues a delivery on its endpoint's lane. A `fresh` delivery takes its place in the
    /// window here; a claimed one has it already. One that does not fit (window, lane bound,
    /// or fresh behind what spilled) gives its lease back; manual attempts always fit.
    fn enqueue(&mut self, now: Instant, endpoint: EndpointId, job: Job, fresh: bool) {
        let limits = self.limits;
        let lane = self.lanes.entry(endpoint.clone()).or_default();
        if !job.manual {
            let lane_full = lane.queue.len() >= limits.endpoint_queue;
            let behind_spilled = fresh && self.spilled.contains(&endpoint);
            let fits = !lane_full && !behind_spilled && (!fresh || self.window.take_fresh());
            if !fits {
                if !fresh {
                    self.window.give_back(1);
                }
                if !behind_spilled {
                    self.spilled.insert(endpoint.clone());
                }
                if lane_full {
                    self.window.mark_full(&endpoint);
                }
                self.to_release.push((job.message.id.clone(), endpoint));
                return;
            }
        }
        lane.queue.push_back(job);
        if lane.queue.len() >= limits.endpoint_queue {
            self.window.mark_full(&endpoint);
        }
        let needs_load = lane.endpoint.is_none() && !lane.loading;
        let stale = lane.is_stale(now) && !lane.loading;
        if needs_load || stale {
            self.load(&endpoint);
        }
        self.mark_ready(&endpoint);
    }

    /// Asks for an endpoint's configuration.
    fn load(&mut self, id: &EndpointId) {
        let Some(lane) = self.lanes.get_mut(id) else {
            return;
        };
        lane.loading = true;
        self.effects.push_back(Effect::Load(id.clone()));
    }

    fn on_loaded(&mut self, now: Instant, id: EndpointId, found: Option<Box<Endpoint>>) {
        let Some(lane) = self.lanes.get_mut(&id) else {
            return;
        };
        lane.loading = false;
        match found {
            Some(endpoint) if !endpoint.disabled => {
                lane.endpoint = Some(Arc::new(*endpoint));
                lane.loaded_at = Some(now);
                self.mark_ready(&id);
            }
            // Deleted or disabled: the store canceled its pending deliveries.
            _ => {
                lane.endpoint = None;
                self.drop_queue(&id);
                self.after_change(&id);
            }
        }
    }

    /// Forgets an endpoint's queued deliveries (it was disabled or deleted).
    fn drop_queue(&mut self, id: &EndpointId) {
        let Some(lane) = self.lanes.get_mut(id) else {
            return;
        };
        let before = self.to_let_go.len();
        self.to_let_go.extend(
            lane.queue
                .drain(..)
                .filter(|job| !job.manual)
                .map(|job| (job.message.id.clone(), id.clone())),
        );
        self.window.give_back(self.to_let_go.len() - before);
    }

    /// Puts the lane in the ready list if it can start a request.
    fn mark_ready(&mut self, id: &EndpointId) {
        let Some(lane) = self.lanes.get_mut(id) else {
            return;
        };
        if !lane.scheduled && lane.can_start(self.limits.endpoint_concurrency) {
            lane.scheduled = true;
            self.ready.push_back(id.clone());
        }
    }

    /// After a lane changed: reschedule it, un-mark it full, or drop it when idle.
    fn after_change(&mut self, id: &EndpointId) {
        let Some(lane) = self.lanes.get(id) else {
            return;
        };
        if lane.queue.len() <= self.limits.endpoint_queue / 2 && self.window.unmark_full(id) {
            self.effects.push_back(Effect::WakeScheduler);
        }
        if lane.is_idle() && (lane.endpoint.is_none() || self.lanes.len() > MAX_IDLE_LANES) {
            self.lanes.remove(id);
            return;
        }
        self.mark_ready(id);
    }

    /// Slots of the unproven share are free: as many parked lanes take their turn, longest
    /// parked first. Entries of lanes that left the parking since are skipped.
    fn unpark(&mut self) {
        let mut room = self.budget.unproven_room();
        while room > 0 {
            let Some(id) = self.parked.pop_front() else {
                return;
            };
            if let Some(lane) = self.lanes.get_mut(&id).filter(|lane| lane.parked) {
                lane.parked = false;
                lane.scheduled = false;
                self.mark_ready(&id);
                room -= 1;
            }
        }
    }

    /// Starts requests while the node has room: lanes take turns, one request per turn. A lane
    /// whose endpoint is not known to answer waits (parked) while the unproven share is taken.
    fn pump(&mut self, now: Instant) {
        self.unpark();
        while self.budget.has_room() {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            let Some(lane) = self.lanes.get_mut(&id) else {
                continue;
            };
            lane.scheduled = false;
            if !lane.can_start(self.limits.endpoint_concurrency) {
                continue;
            }
            let standing = lane.allowance.standing();
            if self.budget.admit(standing) == Admit::UnprovenFull {
                lane.scheduled = true;
                lane.parked = true;
                self.parked.push_back(id);
                continue;
            }
            if let Err(at) = lane.take_token(now) {
                lane.scheduled = true;
                self.timers.entry(at).or_default().push(id);
                continue;
            }
            let (Some(job), Some(endpoint)) = (lane.queue.pop_front(), lane.endpoint.clone())
            else {
                continue;
            };
            lane.in_flight += 1;
            let unproven = standing.unproven();
            self.budget.start(unproven);
            self.effects.push_back(Effect::Start {
                endpoint,
                job,
                unproven,
            });
            self.after_change(&id);
        }
    }
}
