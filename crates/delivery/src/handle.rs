//! The engine's handle: how the API hands work to the delivery engine of this node.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use webhookd_core::EndpointId;
use webhookd_core::model::{Endpoint, Message};
use webhookd_core::time::now;
use webhookd_store::Lease;

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

#[derive(Debug)]
struct Shared {
    commands: mpsc::UnboundedSender<Command>,
    node: String,
    lease: Duration,
}

impl Dispatcher {
    pub(crate) fn new(
        commands: mpsc::UnboundedSender<Command>,
        node: String,
        lease: Duration,
    ) -> Self {
        Self {
            inner: Some(Arc::new(Shared {
                commands,
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
        if !endpoints.is_empty() && !held {
            self.send(Command::Fresh {
                message: Arc::new(message),
                endpoints,
            });
        }
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
