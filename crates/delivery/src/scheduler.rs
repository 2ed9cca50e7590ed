//! The scheduler (step 7 of the loop): claims due deliveries from the store and hands them to
//! the engine, renews this node's leases, and runs retention (payloads, idempotency keys, the
//! delivery rollup).
//!
//! It never claims more than fits in the engine's memory window (it reserves the room before
//! the claim), and skips endpoints whose queues are full, so a huge backlog stays in the store.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use webhookd_core::time::now;
use webhookd_core::{EndpointId, MessageId};
use webhookd_store::{IDEMPOTENCY_WINDOW, Lease, ROLLUP_RETENTION, RetentionPurge, Store};

use crate::EngineConfig;
use crate::engine::{Event, Window};
use crate::held::Held;
use crate::releases::Releases;

/// Queued resends taken per poll at most.
const RESEND_BATCH: usize = 100;
/// Claims per store call at most.
const CLAIM_BATCH: usize = 1000;
/// Leases renewed per store call at most.
const RENEW_BATCH: usize = 1000;
/// How often retention, idempotency and rollup pruning run.
const MAINTENANCE_EVERY: Duration = Duration::from_secs(600);
/// The pause between two batches of retention.
const RETENTION_PAUSE: Duration = Duration::from_millis(20);
/// How often the in-memory gauge is refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(10);

/// What the engine and the scheduler share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Deliveries held in memory and the endpoints whose queue is full.
    pub(crate) window: Arc<Window>,
    /// Wakes the scheduler (a `recover`, a retry just recorded, an endpoint no longer full,
    /// leases to give back).
    pub(crate) wake: Notify,
    /// Leases waiting to be given back; the scheduler writes them.
    pub(crate) releases: Releases,
    /// The leases this node works under: the scheduler renews these and no others.
    pub(crate) held: Held,
}

impl Shared {
    pub(crate) fn new(config: &EngineConfig) -> Self {
        Self {
            window: Arc::new(Window::new(config.window)),
            wake: Notify::new(),
            releases: Releases::new(config.node_id.clone(), config.lease / 4),
            held: Held::default(),
        }
    }

    /// Gives leases back to the store, soon: the scheduler writes them, and retries them
    /// while the store fails. They are no longer held, so no longer renewed.
    pub(crate) fn release(&self, keys: impl IntoIterator<Item = (MessageId, EndpointId)>) {
        let keys: Vec<(MessageId, EndpointId)> = keys.into_iter().collect();
        self.held
            .let_go(keys.iter().map(|(msg, endpoint)| (msg, endpoint)));
        self.releases.give_back(keys);
        self.wake.notify_one();
    }
}

pub(crate) async fn run(
    store: Arc<dyn Store>,
    config: Arc<EngineConfig>,
    shared: Arc<Shared>,
    events: mpsc::UnboundedSender<Event>,
    shutdown: CancellationToken,
) {
    let lease = |config: &EngineConfig| Lease {
        owner: config.node_id.clone(),
        until: now() + config.lease,
    };
    let renew_every = config.lease / 4;
    let mut next_renewal = Instant::now() + renew_every;
    let mut next_gauges = Instant::now();
    // Retention runs beside the claims, so that a long purge never delays them.
    tokio::spawn(maintenance(
        Arc::clone(&store),
        Arc::clone(&config),
        shutdown.clone(),
    ));
    // Other nodes' signals of due work (PostgreSQL's LISTEN/NOTIFY), when the store has them.
    let due_elsewhere = store.due_notifications();
    loop {
        // Releases first, so that what overflow gave back can be claimed in this round.
        shared.releases.write(store.as_ref()).await;
        let mut more_waiting = false;
        let window = &shared.window;
        let capacity = window.room();
        // The claim's room is taken before the claim, and what it did not fill given back.
        let limit = window.reserve(CLAIM_BATCH);
        if limit > 0 {
            let full = window.full_endpoints();
            match store.claim_due(&lease(&config), now(), limit, &full).await {
                Ok(due) => {
                    shared.releases.claimed(&due);
                    shared.held.take(
                        due.iter()
                            .map(|due| (&due.message.id, &due.delivery.endpoint_id)),
                    );
                    window.give_back(limit - due.len());
                    more_waiting = due.len() == limit;
                    // Fewer than asked: nothing else due waits in the store, but for the
                    // endpoints skipped as full.
                    let drained = !more_waiting;
                    let claimed = due.len();
                    if events.send(Event::Claimed { due, drained }).is_err() {
                        window.give_back(claimed);
                        return;
                    }
                }
                Err(error) => {
                    window.give_back(limit);
                    tracing::warn!(%error, "claiming due deliveries failed");
                }
            }
        }
        // Only another node (one that does not deliver) queues resends, so a store shared by
        // no other node (SQLite) has none to take: no write per poll there.
        if due_elsewhere.is_some() {
            take_resends(store.as_ref(), &events).await;
        }
        if Instant::now() >= next_renewal {
            renew(store.as_ref(), &lease(&config), &shared.held).await;
            next_renewal = Instant::now() + renew_every;
        }
        if Instant::now() >= next_gauges {
            gauges(&shared);
            next_gauges = Instant::now() + GAUGES_EVERY;
        }
        let mut pause = if more_waiting && capacity > CLAIM_BATCH {
            Duration::ZERO
        } else {
            next_pause(store.as_ref(), &config).await
        };
        if let Some(at) = shared.releases.due_at() {
            pause = pause.min(at.saturating_duration_since(Instant::now()));
        }
        // A poll interval longer than a quarter lease must not delay a renewal.
        pause = pause.min(next_renewal.saturating_duration_since(Instant::now()));
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = shared.wake.notified() => {}
            () = async {
                match &due_elsewhere {
                    Some(due) => due.notified().await,
                    None => std::future::pending().await,
                }
            } => {}
            () = tokio::time::sleep(pause) => {}
        }
    }
}

