//! The flags of `webhookd bench`, and their checked form, the [`Plan`] of a run.
//!
//! Flags are parsed by clap into [`BenchArgs`] and validated once by [`BenchArgs::plan`]; past
//! that, the run reads only the plan. A bad flag is a one-line error naming it (exit code 2).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{anyhow, bail};
use url::Url;
use webhookd_core::time::parse_duration;

/// The flags of `webhookd bench`, as clap parses them.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Messages to send.
    #[arg(long, default_value_t = 20_000)]
    pub messages: u64,
    /// Senders, each posting back to back on its own keep-alive connection (closed loop).
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Offered load in messages per second (open loop, paced by a timer); replaces the
    /// closed loop of `--concurrency`.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Requests in flight at most in the open loop (`--rate`).
    #[arg(long, default_value_t = 4096)]
    pub max_in_flight: usize,
    /// Applications; messages go to them in turn.
    #[arg(long, default_value_t = 1)]
    pub apps: usize,
    /// Endpoints per application; 0 measures ingest alone (nothing is awaited at the sink).
    #[arg(long, default_value_t = 1)]
    pub endpoints: usize,
    /// Create the endpoints ordered (`"ordered": true`: FIFO, one delivery in flight per
    /// endpoint), to measure what ordering costs.
    #[arg(long)]
    pub ordered: bool,
    /// A payload filter (CEL) set on every endpoint, to measure fan-out with filters. It must
    /// let every message through (e.g. `payload.seq >= 0`): the run awaits every delivery.
    #[arg(long, value_name = "EXPR")]
    pub payload_filter: Option<String>,
    /// Size of each message payload in bytes (approximately: `{"seq":N,"pad":"…"}`).
    #[arg(long, default_value_t = 100)]
    pub payload_bytes: usize,
    /// How long to wait for the deliveries once every message is sent (e.g. `120s`).
    #[arg(long, default_value = "120s")]
    pub timeout: String,
    /// Backlog mode: N messages to one dead endpoint; reports the server's memory and database
    /// size with N deliveries pending.
    #[arg(long, value_name = "N")]
    pub backlog: Option<u64>,
    /// In backlog mode, how long to keep watching the server's memory after the last message
    /// is acknowledged (e.g. `10s`).
    #[arg(long, default_value = "10s")]
    pub settle: String,
    /// Console mode: seed N messages into the local server's database through the store, then
    /// time the API calls the console makes for its pages.
    #[arg(long, value_name = "N", conflicts_with_all = ["backlog", "url", "rate"])]
    pub console: Option<u64>,
    /// Target a running server (`http://host:port`) instead of starting one.
    #[arg(long)]
    pub url: Option<String>,
    /// The API token for `--url`.
    #[arg(long, requires = "url")]
    pub token: Option<String>,
    /// How the server reaches the sink, when not at the sink's own address
    /// (`http://host:port`; endpoints are `<receiver-url>/<app>/<endpoint>`).
    #[arg(long)]
    pub receiver_url: Option<String>,
    /// Address the receiver sink listens on.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub sink_listen: SocketAddr,
    /// Verify the signature of every delivery at the sink (costs CPU on the shared cores).
    #[arg(long)]
    pub verify: bool,
    /// Keep the local server's temporary data directory (database and log).
    #[arg(long)]
    pub keep_data: bool,
    /// A `WEBHOOKD_…=value` setting for the local server (repeatable), e.g.
    /// `--server-env WEBHOOKD_MAX_IN_FLIGHT=2048`.
    #[arg(long, value_name = "NAME=VALUE")]
    pub server_env: Vec<String>,
}

/// How messages are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pacing {
    /// `concurrency` senders, each back to back.
    Closed { concurrency: usize },
    /// `rate` messages per second on a fixed schedule, at most `max_in_flight` outstanding.
    Open { rate: f64, max_in_flight: usize },
}

/// Where the server is.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A child process of this binary on a temporary database.
    Local {
        keep_data: bool,
        env: Vec<(String, String)>,
    },
    /// A server the user runs.
    Remote { url: Url, token: Option<String> },
}

/// A checked run of the bench.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) messages: u64,
    pub(crate) pacing: Pacing,
    pub(crate) apps: usize,
    pub(crate) endpoints: usize,
    /// The endpoints deliver in order.
    pub(crate) ordered: bool,
    pub(crate) payload_filter: Option<String>,
    pub(crate) payload_bytes: usize,
    pub(crate) timeout: Duration,
    /// Backlog mode: the endpoint is dead and nothing is awaited at the sink.
    pub(crate) backlog: bool,
    pub(crate) settle: Duration,
    pub(crate) target: Target,
    pub(crate) receiver_url: Option<Url>,
    pub(crate) sink_listen: SocketAddr,
    pub(crate) verify: bool,
}

impl Plan {
    /// Deliveries each acknowledged message should make at the sink.
    pub(crate) fn deliveries_per_message(&self) -> u64 {
        if self.backlog {
            0
        } else {
            self.endpoints as u64
        }
    }
}

