//! Writes attempt results back to the store in batches (step 6 of the loop).
//!
//! Attempt tasks hand their records to one writer task through a bounded channel, so a slow
//! store slows the attempts (back-pressure) instead of growing memory. A failed write is retried
//! with backoff: until it succeeds the deliveries stay leased, and if the process dies first
//! they are sent again after recovery (at least once). A batch that schedules retries wakes
//! the scheduler, which then sleeps until the earliest of them instead of its next poll; so
//! does a batch that finishes a delivery of an ordered endpoint, whose next delivery can now
//! be claimed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webhookd_store::{AttemptRecord, DeliveryUpdate, Store, StoreError};

use crate::scheduler::Shared;

/// Records waiting to be written before attempt tasks wait.
const QUEUE: usize = 4096;
/// Records written in one store call at most.
const BATCH: usize = 512;

#[derive(Clone)]
pub(crate) struct Recorder {
    records: mpsc::Sender<AttemptRecord>,
}

impl Recorder {
    pub(crate) fn start(store: Arc<dyn Store>, shared: Arc<Shared>) -> (Self, JoinHandle<()>) {
        let (records, receiver) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(store, shared, receiver));
        (Self { records }, task)
    }

    /// Queues a record. Waits while the queue is full.
    pub(crate) async fn record(&self, record: AttemptRecord) {
        if self.records.send(record).await.is_err() {
            tracing::error!("the attempt recorder has stopped; an attempt result is lost");
        }
    }
}

async fn run(
    store: Arc<dyn Store>,
    shared: Arc<Shared>,
    mut receiver: mpsc::Receiver<AttemptRecord>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        write(store.as_ref(), &shared, &batch).await;
        let wakes = batch.iter().any(|record| match record.delivery {
            DeliveryUpdate::RetryAt(_) => true,
            DeliveryUpdate::Delivered | DeliveryUpdate::Failed => record.ordered,
            DeliveryUpdate::Manual { .. } => false,
        });
        if wakes {
            shared.wake.notify_one();
        }
        metrics::counter!("webhookd_attempts_recorded_total").increment(batch.len() as u64);
        batch.clear();
    }
}

/// Writes a batch, retrying while the store is unavailable. A batch the store refuses for
/// another reason is written record by record, so that one bad record cannot hold the rest;
/// a record refused alone is logged and its lease given back, so its delivery is tried again.
async fn write(store: &dyn Store, shared: &Shared, batch: &[AttemptRecord]) {
    let mut backoff = Duration::from_millis(50);
    loop {
        match store.record_attempts(batch).await {
            Ok(()) => {
                // The write ended these leases (a manual attempt holds none).
                shared.held.let_go(
                    batch
                        .iter()
                        .filter(|record| !matches!(record.delivery, DeliveryUpdate::Manual { .. }))
                        .map(|record| (&record.attempt.msg_id, &record.attempt.endpoint_id)),
                );
                return;
            }
            Err(StoreError::Unavailable(reason)) => {
                tracing::warn!(%reason, records = batch.len(), "recording attempts failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
            Err(error) if batch.len() > 1 => {
                tracing::warn!(%error, "a batch of attempts was refused; writing them one by one");
                for record in batch {
                    Box::pin(write(store, shared, std::slice::from_ref(record))).await;
                }
                return;
            }
            Err(error) => {
                let attempt = &batch[0].attempt;
                tracing::error!(%error, msg = %attempt.msg_id, endpoint = %attempt.endpoint_id, "an attempt could not be recorded");
                shared.release([(attempt.msg_id.clone(), attempt.endpoint_id.clone())]);
                return;
            }
        }
    }
}