/// Renews the leases this node holds, in batches; a failed batch is tried again at the next
/// renewal (a quarter of the lease later), well before those leases end.
async fn renew(store: &dyn Store, lease: &Lease, held: &Held) {
    let keys = held.keys();
    let mut renewed = 0;
    for batch in keys.chunks(RENEW_BATCH) {
        match store.renew_leases(lease, batch).await {
            Ok(count) => renewed += count,
            Err(error) => tracing::warn!(%error, count = batch.len(), "renewing leases failed"),
        }
    }
    tracing::debug!(held = keys.len(), renewed, "leases renewed");
}

/// Hands the engine the manual attempts that nodes which do not deliver have queued.
async fn take_resends(store: &dyn Store, events: &mpsc::UnboundedSender<Event>) {
    let requests = match store.take_resends(RESEND_BATCH).await {
        Ok(requests) => requests,
        Err(error) => {
            tracing::warn!(%error, "taking queued resends failed");
            return;
        }
    };
    for (app, msg, endpoint) in requests {
        let message = store.get_message(&app, &msg.clone().into()).await;
        let found = store.get_endpoints(std::slice::from_ref(&endpoint)).await;
        match (message, found) {
            (Ok(Some(message)), Ok(mut found)) if !found.is_empty() => {
                let endpoint = Box::new(found.remove(0));
                let _ = events.send(Event::Resend {
                    message: std::sync::Arc::new(message),
                    endpoint,
                });
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!(%error, %msg, %endpoint, "a queued resend could not be read; it is dropped");
            }
            _ => {
                tracing::info!(%msg, %endpoint, "a queued resend names a deleted message or endpoint")
            }
        }
    }
}

/// Sleeps until the next due time still to come, at most one poll interval. Work already due
/// but not claimed (its endpoint's queue is full, or memory is) waits for the next poll or a
/// wake-up, so a backlog does not turn into a busy loop, and does not hide the next time to
/// come: a retry due in 300 ms is claimed in 300 ms however much work is waiting. A retry
/// recorded while the scheduler sleeps wakes it (see the recorder), so it is seen too.
async fn next_pause(store: &dyn Store, config: &EngineConfig) -> Duration {
    match store.next_due_at(now()).await {
        Ok(Some(at)) => match Duration::try_from(at - now()) {
            Ok(until) if !until.is_zero() => {
                until.clamp(Duration::from_millis(5), config.poll_interval)
            }
            _ => config.poll_interval,
        },
        _ => config.poll_interval,
    }
}

/// This node's share of the queue for `/metrics` (the store's queue depth is global and is
/// read by the binary, on every node).
fn gauges(shared: &Shared) {
    metrics::gauge!("webhookd_deliveries_in_memory").set(shared.window.held() as f64);
}

/// Retention and idempotency pruning, 30 s after start and then every `MAINTENANCE_EVERY`,
/// until shutdown.
async fn maintenance(
    store: Arc<dyn Store>,
    config: Arc<EngineConfig>,
    shutdown: CancellationToken,
) {
    let mut next = Instant::now() + Duration::from_secs(30);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(next) => {}
        }
        maintain(store.as_ref(), &config, &shutdown).await;
        next = Instant::now() + MAINTENANCE_EVERY;
    }
}

async fn maintain(store: &dyn Store, config: &EngineConfig, shutdown: &CancellationToken) {
    let at = now();
    let cutoff = at - config.retention;
    let mut purged = RetentionPurge::default();
    loop {
        match store.apply_retention(cutoff, at).await {
            Ok(batch) if batch.is_empty() => break,
            Ok(batch) => {
                metrics::counter!("webhookd_retention_purged_total", "what" => "payloads")
                    .increment(batch.payloads);
                metrics::counter!("webhookd_retention_purged_total", "what" => "attempts")
                    .increment(batch.attempts);
                purged.payloads += batch.payloads;
                purged.attempts += batch.attempts;
            }
            Err(error) => {
                tracing::warn!(%error, "retention failed");
                break;
            }
        }
        // A breath between batches, so that the purge never crowds out the ingest path.
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(RETENTION_PAUSE) => {}
        }
    }
    if !purged.is_empty() {
        tracing::info!(
            payloads = purged.payloads,
            attempts = purged.attempts,
            "retention purged"
        );
    }
    if let Err(error) = store.prune_idempotency(now() - IDEMPOTENCY_WINDOW).await {
        tracing::warn!(%error, "pruning idempotency keys failed");
    }
    if let Err(error) = store.prune_access(now()).await {
        tracing::warn!(%error, "pruning expired sessions and app tokens failed");
    }
    if let Err(error) = store.prune_rollup(now() - ROLLUP_RETENTION).await {
        tracing::warn!(%error, "pruning the delivery rollup failed");
    }
}