impl BenchArgs {
    /// Checks the flags; the error names the flag at fault.
    pub(crate) fn plan(&self) -> anyhow::Result<Plan> {
        let messages = self.backlog.unwrap_or(self.messages);
        if messages == 0 {
            bail!("invalid --messages 0: send at least one message");
        }
        if self.apps == 0 {
            bail!("invalid --apps 0: at least one application is needed");
        }
        let pacing = match self.rate {
            Some(rate) if !(rate.is_finite() && rate > 0.0) => {
                bail!("invalid --rate {rate}: a positive number of messages per second")
            }
            Some(rate) => {
                if self.max_in_flight == 0 {
                    bail!("invalid --max-in-flight 0: at least one request must be allowed");
                }
                Pacing::Open {
                    rate,
                    max_in_flight: self.max_in_flight,
                }
            }
            None if self.concurrency == 0 => bail!("invalid --concurrency 0: at least one sender"),
            None => Pacing::Closed {
                concurrency: self.concurrency,
            },
        };
        let timeout =
            parse_duration(&self.timeout).map_err(|error| anyhow!("invalid --timeout: {error}"))?;
        let settle =
            parse_duration(&self.settle).map_err(|error| anyhow!("invalid --settle: {error}"))?;
        let target = match &self.url {
            Some(url) => Target::Remote {
                url: http_url("--url", url)?,
                token: self.token.clone(),
            },
            None => Target::Local {
                keep_data: self.keep_data,
                env: server_env(&self.server_env)?,
            },
        };
        if self.url.is_some() && !self.server_env.is_empty() {
            bail!("--server-env applies to the local server only, not to --url");
        }
        if self.url.is_some() && self.backlog.is_some() {
            bail!("--backlog measures the local server's memory; it cannot be combined with --url");
        }
        let receiver_url = self
            .receiver_url
            .as_deref()
            .map(|url| http_url("--receiver-url", url))
            .transpose()?;
        Ok(Plan {
            messages,
            pacing,
            apps: self.apps,
            endpoints: if self.backlog.is_some() {
                1
            } else {
                self.endpoints
            },
            ordered: self.ordered,
            payload_filter: self.payload_filter.clone(),
            payload_bytes: self.payload_bytes,
            timeout,
            backlog: self.backlog.is_some(),
            settle,
            target,
            receiver_url,
            sink_listen: self.sink_listen,
            verify: self.verify,
        })
    }
}

/// An `http://` URL with a host; the bench speaks plain HTTP/1.1.
fn http_url(flag: &str, text: &str) -> anyhow::Result<Url> {
    let url = Url::parse(text).map_err(|error| anyhow!("invalid {flag} {text:?}: {error}"))?;
    if url.scheme() != "http" || url.host().is_none() {
        bail!("invalid {flag} {text:?}: the bench speaks plain HTTP; give http://host:port");
    }
    Ok(url)
}

/// The `--server-env` pairs; only `WEBHOOKD_` settings and `RUST_LOG`.
pub(crate) fn server_env(pairs: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| {
            let (name, value) = pair
                .split_once('=')
                .ok_or_else(|| anyhow!("invalid --server-env {pair:?}: write NAME=VALUE"))?;
            if !(name.starts_with("WEBHOOKD_") || name == "RUST_LOG") {
                bail!("invalid --server-env {pair:?}: only WEBHOOKD_… settings and RUST_LOG");
            }
            Ok((name.to_owned(), value.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn plan(flags: &[&str]) -> anyhow::Result<Plan> {
        let mut argv = vec!["bench"];
        argv.extend_from_slice(flags);
        Wrapper::try_parse_from(argv)?.args.plan()
    }

    #[test]
    fn defaults_are_a_closed_loop_to_one_endpoint() {
        let plan = plan(&[]).expect("the defaults are valid");
        assert_eq!(plan.messages, 20_000);
        assert_eq!(plan.pacing, Pacing::Closed { concurrency: 64 });
        assert_eq!((plan.apps, plan.endpoints), (1, 1));
        assert_eq!(plan.timeout, Duration::from_secs(120));
        assert!(matches!(
            plan.target,
            Target::Local {
                keep_data: false,
                ..
            }
        ));
    }

    #[test]
    fn rate_makes_an_open_loop() {
        let plan = plan(&["--rate", "1000"]).expect("valid");
        assert_eq!(
            plan.pacing,
            Pacing::Open {
                rate: 1000.0,
                max_in_flight: 4096
            }
        );
    }

    #[test]
    fn backlog_is_one_dead_endpoint_and_nothing_awaited() {
        let plan = plan(&["--backlog", "500", "--endpoints", "3"]).expect("valid");
        assert_eq!(plan.messages, 500);
        assert_eq!(plan.endpoints, 1);
        assert_eq!(plan.deliveries_per_message(), 0);
    }

    #[test]
    fn bad_flags_name_themselves() {
        for (flags, named) in [
            (&["--rate", "0"][..], "--rate"),
            (&["--messages", "0"][..], "--messages"),
            (&["--timeout", "soon"][..], "--timeout"),
            (&["--url", "https://example.test"][..], "--url"),
            (&["--server-env", "PATH=/"][..], "--server-env"),
        ] {
            let error = plan(flags).expect_err("refused").to_string();
            assert!(error.contains(named), "{error:?} names {named}");
        }
    }
}
