//! The delivery engine: it takes committed deliveries, sends each one as a signed HTTP POST,
//! records the attempt and schedules what comes next.
//!
//! # The loop
//!
//! 1. **Ingest commits a batch.** The API stores a message and its fan-out in one group
//!    commit; the deliveries are created leased to this node.
//! 2. **Hand-off in memory.** The API passes the committed message to the engine through the
//!    [`Dispatcher`] handle: no database round-trip between ingest and the first attempt.
//! 3. **Per-endpoint queues.** The engine queues each delivery on its endpoint. Endpoints take
//!    turns; each has at most `endpoint_concurrency` requests in flight and its `throttleRate`
//!    as a token bucket; the whole node has at most `max_in_flight`. A slow endpoint fills only
//!    its own slots. These rules are one state machine (`engine/machine.rs`): events in
//!    (submitted, claimed, endpoint loaded, attempt done, resend, timer, shutdown), effects out
//!    (start an attempt, load an endpoint, release leases, let go of a canceled queue's leases,
//!    wake the scheduler) as plain data.
//!    The loop (`engine/mod.rs`) feeds it and performs the effects; only the loop spawns.
//! 4. **Sign and POST.** Each attempt is signed afresh with its own timestamp and sent through
//!    the one outbound client ([`http`]), which applies the SSRF guard.
//! 5. **Outcome.** The result is classified by the table in `webhookd_core::outcome`:
//!    delivered, retry after a delay from the schedule, or failed for good.
//! 6. **Record, batched.** Attempt rows and delivery updates are written in batches; the write
//!    also releases the delivery's lease.
//! 7. **Schedule or finish.** A retry is a `next_attempt_at` in the store. The scheduler claims
//!    due deliveries (retries, expired leases of dead nodes, `deliverAt` holds, backlog that did
//!    not fit in memory) and feeds them back to step 3.
//!
//! # Leases
//!
//! Every delivery this node works on carries a lease (owner = node id, until = now + lease).
//! The engine keeps the list of the deliveries it holds (`held.rs`: taken when handed over
//! or claimed, let go when the attempt's record commits, the lease is given back, or the
//! delivery is canceled), and the scheduler renews exactly those every quarter of the lease,
//! so a slow request or a long queue never loses its claim while the node lives. A lease the
//! engine does not hold (granted by a store write cut off by its deadline that committed
//! anyway) is not renewed: it expires and the work is claimed again. A dead node's leases
//! expire and another node (or this one after a restart) claims the work. A delivery can
//! therefore be sent twice only after a crash, always with the same `webhook-id`.
//!
//! A lease given back (overflow, intake beyond its bound, a refused record, shutdown) is
//! written to the store so that the delivery is due at once rather than when the lease
//! expires. Releases are queued in one place (`releases.rs`) and written by the scheduler
//! between its claims; a failed write is kept and retried with backoff.
//!
//! # Memory
//!
//! At most `window` deliveries are held in memory (`engine/window.rs` is the one place that
//! counts them: a place is taken when a fresh delivery is queued or before a claim, and given
//! back when the delivery leaves memory: finished, released, dropped, or at shutdown). Fresh
//! deliveries beyond the window, or beyond an endpoint's queue bound, have their lease released
//! and wait in the store; the scheduler claims no more than fits and skips full endpoints.
//! Once an endpoint has spilled, its later fresh deliveries wait in the store behind the earlier
//! ones and come back oldest first, so under overload delivery order stays close to arrival
//! order. Fresh submissions waiting for the loop are bounded too: beyond the bound the handle
//! releases their leases instead of queueing them, and their endpoints count as spilled (see
//! [`Dispatcher`]).

mod attempt;
mod engine;
mod handle;
mod held;
pub mod http;
mod recorder;
mod releases;
mod scheduler;

use std::sync::Arc;
use std::time::Duration;

use webhookd_core::retry::RetrySchedule;
use webhookd_store::Store;

pub use engine::Engine;
pub use handle::Dispatcher;

/// The engine's settings, resolved from configuration.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// This node's identity in leases. Unique per process.
    pub node_id: String,
    pub lease: Duration,
    pub retry_schedule: RetrySchedule,
    pub retry_client_errors: bool,
    pub endpoint_concurrency: usize,
    pub max_in_flight: usize,
    pub disable_after: Duration,
    pub svix_headers: bool,
    /// Deliveries held in memory at most.
    pub window: usize,
    /// Deliveries queued on one endpoint at most.
    pub endpoint_queue: usize,
    /// How often the store is checked for due work when nothing wakes the scheduler.
    pub poll_interval: Duration,
    /// Payloads and attempts older than this are deleted.
    pub retention: Duration,
    /// How long shutdown waits for attempts in flight.
    pub shutdown_grace: Duration,
}

impl EngineConfig {
    /// Defaults matching the documented configuration, for a given node id.
    pub fn new(node_id: String) -> Self {
        Self {
            node_id,
            lease: Duration::from_secs(60),
            retry_schedule: RetrySchedule::default(),
            retry_client_errors: false,
            endpoint_concurrency: 8,
            max_in_flight: 1024,
            disable_after: Duration::from_secs(5 * 86400),
            svix_headers: false,
            window: 50_000,
            endpoint_queue: 10_000,
            poll_interval: Duration::from_secs(1),
            retention: Duration::from_secs(90 * 86400),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

/// Starts the engine on the current runtime: returns the handle for the API and the engine
/// itself, whose [`Engine::shutdown`] ends it.
pub fn start(
    store: Arc<dyn Store>,
    config: EngineConfig,
    http: http::HttpClient,
) -> (Dispatcher, Engine) {
    engine::start(store, config, http)
}
