//! The receiver sink: the endpoints of the bench, served in-process.
//!
//! A bare hyper HTTP/1.1 server with keep-alive that answers every request with an empty 200 at
//! once. It logs nothing per request and, unless asked to verify signatures, parses no more of
//! the body than the digits after `"seq":`. Each endpoint's path ends in `/<app>/<endpoint>`, so
//! a delivery is identified by (sequence number, endpoint index) and its arrival is written in
//! the slot `seq × endpoints + endpoint` of the [`Recorder`]: the first arrival sets the slot,
//! a second one counts as a duplicate. Anything that names no slot counts as unexpected.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use webhookd_core::signing::{self, Secret};

use super::Clock;

/// What arrived at the sink. Lock-free: every request touches one slot and a few counters.
pub(crate) struct Recorder {
    clock: Clock,
    endpoints: u64,
    messages: u64,
    /// Per (message, endpoint): the arrival as [`Clock::now`], 0 when nothing arrived yet.
    arrivals: Box<[AtomicU64]>,
    distinct: AtomicU64,
    duplicates: AtomicU64,
    unexpected: AtomicU64,
    bad_signatures: AtomicU64,
    last_arrival: AtomicU64,
    /// When set, every delivery's signature is checked against it.
    secret: Option<Secret>,
}

impl Recorder {
    /// A recorder for `messages` messages to `endpoints` endpoints each.
    pub(crate) fn new(clock: Clock, messages: u64, endpoints: u64, secret: Option<Secret>) -> Self {
        let slots = usize::try_from(messages.saturating_mul(endpoints)).unwrap_or(usize::MAX);
        Self {
            clock,
            endpoints,
            messages,
            arrivals: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            distinct: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            unexpected: AtomicU64::new(0),
            bad_signatures: AtomicU64::new(0),
            last_arrival: AtomicU64::new(0),
            secret,
        }
    }

