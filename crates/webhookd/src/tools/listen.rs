//! `webhookd listen`: receive an application's webhooks on a machine the server cannot reach
//! (a laptop), by polling a polling endpoint and forwarding each message to a local URL.
//!
//! 1. **The endpoint.** `--endpoint` names a polling endpoint (`poll:`) of `--app`; `--create`
//!    makes a new one; without either, the endpoint with the uid `webhookd-listen` is used,
//!    made at the first run. A new endpoint gets an HMAC secret and `--event-types`.
//! 2. **The secret** is read from the API and printed, so the local code verifies with it.
//! 3. **The loop** reads the next messages with the consumer `--consumer-id` (default
//!    `webhookd-listen`, so a restart resumes) without moving its offset (`peek`), forwards
//!    each in order as a POST signed as webhookd signs deliveries (`webhook-id`,
//!    `webhook-timestamp`, `webhook-signature`), prints one line per forward, and then moves
//!    the offset past the batch (`seek` to the answer's iterator).
//!
//! **Retries.** A forward that gets no answer, a 5xx, 408 or 429 is printed and tried again,
//! after 0.5 s doubling to 30 s, until it succeeds: the offset never moves past a message that
//! was not forwarded. Any other answer (2xx, or a 4xx: the local code refused it) is final.
//! **Stopping** (Ctrl-C, SIGTERM) ends the wait or the retry in progress and moves the offset
//! past the messages already forwarded, so the next run starts with the first one that was
//! not. Only a process killed between a forward and that move forwards a message twice.

use std::future::Future;
use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use url::Url;
use webhookd_core::signing::{Secret, SignatureType};
use webhookd_core::time::now;

use crate::tools::client::Api;

/// The uid of the endpoint used without `--endpoint` or `--create`, and the default consumer.
pub const DEFAULT_NAME: &str = "webhookd-listen";
/// Messages read at a time.
const BATCH: usize = 50;
/// The pause when the stream has nothing new.
const IDLE_PAUSE: Duration = Duration::from_secs(1);
/// The first and the longest pause between tries of a failed forward.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one forward may take.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// The webhookd server's API address, `http://HOST:PORT`.
    #[arg(long, value_name = "URL")]
    url: Url,
    /// An API token (or an application token that may manage endpoints and read secrets).
    #[arg(long, env = "WEBHOOKD_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// The application (id or uid) whose messages to receive.
    #[arg(long)]
    app: String,
    /// Where to POST each message, e.g. http://localhost:3000/hook.
    #[arg(long, value_name = "URL")]
    forward: Url,
    /// The polling endpoint (id or uid) to read; by default the one with the uid
    /// `webhookd-listen`, made when missing.
    #[arg(long, value_name = "EP_ID_OR_UID", conflicts_with = "create")]
    endpoint: Option<String>,
    /// Make a new polling endpoint for this run (its id is printed, for `--endpoint`).
    #[arg(long)]
    create: bool,
    /// The consumer whose offset the server keeps; a restart with the same id resumes.
    #[arg(long, default_value = DEFAULT_NAME)]
    consumer_id: String,
    /// The event types a new endpoint receives (comma-separated); all by default.
    #[arg(long, value_delimiter = ',')]
    event_types: Vec<String>,
}

/// One message as the poller answers it.
struct Polled {
    id: String,
    event_type: String,
    body: Bytes,
}

/// Runs until `shutdown` completes (or an API call fails for good).
pub async fn run(
    args: ListenArgs,
    shutdown: impl Future<Output = ()>,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if args.url.scheme() != "http" || args.forward.scheme() != "http" {
        bail!("--url and --forward must be http:// URLs");
    }
    let api = Api::new(&args.url, args.token.as_deref())?;
    let app = &args.app;
    let endpoint = endpoint(&api, &args).await?;
    let endpoint_id = endpoint["id"].as_str().unwrap_or_default().to_owned();
    if endpoint["url"] != "poll:" {
        bail!("endpoint {endpoint_id} is not a polling endpoint (its URL is not `poll:`)");
    }
    let key = api
        .call(
            Method::GET,
            &format!("/api/v1/app/{app}/endpoint/{endpoint_id}/secret"),
            None,
        )
        .await?;
    let key = key["key"].as_str().unwrap_or_default();
    let secret = Secret::parse(key)
        .ok()
        .filter(|secret| secret.signature_type() == SignatureType::Hmac)
        .context(
            "the endpoint signs with ed25519, whose secret key the API does not show; \
             use an endpoint with an HMAC (whsec_) secret",
        )?;
    writeln!(
        out,
        "Forwarding messages of {app} (polling endpoint {endpoint_id}, consumer {}) to {}",
        args.consumer_id, args.forward
    )?;
    writeln!(out, "Signing secret: {}", secret.expose())?;
    out.flush()?;

    let forwarder = Forwarder::new(&args.forward, secret);
    let consumer = format!(
        "/api/v1/app/{app}/poller/{endpoint_id}/consumer/{}",
        args.consumer_id
    );
    let next_batch = format!("{consumer}?peek=true&limit={BATCH}");
    tokio::pin!(shutdown);
    loop {
        let page = tokio::select! {
            () = &mut shutdown => return Ok(()),
            page = api.call(Method::GET, &next_batch, None) => page?,
        };
        let messages = polled(&page)?;
        for (forwarded, message) in messages.iter().enumerate() {
            let done = tokio::select! {
                () = &mut shutdown => false,
                () = forwarder.forward_until_done(message, out) => true,
            };
            if !done {
                // Keep what was forwarded: the offset moves past those messages only.
                if forwarded > 0 {
                    let prefix = api
                        .call(
                            Method::GET,
                            &format!("{consumer}?peek=true&limit={forwarded}"),
                            None,
                        )
                        .await?;
                    seek(&api, &consumer, &prefix["iterator"]).await?;
                }
                return Ok(());
            }
        }
        if !messages.is_empty() || page["done"] != true {
            seek(&api, &consumer, &page["iterator"]).await?;
        } else {
            tokio::select! {
                () = &mut shutdown => return Ok(()),
                () = tokio::time::sleep(IDLE_PAUSE) => {}
            }
        }
    }
}

