//! Writes attempt results back to the store in batches (step 6 of the loop).
//!
//! Attempt tasks hand their records to one writer task through a bounded channel, so a slow
//! store slows the attempts (back-pressure) instead of growing memory. A failed write is retried
//! with backoff: until it succeeds the deliveries stay leased, and if the process dies first
//! they are sent again after recovery (at least once).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use webhookd_store::{AttemptRecord, Store};

/// Records waiting to be written before attempt tasks wait.
const QUEUE: usize = 4096;
/// Records written in one store call at most.
const BATCH: usize = 512;

#[derive(Clone)]
pub(crate) struct Recorder {
    records: mpsc::Sender<AttemptRecord>,
}

impl Recorder {
    pub(crate) fn start(store: Arc<dyn Store>) -> (Self, JoinHandle<()>) {
        let (records, receiver) = mpsc::channel(QUEUE);
        let task = tokio::spawn(run(store, receiver));
        (Self { records }, task)
    }

    /// Queues a record. Waits while the queue is full.
    pub(crate) async fn record(&self, record: AttemptRecord) {
        if self.records.send(record).await.is_err() {
            tracing::error!("the attempt recorder has stopped; an attempt result is lost");
        }
    }
}

async fn run(store: Arc<dyn Store>, mut receiver: mpsc::Receiver<AttemptRecord>) {
    let mut batch = Vec::with_capacity(BATCH);
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let mut backoff = Duration::from_millis(50);
        loop {
            match store.record_attempts(&batch).await {
                Ok(()) => break,
                Err(error) => {
                    tracing::warn!(%error, records = batch.len(), "recording attempts failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        metrics::counter!("webhookd_attempts_recorded_total").increment(batch.len() as u64);
        batch.clear();
    }
}
