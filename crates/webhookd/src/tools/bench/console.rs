//! `webhookd bench --console N`: how fast the API answers the calls the console makes for its
//! pages, with N messages stored.
//!
//! 1. **Seed.** The local server's database (SQLite in a temporary directory, or the
//!    PostgreSQL database that `--server-env WEBHOOKD_DATABASE_URL=postgres://…` names) is
//!    filled through the store, in-process, before the server starts: 100 applications, one
//!    of which (`console`) has 10 endpoints and N messages spread over the last 47 hours
//!    (five event types, two channels and a rare one, a tag per customer and a `vip` tag on
//!    1 %), each with one delivery attempt recorded as the engine records them (0.1 % failed).
//!    Messages are created by 32 writers at once, so the store group-commits them.
//! 2. **Serve.** `webhookd serve` starts on that database as a child process.
//! 3. **Time.** Each call is made once to warm up, then [`REPEAT`] times in a row over one
//!    loopback keep-alive connection; the report gives the median and the slowest, in
//!    milliseconds, measured at the client (so they include the loopback round trip: an
//!    upper bound of the server's time).
//!
//! The report is one JSON object; the run passes when every call's median is within
//! [`TARGET_MS`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::Method;
use serde::Serialize;
use time::OffsetDateTime;
use webhookd_core::model::{Application, Attempt, DeliveryStatus, Endpoint, Message, TriggerType};
use webhookd_core::time::{format_timestamp, now};
use webhookd_core::{AppId, AttemptId, EndpointId, MessageId};
use webhookd_store::postgres::PostgresStore;
use webhookd_store::sqlite::SqliteStore;
use webhookd_store::{AttemptRecord, DeliveryUpdate, Store};

use super::server::{LocalServer, database_path};
use crate::tools::client::Api;

/// Timed repetitions of each call.
const REPEAT: usize = 10;
/// The console's target: a page in at most 100 ms of server time.
const TARGET_MS: f64 = 100.0;
/// Concurrent writers while seeding.
const WRITERS: usize = 32;
/// Messages per writer step (and per recorded batch of attempts).
const CHUNK: u64 = 500;
const EVENT_TYPES: [&str; 5] = [
    "invoice.paid",
    "invoice.failed",
    "user.created",
    "user.deleted",
    "order.shipped",
];

/// The result of a console run.
#[derive(Debug, Serialize)]
pub(crate) struct ConsoleReport {
    mode: &'static str,
    messages: u64,
    database: &'static str,
    seed_seconds: f64,
    seed_rate: f64,
    /// The SQLite file and its log, in bytes (`null` on PostgreSQL).
    database_bytes: Option<u64>,
    repeat: usize,
    target_ms: f64,
    calls: Vec<Timed>,
    passed: bool,
}

impl ConsoleReport {
    pub(crate) fn passed(&self) -> bool {
        self.passed
    }
}

/// One call's timings.
#[derive(Debug, Serialize)]
struct Timed {
    name: &'static str,
    path: String,
    p50_ms: f64,
    max_ms: f64,
    /// Items in the answer's `data` (lists), or `buckets` (the overview).
    items: Option<usize>,
}

/// What the timed calls need to name.
struct Seeded {
    endpoint: EndpointId,
    middle: MessageId,
    middle_event_id: String,
    /// When the newest message was created.
    newest: OffsetDateTime,
}

/// Seeds, serves and times; see the module documentation.
pub(crate) async fn run(
    messages: u64,
    env: &[(String, String)],
    keep_data: bool,
) -> anyhow::Result<ConsoleReport> {
    let data = tempfile::Builder::new()
        .prefix("webhookd-console-")
        .tempdir()
        .context("cannot create the temporary data directory")?;
    let postgres = env
        .iter()
        .find(|(name, _)| name == "WEBHOOKD_DATABASE_URL")
        .map(|(_, url)| url.clone())
        .filter(|url| url.starts_with("postgres"));
    let store: Arc<dyn Store> = match &postgres {
        Some(url) => Arc::new(PostgresStore::connect(url).await?),
        None => Arc::new(SqliteStore::open(&database_path(data.path()))?),
    };
    let started = Instant::now();
    let seeded = seed(Arc::clone(&store), messages).await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    // SQLite serves one process: the seeding store closes before the server opens it.
    drop(store);

    let mut server = LocalServer::start_in(data, env).await?;
    let timed = time_calls(&server, &seeded).await;
    let database_bytes = postgres.is_none().then(|| server.database_bytes());
    let stopped = server.stop().await;
    if keep_data || timed.is_err() {
        eprintln!(
            "the server's data directory is kept: {}",
            server.keep_data().display()
        );
    }
    stopped?;
    let calls = timed?;
    Ok(ConsoleReport {
        mode: "console",
        messages,
        database: if postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
        seed_seconds: (seed_seconds * 10.0).round() / 10.0,
        seed_rate: (messages as f64 / seed_seconds).round(),
        database_bytes,
        repeat: REPEAT,
        target_ms: TARGET_MS,
        passed: calls.iter().all(|call| call.p50_ms <= TARGET_MS),
        calls,
    })
}

