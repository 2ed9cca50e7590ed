//! The embedded SQLite store: one database file in WAL mode with `synchronous=FULL`, a single
//! writer thread that group-commits (see `writer`), and a small pool of read connections.
//!
//! SQLite is the single-node store: the data directory is locked for the life of the process,
//! so no other node can share it, and every lease left in it at start belongs to a dead process.
//!
//! Data at rest (see `files`): private files, `secure_delete`, and a scrub of the write-ahead
//! log after secrets are rewritten.

mod bulk;
pub(crate) mod db;
mod engine;
mod files;
mod messages;
mod operational;
pub(crate) mod ordered;
mod poll;
mod retention;
mod rollup;
pub(crate) mod schema;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use webhookd_core::{AppKey, EndpointKey, MessageKey};

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags};
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use webhookd_core::model::{
    Application, Attempt, BackgroundTask, Delivery, Endpoint, EndpointStats, EventType, Message,
};
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId, TaskId};

use crate::{
    ApiTokenRecord, AttemptFilter, AttemptRecord, AttemptScope, Conflict, Due,
    EndpointHealthCounts, IdempotentResponse, Lease, MessageFilter, Page, PageRequest, QueueDepth,
    Result, RetentionPurge, SecretCodec, Store, StoreError,
};
use writer::Writer;

use crate::backend::{Access, Backend, Job};
use crate::db::{Db, complete};
use crate::{admin, reads, resources};

/// Read connections; reads run beside the writer thanks to WAL.
const READERS: usize = 4;

