//! The database a test's nodes share, on either backend: SQLite in a temporary directory, or a
//! fresh PostgreSQL database of the test's own.
//!
//! SQLite runs always. PostgreSQL runs when `WEBHOOKD_TEST_DATABASE_URL` names a server: each
//! test creates a database with a random name there and drops it `WITH (FORCE)` when the
//! [`TestDatabase`] is dropped, whether the test passed or not. Without the variable the
//! PostgreSQL tests say how to enable them and pass, except under `CI=true`, where a missing
//! variable or an unreachable server fails them.
//!
//! [`on_both_backends!`](crate::harness::on_both_backends) declares a test once per backend,
//! as `sqlite::<name>` and `postgres::<name>`.

use std::path::Path;

/// The variable that names the PostgreSQL server of the tests.
pub(crate) const DATABASE_ENV: &str = "WEBHOOKD_TEST_DATABASE_URL";

/// A storage backend of webhookd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

/// Declares each listed test, an `async fn(Backend)` of the invoking module, once per backend:
/// `sqlite::<test>` always, `postgres::<test>` when PostgreSQL is enabled (see
/// [`postgres_enabled`]).
macro_rules! on_both_backends {
    ($($test:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    super::$test($crate::harness::Backend::Sqlite).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $test() {
                    if $crate::harness::postgres_enabled().await {
                        super::$test($crate::harness::Backend::Postgres).await;
                    }
                }
            )*
        }
    };
}
pub(crate) use on_both_backends;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|value| value == "true")
}

/// Whether the PostgreSQL tests run: the server is named and answers. When it is not, says
/// how to enable them and answers `false`, except under `CI=true`, where it fails the test.
pub(crate) async fn postgres_enabled() -> bool {
    let Ok(server) = std::env::var(DATABASE_ENV) else {
        assert!(
            !in_ci(),
            "{DATABASE_ENV} must name a PostgreSQL server under CI=true"
        );
        eprintln!(
            "skipped: the PostgreSQL tests of the end-to-end suite run when {DATABASE_ENV} is \
             set, e.g. {DATABASE_ENV}=postgres://postgres@127.0.0.1:5432/test"
        );
        return false;
    };
    match connect(&server).await {
        Ok(_) => true,
        Err(error) if !in_ci() => {
            eprintln!("skipped: cannot reach the PostgreSQL server in {DATABASE_ENV}: {error}");
            false
        }
        Err(error) => panic!("cannot reach the PostgreSQL server in {DATABASE_ENV}: {error}"),
    }
}

/// A database of the test's own, and a temporary directory for the nodes' files (their logs,
/// and on SQLite the database itself). Dropping it drops the PostgreSQL database.
pub(crate) struct TestDatabase {
    url: String,
    /// The PostgreSQL database's name and the server it is on.
    postgres: Option<(String, String)>,
    dir: tempfile::TempDir,
}

impl TestDatabase {
    /// A fresh database on `backend`. On PostgreSQL, the server must be enabled (see
    /// [`postgres_enabled`]).
    pub(crate) async fn create(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.path().join("webhookd.db").display()),
                postgres: None,
                dir,
            },
            Backend::Postgres => {
                let server = std::env::var(DATABASE_ENV)
                    .unwrap_or_else(|_| panic!("{DATABASE_ENV} names the PostgreSQL server"));
                let suffix = webhookd_core::TaskId::new()
                    .as_str()
                    .trim_start_matches("qtask_")
                    .to_lowercase();
                let name = format!("webhookd_e2e_{suffix}");
                let admin = connect(&server).await.unwrap_or_else(|error| {
                    panic!("cannot reach the PostgreSQL server in {DATABASE_ENV}: {error}")
                });
                admin
                    .batch_execute(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap_or_else(|error| panic!("cannot create the database {name}: {error}"));
                let mut url = url::Url::parse(&server).expect("a postgres:// URL");
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    postgres: Some((name, server)),
                    dir,
                }
            }
        }
    }

    /// The database's `WEBHOOKD_DATABASE_URL`.
    /// A fresh PostgreSQL database when PostgreSQL is enabled (see [`postgres_enabled`]), for
    /// the tests that only PostgreSQL can run (several nodes on one database).
    pub(crate) async fn postgres() -> Option<Self> {
        if postgres_enabled().await {
            Some(Self::create(Backend::Postgres).await)
        } else {
            None
        }
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// Pending deliveries that some node holds a lease on (PostgreSQL only), read directly
    /// from the database.
    pub(crate) async fn leased_deliveries(&self) -> i64 {
        assert!(self.postgres.is_some(), "leases are read from PostgreSQL");
        let client = connect(&self.url)
            .await
            .unwrap_or_else(|error| panic!("cannot reach the test database: {error}"));
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM deliveries WHERE status = 1 AND lease_owner IS NOT NULL",
                &[],
            )
            .await
            .expect("the deliveries table");
        row.get(0)
    }

    /// The directory for the nodes' files.
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestDatabase {
    /// Drops the PostgreSQL database, terminating whatever is still connected to it (nodes of
    /// a failed test). It runs on a thread and runtime of its own, since `Drop` cannot await.
    fn drop(&mut self) {
        let Some((name, server)) = self.postgres.take() else {
            return;
        };
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async {
                let admin = connect(&server).await?;
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .map_err(|error| format!("cannot drop the test database {name}: {error}"))
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("{error}"),
            Err(_) => eprintln!("dropping the test database panicked"),
        }
    }
}

/// A connection to `server`, or why not (with the cause, which the client error's text leaves
/// out).
async fn connect(server: &str) -> Result<tokio_postgres::Client, String> {
    let (client, connection) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .map_err(|error| match std::error::Error::source(&error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        })?;
    tokio::spawn(connection);
    Ok(client)
}
