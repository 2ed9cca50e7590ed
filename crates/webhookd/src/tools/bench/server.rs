//! The local server under test: `webhookd serve`, a child process of this same binary.
//!
//! A child rather than a task, so that its memory and CPU can be read from `/proc/<pid>`
//! apart from the load generator's and the sink's. It runs on a temporary data directory
//! (SQLite database and its log) and a free loopback port, with the default log level and
//! durability. Every `WEBHOOKD_…` variable and `RUST_LOG` of the bench's own environment is
//! removed from the child's, so that a run measures the defaults; `--server-env` sets some on
//! purpose.
//!
//! Lifecycle: [`LocalServer::start`] spawns it and waits for `GET /api/v1/health` → 204;
//! [`LocalServer::stop`] sends SIGTERM and waits for it to exit (SIGKILL after a deadline). If
//! the bench fails before that, the child is killed when its handle is dropped.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tempfile::TempDir;
use tokio::process::{Child, Command};
use tokio::time::Instant;
use url::Url;

use crate::tools::client::Api;

/// How long the server may take to answer its health check.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long the server may take to shut down before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(30);

/// A running child server and its data directory.
pub(crate) struct LocalServer {
    child: Child,
    pid: u32,
    data: Option<TempDir>,
    data_path: PathBuf,
    pub(crate) url: Url,
}

impl LocalServer {
    /// Starts `webhookd serve` on a fresh data directory and waits until it is healthy.
    pub(crate) async fn start(env: &[(String, String)]) -> anyhow::Result<Self> {
        let data = tempfile::Builder::new()
            .prefix("webhookd-bench-")
            .tempdir()
            .context("cannot create the temporary data directory")?;
        Self::start_in(data, env).await
    }

    /// Starts `webhookd serve` on the database in `data` (which may already hold data) and
    /// waits until it is healthy.
    pub(crate) async fn start_in(data: TempDir, env: &[(String, String)]) -> anyhow::Result<Self> {
        let data_path = data.path().to_owned();
        let port = free_port().context("cannot find a free loopback port")?;
        let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let log = std::fs::File::create(log_path(&data_path))
            .context("cannot create the server's log file")?;
        let exe = std::env::current_exe().context("cannot find this program's executable")?;

        let mut command = Command::new(exe);
        command.arg("serve");
        for (name, _) in std::env::vars_os() {
            let text = name.to_string_lossy();
            if text.starts_with("WEBHOOKD_") || text == "RUST_LOG" {
                command.env_remove(&name);
            }
        }
        command
            .env(
                "WEBHOOKD_DATABASE_URL",
                format!("sqlite://{}", database_path(&data_path).display()),
            )
            .env("WEBHOOKD_LISTEN", listen.to_string())
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(
                log.try_clone()
                    .context("cannot share the server's log file")?,
            )
            .stderr(log)
            .kill_on_drop(true);
        let child = command.spawn().context("cannot start `webhookd serve`")?;
        let pid = child.id().context("the server exited at once")?;
        let url =
            Url::parse(&format!("http://{listen}")).context("the listen address makes no URL")?;
        let mut server = Self {
            child,
            pid,
            data: Some(data),
            data_path,
            url,
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let api = Api::new(&self.url, None)?;
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().context("cannot watch the server")? {
                bail!(
                    "the server exited during start-up ({status}); its log: {}",
                    self.log().display()
                );
            }
            if api.healthy().await {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server was not healthy within {START_DEADLINE:?}; its log: {}",
                    self.log().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The server's log file.
    pub(crate) fn log(&self) -> PathBuf {
        log_path(&self.data_path)
    }

    /// The size of the database file and its write-ahead log, in bytes.
    pub(crate) fn database_bytes(&self) -> u64 {
        let database = database_path(&self.data_path);
        let mut wal = database.clone().into_os_string();
        wal.push("-wal");
        [database, PathBuf::from(wal)]
            .iter()
            .filter_map(|path| std::fs::metadata(path).ok())
            .map(|metadata| metadata.len())
            .sum()
    }

    /// Keeps the data directory after the bench (for `--keep-data`, or to read the log of a
    /// failed run) and answers its path.
    pub(crate) fn keep_data(&mut self) -> &Path {
        if let Some(data) = self.data.take() {
            // Leaks the directory on purpose: it is no longer removed on drop.
            let _ = data.keep();
        }
        &self.data_path
    }

    /// Sends SIGTERM and waits for the server to exit; kills it after a deadline.
    pub(crate) async fn stop(&mut self) -> anyhow::Result<()> {
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .context("cannot run `kill`")?;
        if signalled.success()
            && let Ok(exited) = tokio::time::timeout(STOP_DEADLINE, self.child.wait()).await
        {
            exited.context("cannot wait for the server")?;
            return Ok(());
        }
        self.child.kill().await.context("cannot kill the server")?;
        bail!("the server did not stop within {STOP_DEADLINE:?} of SIGTERM and was killed")
    }
}

/// The SQLite database of a data directory.
pub(crate) fn database_path(data: &Path) -> PathBuf {
    data.join("webhookd.db")
}

fn log_path(data: &Path) -> PathBuf {
    data.join("server.log")
}

/// A loopback port that was free a moment ago: bound, then released.
pub(crate) fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