/// Step 1: applications, endpoints, messages and their attempts, through the store.
async fn seed(store: Arc<dyn Store>, messages: u64) -> anyhow::Result<Seeded> {
    let at = now();
    for index in 0..100 {
        let mut app = application(&format!("console-{index:03}"), at);
        if index == 0 {
            app.uid = Some("console".into());
        }
        store.create_application(&app, None).await?;
    }
    let app = store
        .get_application(&webhookd_core::Key::Name("console".into()))
        .await?
        .context("the console application")?;
    let mut endpoints = Vec::new();
    for index in 0..10 {
        // One endpoint takes every message; the others filter on a type never sent.
        let filter = if index == 0 {
            Vec::new()
        } else {
            vec!["console.never".to_owned()]
        };
        let endpoint = endpoint(&app.id, index, filter, at);
        store.create_endpoint(&endpoint, None).await?;
        endpoints.push(endpoint.id);
    }
    let span = time::Duration::hours(47);
    let first = at - span;
    let step_ns = span.whole_nanoseconds() / i128::from(messages.max(1));
    let next = Arc::new(AtomicU64::new(0));
    let middle = Arc::new(Mutex::new(None));
    let mut writers = tokio::task::JoinSet::new();
    for _ in 0..WRITERS {
        let (store, next, middle) = (Arc::clone(&store), Arc::clone(&next), Arc::clone(&middle));
        let (app, endpoint) = (app.id.clone(), endpoints[0].clone());
        writers.spawn(async move {
            loop {
                let start = next.fetch_add(CHUNK, Ordering::Relaxed);
                if start >= messages {
                    return anyhow::Ok(());
                }
                let mut records = Vec::with_capacity(CHUNK as usize);
                for index in start..(start + CHUNK).min(messages) {
                    let created =
                        first + time::Duration::nanoseconds((step_ns * i128::from(index)) as i64);
                    let message = message(&app, index, created);
                    store.create_message(&message, None, None).await?;
                    if index == messages / 2 {
                        *middle.lock().unwrap_or_else(|e| e.into_inner()) =
                            Some(message.id.clone());
                    }
                    records.push(record(&message, &endpoint, index));
                }
                store.record_attempts(&records).await?;
                if (start / CHUNK).is_multiple_of(200) {
                    eprintln!("seeded {start} of {messages} messages");
                }
            }
        });
    }
    while let Some(done) = writers.join_next().await {
        done.context("a seeding task failed")??;
    }
    let middle = middle
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone()
        .context("the middle message")?;
    Ok(Seeded {
        endpoint: endpoints[0].clone(),
        middle,
        middle_event_id: format!("evt-{}", messages / 2),
        newest: first + time::Duration::nanoseconds((step_ns * i128::from(messages - 1)) as i64),
    })
}

fn application(name: &str, at: OffsetDateTime) -> Application {
    Application {
        id: AppId::new(),
        uid: None,
        name: name.to_owned(),
        metadata: serde_json::Map::new(),
        throttle_rate: None,
        created_at: at,
        updated_at: at,
    }
}

fn endpoint(app: &AppId, index: usize, event_types: Vec<String>, at: OffsetDateTime) -> Endpoint {
    Endpoint {
        uid: Some(format!("hook-{index}")),
        description: format!("console endpoint {index}"),
        event_types,
        ..Endpoint::new(
            app.clone(),
            // The discard port: nothing is ever sent, every delivery is recorded at seeding.
            format!("http://127.0.0.1:9/console/{index}"),
            at,
        )
    }
}

fn message(app: &AppId, index: u64, created_at: OffsetDateTime) -> Message {
    let mut channels = vec![if index.is_multiple_of(2) { "eu" } else { "us" }.to_owned()];
    if index.is_multiple_of(1000) {
        channels.push("audit".into());
    }
    let mut tags = vec![format!("customer-{}", index % 1000)];
    if index.is_multiple_of(100) {
        tags.push("vip".into());
    }
    let payload = format!(
        r#"{{"seq":{index},"customer":"customer-{}","amount":{},"currency":"EUR"}}"#,
        index % 1000,
        index % 9973
    );
    Message {
        id: MessageId::made_at(created_at),
        app_id: app.clone(),
        event_type: EVENT_TYPES[(index % 5) as usize].to_owned(),
        event_id: Some(format!("evt-{index}")),
        payload: Bytes::from(payload),
        channels,
        tags,
        created_at,
        deliver_at: None,
        retain_payload_until: None,
    }
}

