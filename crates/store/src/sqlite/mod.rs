//! The embedded SQLite store: one database file in WAL mode with `synchronous=FULL`, a single
//! writer thread that group-commits (see `writer`), and a small pool of read connections.
//!
//! SQLite is the single-node store: the data directory is locked for the life of the process,
//! so no other node can share it, and every lease left in it at start belongs to a dead process.
//!
//! Data at rest (see `files`): private files, `secure_delete`, and a scrub of the write-ahead
//! log after secrets are rewritten.

pub(crate) mod bulk;
pub(crate) mod db;
pub(crate) mod engine;
mod files;
pub(crate) mod messages;
pub(crate) mod ordered;
pub(crate) mod poll;
pub(crate) mod rollup;
pub(crate) mod schema;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use tokio::sync::Semaphore;
use webhookd_core::EndpointId;
use webhookd_core::model::Message;

use crate::{Conflict, IdempotentResponse, Lease, Result, SecretCodec, StoreError};
use writer::Writer;

use crate::admin;
use crate::backend::{Access, Backend, Job};
use crate::db::{Db, complete};

/// Read connections; reads run beside the writer thanks to WAL.
const READERS: usize = 4;

/// The SQLite implementation of [`crate::Store`].
pub struct SqliteStore {
    writer: Writer,
    readers: Arc<Readers>,
    path: PathBuf,
    codec: SecretCodec,
    /// Held for the life of the store: one process per data directory.
    _lock: File,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

struct Readers {
    connections: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

/// Maps SQLite's errors to the kinds callers act on.
pub(crate) fn map_error(error: rusqlite::Error) -> StoreError {
    // A shared row reader's own error, carried through rusqlite's row mapping.
    if let rusqlite::Error::FromSqlConversionFailure(_, _, inner) = &error
        && let Some(error) = inner.downcast_ref::<StoreError>()
    {
        return error.clone();
    }
    match error.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) if is_uniqueness(&error) => {
            StoreError::Conflict(Conflict::unique(error.to_string()))
        }
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure
            | ErrorCode::CannotOpen
            | ErrorCode::ReadOnly
            | ErrorCode::OutOfMemory,
        ) => StoreError::Unavailable(error.to_string()),
        _ => StoreError::Internal(error.to_string()),
    }
}

/// Whether a constraint violation is a uniqueness rule (a unique index or a primary key), the one
/// kind that is a conflict; a foreign key, `CHECK` or `NOT NULL` failure is a defect.
fn is_uniqueness(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

fn open_connection(path: &Path, flags: OpenFlags) -> Result<Connection> {
    let connection = Connection::open_with_flags(path, flags).map_err(map_error)?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 5000;
             PRAGMA cache_size = -16000;
             PRAGMA temp_store = MEMORY;
             PRAGMA secure_delete = ON;",
        )
        .map_err(map_error)?;
    connection.set_prepared_statement_cache_capacity(64);
    Ok(connection)
}

fn unavailable(what: &str, path: &Path, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("{what} {}: {error}", path.display()))
}

impl SqliteStore {
    /// Opens (creating it and its directory if needed) the database at `path`, applies
    /// pending migrations and starts the writer. Fails when another process holds it.
    pub fn open(path: &Path) -> Result<Self> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            files::create_private_dir(parent)
                .map_err(|error| unavailable("cannot create the data directory", parent, error))?;
        }
        let lock_path = path.with_extension("lock");
        let lock = files::create_private_file(&lock_path)
            .map_err(|error| unavailable("cannot create the lock file", &lock_path, error))?;
        lock.try_lock().map_err(|_| {
            StoreError::Unavailable(format!(
                "the database {} is in use by another webhookd process (SQLite serves one node; \
                 use PostgreSQL for several)",
                path.display()
            ))
        })?;
        files::create_private_file(path)
            .map_err(|error| unavailable("cannot create the database", path, error))?;
        Self::migrate(path)?;
        let write_connection = open_connection(path, OpenFlags::default())?;
        let writer = Writer::start(write_connection)
            .map_err(|error| unavailable("cannot start the writer for", path, error))?;
        let connections = (0..READERS)
            .map(|_| {
                let connection = open_connection(path, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
                connection
                    .execute_batch("PRAGMA query_only = 1")
                    .map_err(map_error)?;
                Ok(connection)
            })
            .collect::<Result<Vec<_>>>()?;
        // The connections are open in WAL mode now, so the -wal and -shm files exist.
        files::restrict_database_files(path)
            .map_err(|error| unavailable("cannot restrict the permissions of", path, error))?;
        let readers = Arc::new(Readers {
            connections: Mutex::new(connections),
            permits: Semaphore::new(READERS),
        });
        Ok(Self {
            writer,
            readers,
            path: path.to_owned(),
            codec: SecretCodec::default(),
            _lock: lock,
        })
    }

    /// Whether a running process holds the database at `path` (its lock is taken).
    pub fn in_use(path: &Path) -> bool {
        files::is_locked(&path.with_extension("lock"))
    }

    /// Applies pending migrations; returns the schema version reached.
    pub fn migrate(path: &Path) -> Result<usize> {
        let mut connection = open_connection(path, OpenFlags::default())?;
        schema::migrate(&mut connection)
    }

    /// Seals endpoint secrets with `codec` from now on (and opens them with it).
    pub fn with_secret_codec(mut self, codec: SecretCodec) -> Self {
        self.codec = codec;
        self
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn write<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        self.writer.write(job).await
    }

    async fn read<T, F>(&self, job: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let readers = Arc::clone(&self.readers);
        let _permit = readers
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Unavailable("the store is closed".into()))?;
        let pool = Arc::clone(&readers);
        tokio::task::spawn_blocking(move || {
            let mut connection = pool
                .connections
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .pop()
                .ok_or_else(|| StoreError::Internal("no read connection free".into()))?;
            let result = job(&mut connection);
            pool.connections
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(connection);
            result
        })
        .await
        .map_err(|error| StoreError::Internal(format!("a read task failed: {error}")))?
    }
}

#[async_trait]
impl Backend for SqliteStore {
    async fn run<T: Send + 'static>(&self, access: Access, job: Job<T>) -> Result<T> {
        let work = move |c: &mut Connection| complete(job(&mut Db::Sqlite(c)));
        match access {
            Access::Read => self.read(work).await,
            Access::Write | Access::Transaction => self.write(work).await,
        }
    }

    fn codec(&self) -> &SecretCodec {
        &self.codec
    }

    async fn create_message(
        &self,
        message: &Message,
        lease: Option<&Lease>,
        idempotency: Option<IdempotentResponse>,
    ) -> Result<Vec<EndpointId>> {
        let (message, lease) = (message.clone(), lease.cloned());
        self.write(move |c| {
            complete(admin::save_idempotent(
                &mut Db::Sqlite(c),
                idempotency.as_ref(),
            ))?;
            messages::create_message(c, &message, lease.as_ref())
        })
        .await
    }

    async fn scrub(&self) -> Result<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || files::checkpoint_and_truncate(&path))
            .await
            .map_err(|error| StoreError::Internal(format!("a checkpoint task failed: {error}")))?
    }
}
