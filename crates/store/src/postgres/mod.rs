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

pub(crate) mod bulk;
pub(crate) mod db;
pub(crate) mod engine;
mod error;
mod ingest;
mod list;
pub(crate) mod listen;
pub(crate) mod messages;
pub(crate) mod ordered;
pub(crate) mod poll;
pub(crate) mod rollup;
mod rows;
pub(crate) mod schema;
mod sql;
mod tls;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres_rustls::MakeRustlsConnect;
use webhookd_core::EndpointId;
use webhookd_core::model::Message;

use crate::{IdempotentResponse, Lease, Result, SecretCodec, StoreError};
use error::{map_error, map_pool_error};

use crate::backend::{Access, Backend, Job};
use crate::db::Db;

/// Connections in the pool of one node, unless [`PostgresStore::connect_with`] says otherwise.
pub const POOL_SIZE: usize = 16;
/// How long a caller waits for a free connection before the store reports itself unavailable.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// TCP keepalive, so that a connection to a vanished server is noticed (the LISTEN one is
/// otherwise silent for as long as nothing is due).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);

/// The PostgreSQL implementation of [`crate::Store`].
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

    fn codec(&self) -> &SecretCodec {
        &self.codec
    }

    async fn create_message(
        &self,
        message: &Message,
        lease: Option<&Lease>,
        idempotency: Option<IdempotentResponse>,
    ) -> Result<Vec<EndpointId>> {
        // Group commit: see `ingest`.
        self.ingest
            .create_message(message, lease, idempotency)
            .await
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
