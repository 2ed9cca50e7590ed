//! The PostgreSQL store: the store of a deployment of several nodes over one database.
//!
//! * A pool of connections (deadpool, [`POOL_SIZE`] unless the node's setting says otherwise)
//!   runs each `Store` method as one statement or one transaction, with statements prepared
//!   once per connection. Every connection runs with `synchronous_commit = on`: an answer
//!   means the write is durable. Concurrent commits also share the server's WAL flushes.
//! * New messages are group-committed (see `ingest`): those that arrive together share one
//!   transaction, each keeping its own outcome.
//! * Nodes contend only for due deliveries, which `claim_due` takes with
//!   `FOR UPDATE SKIP LOCKED` and a lease (see `engine`).
//! * One more connection per node `LISTEN`s for `webhookd_due` (see `listen`), so that work
//!   released or made due by another node is claimed without waiting for a poll.
//! * Migrations (see `schema`) are applied by [`PostgresStore::connect`] and
//!   [`PostgresStore::open`] before the store serves.
//!
//! Semantics are SQLite's, query by query; the storage conformance suite checks both. The one
//! visible difference: PostgreSQL text cannot hold a NUL character, so a NUL in an endpoint's
//! response body is stored as U+FFFD, and one in an API string is refused as a storage failure.
//! Connections use TLS as the URL's `sslmode` and `sslrootcert` say (see `tls`).

mod bulk;
pub(crate) mod db;
mod engine;
mod error;
mod ingest;
mod list;
mod listen;
mod messages;
mod operational;
pub(crate) mod ordered;
mod poll;
mod retention;
mod rollup;
mod rows;
pub(crate) mod schema;
mod sql;
mod tls;

use std::sync::Arc;
use std::time::Duration;
use webhookd_core::{AppKey, EndpointKey, MessageKey};

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres_rustls::MakeRustlsConnect;
use webhookd_core::model::{
    Application, Attempt, BackgroundTask, Delivery, Endpoint, EndpointStats, EventType, Message,
};
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId, TaskId};

use crate::{
    ApiTokenRecord, AttemptFilter, AttemptRecord, AttemptScope, Due, EndpointHealthCounts,
    IdempotentResponse, Lease, MessageFilter, Page, PageRequest, QueueDepth, Result,
    RetentionPurge, SecretCodec, Store, StoreError,
};
use error::{map_error, map_pool_error};

use crate::backend::{Access, Backend, Job};
use crate::db::Db;
use crate::{admin, reads, resources};

/// Connections in the pool of one node, unless [`PostgresStore::connect_with`] says otherwise.
pub const POOL_SIZE: usize = 16;
/// How long a caller waits for a free connection before the store reports itself unavailable.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keepalive, so that a connection to a vanished server is noticed (the LISTEN one is
/// otherwise silent for as long as nothing is due).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: Pool,
    ingest: ingest::Ingest,
    due: Arc<Notify>,
    listener: JoinHandle<()>,
    /// Host and database, for `Debug` (never the password).
    target: String,
    codec: SecretCodec,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// How to reach the database: the connection settings, and TLS as the URL asks for it.
#[derive(Clone)]
struct Target {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
}

impl Target {
    fn new(url: &str) -> Result<Self> {
        let (url, tls) = tls::split(url)?;
        let mut config = connection_config(&url)?;
        config.ssl_mode(tls.mode);
        Ok(Self {
            config,
            tls: tls::connector(&tls)?,
        })
    }
}

/// Reads a `postgres://` URL (or a `key=value` connection string) and adds what every
/// connection of webhookd runs with.
fn connection_config(url: &str) -> Result<tokio_postgres::Config> {
    let mut config: tokio_postgres::Config = url.parse().map_err(|error| {
        StoreError::Internal(format!("the PostgreSQL URL is not valid: {error}"))
    })?;
    let options = match config.get_options() {
        Some(options) => format!("{options} -c synchronous_commit=on"),
        None => "-c synchronous_commit=on".to_owned(),
    };
    config.options(options);
    if config.get_application_name().is_none() {
        config.application_name("webhookd");
    }
    config.connect_timeout(CONNECT_TIMEOUT);
    config.keepalives_idle(KEEPALIVE_IDLE);
    Ok(config)
}

fn describe(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    format!(
        "{}/{}",
        hosts.join(","),
        config.get_dbname().unwrap_or_default()
    )
}

