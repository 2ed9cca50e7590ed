//! The real server, in-process: configuration loaded exactly as the binary loads it (from
//! env-style settings), a listener bound to `127.0.0.1:0` before `webhookd::run::run` is
//! spawned (so it accepts at once), a fresh database on either backend, and a graceful stop.

use std::collections::BTreeMap;
use std::ops::Deref;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use webhookd::config::{ConfigArgs, load_from};

use super::api::Api;
use super::database::{Backend, TestDatabase};
use super::wait::DEADLINE;

/// Settings every test server starts with, unless a test overrides them: a short real retry
/// schedule, and a timeout and lease short enough for tests to wait on.
const DEFAULT_SETTINGS: [(&str, &str); 3] = [
    ("WEBHOOKD_RETRY_SCHEDULE", "1s,1s,2s"),
    ("WEBHOOKD_REQUEST_TIMEOUT", "2s"),
    ("WEBHOOKD_LEASE", "10s"),
];

/// The environment-style settings of a node on the database at `database_url`: the defaults
/// above, then `overrides`.
pub(crate) fn settings(database_url: &str, overrides: &[(&str, &str)]) -> BTreeMap<String, String> {
    let database = [("WEBHOOKD_DATABASE_URL", database_url)];
    DEFAULT_SETTINGS
        .iter()
        .chain(&database)
        .chain(overrides)
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect()
}

/// A node running in this test's runtime. Dereferences to its [`Api`].
pub(crate) struct TestServer {
    api: Api,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    /// Dropped after the node's task is aborted (see `Drop`).
    _database: TestDatabase,
}

impl Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for TestServer {
    /// A test that does not [`TestServer::stop`] ends its node abruptly.
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

impl TestServer {
    /// Starts a node on SQLite in local mode (loopback, no token) with the default settings
    /// and these overrides (`("WEBHOOKD_SVIX_HEADERS", "true")`).
    pub(crate) async fn start(overrides: &[(&str, &str)]) -> Self {
        Self::start_on(Backend::Sqlite, overrides).await
    }

    /// [`TestServer::start`] on a fresh database of `backend`.
    pub(crate) async fn start_on(backend: Backend, overrides: &[(&str, &str)]) -> Self {
        let database = TestDatabase::create(backend).await;
        let settings = settings(database.url(), overrides);
        let config = load_from(&ConfigArgs::default(), &|name| settings.get(name).cloned())
            .unwrap_or_else(|error| panic!("the test settings {settings:?} are refused: {error}"));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let address = listener.local_addr().expect("a local address");
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(webhookd::run::run(config, listener, async move {
            let _ = stopped.await;
        }));
        Self {
            api: Api::new(format!("http://{address}")),
            shutdown: Some(shutdown),
            task: Some(task),
            _database: database,
        }
    }

    /// Stops the node gracefully and fails unless `run` returns `Ok` in time.
    pub(crate) async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let task = self.task.take().expect("the node runs until stopped");
        match tokio::time::timeout(DEADLINE, task).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => panic!("the node stopped with an error: {error:#}"),
            Ok(Err(error)) => panic!("the node's task failed: {error}"),
            Err(_) => panic!("the node did not stop within {DEADLINE:?}"),
        }
    }
}
