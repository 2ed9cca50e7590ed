//! Group commit of new messages: the messages that arrive together share one transaction.
//!
//! 1. `create_message` sends its message (with its lease and sealed idempotency record) to the
//!    node's ingest task and awaits the answer.
//! 2. The task takes the first message waiting, then every other one already waiting (up to
//!    [`MAX_BATCH`]), and writes them on one pooled connection: the read of the batch's
//!    payload filters (when one of its applications has any: see [`Filtered`]), then the
//!    batch's messages, labels, deliveries and idempotency records in one statement
//!    (`messages::insert_batch_statement`, a multi-row insert per table), which is a
//!    transaction of its own, and one `NOTIFY` after it, pipelined: one round trip for the
//!    lot. Up to [`BATCHES_IN_FLIGHT`] batches commit at once; the next one gathers meanwhile.
//! 3. Each caller is answered only after the commit that holds its message.
//!
//! Each caller keeps its own outcome. When any message of a batch fails (its `eventId` is
//! taken, its idempotency key is held by another request, on this node or another, or was
//! recorded before and has expired: the batch's records are a plain insert), the
//! statement stores nothing, and each of the batch's messages is then written alone, in its
//! own transaction, exactly as without batching: the failing ones fail, the others are stored.
//! Conflicts are rare, so the common batch costs one round trip (two with the filters' read)
//! and one commit. The database's unique constraints decide conflicts, so this holds across
//! nodes.
//!
//! A batch whose answer cannot be read fails every caller: whether it committed is unknown,
//! and retrying could store a message twice.

use std::collections::HashSet;
use std::sync::Arc;

use deadpool_postgres::Pool;
use tokio::sync::{Notify, Semaphore, mpsc, oneshot};
use webhookd_core::EndpointId;
use webhookd_core::model::{Message, selects};

use super::error::{map_error, map_pool_error};
use super::listen;
use super::messages::{self, Evaluated};
use super::rows::get;
use super::sql::{Connection, Pipeline, query};
use crate::db::Db;
use crate::fanout::FilterPass;
use crate::{IdempotentResponse, Lease, Result, StoreError};
use crate::{admin, claim_at_insert};

/// The most messages in one transaction.
pub(crate) const MAX_BATCH: usize = 512;
/// Batches committing at once (each on its own connection).
pub(crate) const BATCHES_IN_FLIGHT: usize = 4;
/// A batch that holds this many messages starts committing even while others do.
const GATHER: usize = 64;
/// Messages waiting for the ingest task before callers wait to send (back-pressure).
const QUEUE: usize = 4096;

/// One caller's message.
struct Job {
    message: Message,
    /// The lease that claims its deliveries at once, if any (see `claim_at_insert`).
    claim: Option<Lease>,
    /// Sealed already.
    idempotency: Option<IdempotentResponse>,
    answer: oneshot::Sender<Result<Vec<EndpointId>>>,
}

/// A handle to the ingest task, which ends when every handle is dropped.
#[derive(Clone)]
pub(crate) struct Ingest {
    jobs: mpsc::Sender<Job>,
}

impl Ingest {
    pub(crate) fn start(runtime: &tokio::runtime::Handle, pool: Pool, in_flight: usize) -> Self {
        let (jobs, receiver) = mpsc::channel(QUEUE);
        runtime.spawn(run(pool, receiver, in_flight.max(1)));
        Self { jobs }
    }