impl PostgresStore {
    /// Connects to the database at `url`, applies pending migrations and starts listening for
    /// other nodes' signals.
    pub async fn connect(url: &str) -> Result<Self> {
        Self::connect_with(url, POOL_SIZE).await
    }

    /// [`PostgresStore::connect`] with a pool of `pool_size` connections (at least one).
    pub async fn connect_with(url: &str, pool_size: usize) -> Result<Self> {
        let target = Target::new(url)?;
        schema::migrate(&target.config, target.tls.clone()).await?;
        Self::start(target, pool_size)
    }

    /// [`PostgresStore::connect`] for a caller that cannot await (start-up code that is not
    /// async). It blocks the calling thread while migrating, on a thread and runtime of its
    /// own, so it works on any Tokio runtime; it must be called within one, which the
    /// store's tasks then run on.
    pub fn open(url: &str) -> Result<Self> {
        Self::open_with(url, POOL_SIZE)
    }

    /// [`PostgresStore::open`] with a pool of `pool_size` connections (at least one).
    pub fn open_with(url: &str, pool_size: usize) -> Result<Self> {
        let target = Target::new(url)?;
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|error| {
                            StoreError::Internal(format!("cannot migrate: {error}"))
                        })?;
                    runtime.block_on(schema::migrate(&target.config, target.tls.clone()))
                })
                .join()
                .unwrap_or_else(|_| {
                    Err(StoreError::Internal("the migration thread panicked".into()))
                })
        })?;
        Self::start(target, pool_size)
    }

    /// Applies pending migrations to the database at `url`; returns the schema version
    /// reached.
    pub async fn migrate(url: &str) -> Result<usize> {
        let target = Target::new(url)?;
        schema::migrate(&target.config, target.tls).await
    }

    /// Builds the pool (connections open on first use) and starts the listener.
    fn start(target: Target, pool_size: usize) -> Result<Self> {
        let Target { config, tls } = target;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            StoreError::Internal(
                "the PostgreSQL store must be opened within a Tokio runtime".into(),
            )
        })?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|error| StoreError::Internal(format!("cannot build the pool: {error}")))?;
        let due = Arc::new(Notify::new());
        let listener = runtime.spawn(listen::run(config.clone(), tls, Arc::clone(&due)));
        let in_flight = ingest::BATCHES_IN_FLIGHT.min(pool_size.max(1));
        let ingest = ingest::Ingest::start(&runtime, pool.clone(), in_flight);
        Ok(Self {
            pool,
            ingest,
            due,
            listener,
            target: describe(&config),
            codec: SecretCodec::default(),
        })
    }

    /// Seals endpoint secrets with `codec` from now on (and opens them with it).
    pub fn with_secret_codec(mut self, codec: SecretCodec) -> Self {
        self.codec = codec;
        self
    }

    async fn client(&self) -> Result<deadpool_postgres::Client> {
        self.pool.get().await.map_err(map_pool_error)
    }
}

/// Runs `$body` inside a transaction on a pooled connection bound to `$tx`, committing when
/// it succeeds (dropping the transaction rolls it back otherwise).
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let mut client = $store.client().await?;
        let $tx = client.transaction().await.map_err(map_error)?;
        let value = $body;
        $tx.commit().await.map_err(map_error)?;
        Ok(value)
    }};
}

#[async_trait]
impl Backend for PostgresStore {
    async fn run<T: Send + 'static>(&self, access: Access, job: Job<T>) -> Result<T> {
        let mut client = self.client().await?;
        if access != Access::Transaction {
            return job(&mut Db::client(&client)).await;
        }
        let transaction = client.transaction().await.map_err(map_error)?;
        let value = job(&mut Db::transaction(&transaction)).await?;
        transaction.commit().await.map_err(map_error)?;
        Ok(value)
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_application(
        &self,
        app: &Application,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        in_transaction!(self, |tx| {
            admin::save_idempotent(
                &mut Db::transaction(&tx),
                self.codec.seal_response(idempotency).as_ref(),
            )
            .await?;
            resources::create_application(&mut Db::transaction(&tx), app).await?
        })
    }

    async fn get_application(&self, key: &AppKey) -> Result<Option<Application>> {
        resources::get_application(&mut Db::client(&self.client().await?), key).await
    }

    async fn list_applications(&self, page: &PageRequest) -> Result<Page<Application>> {
        resources::list_applications(&mut Db::client(&self.client().await?), page).await
    }

    async fn update_application(&self, app: &Application) -> Result<()> {
        resources::update_application(&mut Db::client(&self.client().await?), app).await
    }

