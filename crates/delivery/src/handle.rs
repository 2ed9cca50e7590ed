//! The engine's handle: how the API hands work to the delivery engine of this node.
//!
//! **Bounded intake.** Fresh deliveries handed over and not yet taken in by the engine's loop
//! are counted, up to [`INTAKE`]. A submission beyond that is not queued in memory: its
//! deliveries are already committed, so the handle gives their leases back to the store (the
//! scheduler writes the release, and retries it while the store fails), where the scheduler
//! claims them like any due work; their endpoints are noted, and the loop marks them spilled
//! before its next step, so later fresh deliveries of theirs wait behind them (order under
//! overload stays close to arrival order). Nothing is lost and a flood of submissions
//! that the loop cannot keep up with holds at most `INTAKE` deliveries (plus one submission)
//! in the channel. The other commands are one per API request and carry no delivery.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use webhookd_core::EndpointId;
use webhookd_core::model::{Endpoint, Message};
use webhookd_core::time::now;
use webhookd_store::Lease;

use crate::scheduler;

/// Fresh deliveries waiting for the engine's loop at most; beyond, they wait in the store.
pub(crate) const INTAKE: usize = 8192;

/// Work the API hands to the engine.
#[derive(Debug)]
pub(crate) enum Command {
    /// A committed message's fresh deliveries, leased to this node at insert.
    Fresh {
        message: Arc<Message>,
        endpoints: Vec<EndpointId>,
    },
    /// One manual attempt, not retried.
    Resend {
        message: Arc<Message>,
        endpoint: Box<Endpoint>,
    },
    /// An endpoint was changed or deleted: forget what is cached of it.
    EndpointChanged(EndpointId),
    /// Due work may be waiting in the store (e.g. after `recover`): look now.
    Wake,
}

/// A cheap, cloneable handle to this node's engine; on a node that does not deliver
/// (`WEBHOOKD_ROLE=api`) every call is a no-op and the store alone carries the work.
#[derive(Debug, Clone)]
pub struct Dispatcher {
    inner: Option<Arc<Shared>>,
}

struct Shared {
    commands: mpsc::UnboundedSender<Command>,
    intake: Arc<Intake>,
    engine: Arc<scheduler::Shared>,
    node: String,
    lease: Duration,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("intake", &self.intake)
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

/// Fresh deliveries handed to the loop and not yet taken in, and the endpoints whose fresh
/// deliveries were given back to the store instead (the loop marks them as spilled).
#[derive(Debug)]
pub(crate) struct Intake {
    max: usize,
    waiting: AtomicUsize,
    /// Set while `spilled` holds endpoints, so the loop looks at the set only then.
    has_spilled: AtomicBool,
    spilled: Mutex<HashSet<EndpointId>>,
}

impl Intake {
    pub(crate) fn new(max: usize) -> Self {
        Self {
            max,
            waiting: AtomicUsize::new(0),
            has_spilled: AtomicBool::new(false),
            spilled: Mutex::new(HashSet::new()),
        }
    }

    fn spilled(&self) -> std::sync::MutexGuard<'_, HashSet<EndpointId>> {
        // A set changed under the lock without panicking code in between.
        self.spilled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Notes endpoints whose fresh deliveries went to the store at intake.
    fn spill(&self, endpoints: &[EndpointId]) {
        self.spilled().extend(endpoints.iter().cloned());
        self.has_spilled.store(true, Ordering::Release);
    }

    /// The endpoints noted since the last call, if any.
    pub(crate) fn take_spilled(&self) -> Option<Vec<EndpointId>> {
        if !self.has_spilled.swap(false, Ordering::Acquire) {
            return None;
        }
        let spilled: Vec<EndpointId> = self.spilled().drain().collect();
        (!spilled.is_empty()).then_some(spilled)
    }

    /// Counts a submission of `count` deliveries in, unless `max` are already waiting.
    fn enter(&self, count: usize) -> bool {
        self.waiting
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |waiting| {
                (waiting < self.max).then_some(waiting + count)
            })
            .is_ok()
    }

    /// The loop took in a submission of `count` deliveries.
    pub(crate) fn taken(&self, count: usize) {
        self.waiting.fetch_sub(count, Ordering::Relaxed);
    }

    #[cfg(test)]
    pub(crate) fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }
}

impl Dispatcher {
    /// A handle whose overflow releases go to `engine`'s scheduler.
    pub(crate) fn new(
        commands: mpsc::UnboundedSender<Command>,
        intake: Arc<Intake>,
        engine: Arc<scheduler::Shared>,
        node: String,
        lease: Duration,
    ) -> Self {
        Self {
            inner: Some(Arc::new(Shared {
                commands,
                intake,
                engine,
                node,
                lease,
            })),
        }
    }

    /// The handle of a node that does not deliver.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Whether this node delivers.
    pub fn delivers(&self) -> bool {
        self.inner.is_some()
    }

    /// The lease under which fresh deliveries are created, when this node sends them itself.
    pub fn lease(&self) -> Option<Lease> {
        let shared = self.inner.as_ref()?;
        Some(Lease {
            owner: shared.node.clone(),
            until: now() + shared.lease,
        })
    }