/// The attempt that delivered the message (or, for 0.1 %, failed it for good).
fn record(message: &Message, endpoint: &EndpointId, index: u64) -> AttemptRecord {
    let failed = index % 1000 == 500;
    AttemptRecord {
        attempt: Attempt {
            id: AttemptId::made_at(message.created_at + time::Duration::milliseconds(40)),
            msg_id: message.id.clone(),
            endpoint_id: endpoint.clone(),
            app_id: message.app_id.clone(),
            url: "http://127.0.0.1:9/console/0".into(),
            status: if failed {
                DeliveryStatus::Fail
            } else {
                DeliveryStatus::Success
            },
            response_status_code: if failed { 500 } else { 200 },
            response: if failed { "internal error" } else { "ok" }.into(),
            duration_ms: 30,
            trigger_type: TriggerType::Scheduled,
            created_at: message.created_at + time::Duration::milliseconds(40),
        },
        delivery: if failed {
            DeliveryUpdate::Failed
        } else {
            DeliveryUpdate::Delivered
        },
        endpoint_health: None,
        owner: "seed".into(),
        ordered: false,
        events: Vec::new(),
    }
}

/// Step 3: the console's calls, each timed.
async fn time_calls(server: &LocalServer, seeded: &Seeded) -> anyhow::Result<Vec<Timed>> {
    let api = Api::new(&server.url, None)?;
    let (ep, msg) = (seeded.endpoint.as_str(), seeded.middle.as_str());
    let stamp = |at: OffsetDateTime| format_timestamp(at).replace(':', "%3A").replace('+', "%2B");
    let hour_ago = stamp(seeded.newest - time::Duration::hours(1));
    let day_ago = stamp(seeded.newest - time::Duration::hours(24));
    let day_ago_plus_hour = stamp(seeded.newest - time::Duration::hours(23));
    let base = "/api/v1/app/console";
    let calls: Vec<(&'static str, String)> = vec![
        (
            "overview, last hour",
            "/api/v1/stats/overview?period=1h".into(),
        ),
        (
            "overview, last day",
            "/api/v1/stats/overview?period=1d".into(),
        ),
        ("applications", "/api/v1/app?limit=50".into()),
        ("endpoints", format!("{base}/endpoint")),
        ("endpoint health", format!("{base}/endpoint/{ep}/health")),
        ("endpoint stats", format!("{base}/endpoint/{ep}/stats")),
        ("messages, newest", format!("{base}/msg?limit=50")),
        (
            "messages, deep page",
            format!("{base}/msg?limit=50&iterator={msg}"),
        ),
        (
            "messages by one event type",
            format!("{base}/msg?limit=50&event_types=invoice.paid"),
        ),
        (
            "messages by two event types",
            format!("{base}/msg?limit=50&event_types=invoice.paid,user.created"),
        ),
        (
            "messages by channel",
            format!("{base}/msg?limit=50&channel=eu"),
        ),
        (
            "messages by a rare channel",
            format!("{base}/msg?limit=50&channel=audit"),
        ),
        (
            "messages by tag (1 %)",
            format!("{base}/msg?limit=50&tag=vip"),
        ),
        (
            "messages by tag (0.1 %)",
            format!("{base}/msg?limit=50&tag=customer-42"),
        ),
        (
            "messages after (last hour)",
            format!("{base}/msg?limit=50&after={hour_ago}"),
        ),
        (
            "messages before (a day ago)",
            format!("{base}/msg?limit=50&before={day_ago}"),
        ),
        (
            "messages in a window, oldest first",
            format!(
                "{base}/msg?limit=50&order=ascending&after={day_ago}&before={day_ago_plus_hour}"
            ),
        ),
        (
            "messages, every filter",
            format!(
                "{base}/msg?limit=50&event_types=invoice.paid&channel=eu&tag=vip&after={day_ago}"
            ),
        ),
        ("message by id", format!("{base}/msg/{msg}")),
        (
            "message by eventId",
            format!("{base}/msg/{}", seeded.middle_event_id),
        ),
        ("a message's attempts", format!("{base}/attempt/msg/{msg}")),
        (
            "a message's deliveries",
            format!("{base}/msg/{msg}/endpoint"),
        ),
        (
            "an endpoint's attempts",
            format!("{base}/attempt/endpoint/{ep}?limit=50"),
        ),
        (
            "an endpoint's failed attempts",
            format!("{base}/attempt/endpoint/{ep}?limit=50&status=2"),
        ),
        (
            "an endpoint's messages",
            format!("{base}/endpoint/{ep}/msg?limit=50"),
        ),
        (
            "an endpoint's failed messages",
            format!("{base}/endpoint/{ep}/msg?limit=50&status=2"),
        ),
    ];
    let mut timed = Vec::with_capacity(calls.len());
    for (name, path) in calls {
        let answer = api.call(Method::GET, &path, None).await?;
        let items = answer["data"]
            .as_array()
            .or_else(|| answer["buckets"].as_array())
            .map(Vec::len);
        let mut samples = Vec::with_capacity(REPEAT);
        for _ in 0..REPEAT {
            let started = Instant::now();
            api.call(Method::GET, &path, None).await?;
            samples.push(started.elapsed());
        }
        samples.sort();
        let ms = |duration: Duration| (duration.as_secs_f64() * 1e5).round() / 100.0;
        timed.push(Timed {
            name,
            p50_ms: ms(samples[REPEAT / 2]),
            max_ms: ms(samples[REPEAT - 1]),
            path,
            items,
        });
    }
    if timed.is_empty() {
        bail!("no call was timed");
    }
    Ok(timed)
}
