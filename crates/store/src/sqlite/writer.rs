//! Group commit: one thread owns the SQLite write connection and runs every write.
//!
//! 1. Callers send a job (a closure over the connection) through a bounded channel and await
//!    its answer.
//! 2. The thread takes the first job, then every job already waiting (up to `MAX_BATCH`), and
//!    runs them inside one `BEGIN IMMEDIATE` transaction, each within its own savepoint, so a
//!    failing job is rolled back alone.
//! 3. It commits once (one fsync for the whole batch with `synchronous=FULL`) and only then
//!    answers every caller: an answer means the write is durable.
//!
//! Under load the batches grow by themselves, so throughput rises with concurrency while a
//! lone request still commits at once.

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};

use super::map_error;
use crate::{Result, StoreError};

/// The most jobs in one transaction.
const MAX_BATCH: usize = 2048;
/// Jobs waiting for the writer before callers wait to send (back-pressure).
const QUEUE: usize = 8192;

type Finish = Box<dyn FnOnce(Option<&StoreError>) + Send>;

/// One caller's write, type-erased so that one channel carries them all.
trait Job: Send {
    /// Runs the write; the answer waits for the commit. True when the write succeeded.
    fn run(self: Box<Self>, connection: &mut Connection) -> (bool, Finish);
    /// Answers with `error` without running.
    fn abandon(self: Box<Self>, error: &StoreError);
}

struct WriteJob<F, T> {
    write: F,
    answer: oneshot::Sender<Result<T>>,
}

impl<F, T> Job for WriteJob<F, T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
{
    fn run(self: Box<Self>, connection: &mut Connection) -> (bool, Finish) {
        let WriteJob { write, answer } = *self;
        let result = write(connection);
        let succeeded = result.is_ok();
        let finish: Finish = Box::new(move |commit_error| {
            let result = match commit_error {
                Some(error) => Err(error.clone()),
                None => result,
            };
            // The caller may have gone away; the write stands regardless.
            let _ = answer.send(result);
        });
        (succeeded, finish)
    }

    fn abandon(self: Box<Self>, error: &StoreError) {
        let _ = self.answer.send(Err(error.clone()));
    }
}

/// A handle to the writer thread. Cloning it is cheap; the thread ends when every handle is
/// dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

impl Writer {
    pub(crate) fn start(connection: Connection) -> std::io::Result<Self> {
        let (jobs, receiver) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("webhookd-sqlite-writer".into())
            .spawn(move || run(connection, receiver))?;
        Ok(Self { jobs })
    }

    /// Runs `job` in the next group commit and answers once it is durable.
    ///
    /// Cancel safety: dropping the future before it completes may still leave the write
    /// committed.
    pub(crate) async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job = Box::new(WriteJob { write: job, answer });
        self.jobs.send(job).await.map_err(|_| closed())?;
        answered.await.map_err(|_| closed())?
    }
}

fn closed() -> StoreError {
    StoreError::Unavailable("the database writer has stopped".into())
}

fn run(mut connection: Connection, mut receiver: mpsc::Receiver<Box<dyn Job>>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut finishes = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let commit_error = commit_batch(&mut connection, &mut batch, &mut finishes).err();
        if let Some(error) = &commit_error {
            tracing::error!(%error, jobs = finishes.len(), "group commit failed");
        }
        for finish in finishes.drain(..) {
            finish(commit_error.as_ref());
        }
    }
}

/// Runs a statement without parameters, prepared once per connection.
fn execute_cached(connection: &Connection, sql: &str) -> Result<()> {
    connection
        .prepare_cached(sql)
        .and_then(|mut statement| statement.execute([]))
        .map(drop)
        .map_err(map_error)
}

fn commit_batch(
    connection: &mut Connection,
    batch: &mut Vec<Box<dyn Job>>,
    finishes: &mut Vec<Finish>,
) -> Result<()> {
    if let Err(error) = execute_cached(connection, "BEGIN IMMEDIATE") {
        for job in batch.drain(..) {
            job.abandon(&error);
        }
        return Ok(());
    }
    for job in batch.drain(..) {
        let savepoint = execute_cached(connection, "SAVEPOINT job");
        if let Err(error) = savepoint {
            job.abandon(&error);
            continue;
        }
        let (succeeded, finish) = job.run(connection);
        let closed = if succeeded {
            execute_cached(connection, "RELEASE job")
        } else {
            execute_cached(connection, "ROLLBACK TO job")
                .and_then(|()| execute_cached(connection, "RELEASE job"))
        };
        if let Err(error) = closed {
            tracing::error!(%error, "could not close a savepoint");
        }
        finishes.push(finish);
    }
    execute_cached(connection, "COMMIT").inspect_err(|_| {
        let _ = connection.execute_batch("ROLLBACK");
    })
}