    /// Stores `message` in the next group commit; answers once that has committed.
    ///
    /// Cancel safety: dropping the future may still leave the message stored.
    pub(crate) async fn create_message(
        &self,
        message: &Message,
        lease: Option<&Lease>,
        idempotency: Option<IdempotentResponse>,
    ) -> Result<Vec<EndpointId>> {
        let (answer, answered) = oneshot::channel();
        let job = Job {
            message: message.clone(),
            claim: claim_at_insert(message, lease).cloned(),
            idempotency,
            answer,
        };
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the ingest task has stopped".into())
}

async fn run(pool: Pool, mut receiver: mpsc::Receiver<Job>, in_flight: usize) {
    let slots = Arc::new(Semaphore::new(in_flight));
    let filtered = Arc::new(Filtered::default());
    // Signalled as each batch commits; a permit kept while no batch gathers.
    let committed = Arc::new(Notify::new());
    loop {
        // A free slot first: while every slot commits, the next batch gathers in the queue.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = receiver.recv().await else {
            return;
        };
        let mut batch = Vec::with_capacity(16);
        batch.push(first);
        take_waiting(&mut receiver, &mut batch);
        // While other batches commit, this one gathers until one of them has committed (as
        // long as its callers would wait for a single stream of commits) or it holds
        // `GATHER` messages; on an idle node it starts at once. Without this, each message
        // arriving while a slot is free would take it alone: measured, over half the commits
        // of a busy node held a single message.
        while slots.available_permits() + 1 < in_flight && batch.len() < GATHER {
            tokio::select! {
                biased;
                () = committed.notified() => break,
                job = receiver.recv() => match job {
                    Some(job) => {
                        batch.push(job);
                        take_waiting(&mut receiver, &mut batch);
                    }
                    None => break,
                },
            }
        }
        let pool = pool.clone();
        let committed = Arc::clone(&committed);
        let filtered = Arc::clone(&filtered);
        tokio::spawn(async move {
            commit(&pool, batch, &filtered).await;
            drop(slot);
            committed.notify_one();
        });
    }
}

