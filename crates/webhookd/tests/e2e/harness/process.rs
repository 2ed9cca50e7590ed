//! The real binary as a child process, for what only a process can show: a SIGKILL, a
//! SIGTERM, exit codes and the command line.
//!
//! Children inherit no `WEBHOOKD_*` variable from the test's environment (so a developer's
//! settings cannot change a test), are killed if the test drops them, and log into
//! `webhookd-<port>.log` in their [`TestDatabase`]'s directory, which failure messages quote.
//! Several children may share one database (PostgreSQL), each on a port of its own.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::ops::Deref;
use std::path::PathBuf;
use std::process::{ExitStatus, Output, Stdio};

use reqwest::StatusCode;
use tokio::process::{Child, Command};

use super::api::Api;
use super::database::TestDatabase;
use super::server::settings;
use super::wait::{DEADLINE, eventually};

/// `webhookd` with a clean environment.
pub(crate) fn webhookd() -> Command {
    clean(Command::new(env!("CARGO_BIN_EXE_webhookd")))
}

/// `webhookd` under libfaketime (Debian's `faketime`), its wall clock shifted by `offset`
/// (`"+60s"`); its monotonic clock, which timers use, is left alone. The library is preloaded
/// into `webhookd` itself, as the `faketime` command would, but without that command's own
/// process in between: the child is `webhookd`, so killing it (or dropping it) ends the node
/// instead of leaving it running, orphaned, after the test.
pub(crate) fn webhookd_with_clock(offset: &str) -> Command {
    let mut command = webhookd();
    command
        .env("LD_PRELOAD", FAKETIME_LIBRARY)
        .env("FAKETIME", offset)
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    command
}

/// libfaketime as Debian installs it (`$LIB` is the dynamic loader's: the library directory
/// of the process's architecture).
const FAKETIME_LIBRARY: &str = "/usr/$LIB/faketime/libfaketime.so.1";

/// `webhookd` started by `sh` after `ulimit -n open_files` (soft and hard limit), as on a host
/// that allows a process few open files.
pub(crate) fn webhookd_with_open_files(open_files: u64) -> Command {
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(format!("ulimit -n {open_files} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_webhookd"));
    clean(command)
}

/// `command` with no `WEBHOOKD_*` variable from the test's environment, killed on drop.
fn clean(mut command: Command) -> Command {
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WEBHOOKD_") {
            command.env_remove(name);
        }
    }
    command.stdin(Stdio::null()).kill_on_drop(true);
    command
}

/// Runs `webhookd args…` with these environment variables to completion.
pub(crate) async fn run_cli(args: &[&str], env: &BTreeMap<String, String>) -> Output {
    let child = webhookd()
        .args(args)
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("webhookd starts");
    match tokio::time::timeout(DEADLINE, child.wait_with_output()).await {
        Ok(output) => output.expect("webhookd's output"),
        Err(_) => panic!(
            "`webhookd {}` did not exit within {DEADLINE:?}",
            args.join(" ")
        ),
    }
}

/// A loopback port that was free a moment ago, for a child that must keep its port across a
/// restart.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.local_addr().expect("a local address").port()
}

/// `webhookd serve` as a child process. Dereferences to its [`Api`].
pub(crate) struct ServerProcess {
    child: Child,
    api: Api,
    listen: String,
    log: PathBuf,
}

impl Deref for ServerProcess {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

impl Drop for ServerProcess {
    /// A failing test shows what the node logged (the data directory may be gone afterwards).
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- log of the webhookd child process on {} ---\n{}",
                self.listen,
                self.log()
            );
        }
    }
}

impl ServerProcess {
    /// Starts `webhookd serve` on `127.0.0.1:port` and `database`, with the test defaults and
    /// these overrides, and waits until it answers its health check.
    pub(crate) async fn start(
        database: &TestDatabase,
        port: u16,
        overrides: &[(&str, &str)],
    ) -> Self {
        Self::start_with(webhookd(), database, port, overrides).await
    }

    /// [`ServerProcess::start`] with this command (e.g. [`webhookd_with_open_files`]).
    pub(crate) async fn start_with(
        mut command: Command,
        database: &TestDatabase,
        port: u16,
        overrides: &[(&str, &str)],
    ) -> Self {
        let listen = format!("127.0.0.1:{port}");
        let mut env = settings(database.url(), overrides);
        env.insert("WEBHOOKD_LISTEN".to_owned(), listen.clone());
        let log = database.dir().join(format!("webhookd-{port}.log"));
        let open_log = || {
            std::fs::File::options()
                .create(true)
                .append(true)
                .open(&log)
                .expect("the log file")
        };
        let child = command
            .arg("serve")
            .envs(&env)
            .stdout(open_log())
            .stderr(open_log())
            .spawn()
            .expect("webhookd starts");
        let mut server = Self {
            child,
            api: Api::new(format!("http://{listen}")),
            listen,
            log,
        };
        server.wait_until_healthy().await;
        server
    }

    async fn wait_until_healthy(&mut self) {
        let (child, api) = (&mut self.child, &self.api);
        eventually("the child webhookd to answer GET /api/v1/health", || {
            // Its log is printed as the test fails (see `Drop`).
            if let Ok(Some(status)) = child.try_wait() {
                panic!("webhookd exited with {status} at start");
            }
            async move {
                match api
                    .try_request(reqwest::Method::GET, "/api/v1/health", None)
                    .await
                {
                    Ok((StatusCode::NO_CONTENT, _)) => Ok(()),
                    Ok((status, body)) => Err(format!("{status} {body}")),
                    Err(error) => Err(error.to_string()),
                }
            }
        })
        .await;
    }

    /// The process's id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id().expect("the child still runs")
    }

    /// Kills the process with SIGKILL and waits for it to be gone.
    pub(crate) async fn kill(mut self) {
        self.child.kill().await.expect("SIGKILL reaches the child");
    }

    /// Sends SIGTERM and waits for the process to exit; answers its exit status.
    pub(crate) async fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .await
            .expect("`kill` runs");
        assert!(status.success(), "`kill -TERM` failed: {status}");
        match tokio::time::timeout(DEADLINE, self.child.wait()).await {
            Ok(status) => status.expect("the child's exit status"),
            Err(_) => panic!(
                "webhookd did not exit within {DEADLINE:?} of SIGTERM; its log:\n{}",
                self.log()
            ),
        }
    }

    /// Everything the process (and its predecessors on this port and database) logged.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
