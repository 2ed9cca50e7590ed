//! `webhookd bench`: the built-in load test of the performance targets, which any user can run against a
//! server of their own.
//!
//! A run, step by step:
//!
//! 1. **Sink.** A receiver sink starts in-process ([`sink`]): it answers 200 at once and
//!    records, per (message, endpoint), when the delivery arrived, and counts duplicates.
//! 2. **Server.** Unless `--url` names one, a `webhookd serve` child process starts on a
//!    temporary database and a free loopback port ([`server`]); its resident memory is read
//!    once it is healthy (idle RSS).
//! 3. **Set-up.** `--apps` applications with `--endpoints` endpoints each, pointing at the sink,
//!    are created through the public API ([`client`]). In backlog mode the one endpoint points at
//!    a closed loopback port, and the server retries only after an hour.
//! 4. **Load.** `--messages` messages are posted through the public API as the SDKs post them,
//!    closed loop (`--concurrency`) or open loop (`--rate`) ([`load`]).
//! 5. **Wait** until every acknowledged message has arrived at each endpoint, or `--timeout`
//!    (backlog mode waits `--settle` instead, with the server busy on its backlog).
//! 6. **Report.** The server's peak memory, CPU time and database size, and the machine's CPU
//!    use, are read ([`measure`]) before the server is stopped with SIGTERM; one JSON object is printed on stdout ([`report`]). The exit code is 0
//!    when nothing failed and nothing was lost, 1 otherwise, 2 for bad flags.
//!
//! `--console N` is another kind of run: it seeds N messages and times the API calls of the
//! console's pages ([`console`]).
//!
//! Traffic goes only to the sink, the local server, or the addresses the user gave.

mod args;
mod console;
mod load;
mod measure;
mod progress;
mod report;
mod server;
mod sink;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use hyper::Method;
use serde_json::{Value, json};
use webhookd_core::signing::Secret;

pub use args::BenchArgs;

use crate::tools::client::{self, Api};
use args::{Pacing, Plan, Target};
use load::{Ledger, Load};
use measure::{Measured, Meter};
use progress::Progress;
use report::Report;
use server::LocalServer;
use sink::{Recorder, Sink};

/// Exit code for bad flags.
const USAGE: u8 = 2;
/// How often the wait for deliveries checks the sink.
const POLL: Duration = Duration::from_millis(5);

/// The one clock of a run: nanoseconds since its start, plus one, so that 0 means "never".
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: Instant,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }
}