    /// Records that message `seq` arrived at endpoint `endpoint` now.
    fn record(&self, seq: Option<u64>, endpoint: Option<u64>) {
        let slot = match (seq, endpoint) {
            (Some(seq), Some(endpoint)) if seq < self.messages && endpoint < self.endpoints => {
                usize::try_from(seq * self.endpoints + endpoint).ok()
            }
            _ => None,
        };
        let Some(slot) = slot.and_then(|slot| self.arrivals.get(slot)) else {
            self.unexpected.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let now = self.clock.now();
        match slot.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => {
                self.distinct.fetch_add(1, Ordering::Relaxed);
                self.last_arrival.fetch_max(now, Ordering::Relaxed);
            }
            Err(_) => {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// When message `seq` first arrived at endpoint `endpoint`, as [`Clock::now`].
    pub(crate) fn arrival(&self, seq: u64, endpoint: u64) -> Option<u64> {
        let slot = usize::try_from(seq.checked_mul(self.endpoints)?.checked_add(endpoint)?).ok()?;
        Some(self.arrivals.get(slot)?.load(Ordering::Relaxed)).filter(|&at| at != 0)
    }

    /// Deliveries that arrived, each (message, endpoint) counted once.
    pub(crate) fn distinct(&self) -> u64 {
        self.distinct.load(Ordering::Relaxed)
    }

    pub(crate) fn duplicates(&self) -> u64 {
        self.duplicates.load(Ordering::Relaxed)
    }

    pub(crate) fn unexpected(&self) -> u64 {
        self.unexpected.load(Ordering::Relaxed)
    }

    /// Deliveries whose signature did not verify, or `None` when signatures are not checked.
    pub(crate) fn bad_signatures(&self) -> Option<u64> {
        self.secret
            .as_ref()
            .map(|_| self.bad_signatures.load(Ordering::Relaxed))
    }

    /// The latest first arrival, as [`Clock::now`]; 0 when nothing arrived.
    pub(crate) fn last_arrival(&self) -> u64 {
        self.last_arrival.load(Ordering::Relaxed)
    }

    fn verify(&self, headers: &HeaderMap, body: &[u8]) {
        let Some(secret) = &self.secret else { return };
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("")
        };
        let now_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| {
                i64::try_from(since.as_secs()).unwrap_or(i64::MAX)
            });
        let verified = signing::verify(
            secret,
            header("webhook-id"),
            header("webhook-timestamp"),
            header("webhook-signature"),
            body,
            now_unix,
        );
        if verified.is_err() {
            self.bad_signatures.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The running sink; [`Sink::stop`] ends its accept loop.
pub(crate) struct Sink {
    pub(crate) addr: SocketAddr,
    stop: CancellationToken,
}

impl Sink {
    /// Binds `listen` and serves deliveries into `recorder` until stopped.
    pub(crate) async fn start(listen: SocketAddr, recorder: Arc<Recorder>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("the sink cannot listen on {listen}"))?;
        let addr = listener
            .local_addr()
            .context("the sink's listener has no address")?;
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, recorder, stop.clone()));
        Ok(Self { addr, stop })
    }

    /// Stops accepting connections. Connections already open end when their peer closes them.
    pub(crate) fn stop(&self) {
        self.stop.cancel();
    }
}

async fn accept_loop(listener: TcpListener, recorder: Arc<Recorder>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => return,
        };
        let Ok((stream, _peer)) = accepted else {
            // Out of descriptors or a connection reset before accept: keep serving the others.
            tokio::task::yield_now().await;
            continue;
        };
        // Small responses on a keep-alive connection: Nagle would only add delay.
        let _ = stream.set_nodelay(true);
        let recorder = Arc::clone(&recorder);
        tokio::spawn(async move {
            let service = service_fn(move |request| receive(Arc::clone(&recorder), request));
            // A connection that ends badly (the server shut down mid-request) is not the
            // sink's concern: what matters is recorded per request.
            let _ = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn receive(
    recorder: Arc<Recorder>,
    request: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(status(StatusCode::BAD_REQUEST)),
    };
    recorder.verify(&parts.headers, &body);
    recorder.record(seq_of(&body), endpoint_of(parts.uri.path()));
    Ok(status(StatusCode::OK))
}

fn status(status: StatusCode) -> Response<Empty<Bytes>> {
    let mut response = Response::new(Empty::new());
    *response.status_mut() = status;
    response
}

/// The number after the first `"seq":` of a JSON body, read without parsing the rest.
pub(crate) fn seq_of(body: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"seq\":";
    let start = body.windows(KEY.len()).position(|window| window == KEY)? + KEY.len();
    let rest = &body[start..];
    let rest = &rest[rest
        .iter()
        .take_while(|byte| byte.is_ascii_whitespace())
        .count()..];
    let digits = rest.iter().take_while(|byte| byte.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The endpoint index: the last segment of a path `…/<app>/<endpoint>`.
pub(crate) fn endpoint_of(path: &str) -> Option<u64> {
    path.trim_end_matches('/').rsplit('/').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sequence_number_is_found_without_parsing_the_body() {
        assert_eq!(seq_of(br#"{"seq":42,"pad":"xx"}"#), Some(42));
        assert_eq!(seq_of(br#"{ "pad":"x", "seq": 7 }"#), Some(7));
        assert_eq!(seq_of(br#"{"pad":"x"}"#), None);
        assert_eq!(seq_of(br#"{"seq":"7"}"#), None);
    }

    #[test]
    fn the_endpoint_is_the_last_path_segment() {
        assert_eq!(endpoint_of("/3/1"), Some(1));
        assert_eq!(endpoint_of("/prefix/0/2/"), Some(2));
        assert_eq!(endpoint_of("/"), None);
    }

    #[test]
    fn a_second_arrival_is_a_duplicate_and_a_stray_one_unexpected() {
        let recorder = Recorder::new(Clock::new(), 2, 2, None);
        recorder.record(Some(1), Some(1));
        recorder.record(Some(1), Some(1));
        recorder.record(Some(1), Some(0));
        recorder.record(Some(2), Some(0));
        recorder.record(None, Some(0));
        assert_eq!(recorder.distinct(), 2);
        assert_eq!(recorder.duplicates(), 1);
        assert_eq!(recorder.unexpected(), 2);
        assert!(recorder.arrival(1, 1).is_some());
        assert_eq!(recorder.arrival(0, 0), None);
    }
}
