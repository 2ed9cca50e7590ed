//! The fake receiver: a real HTTP server on `127.0.0.1:0` that records every request and
//! answers from a script, the stand-in for a customer's webhook endpoint.
//!
//! Each path is its own endpoint with its own script. A request's answer is, in order:
//! 1. the path's *first-sight* reply, when one is set and the request's `webhook-id` was never
//!    seen on that path before (to fail the first attempt of every message); with several
//!    first-sight replies, the n-th new `webhook-id` gets the n-th of them, cyclically;
//! 2. the next reply queued on the path (statuses in sequence);
//! 3. the path's fallback reply, else `200 ok`.
//!
//! A reply may wait before answering (a slow endpoint) and carry headers (`Retry-After`). Every
//! request is recorded when it arrives, with the moment its answer was sent once that happens,
//! so tests can order events across endpoints. Signatures are verified on demand with
//! `webhookd_core::signing::verify`, exactly as a receiver would.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use webhookd_core::signing::{Secret, VerifyError, verify};

use super::wait::eventually;

/// How the receiver answers one request.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: u16,
    delay: Option<Duration>,
    headers: Vec<(&'static str, String)>,
    body: String,
}

impl Reply {
    /// Answers `status` at once with the body `ok`.
    pub(crate) fn status(status: u16) -> Self {
        Self {
            status,
            delay: None,
            headers: Vec::new(),
            body: "ok".to_owned(),
        }
    }

    /// Waits this long before answering.
    pub(crate) fn after(self, delay: Duration) -> Self {
        Self {
            delay: Some(delay),
            ..self
        }
    }

    pub(crate) fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }

    pub(crate) fn body(self, body: &str) -> Self {
        Self {
            body: body.to_owned(),
            ..self
        }
    }
}

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    pub(crate) arrived: Instant,
    pub(crate) arrived_at: SystemTime,
    /// The status the receiver chose for it.
    pub(crate) status: u16,
    /// When the answer was sent; `None` while the reply's delay runs (or if the sender gave
    /// up and the answer was never sent).
    pub(crate) answered: Option<Instant>,
}