/// Runs the bench and prints its report; the exit code says whether it passed.
pub async fn run(args: BenchArgs) -> ExitCode {
    if let Some(messages) = args.console {
        return console(messages, &args).await;
    }
    let plan = match args.plan() {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(USAGE);
        }
    };
    match bench(&plan).await {
        Ok(report) => {
            match serde_json::to_string_pretty(&report) {
                Ok(json) => println!("{json}"),
                Err(error) => eprintln!("error: cannot write the report: {error}"),
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// `--console N`: seeds N messages and times the console's calls (see [`console`]).
async fn console(messages: u64, args: &BenchArgs) -> ExitCode {
    let env = match args::server_env(&args.server_env) {
        Ok(env) if messages > 0 => env,
        Ok(_) => {
            eprintln!("error: invalid --console 0: seed at least one message");
            return ExitCode::from(USAGE);
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(USAGE);
        }
    };
    match console::run(messages, &env, args.keep_data).await {
        Ok(report) => {
            match serde_json::to_string_pretty(&report) {
                Ok(json) => println!("{json}"),
                Err(error) => eprintln!("error: cannot write the report: {error}"),
            }
            if report.passed() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Steps 1 and 2, then the rest against the server; the local server is stopped either way.
async fn bench(plan: &Plan) -> anyhow::Result<Report> {
    let clock = Clock::new();
    let secret = plan.verify.then(Secret::generate);
    let recorder = Arc::new(Recorder::new(
        clock,
        plan.messages,
        plan.deliveries_per_message(),
        secret.clone(),
    ));
    let sink = Sink::start(plan.sink_listen, Arc::clone(&recorder)).await?;
    let run = Run {
        plan,
        clock,
        recorder,
        sink_addr: sink.addr,
        secret,
    };
    let result = match &plan.target {
        Target::Remote { url, token } => {
            let api = Arc::new(Api::new(url, token.as_deref())?);
            run.drive(api, None).await
        }
        Target::Local { keep_data, env } => {
            let mut env = env.clone();
            if plan.backlog
                && !env
                    .iter()
                    .any(|(name, _)| name == "WEBHOOKD_RETRY_SCHEDULE")
            {
                env.push(("WEBHOOKD_RETRY_SCHEDULE".into(), "1h".into()));
            }
            let mut server = LocalServer::start(&env).await?;
            let api = Arc::new(Api::new(&server.url, None)?);
            let result = run.drive(api, Some(&server)).await;
            let stopped = server.stop().await;
            let failed = !matches!(&result, Ok(report) if report.passed()) || stopped.is_err();
            if *keep_data || failed {
                let data = server.keep_data().display().to_string();
                eprintln!(
                    "the server's data directory is kept: {data} (log: {})",
                    server.log().display()
                );
            }
            stopped.and(result)
        }
    };
    sink.stop();
    result
}

/// What steps 3 to 6 share.
struct Run<'a> {
    plan: &'a Plan,
    clock: Clock,
    recorder: Arc<Recorder>,
    sink_addr: SocketAddr,
    secret: Option<Secret>,
}

/// The applications and endpoints created for the run.
struct Setup {
    /// The message URI of each application, in order.
    targets: Vec<hyper::Uri>,
    /// The API path of the first endpoint (backlog mode reads its stats).
    first_endpoint: Option<String>,
}

impl Run<'_> {
    /// Steps 3 to 6 against `api`; `server` is the local child, when there is one.
    async fn drive(&self, api: Arc<Api>, server: Option<&LocalServer>) -> anyhow::Result<Report> {
        let plan = self.plan;
        let meter = Meter::start(server);
        let run_id = client::unique();

        let setup = self.setup(&api, &run_id).await?;
        let ledger = Arc::new(Ledger::new(plan.messages));
        let per_message = plan.deliveries_per_message();
        let progress = Progress::start(
            Arc::clone(&ledger),
            Arc::clone(&self.recorder),
            plan.messages,
            per_message,
        );

        let load = Arc::new(Load::new(
            Arc::clone(&api),
            setup.targets,
            plan.payload_bytes,
            plan.messages,
            run_id,
            self.clock,
            Arc::clone(&ledger),
        ));
        match plan.pacing {
            Pacing::Closed { concurrency } => load.closed_loop(plan.messages, concurrency).await,
            Pacing::Open {
                rate,
                max_in_flight,
            } => load.open_loop(plan.messages, rate, max_in_flight).await,
        }

        let timed_out = if plan.backlog {
            tokio::time::sleep(plan.settle).await;
            false
        } else {
            let expected = ledger.acked() * per_message;
            let deadline = tokio::time::Instant::now() + plan.timeout;
            while self.recorder.distinct() < expected && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(POLL).await;
            }
            self.recorder.distinct() < expected
        };
        progress.finish().await;

        let endpoint_stats = match &setup.first_endpoint {
            Some(path) if plan.backlog => Some(
                api.call(Method::GET, &format!("{path}/stats"), None)
                    .await?,
            ),
            _ => None,
        };
        let measured = meter.finish(server);
        Ok(self.report(&ledger, timed_out, endpoint_stats, measured))
    }

    /// Step 3: the applications and their endpoints.
    async fn setup(&self, api: &Api, run_id: &str) -> anyhow::Result<Setup> {
        let plan = self.plan;
        let receiver = if plan.backlog {
            // Bound and released: nothing listens there, so every attempt is refused.
            let port = server::free_port().context("cannot find a free loopback port")?;
            format!("http://{}", SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        } else {
            match &plan.receiver_url {
                Some(url) => url.as_str().trim_end_matches('/').to_owned(),
                None => format!("http://{}", reachable(self.sink_addr)),
            }
        };
        let mut setup = Setup {
            targets: Vec::with_capacity(plan.apps),
            first_endpoint: None,
        };
        for app in 0..plan.apps {
            let created = api
                .call(
                    Method::POST,
                    "/api/v1/app",
                    Some(&json!({"name": format!("bench {run_id} {app}")})),
                )
                .await?;
            let app_id = id_of(&created)?;
            for endpoint in 0..plan.endpoints {
                let mut body = json!({"url": format!("{receiver}/{app}/{endpoint}"), "description": "webhookd bench"});
                if let Some(secret) = &self.secret {
                    body["secret"] = Value::String(secret.expose());
                }
                if plan.ordered {
                    body["ordered"] = Value::Bool(true);
                }
                if let Some(filter) = &plan.payload_filter {
                    body["payloadFilter"] = Value::String(filter.clone());
                }
                let path = format!("/api/v1/app/{app_id}/endpoint");
                let created = api.call(Method::POST, &path, Some(&body)).await?;
                if setup.first_endpoint.is_none() {
                    setup.first_endpoint = Some(format!("{path}/{}", id_of(&created)?));
                }
            }
            setup
                .targets
                .push(api.uri(&format!("/api/v1/app/{app_id}/msg"))?);
        }
        Ok(setup)
    }

    /// Step 6: the figures of the run.
    fn report(
        &self,
        ledger: &Ledger,
        timed_out: bool,
        endpoint_stats: Option<Value>,
        measured: Measured,
    ) -> Report {
        let plan = self.plan;
        let first_send = ledger.first_send().unwrap_or(0);
        let ingest_seconds = report::seconds(first_send, ledger.last_answer());
        let per_message = plan.deliveries_per_message();
        let deliveries = report::deliveries(ledger, &self.recorder, plan.messages, per_message);
        let delivery_seconds = report::seconds(first_send, self.recorder.last_arrival());
        let (mode, awaited) = match (plan.backlog, per_message) {
            (true, _) => ("backlog", false),
            (false, 0) => ("ingest", true),
            (false, _) => ("end-to-end", true),
        };
        let (concurrency, rate) = match plan.pacing {
            Pacing::Closed { concurrency } => (Some(concurrency), None),
            Pacing::Open { rate, .. } => (None, Some(rate)),
        };
        Report {
            mode,
            messages: plan.messages,
            acked: ledger.acked(),
            failed: ledger.failed(),
            failures: ledger.failures(),
            apps: plan.apps,
            endpoints: plan.endpoints,
            ordered: plan.ordered,
            concurrency,
            rate,
            payload_bytes: plan.payload_bytes,
            ingest_seconds: report::round3(ingest_seconds),
            ingest_rate: report::rate(ledger.acked(), ingest_seconds),
            delivered: awaited.then_some(deliveries.delivered),
            delivered_rate: awaited.then(|| report::rate(deliveries.delivered, delivery_seconds)),
            latency_ms: deliveries.latency,
            lost: awaited.then_some(deliveries.lost),
            duplicates: awaited.then(|| self.recorder.duplicates()),
            unexpected: awaited.then(|| self.recorder.unexpected()),
            bad_signatures: self.recorder.bad_signatures(),
            timed_out,
            server: measured.server,
            endpoint_stats,
            bench: measured.bench,
            machine: measured.machine,
        }
    }
}

/// The sink's address as a local server reaches it: an unspecified address becomes loopback.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port()))
    } else {
        addr
    }
}

fn id_of(created: &Value) -> anyhow::Result<String> {
    created["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("the API answered without an id: {created}"))
}