/// The endpoint to read, made when asked for or missing.
async fn endpoint(api: &Api, args: &ListenArgs) -> anyhow::Result<Value> {
    let app = &args.app;
    let new = |uid: Option<&str>| {
        let mut body = json!({
            "url": "poll:",
            "description": "webhookd listen",
            "secret": Secret::generate().expose(),
        });
        if let Some(uid) = uid {
            body["uid"] = json!(uid);
        }
        if !args.event_types.is_empty() {
            body["filterTypes"] = json!(args.event_types);
        }
        body
    };
    let path = format!("/api/v1/app/{app}/endpoint");
    if args.create {
        return api.call(Method::POST, &path, Some(&new(None))).await;
    }
    let key = args.endpoint.as_deref().unwrap_or(DEFAULT_NAME);
    match api.call(Method::GET, &format!("{path}/{key}"), None).await {
        Ok(endpoint) => Ok(endpoint),
        Err(error) if args.endpoint.is_none() && error.to_string().contains("404") => {
            api.call(Method::POST, &path, Some(&new(Some(DEFAULT_NAME))))
                .await
        }
        Err(error) => Err(error),
    }
}

/// The messages of a poller answer.
fn polled(page: &Value) -> anyhow::Result<Vec<Polled>> {
    let data = page["data"]
        .as_array()
        .context("the poller answered no `data`")?;
    data.iter()
        .map(|message| {
            Ok(Polled {
                id: message["id"].as_str().unwrap_or_default().to_owned(),
                event_type: message["eventType"].as_str().unwrap_or_default().to_owned(),
                body: Bytes::from(serde_json::to_vec(&message["payload"])?),
            })
        })
        .collect()
}

async fn seek(api: &Api, consumer: &str, iterator: &Value) -> anyhow::Result<()> {
    api.call(
        Method::POST,
        &format!("{consumer}/seek"),
        Some(&json!({ "iterator": iterator })),
    )
    .await
    .map(drop)
}

/// Signs and POSTs messages to the local URL.
struct Forwarder {
    http: Client<HttpConnector, Full<Bytes>>,
    target: String,
    secret: Secret,
}

/// How one try of a forward ended.
enum Tried {
    /// Final: the local code answered this.
    Answered(StatusCode),
    /// Worth another try: the reason.
    Failed(String),
}

impl Forwarder {
    fn new(target: &Url, secret: Secret) -> Self {
        Self {
            http: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            target: target.to_string(),
            secret,
        }
    }

    /// Forwards `message`, trying again with backoff until the local code answers for good.
    async fn forward_until_done(&self, message: &Polled, out: &mut impl Write) {
        let mut backoff = FIRST_BACKOFF;
        loop {
            let started = Instant::now();
            let tried = self.try_once(message).await;
            let millis = started.elapsed().as_millis();
            let at = now()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            let line = match &tried {
                Tried::Answered(status) => format!(
                    "{at} {} {} -> {} ({millis} ms)",
                    message.event_type,
                    message.id,
                    status.as_u16()
                ),
                Tried::Failed(reason) => format!(
                    "{at} {} {} -> {reason} ({millis} ms); trying again in {:.1} s",
                    message.event_type,
                    message.id,
                    backoff.as_secs_f64()
                ),
            };
            // A closed output is no reason to stop forwarding.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
            if let Tried::Answered(_) = tried {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn try_once(&self, message: &Polled) -> Tried {
        let timestamp = now().unix_timestamp();
        let signature = self.secret.sign(&message.id, timestamp, &message.body);
        let request = Request::builder()
            .method(Method::POST)
            .uri(&self.target)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", &message.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(Full::new(message.body.clone()));
        let request = match request {
            Ok(request) => request,
            Err(error) => return Tried::Failed(format!("cannot make the request: {error}")),
        };
        match tokio::time::timeout(FORWARD_TIMEOUT, self.http.request(request)).await {
            Err(_) => Tried::Failed("timed out".into()),
            Ok(Err(error)) => Tried::Failed(format!("no answer ({error})")),
            Ok(Ok(response)) => {
                let status = response.status();
                let _ = response.into_body().collect().await;
                if status.is_server_error()
                    || status == StatusCode::REQUEST_TIMEOUT
                    || status == StatusCode::TOO_MANY_REQUESTS
                {
                    Tried::Failed(status.as_u16().to_string())
                } else {
                    Tried::Answered(status)
                }
            }
        }
    }
}
