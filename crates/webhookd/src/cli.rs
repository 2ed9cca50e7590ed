//! The command line: one `match` that shows the whole program.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

use crate::commands::secrets::SecretsAction;
use crate::commands::token::{RemoteArgs, TokenAction};
use crate::commands::{secrets, token};
use crate::config::{self, ConfigArgs};
use crate::tools::bin::BinArgs;
use crate::{run, telemetry, tools};

/// Exit code for bad configuration or arguments.
const USAGE: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "webhookd",
    version,
    about = "Self-hosted webhook dispatching: store, sign, deliver, retry."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the API and the delivery engine (applies pending migrations first).
    Serve {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// A local receiver that prints and verifies each webhook it gets.
    Bin(BinArgs),
    /// Manages API tokens in the configured database, or through a running server (`--url`).
    Token {
        #[command(subcommand)]
        action: TokenAction,
        #[command(flatten)]
        remote: RemoteArgs,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Manages endpoint secrets at rest (WEBHOOKD_ENCRYPTION_KEY).
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// Applies pending schema migrations to the configured database and exits.
    Migrate {
        #[command(flatten)]
        config: ConfigArgs,
    },
    /// The built-in load test: starts a receiver sink (and a server unless `--url`), sends
    /// messages through the public API and prints one JSON report.
    Bench(tools::bench::BenchArgs),
    /// Receives an application's webhooks where the server cannot reach: polls a polling
    /// endpoint and forwards each message, signed, to a local URL.
    Listen(tools::listen::ListenArgs),
    /// Prints the version.
    Version,
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(dispatch(cli.command))
}

fn load(args: &ConfigArgs) -> Result<config::Config, ExitCode> {
    config::load(args).map_err(|error| {
        eprintln!("error: {error}");
        ExitCode::from(USAGE)
    })
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            if error.downcast_ref::<run::StartRefused>().is_some() {
                ExitCode::from(USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn dispatch(command: Command) -> ExitCode {
    match command {
        Command::Serve { config } => {
            let config = match load(&config) {
                Ok(config) => config,
                Err(code) => return code,
            };
            let _guard = telemetry::init_logging(config.log_format);
            let listener = match TcpListener::bind(config.listen).await {
                Ok(listener) => listener,
                Err(error) => {
                    eprintln!("error: cannot listen on {}: {error}", config.listen);
                    return ExitCode::FAILURE;
                }
            };
            report(run::run(config, listener, shutdown_signal()).await)
        }
        Command::Bin(args) => {
            let validated = match tools::bin::validate(&args) {
                Ok(validated) => validated,
                Err(error) => {
                    eprintln!("error: {error:#}");
                    return ExitCode::from(USAGE);
                }
            };
            let listener = match TcpListener::bind(validated.listen).await {
                Ok(listener) => listener,
                Err(error) => {
                    eprintln!("error: cannot listen on {}: {error}", validated.listen);
                    return ExitCode::FAILURE;
                }
            };
            report(tools::bin::run(args, listener, shutdown_signal(), std::io::stdout()).await)
        }
        Command::Token {
            action,
            remote,
            config,
        } => {
            let config = match load(&config) {
                Ok(config) => config,
                Err(code) => return code,
            };
            report(token::dispatch(&config, remote, action, &mut std::io::stdout()).await)
        }
        Command::Secrets { action, config } => {
            let config = match load(&config) {
                Ok(config) => config,
                Err(code) => return code,
            };
            let result = async {
                let store = run::open_store(&config)?;
                secrets::run(store.as_ref(), action, &mut std::io::stdout()).await
            };
            report(result.await)
        }
        Command::Migrate { config } => {
            let config = match load(&config) {
                Ok(config) => config,
                Err(code) => return code,
            };
            report(run::open_store(&config).map(|_| println!("the database schema is up to date")))
        }
        Command::Bench(args) => tools::bench::run(args).await,
        Command::Listen(args) => {
            report(tools::listen::run(args, shutdown_signal(), &mut std::io::stdout()).await)
        }
        Command::Version => {
            println!("webhookd {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return interrupt.await.unwrap_or_default(),
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    interrupt.await.unwrap_or_default();
    tracing::info!("shutting down");
}
