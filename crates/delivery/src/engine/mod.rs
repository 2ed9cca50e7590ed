//! The engine's event loop (steps 3, 5 and 7 of the crate docs): one task owns every lane and
//! reacts to a closed set of events; attempts run as tasks of their own and report back.
//!
//! Shutdown protocol:
//! 1. The cancellation token stops the scheduler and the loop's intake.
//! 2. Queued deliveries are not started; their leases are released in one write, which
//!    shutdown awaits (with the releases of overflow still running), so that other nodes can
//!    take that work at once rather than when the leases expire.
//! 3. Attempts in flight may finish until `shutdown_grace`; their results are recorded.
//! 4. The recorder drains and stops. What is still unrecorded keeps its lease, which expires
//!    (or, with SQLite, is released at the next start).

mod admission;
mod lane;
mod spawn;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use webhookd_core::model::{Endpoint, Message};
use webhookd_core::outcome::Outcome;
use webhookd_core::{EndpointId, MessageId};
use webhookd_store::{Due, EndpointHealth, Store};

use self::admission::{Admit, Budget};
use self::lane::Lane;
use crate::EngineConfig;
use crate::attempt::Job;
use crate::handle::{Command, Dispatcher};
use crate::http::HttpClient;
use crate::recorder::Recorder;
use crate::scheduler::{self, Shared};

/// Lanes kept for idle endpoints before the idle ones are dropped.
const MAX_IDLE_LANES: usize = 10_000;

/// Everything that makes the loop act, besides commands from the API.
#[derive(Debug)]
pub(crate) enum Event {
    /// Due deliveries claimed by the scheduler (already counted in `held`). `drained`: the
    /// store had no more due work but for the endpoints skipped as full.
    Claimed { due: Vec<Due>, drained: bool },
    /// An endpoint's configuration was read (`None`: it no longer exists).
    Loaded {
        endpoint: EndpointId,
        found: Option<Box<Endpoint>>,
    },
    /// A manual attempt queued by a node that does not deliver.
    Resend {
        message: Arc<Message>,
        endpoint: Box<Endpoint>,
    },
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
}

/// The running engine. Dropping it does not stop it; [`Engine::shutdown`] does.
pub struct Engine {
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Engine {
    /// Stops the engine by the shutdown protocol and waits for it.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "the delivery engine ended abnormally");
        }
    }
}

pub(crate) fn start(
    store: Arc<dyn Store>,
    config: EngineConfig,
    http: HttpClient,
) -> (Dispatcher, Engine) {
    let config_max_in_flight = config.max_in_flight;
    let config = Arc::new(config);
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let shared = Arc::new(Shared::default());
    let dispatcher = Dispatcher::new(commands_tx, config.node_id.clone(), config.lease);
    let (recorder, recorder_task) = Recorder::start(Arc::clone(&store), Arc::clone(&shared));
    let scheduler = tokio::spawn(scheduler::run(
        Arc::clone(&store),
        Arc::clone(&config),
        Arc::clone(&shared),
        events_tx.clone(),
        shutdown.clone(),
    ));
    let state = State {
        config,
        store,
        http,
        recorder,
        shared,
        events: events_tx,
        lanes: HashMap::new(),
        ready: VecDeque::new(),
        timers: BTreeMap::new(),
        parked: VecDeque::new(),
        spilled: HashSet::new(),
        budget: Budget::new(config_max_in_flight),
        to_release: Vec::new(),
        releases: JoinSet::new(),
    };
    let task = tokio::spawn(run(
        state,
        commands,
        events,
        shutdown.clone(),
        scheduler,
        recorder_task,
    ));
    (dispatcher, Engine { shutdown, task })
}

struct State {
    config: Arc<EngineConfig>,
    store: Arc<dyn Store>,
    http: HttpClient,
    recorder: Recorder,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<Event>,
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
    /// Leases to give back (deliveries that did not fit in memory).
    to_release: Vec<(MessageId, EndpointId)>,
    /// Releases being written; shutdown waits for them.
    releases: JoinSet<()>,
}

