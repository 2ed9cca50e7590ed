//! The engine's event loop (steps 3, 5 and 7 of the crate docs): one task owns every lane and
//! reacts to a closed set of events; attempts run as tasks of their own and report back.
//!
//! Shutdown protocol:
//! 1. The cancellation token stops the scheduler and the loop's intake.
//! 2. Queued deliveries are not started; their leases are released in one write.
//! 3. Attempts in flight may finish until `shutdown_grace`; their results are recorded.
//! 4. The recorder drains and stops. What is still unrecorded keeps its lease, which expires
//!    (or, with SQLite, is released at the next start).

mod lane;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures_util::FutureExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use webhookd_core::model::{Attempt, Endpoint, Message};
use webhookd_core::outcome::Outcome;
use webhookd_core::{EndpointId, MessageId};
use webhookd_store::{Due, EndpointHealth, Store};

use self::lane::Lane;
use crate::EngineConfig;
use crate::attempt::{self, Job};
use crate::handle::{Command, Dispatcher};
use crate::http::HttpClient;
use crate::recorder::Recorder;
use crate::scheduler::{self, Shared};

/// Lanes kept for idle endpoints before the idle ones are dropped.
const MAX_IDLE_LANES: usize = 10_000;

/// Everything that makes the loop act, besides commands from the API.
#[derive(Debug)]
pub(crate) enum Event {
    /// Due deliveries claimed by the scheduler (already counted in `held`).
    Claimed(Vec<Due>),
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
    let config = Arc::new(config);
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let shared = Arc::new(Shared::default());
    let dispatcher = Dispatcher::new(commands_tx, config.node_id.clone(), config.lease);
    let (recorder, recorder_task) = Recorder::start(Arc::clone(&store));
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
        in_flight: 0,
        to_release: Vec::new(),
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
    in_flight: usize,
    /// Leases to give back (deliveries that did not fit in memory).
    to_release: Vec<(MessageId, EndpointId)>,
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
    let queued: Vec<(MessageId, EndpointId)> = state
        .lanes
        .iter_mut()
        .flat_map(|(id, lane)| {
            lane.queue
                .drain(..)
                .filter(|job| !job.manual)
                .map(move |job| (job.message.id.clone(), id.clone()))
        })
        .collect();
    state.to_release.extend(queued);
    state.release_overflow();
    let deadline = Instant::now() + state.config.shutdown_grace;
    while state.in_flight > 0 {
        tokio::select! {
            Some(event) = events.recv() => {
                if let Event::Done { .. } = event {
                    state.in_flight -= 1;
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!(in_flight = state.in_flight, "attempts still in flight at the shutdown deadline");
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
            Event::Claimed(due) => {
                for Due { delivery, message } in due {
                    let job = Job {
                        message: Arc::new(message),
                        attempts_made: delivery.attempts,
                        manual: false,
                    };
                    self.enqueue(delivery.endpoint_id, job, false);
                }
            }
            Event::Loaded { endpoint, found } => self.on_loaded(endpoint, found),
            Event::Resend { message, endpoint } => self.resend(message, *endpoint),
            Event::Done {
                endpoint,
                manual,
                outcome,
                health,
            } => {
                self.in_flight -= 1;
                if !manual {
                    self.shared.held.fetch_sub(1, Ordering::Relaxed);
                }
                let Some(lane) = self.lanes.get_mut(&endpoint) else {
                    return;
                };
                lane.in_flight -= 1;
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
    /// `held`; one that does not fit gives its lease back.
    fn enqueue(&mut self, endpoint: EndpointId, job: Job, fresh: bool) {
        let config = &self.config;
        let lane = self.lanes.entry(endpoint.clone()).or_default();
        let over_window = fresh && self.shared.held.load(Ordering::Relaxed) >= config.window;
        let lane_full = lane.queue.len() >= config.endpoint_queue;
        if !job.manual && (over_window || lane_full) {
            if !fresh {
                self.shared.held.fetch_sub(1, Ordering::Relaxed);
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

    /// Starts requests while the node has room: lanes take turns, one request per turn.
    fn pump(&mut self) {
        let now = Instant::now();
        while self.in_flight < self.config.max_in_flight {
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
            self.in_flight += 1;
            self.spawn_attempt(endpoint, job);
            self.after_change(&id);
        }
    }

    fn spawn_attempt(&self, endpoint: Arc<Endpoint>, job: Job) {
        let config = Arc::clone(&self.config);
        let http = self.http.clone();
        let recorder = self.recorder.clone();
        let events = self.events.clone();
        tokio::spawn(async move {
            let attempt =
                AssertUnwindSafe(attempt::run(&config, &http, &endpoint, &job)).catch_unwind();
            let (outcome, health) = match attempt.await {
                Ok(finished) => {
                    observe(&finished.outcome, &finished.record.attempt, &job.message);
                    let health = finished.record.endpoint_health;
                    recorder.record(finished.record).await;
                    (finished.outcome, health)
                }
                Err(_) => {
                    // The delivery keeps its lease and is retried after it expires.
                    tracing::error!(endpoint = %endpoint.id, msg = %job.message.id, "an attempt panicked");
                    (
                        Outcome::Failed {
                            disable_endpoint: false,
                        },
                        None,
                    )
                }
            };
            let _ = events.send(Event::Done {
                endpoint: endpoint.id.clone(),
                manual: job.manual,
                outcome,
                health,
            });
        });
    }

    /// Gives back, in one write, the leases of deliveries that did not fit in memory.
    fn release_overflow(&mut self) {
        if self.to_release.is_empty() {
            return;
        }
        let keys = std::mem::take(&mut self.to_release);
        let (store, owner) = (Arc::clone(&self.store), self.config.node_id.clone());
        tokio::spawn(async move {
            if let Err(error) = store.release_leases(&owner, &keys).await {
                tracing::warn!(%error, count = keys.len(), "releasing leases failed; they will expire");
            }
        });
    }
}

/// Metrics of one finished attempt.
fn observe(outcome: &Outcome, attempt: &Attempt, message: &Message) {
    let label = match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Retry { .. } => "retry",
        Outcome::Failed { .. } => "failed",
    };
    let status_class = match attempt.response_status_code {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    };
    metrics::counter!("webhookd_attempts_total", "outcome" => label, "status_class" => status_class)
        .increment(1);
    if webhookd_core::operational::is_operational(&message.app_id) {
        metrics::counter!("webhookd_operational_webhooks_total", "event_type" => message.event_type.clone())
            .increment(1);
    }
    if *outcome == Outcome::Delivered {
        let latency = webhookd_core::time::now() - message.created_at;
        metrics::histogram!("webhookd_delivery_latency_seconds").record(latency.as_seconds_f64());
    }
}