/// Adds the jobs already waiting to `batch`, up to [`MAX_BATCH`].
fn take_waiting(receiver: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match receiver.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// The applications this node has seen with payload-filtered endpoints: a batch reads its
/// filters before its insert only when it holds a message of one of them. The insert itself
/// checks that every filter among a message's endpoints was evaluated, and stores nothing
/// otherwise; so a batch whose application was given its first filter since (on this node or
/// another) notes its applications here and is written one by one, each message evaluating
/// its filters, and the batches after it read them. The set only grows: an application whose
/// filters are all removed costs its batches a read.
#[derive(Default)]
struct Filtered(std::sync::Mutex<HashSet<String>>);

impl Filtered {
    fn any_of(&self, batch: &[Job]) -> bool {
        let apps = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        batch
            .iter()
            .any(|job| apps.contains(job.message.app_id.as_str()))
    }

    fn note(&self, batch: &[Job]) {
        let mut apps = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        apps.extend(
            batch
                .iter()
                .map(|job| job.message.app_id.as_str().to_owned()),
        );
    }
}

/// Commits `batch` and answers each caller.
async fn commit(pool: &Pool, batch: Vec<Job>, filtered: &Filtered) {
    let mut client = match pool.get().await {
        Ok(client) => client,
        Err(error) => {
            let error = map_pool_error(error);
            for job in batch {
                let _ = job.answer.send(Err(error.clone()));
            }
            return;
        }
    };
    match together(&client, &batch, filtered).await {
        Ok(Ok(fanned_out)) => {
            for (job, endpoints) in batch.into_iter().zip(fanned_out) {
                let _ = job.answer.send(Ok(endpoints));
            }
        }
        Ok(Err(error)) => {
            tracing::error!(%error, messages = batch.len(), "group commit failed");
            for job in batch {
                let _ = job.answer.send(Err(error.clone()));
            }
        }
        Err(error) => {
            tracing::debug!(%error, messages = batch.len(), "a batch failed; writing its messages one by one");
            alone(&mut client, batch).await;
        }
    }
}

/// Writes the batch in one statement, which is one transaction (see
/// `messages::insert_batch_statement`), and the `NOTIFY` after it, pipelined: one round trip.
/// `Err`: the statement failed or stored nothing, so the batch is to be written one by one;
/// `Ok(Err)`: stored, but the answer could not be read; `Ok(Ok)`: each message's endpoints,
/// in the batch's order.
async fn together(
    client: &deadpool_postgres::Client,
    batch: &[Job],
    filtered: &Filtered,
) -> Result<Result<Vec<Vec<EndpointId>>>> {
    let filters = if filtered.any_of(batch) {
        evaluate_filters(client, batch).await?
    } else {
        vec![Evaluated::default(); batch.len()]
    };
    let items: Vec<messages::BatchItem<'_>> = batch
        .iter()
        .zip(&filters)
        .map(|(job, filters)| messages::BatchItem {
            message: &job.message,
            claim: job.claim.as_ref(),
            filters,
            idempotency: job.idempotency.as_ref(),
        })
        .collect();
    let mut pipeline = Pipeline::default();
    pipeline.push(
        messages::insert_batch_statement(),
        messages::insert_batch_params(&items),
    );
    // Deliveries no node claimed are work for any node: wake them once this has committed.
    if batch.iter().any(|job| job.claim.is_none()) {
        let (sql, params) = listen::notify_due_statement();
        pipeline.push(sql, params);
    }
    let mut answers = pipeline.query_each(client).await?.into_iter();
    let rows = answers.next().unwrap_or_else(|| Err(stopped()))?;
    let fanned_out = match messages::batch_fanned_out_to(&rows, &items) {
        Ok(messages::Fanned::Out(fanned_out)) => fanned_out,
        Ok(messages::Fanned::Unevaluated(_)) => {
            // A filter not read, or changed since: the statement stored nothing, and the batch
            // is written one by one instead.
            filtered.note(batch);
            return Err(StoreError::Unavailable(
                "a payload filter was not evaluated for the group commit".into(),
            ));
        }
        Err(error) => return Ok(Err(error)),
    };
    if let Some(Err(error)) = answers.next() {
        // The messages are stored; other nodes find their deliveries at their next poll.
        tracing::warn!(%error, "could not signal other nodes of new deliveries");
    }
    Ok(Ok(fanned_out))
}

/// The payload filters of the batch's messages, evaluated before their inserts: one read of
/// the filtered endpoints of the batch's applications, each filter evaluated once per message
/// whose event type and channels its endpoint selects (the insert statement checks that the
/// filters are still those, and stores nothing otherwise).
async fn evaluate_filters(c: &impl Connection, batch: &[Job]) -> Result<Vec<Evaluated>> {
    let mut apps: Vec<&str> = batch
        .iter()
        .map(|job| job.message.app_id.as_str())
        .collect();
    apps.sort_unstable();
    apps.dedup();
    let rows = query(
        c,
        "SELECT id, app_id, payload_filter, event_types, channels FROM endpoints \
         WHERE app_id = ANY($1) AND payload_filter IS NOT NULL AND NOT disabled",
        &[&apps],
    )
    .await?;
    let mut filtered = Vec::with_capacity(rows.len());
    for row in &rows {
        let endpoint: (String, String, String, Vec<String>, Vec<String>) = (
            get(row, 0)?,
            get(row, 1)?,
            get(row, 2)?,
            get(row, 3)?,
            get(row, 4)?,
        );
        filtered.push(endpoint);
    }
    Ok(batch
        .iter()
        .map(|job| {
            let message = &job.message;
            let mut evaluated = Evaluated::default();
            let mut pass = FilterPass::new(message);
            for (id, app, filter, event_types, channels) in &filtered {
                if app == message.app_id.as_str()
                    && selects(
                        event_types,
                        channels,
                        &message.event_type,
                        &message.channels,
                    )
                {
                    evaluated.evaluate(&mut pass, id.clone(), filter.clone());
                }
            }
            evaluated
        })
        .collect())
}

/// Writes each message of `batch` in a transaction of its own, as without batching.
async fn alone(client: &mut deadpool_postgres::Client, batch: Vec<Job>) {
    for job in batch {
        let result = write_one(client, &job).await;
        let _ = job.answer.send(result);
    }
}

async fn write_one(client: &mut deadpool_postgres::Client, job: &Job) -> Result<Vec<EndpointId>> {
    let claim = job.claim.as_ref();
    if claim.is_some() && job.idempotency.is_none() {
        // One statement, which commits on its own.
        return messages::insert_message(&*client, &job.message, claim).await;
    }
    let tx = client.transaction().await.map_err(map_error)?;
    // The key first: a repeat is told that its key was used, not that its eventId is taken.
    admin::save_idempotent(&mut Db::transaction(&tx), job.idempotency.as_ref()).await?;
    let endpoints = messages::insert_message(&tx, &job.message, claim).await?;
    if claim.is_none() && !endpoints.is_empty() {
        listen::notify_due(&tx).await?;
    }
    tx.commit().await.map_err(map_error)?;
    Ok(endpoints)
}