    async fn delete_application(&self, id: &AppId) -> Result<bool> {
        in_transaction!(self, |tx| resources::delete_application(
            &mut Db::transaction(&tx),
            id
        )
        .await?)
    }

    async fn create_endpoint(
        &self,
        endpoint: &Endpoint,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        in_transaction!(self, |tx| {
            admin::save_idempotent(
                &mut Db::transaction(&tx),
                self.codec.seal_response(idempotency).as_ref(),
            )
            .await?;
            resources::create_endpoint(&mut Db::transaction(&tx), &self.codec, endpoint).await?;
            let event = crate::operational::created_event(endpoint);
            operational::emit(&tx, event, endpoint.created_at).await?
        })
    }

    async fn get_endpoint(&self, app: &AppId, key: &EndpointKey) -> Result<Option<Endpoint>> {
        resources::get_endpoint(
            &mut Db::client(&self.client().await?),
            &self.codec,
            app,
            key,
        )
        .await
    }

    async fn get_endpoints(&self, ids: &[EndpointId]) -> Result<Vec<Endpoint>> {
        resources::get_endpoints(&mut Db::client(&self.client().await?), &self.codec, ids).await
    }

    async fn list_endpoints(&self, app: &AppId, page: &PageRequest) -> Result<Page<Endpoint>> {
        resources::list_endpoints(
            &mut Db::client(&self.client().await?),
            &self.codec,
            app,
            page,
        )
        .await
    }

    async fn list_all_endpoints(&self, page: &PageRequest) -> Result<Page<Endpoint>> {
        resources::list_all_endpoints(&mut Db::client(&self.client().await?), &self.codec, page)
            .await
    }

    async fn count_unsealed_endpoints(&self) -> Result<u64> {
        resources::count_unsealed_endpoints(&mut Db::client(&self.client().await?), &self.codec)
            .await
    }

    async fn update_endpoint(&self, endpoint: &Endpoint) -> Result<()> {
        in_transaction!(self, |tx| {
            let before = operational::endpoint_before(&tx, &endpoint.app_id, &endpoint.id).await?;
            resources::update_endpoint(&mut Db::transaction(&tx), &self.codec, endpoint).await?;
            let was_disabled = before.is_some_and(|(disabled, _)| disabled);
            let events = crate::operational::update_events(was_disabled, endpoint);
            operational::emit(&tx, events, endpoint.updated_at).await?
        })
    }

    async fn delete_endpoint(
        &self,
        app: &AppId,
        id: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<bool> {
        in_transaction!(self, |tx| {
            let before = operational::endpoint_before(&tx, app, id).await?;
            let deleted =
                resources::delete_endpoint(&mut Db::transaction(&tx), app, id, now).await?;
            if let (true, Some((_, uid))) = (deleted, before) {
                let change = webhookd_core::operational::EndpointChange::Deleted;
                let event = crate::operational::endpoint_event(change, app, id, uid);
                operational::emit(&tx, event, now).await?;
            }
            deleted
        })
    }

    async fn count_endpoints(&self, app: &AppId) -> Result<u64> {
        resources::count_endpoints(&mut Db::client(&self.client().await?), app).await
    }

    async fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        since: Option<OffsetDateTime>,
        until: Option<OffsetDateTime>,
    ) -> Result<EndpointStats> {
        reads::endpoint_stats(
            &mut Db::client(&self.client().await?),
            endpoint,
            since,
            until,
        )
        .await
    }

    async fn create_event_type(
        &self,
        event_type: &EventType,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        in_transaction!(self, |tx| {
            admin::save_idempotent(
                &mut Db::transaction(&tx),
                self.codec.seal_response(idempotency).as_ref(),
            )
            .await?;
            resources::create_event_type(&mut Db::transaction(&tx), event_type).await?
        })
    }

    async fn get_event_type(&self, name: &str) -> Result<Option<EventType>> {
        resources::get_event_type(&mut Db::client(&self.client().await?), name).await
    }

    async fn list_event_types(
        &self,
        page: &PageRequest,
        include_archived: bool,
    ) -> Result<Page<EventType>> {
        resources::list_event_types(
            &mut Db::client(&self.client().await?),
            page,
            include_archived,
        )
        .await
    }

    async fn put_event_type(&self, event_type: &EventType) -> Result<()> {
        resources::put_event_type(&mut Db::client(&self.client().await?), event_type).await
    }