    fn send(&self, command: Command) {
        if let Some(shared) = &self.inner {
            // The engine stops only at shutdown; leased work is then reclaimed from the store.
            let _ = shared.commands.send(command);
        }
    }

    /// Hands a committed message's deliveries (created under [`Self::lease`]) to the engine.
    /// A message held by `deliverAt` is not handed over: its deliveries were stored unleased and
    /// the scheduler claims them when they fall due.
    pub fn submit(&self, message: Message, endpoints: Vec<EndpointId>) {
        let held = message.deliver_at.is_some_and(|at| at > message.created_at);
        let Some(shared) = &self.inner else {
            return;
        };
        if endpoints.is_empty() || held {
            return;
        }
        if shared.intake.enter(endpoints.len()) {
            shared
                .engine
                .held
                .take(endpoints.iter().map(|endpoint| (&message.id, endpoint)));
            self.send(Command::Fresh {
                message: Arc::new(message),
                endpoints,
            });
            return;
        }
        // The loop is behind: the deliveries wait in the store, due, for the scheduler, and the
        // loop sends later fresh ones of these endpoints behind them.
        shared.intake.spill(&endpoints);
        shared.engine.release(
            endpoints
                .into_iter()
                .map(|endpoint| (message.id.clone(), endpoint)),
        );
    }

    /// Makes one manual attempt of `message` to `endpoint`. False when this node does not
    /// deliver.
    pub fn resend(&self, message: Message, endpoint: Endpoint) -> bool {
        self.send(Command::Resend {
            message: Arc::new(message),
            endpoint: Box::new(endpoint),
        });
        self.delivers()
    }

    pub fn endpoint_changed(&self, endpoint: &EndpointId) {
        self.send(Command::EndpointChanged(endpoint.clone()));
    }

    pub fn wake(&self) {
        self.send(Command::Wake);
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use webhookd_core::model::Application;

    use webhookd_core::{AppId, MessageId};
    use webhookd_store::Store;
    use webhookd_store::sqlite::SqliteStore;

    use super::*;

    const BOUND: usize = 4;
    const FLOOD: usize = 10;

    fn endpoint(app: &AppId) -> Endpoint {
        let at = now();
        Endpoint::new(app.clone(), "http://127.0.0.1:9/", at)
    }

    /// A loop that takes nothing in: a flood of submissions fills the intake to its bound, and
    /// what does not fit is released to the store, where another claim finds it.
    #[tokio::test]
    async fn a_flood_beyond_the_intake_waits_in_the_store_claimable() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("db")).unwrap());
        let at = now();
        let app = Application {
            id: AppId::new(),
            uid: None,
            name: "intake".into(),
            metadata: Default::default(),
            throttle_rate: None,
            created_at: at,
            updated_at: at,
        };
        store.create_application(&app, None).await.unwrap();
        store
            .create_endpoint(&endpoint(&app.id), None)
            .await
            .unwrap();
        let (commands, mut receiver) = mpsc::unbounded_channel();
        let intake = Arc::new(Intake::new(BOUND));
        let engine = Arc::new(scheduler::Shared::new(&crate::EngineConfig::new(
            "node-intake".into(),
        )));
        let dispatcher = Dispatcher::new(
            commands,
            Arc::clone(&intake),
            Arc::clone(&engine),
            "node-intake".into(),
            Duration::from_secs(60),
        );
        for n in 0..FLOOD {
            let message = Message {
                id: MessageId::new(),
                app_id: app.id.clone(),
                event_type: "load.test".into(),
                event_id: None,
                payload: Bytes::from(format!(r#"{{"n":{n}}}"#)),
                channels: Vec::new(),
                tags: Vec::new(),
                created_at: now(),
                deliver_at: None,
                retain_payload_until: None,
            };
            let lease = dispatcher.lease().unwrap();
            let fanned = store
                .create_message(&message, Some(&lease), None)
                .await
                .unwrap();
            assert_eq!(fanned.len(), 1);
            dispatcher.submit(message, fanned);
        }
        assert_eq!(
            receiver.len(),
            BOUND,
            "the intake holds its bound and no more"
        );
        // The loop learns, once, that the endpoint spilled.
        assert_eq!(intake.take_spilled().map(|spilled| spilled.len()), Some(1));
        assert_eq!(intake.take_spilled(), None, "taken once");
        assert_eq!(intake.waiting(), BOUND);

        // The scheduler writes the releases; then another node finds the overflow due at once,
        // and what was handed over stays leased.
        assert_eq!(engine.releases.waiting(), FLOOD - BOUND);
        engine.releases.write(store.as_ref()).await;
        assert_eq!(engine.releases.waiting(), 0);
        let other = Lease {
            owner: "node-other".into(),
            until: now() + Duration::from_secs(60),
        };
        let mut claimed = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while claimed < FLOOD - BOUND {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{claimed} claimable"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            claimed += store
                .claim_due(&other, now(), 100, &[])
                .await
                .unwrap()
                .len();
        }
        assert_eq!(claimed, FLOOD - BOUND);

        // Once the loop takes submissions in, the intake has room again.
        while let Ok(Command::Fresh { endpoints, .. }) = receiver.try_recv() {
            intake.taken(endpoints.len());
        }
        assert_eq!(intake.waiting(), 0);
        assert!(dispatcher.lease().is_some());
    }
}