/// The SQLite implementation of [`Store`].
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
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_application(
        &self,
        app: &Application,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        let (app, idempotency) = (app.clone(), self.codec.seal_response(idempotency));
        self.write(move |c| {
            complete(admin::save_idempotent(
                &mut Db::Sqlite(c),
                idempotency.as_ref(),
            ))?;
            complete(resources::create_application(&mut Db::Sqlite(c), &app))
        })
        .await
    }

    async fn get_application(&self, key: &AppKey) -> Result<Option<Application>> {
        let key = key.to_owned();
        self.read(move |c| complete(resources::get_application(&mut Db::Sqlite(c), &key)))
            .await
    }

    async fn list_applications(&self, page: &PageRequest) -> Result<Page<Application>> {
        let page = page.clone();
        self.read(move |c| complete(resources::list_applications(&mut Db::Sqlite(c), &page)))
            .await
    }

    async fn update_application(&self, app: &Application) -> Result<()> {
        let app = app.clone();
        self.write(move |c| complete(resources::update_application(&mut Db::Sqlite(c), &app)))
            .await
    }

    async fn delete_application(&self, id: &AppId) -> Result<bool> {
        let id = id.clone();
        self.write(move |c| complete(resources::delete_application(&mut Db::Sqlite(c), &id)))
            .await
    }

    async fn create_endpoint(
        &self,
        endpoint: &Endpoint,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        let (endpoint, idempotency, codec) = (
            endpoint.clone(),
            self.codec.seal_response(idempotency),
            self.codec.clone(),
        );
        self.write(move |c| {
            complete(admin::save_idempotent(
                &mut Db::Sqlite(c),
                idempotency.as_ref(),
            ))?;
            complete(resources::create_endpoint(
                &mut Db::Sqlite(c),
                &codec,
                &endpoint,
            ))?;
            operational::emit(
                c,
                crate::operational::created_event(&endpoint),
                endpoint.created_at,
            )
        })
        .await
    }

    async fn get_endpoint(&self, app: &AppId, key: &EndpointKey) -> Result<Option<Endpoint>> {
        let (app, key, codec) = (app.clone(), key.to_owned(), self.codec.clone());
        self.read(move |c| {
            complete(resources::get_endpoint(
                &mut Db::Sqlite(c),
                &codec,
                &app,
                &key,
            ))
        })
        .await
    }

    async fn get_endpoints(&self, ids: &[EndpointId]) -> Result<Vec<Endpoint>> {
        let (ids, codec) = (ids.to_vec(), self.codec.clone());
        self.read(move |c| complete(resources::get_endpoints(&mut Db::Sqlite(c), &codec, &ids)))
            .await
    }

    async fn list_endpoints(&self, app: &AppId, page: &PageRequest) -> Result<Page<Endpoint>> {
        let (app, page, codec) = (app.clone(), page.clone(), self.codec.clone());
        self.read(move |c| {
            complete(resources::list_endpoints(
                &mut Db::Sqlite(c),
                &codec,
                &app,
                &page,
            ))
        })
        .await
    }

    async fn list_all_endpoints(&self, page: &PageRequest) -> Result<Page<Endpoint>> {
        let (page, codec) = (page.clone(), self.codec.clone());
        self.read(move |c| {
            complete(resources::list_all_endpoints(
                &mut Db::Sqlite(c),
                &codec,
                &page,
            ))
        })
        .await
    }

    async fn count_unsealed_endpoints(&self) -> Result<u64> {
        let codec = self.codec.clone();
        self.read(move |c| {
            complete(resources::count_unsealed_endpoints(
                &mut Db::Sqlite(c),
                &codec,
            ))
        })
        .await
    }

    async fn update_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        let (endpoint, codec) = (endpoint.clone(), self.codec.clone());
        self.write(move |c| {
            let before = operational::endpoint_before(c, &endpoint.app_id, &endpoint.id)?;
            complete(resources::update_endpoint(
                &mut Db::Sqlite(c),
                &codec,
                &endpoint,
            ))?;
            let was_disabled = before.is_some_and(|(disabled, _)| disabled);
            operational::emit(
                c,
                crate::operational::update_events(was_disabled, &endpoint),
                endpoint.updated_at,
            )
        })
        .await
    }

    async fn delete_endpoint(
        &self,
        app: &AppId,
        id: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let (app, id) = (app.clone(), id.clone());
        self.write(move |c| {
            let before = operational::endpoint_before(c, &app, &id)?;
            let deleted = complete(resources::delete_endpoint(
                &mut Db::Sqlite(c),
                &app,
                &id,
                now,
            ))?;
            if let (true, Some((_, uid))) = (deleted, before) {
                let change = webhookd_core::operational::EndpointChange::Deleted;
                operational::emit(
                    c,
                    crate::operational::endpoint_event(change, &app, &id, uid),
                    now,
                )?;
            }
            Ok(deleted)
        })
        .await
    }

    async fn count_endpoints(&self, app: &AppId) -> Result<u64> {
        let app = app.clone();
        self.read(move |c| complete(resources::count_endpoints(&mut Db::Sqlite(c), &app)))
            .await
    }

    async fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
    ) -> Result<EndpointStats> {
        let endpoint = endpoint.clone();
        self.read(move |c| {
            complete(reads::endpoint_stats(
                &mut Db::Sqlite(c),
                &endpoint,
                since,
                until,
            ))
        })
        .await
    }

    async fn create_event_type(
        &self,
        event_type: &EventType,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        let (event_type, idempotency) = (event_type.clone(), self.codec.seal_response(idempotency));
        self.write(move |c| {
            complete(admin::save_idempotent(
                &mut Db::Sqlite(c),
                idempotency.as_ref(),
            ))?;
            complete(resources::create_event_type(
                &mut Db::Sqlite(c),
                &event_type,
            ))
        })
        .await
    }

    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        let name = name.to_owned();
        self.read(move |c| complete(resources::get_event_type(&mut Db::Sqlite(c), &name)))
            .await
    }

    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> Result<Page<EventType>> {
        let page = page.clone();
        self.read(move |c| {
            complete(resources::list_event_types(
                &mut Db::Sqlite(c),
                &page,
                include_archived,
            ))
        })
        .await
    }

    async fn put_event_type(&self, event_type: &EventType) -> Result<()> {
        let event_type = event_type.clone();
        self.write(move |c| complete(resources::put_event_type(&mut Db::Sqlite(c), &event_type)))
            .await
    }

    async fn delete_event_type(
        &self,
        name: &str,
        expunge: bool,
        now: OffsetDateTime,
    ) -> Result<bool> {
        let name = name.to_owned();
        self.write(move |c| {
            complete(resources::delete_event_type(
                &mut Db::Sqlite(c),
                &name,
                expunge,
                now,
            ))
        })
        .await
    }

    async fn create_message(
        &self,
        message: &Message,
        lease: Option<&Lease>,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<Vec<EndpointId>> {
        let (message, lease, idempotency) = (
            message.clone(),
            lease.cloned(),
            self.codec.seal_response(idempotency),
        );
        self.write(move |c| {
            complete(admin::save_idempotent(
                &mut Db::Sqlite(c),
                idempotency.as_ref(),
            ))?;
            messages::create_message(c, &message, lease.as_ref())
        })
        .await
    }

    async fn get_message(&self, app: &AppId, key: &MessageKey) -> Result<Option<Message>> {
        let (app, key) = (app.clone(), key.to_owned());
        self.read(move |c| complete(reads::get_message(&mut Db::Sqlite(c), &app, &key)))
            .await
    }

    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Page<Message>> {
        let (app, filter, page) = (app.clone(), filter.clone(), page.clone());
        self.read(move |c| {
            complete(reads::list_messages(
                &mut Db::Sqlite(c),
                &app,
                &filter,
                &page,
            ))
        })
        .await
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        scope: &AttemptScope,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<Attempt>> {
        let (app, scope, filter, page) = (app.clone(), scope.clone(), filter.clone(), page.clone());
        self.read(move |c| {
            complete(reads::list_attempts(
                &mut Db::Sqlite(c),
                &app,
                &scope,
                &filter,
                &page,
            ))
        })
        .await
    }

    async fn get_attempt(
        &self,
        app: &AppId,
        msg: &MessageId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>> {
        let (app, msg, id) = (app.clone(), msg.clone(), id.clone());
        self.read(move |c| complete(reads::get_attempt(&mut Db::Sqlite(c), &app, &msg, &id)))
            .await
    }

    async fn list_message_deliveries(
        &self,
        app: &AppId,
        msg: &MessageId,
        page: &PageRequest,
    ) -> Result<Page<(Endpoint, Delivery)>> {
        let (app, msg, page, codec) = (app.clone(), msg.clone(), page.clone(), self.codec.clone());
        self.read(move |c| {
            complete(reads::list_message_deliveries(
                &mut Db::Sqlite(c),
                &codec,
                &app,
                &msg,
                &page,
            ))
        })
        .await
    }

    async fn list_endpoint_deliveries(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<(Message, Delivery)>> {
        let (app, endpoint, filter, page) =
            (app.clone(), endpoint.clone(), filter.clone(), page.clone());
        self.read(move |c| {
            complete(reads::list_endpoint_deliveries(
                &mut Db::Sqlite(c),
                &app,
                &endpoint,
                &filter,
                &page,
            ))
        })
        .await
    }

    async fn get_delivery(
        &self,
        msg: &MessageId,
        endpoint: &EndpointId,
    ) -> Result<Option<Delivery>> {
        let (msg, endpoint) = (msg.clone(), endpoint.clone());
        self.read(move |c| complete(reads::get_delivery(&mut Db::Sqlite(c), &msg, &endpoint)))
            .await
    }

    async fn claim_due(
        &self,
        lease: &Lease,
        now: OffsetDateTime,
        limit: usize,
        skip_endpoints: &[EndpointId],
    ) -> Result<Vec<Due>> {
        let (lease, skip) = (lease.clone(), skip_endpoints.to_vec());
        self.write(move |c| engine::claim_due(c, &lease, now, limit, &skip))
            .await
    }

    async fn renew_leases(&self, lease: &Lease, keys: &[(MessageId, EndpointId)]) -> Result<u64> {
        let (lease, keys) = (lease.clone(), keys.to_vec());
        self.write(move |c| engine::renew_leases(c, &lease, &keys))
            .await
    }

    async fn release_leases(&self, owner: &str, keys: &[(MessageId, EndpointId)]) -> Result<()> {
        let (owner, keys) = (owner.to_owned(), keys.to_vec());
        self.write(move |c| engine::release_leases(c, &owner, &keys))
            .await
    }

    async fn release_all_leases(&self) -> Result<u64> {
        self.write(|c| engine::release_all_leases(c)).await
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()> {
        let records = records.to_vec();
        self.write(move |c| engine::record_attempts(c, &records))
            .await
    }

    async fn next_due_at(&self, after: OffsetDateTime) -> Result<Option<OffsetDateTime>> {
        self.read(move |c| engine::next_due_at(c, after)).await
    }

    async fn recover(
        &self,
        endpoint: &EndpointId,
        since: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64> {
        let endpoint = endpoint.clone();
        self.write(move |c| engine::recover(c, &endpoint, since, until, now))
            .await
    }

    async fn requeue(
        &self,
        app: &AppId,
        msg: &MessageId,
        endpoint: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (app, msg, endpoint) = (app.clone(), msg.clone(), endpoint.clone());
        self.write(move |c| ordered::requeue(c, &app, &msg, &endpoint, now))
            .await
    }

    async fn endpoint_health_counts(&self) -> Result<EndpointHealthCounts> {
        self.read(|c| engine::endpoint_health_counts(c)).await
    }

    async fn rollup_minutes(&self, since: OffsetDateTime) -> Result<Vec<crate::RollupMinute>> {
        self.read(move |c| rollup::read(c, since)).await
    }

    async fn prune_rollup(&self, before: OffsetDateTime) -> Result<u64> {
        self.write(move |c| rollup::prune(c, before)).await
    }

    async fn queue_depth(&self, now: OffsetDateTime) -> Result<QueueDepth> {
        self.read(move |c| engine::queue_depth(c, now)).await
    }

    async fn request_resend(
        &self,
        app: &AppId,
        msg: &MessageId,
        endpoint: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<()> {
        let (app, msg, endpoint) = (app.clone(), msg.clone(), endpoint.clone());
        self.write(move |c| engine::request_resend(c, &app, &msg, &endpoint, now))
            .await
    }

    async fn take_resends(&self, limit: usize) -> Result<Vec<(AppId, MessageId, EndpointId)>> {
        self.write(move |c| engine::take_resends(c, limit)).await
    }

    async fn apply_retention(
        &self,
        cutoff: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<RetentionPurge> {
        self.write(move |c| retention::apply_retention(c, cutoff, now))
            .await
    }

    async fn put_task(
        &self,
        task: &BackgroundTask,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        let (task, idempotency) = (task.clone(), self.codec.seal_response(idempotency));
        self.write(move |c| {
            complete(admin::save_idempotent(
                &mut Db::Sqlite(c),
                idempotency.as_ref(),
            ))?;
            complete(admin::put_task(&mut Db::Sqlite(c), &task))?;
            operational::emit(c, crate::operational::task_event(&task), task.updated_at)
        })
        .await
    }

    async fn get_task(&self, id: &TaskId) -> Result<Option<BackgroundTask>> {
        let id = id.clone();
        self.read(move |c| complete(admin::get_task(&mut Db::Sqlite(c), &id)))
            .await
    }

    async fn create_token(&self, token: &ApiTokenRecord) -> Result<()> {
        let token = token.clone();
        self.write(move |c| complete(admin::create_token(&mut Db::Sqlite(c), &token)))
            .await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
        self.read(|c| complete(admin::list_tokens(&mut Db::Sqlite(c))))
            .await
    }

    async fn revoke_token(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.write(move |c| complete(admin::revoke_token(&mut Db::Sqlite(c), &key)))
            .await
    }

    async fn find_token(&self, hash: &str) -> Result<Option<ApiTokenRecord>> {
        let hash = hash.to_owned();
        self.read(move |c| complete(admin::find_token(&mut Db::Sqlite(c), &hash)))
            .await
    }

    async fn reseal_idempotent_responses(&self) -> Result<u64> {
        let codec = self.codec.clone();
        self.write(move |c| complete(admin::reseal_idempotent(&mut Db::Sqlite(c), &codec)))
            .await
    }

    async fn had_tokens(&self) -> Result<bool> {
        self.read(|c| complete(admin::had_tokens(&mut Db::Sqlite(c))))
            .await
    }

    async fn scrub(&self) -> Result<()> {
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || files::checkpoint_and_truncate(&path))
            .await
            .map_err(|error| StoreError::Internal(format!("a checkpoint task failed: {error}")))?
    }

    async fn count_tokens(&self) -> Result<u64> {
        self.read(|c| complete(admin::count_tokens(&mut Db::Sqlite(c))))
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.read(|c| complete(admin::ping(&mut Db::Sqlite(c))))
            .await
    }

    async fn get_idempotent_response(
        &self,
        key_hash: &str,
        not_before: OffsetDateTime,
    ) -> Result<Option<IdempotentResponse>> {
        let key_hash = key_hash.to_owned();
        let stored = self
            .read(move |c| {
                complete(admin::get_idempotent(
                    &mut Db::Sqlite(c),
                    &key_hash,
                    not_before,
                ))
            })
            .await?;
        stored
            .map(|response| {
                self.codec
                    .open_response(response)
                    .map_err(StoreError::Internal)
            })
            .transpose()
    }

    async fn save_idempotent_response(&self, response: &IdempotentResponse) -> Result<()> {
        let response = self.codec.seal_response(Some(response));
        self.write(move |c| {
            complete(admin::save_idempotent(
                &mut Db::Sqlite(c),
                response.as_ref(),
            ))
        })
        .await
    }

    async fn prune_idempotency(&self, before: OffsetDateTime) -> Result<u64> {
        self.write(move |c| complete(admin::prune_idempotency(&mut Db::Sqlite(c), before)))
            .await
    }
}
