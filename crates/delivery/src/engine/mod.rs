//! The engine's driver (steps 3, 5 and 7 of the crate docs): one task feeds the [`Machine`]
//! with a closed set of events and performs the effects it returns: it spawns the attempts,
//! and the endpoint reads, hands lease releases to the scheduler, and wakes it. Attempts run as tasks
//! of their own and report back as events. Every rule (window, queue bounds, turns, overflow,
//! the unproven share) is the machine's; this file only does the I/O.
//!
//! Shutdown protocol:
//! 1. The cancellation token stops the scheduler and the loop's intake.
//! 2. Queued deliveries are not started; their leases are released, with every release still
//!    waiting (overflow, and failed writes kept for a retry), and shutdown awaits those writes,
//!    so that other nodes can take that work at once rather than when the leases expire.
//! 3. Attempts in flight may finish until `shutdown_grace`; their results are recorded.
//! 4. The recorder drains and stops. What is still unrecorded keeps its lease, which expires
//!    (or, with SQLite, is released at the next start).

mod admission;
mod lane;
mod machine;
mod spawn;
mod window;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use webhookd_core::EndpointId;
use webhookd_store::Store;

pub(crate) use self::machine::Event;
use self::machine::{Effect, Limits, Machine};
pub(crate) use self::window::Window;
use crate::EngineConfig;
use crate::handle::{Command, Dispatcher, INTAKE, Intake};
use crate::http::HttpClient;
use crate::recorder::Recorder;
use crate::scheduler::{self, Shared};

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
    let limits = Limits {
        endpoint_concurrency: config.endpoint_concurrency,
        endpoint_queue: config.endpoint_queue,
        max_in_flight: config.max_in_flight,
    };
    let config = Arc::new(config);
    let (commands_tx, commands) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let shared = Arc::new(Shared::new(&config));
    let intake = Arc::new(Intake::new(INTAKE));
    let dispatcher = Dispatcher::new(
        commands_tx,
        Arc::clone(&intake),
        Arc::clone(&shared),
        config.node_id.clone(),
        config.lease,
    );
    let (recorder, recorder_task) = Recorder::start(Arc::clone(&store), Arc::clone(&shared));
    let scheduler = tokio::spawn(scheduler::run(
        Arc::clone(&store),
        Arc::clone(&config),
        Arc::clone(&shared),
        events_tx.clone(),
        shutdown.clone(),
    ));
    let machine = Machine::new(limits, Arc::clone(&shared.window));
    let driver = Driver {
        config,
        store,
        http,
        recorder,
        shared,
        intake,
        events: events_tx,
    };
    let task = tokio::spawn(run(
        machine,
        driver,
        commands,
        events,
        shutdown.clone(),
        scheduler,
        recorder_task,
    ));
    (dispatcher, Engine { shutdown, task })
}

/// What performs the machine's effects.
struct Driver {
    config: Arc<EngineConfig>,
    store: Arc<dyn Store>,
    http: HttpClient,
    recorder: Recorder,
    shared: Arc<Shared>,
    intake: Arc<Intake>,
    events: mpsc::UnboundedSender<Event>,
}

/// The machine's clock: tokio's, so that tests with paused time pause the machine too.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn run(
    mut machine: Machine,
    mut driver: Driver,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut events: mpsc::UnboundedReceiver<Event>,
    shutdown: CancellationToken,
    scheduler: JoinHandle<()>,
    recorder_task: JoinHandle<()>,
) {
    loop {
        let next_timer = machine.next_timer().map(Instant::from_std);
        let event = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(event) = events.recv() => event,
            Some(command) = commands.recv() => match driver.take_in(command) {
                Some(event) => event,
                None => continue,
            },
            () = sleep_until(next_timer), if next_timer.is_some() => Event::Timer,
        };
        if let Some(spilled) = driver.intake.take_spilled() {
            machine.handle(now(), Event::Spilled(spilled));
        }
        machine.handle(now(), event);
        while let Some(effect) = machine.poll_effect() {
            driver.perform(effect);
        }
    }
    // Shutdown, step 2: everything queued, and everything handed over and not yet taken in,
    // is released with what waits to be; the scheduler has stopped, so no claim runs beside.
    let _ = scheduler.await;
    machine.handle(now(), Event::Shutdown);
    while let Ok(command) = commands.try_recv() {
        if let Some(event) = driver.take_in(command) {
            machine.handle(now(), event);
        }
    }
    while let Ok(event) = events.try_recv() {
        machine.handle(now(), event);
    }
    while let Some(effect) = machine.poll_effect() {
        match effect {
            Effect::Release(keys) => driver.shared.releases.give_back(keys),
            effect => driver.perform(effect),
        }
    }
    driver.shared.releases.flush(driver.store.as_ref()).await;
    // Step 3.
    let deadline = Instant::now() + driver.config.shutdown_grace;
    while machine.in_flight() > 0 {
        tokio::select! {
            Some(event) = events.recv() => machine.handle(now(), event),
            () = tokio::time::sleep_until(deadline) => {
                tracing::warn!(in_flight = machine.in_flight(), "attempts still in flight at the shutdown deadline");
                break;
            }
        }
    }
    // Step 4, and the release of what the recorder gave back meanwhile (records refused).
    let (store, shared) = (Arc::clone(&driver.store), Arc::clone(&driver.shared));
    drop(driver);
    let _ = recorder_task.await;
    shared.releases.flush(store.as_ref()).await;
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Driver {
    /// A command from the API as the machine's event; `None` for what the driver does itself.
    fn take_in(&self, command: Command) -> Option<Event> {
        match command {
            Command::Fresh { message, endpoints } => {
                self.intake.taken(endpoints.len());
                Some(Event::Submitted { message, endpoints })
            }
            Command::Resend { message, endpoint } => Some(Event::Resend { message, endpoint }),
            Command::EndpointChanged(id) => Some(Event::EndpointChanged(id)),
            Command::Wake => {
                self.shared.wake.notify_one();
                None
            }
        }
    }

    fn perform(&mut self, effect: Effect) {
        match effect {
            Effect::Start {
                endpoint,
                job,
                unproven,
            } => self.spawn_attempt(endpoint, job, unproven),
            Effect::Load(id) => self.load(id),
            Effect::Release(keys) => self.shared.release(keys),
            Effect::LetGo(keys) => self
                .shared
                .held
                .let_go(keys.iter().map(|(msg, endpoint)| (msg, endpoint))),
            Effect::WakeScheduler => self.shared.wake.notify_one(),
        }
    }

    /// Reads an endpoint's configuration in the background, retrying while the store fails.
    fn load(&self, id: EndpointId) {
        let (store, events) = (Arc::clone(&self.store), self.events.clone());
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
}