impl Received {
    /// The header's value; fails when it is absent or not text.
    #[track_caller]
    pub(crate) fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` header in {:?}", self.headers))
            .to_str()
            .unwrap_or_else(|_| panic!("the `{name}` header is not text"))
    }

    pub(crate) fn webhook_id(&self) -> &str {
        self.header("webhook-id")
    }

    /// `webhook-timestamp`, in Unix seconds.
    pub(crate) fn timestamp(&self) -> i64 {
        self.header("webhook-timestamp")
            .parse()
            .expect("a numeric webhook-timestamp")
    }

    /// Verifies the Standard Webhooks signature with this secret, as a receiver would (its
    /// clock is the arrival time).
    pub(crate) fn verify(&self, secret: &str) -> Result<(), VerifyError> {
        let secret = Secret::parse(secret).expect("a whsec_ secret");
        let signature = self.header("webhook-signature");
        verify(
            &secret,
            self.webhook_id(),
            self.header("webhook-timestamp"),
            signature,
            &self.body,
            unix(self.arrived_at),
        )
    }

    /// Fails unless the signature verifies with this secret.
    #[track_caller]
    pub(crate) fn assert_verifies(&self, secret: &str) {
        if let Err(error) = self.verify(secret) {
            panic!(
                "the request to {} for {} does not verify: {error}",
                self.path,
                self.webhook_id()
            );
        }
    }

    /// A one-line summary for failure messages.
    fn summary(&self) -> String {
        let id = self
            .headers
            .get("webhook-id")
            .and_then(|id| id.to_str().ok())
            .unwrap_or("-");
        format!("{} {id} -> {}", self.path, self.status)
    }
}

/// Whole seconds since the Unix epoch.
pub(crate) fn unix(at: SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .expect("a time after 1970")
        .as_secs() as i64
}

#[derive(Debug, Default)]
struct Script {
    first_sight: Vec<Reply>,
    seen: HashSet<String>,
    queue: VecDeque<Reply>,
    fallback: Option<Reply>,
}

impl Script {
    fn next(&mut self, webhook_id: Option<&str>) -> Reply {
        if let Some(id) = webhook_id
            && !self.first_sight.is_empty()
            && self.seen.insert(id.to_owned())
        {
            let nth = (self.seen.len() - 1) % self.first_sight.len();
            return self.first_sight[nth].clone();
        }
        self.queue
            .pop_front()
            .or_else(|| self.fallback.clone())
            .unwrap_or_else(|| Reply::status(200))
    }
}

#[derive(Debug, Default)]
struct Recorded {
    requests: Vec<Received>,
    scripts: HashMap<String, Script>,
}

type Shared = Arc<Mutex<Recorded>>;

/// A running receiver; it stops when dropped.
pub(crate) struct Receiver {
    base_url: String,
    shared: Shared,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    pub(crate) async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port for the receiver");
        let base_url = format!("http://{}", listener.local_addr().expect("a local address"));
        let shared = Shared::default();
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the receiver serves");
        });
        Self {
            base_url,
            shared,
            task,
        }
    }

    /// The URL of one of the receiver's endpoints, e.g. `url("/a")`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    fn lock(&self) -> MutexGuard<'_, Recorded> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues replies on `path`, answered in order before the fallback.
    pub(crate) fn script(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.lock()
            .scripts
            .entry(path.to_owned())
            .or_default()
            .queue
            .extend(replies);
    }

    /// How `path` answers once its queue is empty.
    pub(crate) fn fallback(&self, path: &str, reply: Reply) {
        self.lock()
            .scripts
            .entry(path.to_owned())
            .or_default()
            .fallback = Some(reply);
    }

    /// How `path` answers the first request of each `webhook-id`.
    pub(crate) fn first_sight(&self, path: &str, reply: Reply) {
        self.first_sights(path, [reply]);
    }

    /// How `path` answers the first request of each `webhook-id`: the n-th new id gets the
    /// n-th of `replies`, cyclically (`[fast 500, slow 500]` makes every other one slow).
    pub(crate) fn first_sights(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.lock()
            .scripts
            .entry(path.to_owned())
            .or_default()
            .first_sight = replies.into_iter().collect();
    }

    /// Every request so far, in order of arrival.
    pub(crate) fn requests(&self) -> Vec<Received> {
        self.lock().requests.clone()
    }

    /// The requests to one path so far.
    pub(crate) fn requests_to(&self, path: &str) -> Vec<Received> {
        self.lock()
            .requests
            .iter()
            .filter(|request| request.path == path)
            .cloned()
            .collect()
    }

    /// Waits until the requests so far satisfy `condition`, and returns them; the failure
    /// message lists what arrived.
    pub(crate) async fn wait_for(
        &self,
        what: &str,
        condition: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        eventually(what, || {
            let requests = self.requests();
            let result = if condition(&requests) {
                Ok(requests)
            } else {
                let arrived: Vec<String> = requests.iter().map(Received::summary).collect();
                Err(format!("{} requests: {arrived:?}", arrived.len()))
            };
            std::future::ready(result)
        })
        .await
    }

    /// Waits until `path` got at least `count` requests, and returns those.
    pub(crate) async fn wait_for_count(&self, path: &str, count: usize) -> Vec<Received> {
        let what = format!("{count} requests to {path}");
        self.wait_for(&what, |requests| {
            requests
                .iter()
                .filter(|request| request.path == path)
                .count()
                >= count
        })
        .await;
        self.requests_to(path)
    }
}

async fn answer(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (index, reply) = {
        let mut recorded = shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let webhook_id = headers.get("webhook-id").and_then(|id| id.to_str().ok());
        let reply = recorded
            .scripts
            .entry(path.clone())
            .or_default()
            .next(webhook_id);
        recorded.requests.push(Received {
            path,
            headers,
            body,
            arrived: Instant::now(),
            arrived_at: SystemTime::now(),
            status: reply.status,
            answered: None,
        });
        (recorded.requests.len() - 1, reply)
    };
    if let Some(delay) = reply.delay {
        tokio::time::sleep(delay).await;
    }
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .requests[index]
        .answered = Some(Instant::now());
    let mut response = (
        StatusCode::from_u16(reply.status).expect("a valid status"),
        reply.body,
    )
        .into_response();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).expect("a valid header value"),
        );
    }
    response
}