    async fn delete_event_type(
        &self,
        name: &str,
        expunge: bool,
        now: OffsetDateTime,
    ) -> Result<bool> {
        resources::delete_event_type(&mut Db::client(&self.client().await?), name, expunge, now)
            .await
    }

    async fn create_message(
        &self,
        message: &Message,
        lease: Option<&Lease>,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<Vec<EndpointId>> {
        // Group commit: see `ingest`.
        let idempotency = self.codec.seal_response(idempotency);
        self.ingest
            .create_message(message, lease, idempotency)
            .await
    }

    async fn get_message(&self, app: &AppId, key: &MessageKey) -> Result<Option<Message>> {
        reads::get_message(&mut Db::client(&self.client().await?), app, key).await
    }

    async fn list_messages(
        &self,
        app: &AppId,
        filter: &MessageFilter,
        page: &PageRequest,
    ) -> Result<Page<Message>> {
        reads::list_messages(&mut Db::client(&self.client().await?), app, filter, page).await
    }

    async fn list_attempts(
        &self,
        app: &AppId,
        scope: &AttemptScope,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<Attempt>> {
        reads::list_attempts(
            &mut Db::client(&self.client().await?),
            app,
            scope,
            filter,
            page,
        )
        .await
    }

    async fn get_attempt(
        &self,
        app: &AppId,
        msg: &MessageId,
        id: &AttemptId,
    ) -> Result<Option<Attempt>> {
        reads::get_attempt(&mut Db::client(&self.client().await?), app, msg, id).await
    }

    async fn list_message_deliveries(
        &self,
        app: &AppId,
        msg: &MessageId,
        page: &PageRequest,
    ) -> Result<Page<(Endpoint, Delivery)>> {
        reads::list_message_deliveries(
            &mut Db::client(&self.client().await?),
            &self.codec,
            app,
            msg,
            page,
        )
        .await
    }

    async fn list_endpoint_deliveries(
        &self,
        app: &AppId,
        endpoint: &EndpointId,
        filter: &AttemptFilter,
        page: &PageRequest,
    ) -> Result<Page<(Message, Delivery)>> {
        reads::list_endpoint_deliveries(
            &mut Db::client(&self.client().await?),
            app,
            endpoint,
            filter,
            page,
        )
        .await
    }

    async fn get_delivery(
        &self,
        msg: &MessageId,
        endpoint: &EndpointId,
    ) -> Result<Option<Delivery>> {
        reads::get_delivery(&mut Db::client(&self.client().await?), msg, endpoint).await
    }

    async fn claim_due(
        &self,
        lease: &Lease,
        now: OffsetDateTime,
        limit: usize,
        skip_endpoints: &[EndpointId],
    ) -> Result<Vec<Due>> {
        engine::claim_due(&self.client().await?, lease, now, limit, skip_endpoints).await
    }

    async fn renew_leases(&self, lease: &Lease, keys: &[(MessageId, EndpointId)]) -> Result<u64> {
        engine::renew_leases(&self.client().await?, lease, keys).await
    }

    async fn release_leases(&self, owner: &str, keys: &[(MessageId, EndpointId)]) -> Result<()> {
        in_transaction!(self, |tx| engine::release_leases(&tx, owner, keys).await?)
    }

    async fn endpoint_health_counts(&self) -> Result<EndpointHealthCounts> {
        engine::endpoint_health_counts(&self.client().await?).await
    }

    async fn request_resend(
        &self,
        app: &AppId,
        msg: &MessageId,
        endpoint: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<()> {
        in_transaction!(self, |tx| engine::request_resend(
            &tx, app, msg, endpoint, now
        )
        .await?)
    }

    async fn take_resends(&self, limit: usize) -> Result<Vec<(AppId, MessageId, EndpointId)>> {
        engine::take_resends(&self.client().await?, limit).await
    }

    async fn release_all_leases(&self) -> Result<u64> {
        engine::release_all_leases(&self.client().await?).await
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> Result<()> {
        in_transaction!(self, |tx| engine::record_attempts(&tx, records).await?)
    }

    async fn next_due_at(&self, after: OffsetDateTime) -> Result<Option<OffsetDateTime>> {
        engine::next_due_at(&self.client().await?, after).await
    }

    async fn recover(
        &self,
        endpoint: &EndpointId,
        since: OffsetDateTime,
        until: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<u64> {
        in_transaction!(self, |tx| engine::recover(&tx, endpoint, since, until, now)
            .await?)
    }

    async fn requeue(
        &self,
        app: &AppId,
        msg: &MessageId,
        endpoint: &EndpointId,
        now: OffsetDateTime,
    ) -> Result<()> {
        in_transaction!(self, |tx| ordered::requeue(&tx, app, msg, endpoint, now)
            .await?)
    }

    async fn rollup_minutes(&self, since: OffsetDateTime) -> Result<Vec<crate::RollupMinute>> {
        rollup::read(&self.client().await?, since).await
    }

    async fn prune_rollup(&self, before: OffsetDateTime) -> Result<u64> {
        rollup::prune(&self.client().await?, before).await
    }

    async fn queue_depth(&self, now: OffsetDateTime) -> Result<QueueDepth> {
        engine::queue_depth(&self.client().await?, now).await
    }

    async fn apply_retention(
        &self,
        cutoff: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<RetentionPurge> {
        in_transaction!(self, |tx| retention::apply_retention(&tx, cutoff, now)
            .await?)
    }

    async fn put_task(
        &self,
        task: &BackgroundTask,
        idempotency: Option<&IdempotentResponse>,
    ) -> Result<()> {
        in_transaction!(self, |tx| {
            admin::save_idempotent(
                &mut Db::transaction(&tx),
                self.codec.seal_response(idempotency).as_ref(),
            )
            .await?;
            admin::put_task(&mut Db::transaction(&tx), task).await?;
            operational::emit(&tx, crate::operational::task_event(task), task.updated_at).await?
        })
    }

    async fn get_task(&self, id: &TaskId) -> Result<Option<BackgroundTask>> {
        admin::get_task(&mut Db::client(&self.client().await?), id).await
    }

    async fn create_token(&self, token: &ApiTokenRecord) -> Result<()> {
        in_transaction!(self, |tx| admin::create_token(
            &mut Db::transaction(&tx),
            token
        )
        .await?)
    }

    async fn reseal_idempotent_responses(&self) -> Result<u64> {
        in_transaction!(self, |tx| admin::reseal_idempotent(
            &mut Db::transaction(&tx),
            &self.codec
        )
        .await?)
    }

    async fn had_tokens(&self) -> Result<bool> {
        admin::had_tokens(&mut Db::client(&self.client().await?)).await
    }

    async fn list_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
        admin::list_tokens(&mut Db::client(&self.client().await?)).await
    }

    async fn revoke_token(&self, key: &str) -> Result<bool> {
        admin::revoke_token(&mut Db::client(&self.client().await?), key).await
    }

    async fn find_token(&self, hash: &str) -> Result<Option<ApiTokenRecord>> {
        admin::find_token(&mut Db::client(&self.client().await?), hash).await
    }

    async fn count_tokens(&self) -> Result<u64> {
        admin::count_tokens(&mut Db::client(&self.client().await?)).await
    }

    async fn ping(&self) -> Result<()> {
        admin::ping(&mut Db::client(&self.client().await?)).await
    }

    async fn get_idempotent_response(
        &self,
        key_hash: &str,
        not_before: OffsetDateTime,
    ) -> Result<Option<IdempotentResponse>> {
        let stored =
            admin::get_idempotent(&mut Db::client(&self.client().await?), key_hash, not_before)
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
        admin::save_idempotent(
            &mut Db::client(&self.client().await?),
            self.codec.seal_response(Some(response)).as_ref(),
        )
        .await
    }

    async fn prune_idempotency(&self, before: OffsetDateTime) -> Result<u64> {
        admin::prune_idempotency(&mut Db::client(&self.client().await?), before).await
    }

    fn due_notifications(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.due))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_server_is_unavailable() {
        // Port 1 on loopback: nothing listens there.
        let refused = PostgresStore::connect("postgres://webhookd@127.0.0.1:1/webhookd").await;
        assert!(
            matches!(refused, Err(StoreError::Unavailable(_))),
            "{refused:?}"
        );
    }

    #[test]
    fn connections_commit_synchronously_whatever_the_url_says() {
        let config = connection_config(
            "postgres://u:secret@db.example:5433/hooks?options=-c%20statement_timeout%3D5s",
        )
        .unwrap();
        assert_eq!(
            config.get_options(),
            Some("-c statement_timeout=5s -c synchronous_commit=on")
        );
        assert_eq!(config.get_application_name(), Some("webhookd"));
        assert_eq!(describe(&config), "db.example/hooks");
        assert!(matches!(
            connection_config("postgres://[oops"),
            Err(StoreError::Internal(_))
        ));
    }
}