async fn run(
    mut state: State,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut events: mpsc::UnboundedReceiver<Event>,
    shutdown: CancellationToken,
    scheduler: JoinHandle<()>,
    recorder_task: JoinHandle<()>,
) {
    loop {
        let next_timer = state.timers.keys().next().copied();
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(event) = events.recv() => state.on_event(event),
            Some(command) = commands.recv() => state.on_command(command),
            () = sleep_until(next_timer), if next_timer.is_some() => state.on_timers(),
        }
        state.pump();
        state.release_overflow();
    }
    // Shutdown, steps 2 to 4.
    let _ = scheduler.await;
    state.release_queued(&mut commands, &mut events);
    state.release_overflow();
    while state.releases.join_next().await.is_some() {}
    let deadline = Instant::now() + state.config.shutdown_grace;
    while state.budget.in_flight() > 0 {
        tokio::select! {
            Some(event) = events.recv() => {
                if let Event::Done { unproven, .. } = event {
                    state.budget.finish(unproven);
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!(in_flight = state.budget.in_flight(), "attempts still in flight at the shutdown deadline");
                break;
            }
        }
    }
    drop(state);
    let _ = recorder_task.await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl State {
    fn on_command(&mut self, command: Command) {
        match command {
            Command::Fresh { message, endpoints } => {
                for endpoint in endpoints {
                    let job = Job {
                        message: Arc::clone(&message),
                        attempts_made: 0,
                        manual: false,
                    };
                    self.enqueue(endpoint, job, true);
                }
            }
            Command::Resend { message, endpoint } => self.resend(message, *endpoint),
            Command::EndpointChanged(id) => {
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
            Command::Wake => self.shared.wake.notify_one(),
        }
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Claimed { due, drained } => {
                for Due { delivery, message } in due {
                    let job = Job {
                        message: Arc::new(message),
                        attempts_made: delivery.attempts,
                        manual: false,
                    };
                    self.enqueue(delivery.endpoint_id, job, false);
                }
                if drained {
                    // What spilled has come back, but for endpoints still full.
                    let full = self
                        .shared
                        .full
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner());
                    self.spilled.retain(|id| full.contains(id));
                }
            }
            Event::Loaded { endpoint, found } => self.on_loaded(endpoint, found),
            Event::Resend { message, endpoint } => self.resend(message, *endpoint),
            Event::Done {
                endpoint,
                manual,
                outcome,
                health,
                answered,
                unproven,
            } => {
                self.budget.finish(unproven);
                if !manual {
                    self.shared.held.fetch_sub(1, Ordering::Relaxed);
                }
                let Some(lane) = self.lanes.get_mut(&endpoint) else {
                    return;
                };
                lane.in_flight -= 1;
                lane.allowance
                    .finished(answered, self.config.endpoint_concurrency);
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
        }
    }

    /// Queues one manual attempt, with the endpoint as it was just read.
    fn resend(&mut self, message: Arc<Message>, endpoint: Endpoint) {
        let id = endpoint.id.clone();
        let lane = self.lanes.entry(id.clone()).or_default();
        lane.endpoint = Some(Arc::new(endpoint));
        lane.loaded_at = Some(Instant::now());
        self.enqueue(
            id,
            Job {
                message,
                attempts_made: 0,
                manual: true,
            },
            false,
        );
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
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

    /// Queues a delivery on its endpoint's lane. `fresh` deliveries are not yet counted in
    /// `held`; one that does not fit gives its lease back, and so does every fresh one to the
    /// same endpoint after it until the store has given back what spilled (see `spilled`).
    fn enqueue(&mut self, endpoint: EndpointId, job: Job, fresh: bool) {
        let config = &self.config;
        let lane = self.lanes.entry(endpoint.clone()).or_default();
        let over_window = fresh && self.shared.held.load(Ordering::Relaxed) >= config.window;
        let lane_full = lane.queue.len() >= config.endpoint_queue;
        let behind_spilled = fresh && self.spilled.contains(&endpoint);
        if !job.manual && (over_window || lane_full || behind_spilled) {
            if !fresh {
                self.shared.held.fetch_sub(1, Ordering::Relaxed);
            }
            if !behind_spilled {
                self.spilled.insert(endpoint.clone());
            }
            self.to_release
                .push((job.message.id.clone(), endpoint.clone()));
            if lane_full {
                self.shared
                    .full
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .insert(endpoint);
            }
            return;
        }
        if fresh && !job.manual {
            self.shared.held.fetch_add(1, Ordering::Relaxed);
        }
        lane.queue.push_back(job);
        if lane.queue.len() >= config.endpoint_queue {
            self.shared
                .full
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(endpoint.clone());
        }
        let needs_load = lane.endpoint.is_none() && !lane.loading;
        let stale = lane.is_stale(Instant::now()) && !lane.loading;
        if needs_load || stale {
            self.load(&endpoint);
        }
        self.mark_ready(&endpoint);
    }

    /// Reads an endpoint's configuration in the background.
    fn load(&mut self, id: &EndpointId) {
        let Some(lane) = self.lanes.get_mut(id) else {
            return;
        };
        lane.loading = true;
        let (store, events, id) = (Arc::clone(&self.store), self.events.clone(), id.clone());
        tokio::spawn(async move {
            let found = loop {
                match store.get_endpoints(std::slice::from_ref(&id)).await {
                    Ok(mut found) => break found.pop(),
                    Err(error) => {
                        tracing::warn!(%error, endpoint = %id, "reading an endpoint failed; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    }
                }
            };
            let _ = events.send(Event::Loaded {
                endpoint: id,
                found: found.map(Box::new),
            });
        });
    }

    fn on_loaded(&mut self, id: EndpointId, found: Option<Box<Endpoint>>) {
        let Some(lane) = self.lanes.get_mut(&id) else {
            return;
        };
        lane.loading = false;
        match found {
            Some(endpoint) if !endpoint.disabled => {
                lane.endpoint = Some(Arc::new(*endpoint));
                lane.loaded_at = Some(Instant::now());
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
        let dropped = lane.queue.drain(..).filter(|job| !job.manual).count();
        self.shared.held.fetch_sub(dropped, Ordering::Relaxed);
    }

    /// Puts the lane in the ready list if it can start a request.
    fn mark_ready(&mut self, id: &EndpointId) {
        let Some(lane) = self.lanes.get_mut(id) else {
            return;
        };
        if !lane.scheduled && lane.can_start(self.config.endpoint_concurrency) {
            lane.scheduled = true;
            self.ready.push_back(id.clone());
        }
    }

    /// After a lane changed: reschedule it, un-mark it full, or drop it when idle.
    fn after_change(&mut self, id: &EndpointId) {
        let Some(lane) = self.lanes.get(id) else {
            return;
        };
        if lane.queue.len() <= self.config.endpoint_queue / 2 {
            let mut full = self
                .shared
                .full
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if full.remove(id) {
                self.shared.wake.notify_one();
            }
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
    fn pump(&mut self) {
        let now = Instant::now();
        self.unpark();
        while self.budget.has_room() {
            let Some(id) = self.ready.pop_front() else {
                break;
            };
            let Some(lane) = self.lanes.get_mut(&id) else {
                continue;
            };
            lane.scheduled = false;
            if !lane.can_start(self.config.endpoint_concurrency) {
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
            self.budget.start(standing.unproven());
            self.spawn_attempt(endpoint, job, standing.unproven());
            self.after_change(&id);
        }
    }

    /// Shutdown, step 2: collects the leases of everything queued and not started, including
    /// work handed over (fresh messages, claims) that the loop had not taken in yet.
    fn release_queued(
        &mut self,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        events: &mut mpsc::UnboundedReceiver<Event>,
    ) {
        while let Ok(command) = commands.try_recv() {
            if let Command::Fresh { message, endpoints } = command {
                let keys = endpoints.into_iter().map(|id| (message.id.clone(), id));
                self.to_release.extend(keys);
            }
        }
        while let Ok(event) = events.try_recv() {
            match event {
                Event::Claimed { due, .. } => self.to_release.extend(
                    due.into_iter()
                        .map(|Due { delivery, message }| (message.id, delivery.endpoint_id)),
                ),
                Event::Done { unproven, .. } => self.budget.finish(unproven),
                Event::Loaded { .. } | Event::Resend { .. } => {}
            }
        }
        for (id, lane) in &mut self.lanes {
            let queued = lane.queue.drain(..).filter(|job| !job.manual);
            self.to_release
                .extend(queued.map(|job| (job.message.id.clone(), id.clone())));
        }
    }

    /// Gives back, in one write, the leases of deliveries that did not fit in memory.
    fn release_overflow(&mut self) {
        if self.to_release.is_empty() {
            return;
        }
        while self.releases.try_join_next().is_some() {}
        let keys = std::mem::take(&mut self.to_release);
        let (store, owner) = (Arc::clone(&self.store), self.config.node_id.clone());
        self.releases.spawn(async move {
            if let Err(error) = store.release_leases(&owner, &keys).await {
                tracing::warn!(%error, count = keys.len(), "releasing leases failed; they will expire");
            }
        });
    }
}
