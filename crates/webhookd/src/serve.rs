//! Serves the API on its listener, plain or TLS, so that no client can exhaust the node.
//!
//! A node needs file descriptors for three things: the API's connections, its outbound
//! deliveries and its database. Left alone, a few hundred idle or slow clients would take them
//! all, and deliveries would fail with "too many open files" until their retries ran out. So:
//!
//! 1. **Descriptor limit.** At start the soft `RLIMIT_NOFILE` is raised to the hard limit
//!    ([`raise_descriptor_limit`]).
//! 2. **Connection cap.** [`ConnectionLimits::for_descriptor_limit`]: 64 descriptors are kept
//!    for the process itself (database files and pool, listeners, logs, the runtime) and half
//!    of the rest for deliveries, so API connections may take the other half. At the cap the
//!    listener stops accepting; first, though, it closes the connection that has been idle the
//!    longest (no request in progress for at least a second), so a crowd of idle or slowloris
//!    connections cannot lock new clients out.
//! 3. **Timeouts.** A TLS handshake must finish within 10 s; HTTP/1 request headers must arrive
//!    within 15 s of the connection being ready for them, which also closes a keep-alive
//!    connection idle that long; any connection with no request in progress for 60 s is closed
//!    (HTTP/2 included). A body trickling in is cut off by the API itself (408).
//! 4. **Accept errors** (EMFILE and the like) are retried after a pause that doubles from 5 ms
//!    up to 1 s, and logged at most once every 10 s with the count of those not logged, on
//!    both listeners: no busy loop and no flood of log lines.
//!
//! Shutdown: stop accepting, ask every connection to finish its request in progress and close,
//! and wait for them up to [`SHUTDOWN_GRACE`].

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ConnectInfo;
use http_body_util::BodyExt;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// Descriptors kept for the process itself before the rest is shared.
const PROCESS_RESERVE: u64 = 64;
/// The fewest connections a node takes, however low its descriptor limit.
const MIN_CONNECTIONS: usize = 16;
/// The highest soft descriptor limit asked for (Linux's default `nr_open`).
const DESCRIPTOR_CEILING: u64 = 1 << 20;
/// A connection idle at least this long may be closed to make room for a new one.
const EVICTABLE_AFTER: Duration = Duration::from_secs(1);
/// How long open connections may take to finish once shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Raises the soft limit on open files to the hard limit; answers the soft limit in force.
pub fn raise_descriptor_limit() -> u64 {
    match rlimit::increase_nofile_limit(DESCRIPTOR_CEILING) {
        Ok(limit) => limit,
        Err(error) => {
            let (soft, _) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap_or((1024, 1024));
            tracing::warn!(%error, soft, "cannot raise the limit on open files");
            soft
        }
    }
}

/// How many connections a listener keeps and how long it waits for each.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
}

impl ConnectionLimits {
    /// The limits for a process allowed `descriptors` open files (see the module docs).
    pub fn for_descriptor_limit(descriptors: u64) -> Self {
        let shared = descriptors.saturating_sub(PROCESS_RESERVE) / 2;
        Self {
            max_connections: usize::try_from(shared)
                .unwrap_or(usize::MAX)
                .max(MIN_CONNECTIONS),
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(15),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Serves `service` on `listener` (over TLS when `tls` is given) until `shutdown` completes.
pub async fn serve<S>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    service: S,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(20));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let open = Arc::new(OpenConnections::default());
    let stopping = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut backoff = AcceptBackoff::default();
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = take_slot(&slots, &open) => permit,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    backoff.succeeded();
                    accepted
                }
                Err(error) => {
                    let pause = backoff.failed(&error);
                    tokio::select! {
                        () = tokio::time::sleep(pause) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let connection = open.register();
        let service = tracked(service.clone(), peer, Arc::clone(&connection));
        let (tls, builder, stopping, open) = (
            tls.clone(),
            builder.clone(),
            stopping.clone(),
            Arc::clone(&open),
        );
        tracker.spawn(async move {
            let _permit = permit;
            match tls {
                None => drive(stream, &builder, service, &connection, &stopping, limits).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(limits.handshake_timeout, acceptor.accept(stream));
                    let handshaken = tokio::select! {
                        handshaken = handshake => handshaken,
                        () = connection.evicted.notified() => return open.remove(connection.id),
                    };
                    match handshaken {
                        Ok(Ok(stream)) => {
                            drive(stream, &builder, service, &connection, &stopping, limits).await;
                        }
                        Ok(Err(error)) => tracing::debug!(%error, %peer, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            open.remove(connection.id);
        });
    }
    stopping.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after the shutdown grace period are dropped");
    }
    Ok(())
}

/// A free connection slot; when none is, the longest-idle connection is closed to make one.
async fn take_slot(
    slots: &Arc<Semaphore>,
    open: &OpenConnections,
) -> tokio::sync::OwnedSemaphorePermit {
    loop {
        if let Ok(permit) = Arc::clone(slots).try_acquire_owned() {
            return permit;
        }
        open.evict_longest_idle();
        // The evicted connection gives its slot back at once; without one to evict, a slot
        // frees up when a connection ends or becomes idle long enough to evict.
        if let Ok(Ok(permit)) = tokio::time::timeout(
            Duration::from_millis(250),
            Arc::clone(slots).acquire_owned(),
        )
        .await
        {
            return permit;
        }
    }
}

/// The service for one connection: the peer's address as `ConnectInfo`, and every request
/// counted while it is in progress.
fn tracked<S>(
    service: S,
    peer: SocketAddr,
    connection: Arc<Connection>,
) -> impl tower::Service<
    hyper::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>>
             + Send
             + 'static,
> + Clone
+ Send
+ 'static
where
    S: tower::Service<
            axum::extract::Request,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    service
        .map_request(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut request = request.map(axum::body::Body::new);
            request
                .extensions_mut()
                .insert(ConnectInfo::<SocketAddr>(peer));
            request
        })
        .map_future(move |future| {
            let busy = Busy::start(Arc::clone(&connection));
            async move {
                // Busy until the answer's body is sent (or dropped), not only until its head.
                let response: axum::response::Response = future.await?;
                Ok(response.map(|body| {
                    axum::body::Body::new(body.map_frame(move |frame| {
                        let _busy = &busy;
                        frame
                    }))
                }))
            }
        })
}

/// Serves one connection until it ends, is evicted, stays idle too long, or shutdown comes.
async fn drive<I, S>(
    io: I,
    builder: &Builder<TokioExecutor>,
    service: S,
    connection: &Connection,
    stopping: &CancellationToken,
    limits: ConnectionLimits,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut served = pin!(
        builder.serve_connection_with_upgrades(TokioIo::new(io), TowerToHyperService::new(service))
    );
    let mut closing = false;
    loop {
        tokio::select! {
            result = served.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "a connection ended with an error");
                }
                return;
            }
            // Idle for long while the cap is reached: closed at once to make room.
            () = connection.evicted.notified() => return,
            () = stopping.cancelled(), if !closing => {
                served.as_mut().graceful_shutdown();
                closing = true;
            }
            () = connection.idle_for(limits.idle_timeout), if !closing => {
                served.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
}

/// What the listener knows of one open connection.
#[derive(Debug)]
struct Connection {
    id: u64,
    /// Requests in progress.
    busy: AtomicUsize,
    /// When the last request ended (or the connection opened).
    idle_since: Mutex<Instant>,
    evicted: Notify,
}

impl Connection {
    /// How long the connection has had no request in progress; `None` while it has one.
    fn idle(&self) -> Option<Duration> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(
            self.idle_since
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .elapsed(),
        )
    }

    /// Completes once the connection has had no request in progress for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let wait = match self.idle() {
                Some(idle) if idle >= timeout => return,
                Some(idle) => timeout - idle,
                None => timeout,
            };
            tokio::time::sleep(wait).await;
        }
    }
}

/// Marks a connection busy while one of its requests is in progress.
struct Busy(Arc<Connection>);

impl Busy {
    fn start(connection: Arc<Connection>) -> Self {
        connection.busy.fetch_add(1, Ordering::AcqRel);
        Self(connection)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        *self
            .0
            .idle_since
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Instant::now();
        self.0.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Every open connection of a listener, to find the one to evict.
#[derive(Debug, Default)]
struct OpenConnections {
    next_id: AtomicU64,
    by_id: Mutex<HashMap<u64, Arc<Connection>>>,
}

impl OpenConnections {
    fn register(&self) -> Arc<Connection> {
        let connection = Arc::new(Connection {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            busy: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            evicted: Notify::new(),
        });
        self.lock().insert(connection.id, Arc::clone(&connection));
        connection
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    /// Closes the connection idle the longest, when one has been idle long enough.
    fn evict_longest_idle(&self) {
        let mut open = self.lock();
        let longest = open
            .values()
            .filter_map(|connection| Some((connection.idle()?, connection.id)))
            .filter(|(idle, _)| *idle >= EVICTABLE_AFTER)
            .max();
        if let Some((_, id)) = longest
            && let Some(connection) = open.remove(&id)
        {
            connection.evicted.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.by_id
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The pause after a failed accept, and the bounded logging of such failures.
#[derive(Debug, Default)]
struct AcceptBackoff {
    pause: Duration,
    last_logged: Option<Instant>,
    not_logged: u64,
}

impl AcceptBackoff {
    const FIRST_PAUSE: Duration = Duration::from_millis(5);
    const LONGEST_PAUSE: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(10);

    fn succeeded(&mut self) {
        self.pause = Duration::ZERO;
    }

    /// Notes a failure; answers how long to wait before accepting again.
    fn failed(&mut self, error: &std::io::Error) -> Duration {
        self.pause = (self.pause * 2).clamp(Self::FIRST_PAUSE, Self::LONGEST_PAUSE);
        if self
            .last_logged
            .is_none_or(|at| at.elapsed() >= Self::LOG_EVERY)
        {
            tracing::warn!(
                %error,
                not_logged = self.not_logged,
                pause_ms = self.pause.as_millis() as u64,
                "accepting a connection failed; pausing (further failures are logged at most \
                 every 10 s)"
            );
            self.last_logged = Some(Instant::now());
            self.not_logged = 0;
        } else {
            self.not_logged += 1;
        }
        self.pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_descriptors_for_deliveries_and_the_database() {
        assert_eq!(
            ConnectionLimits::for_descriptor_limit(1024).max_connections,
            480
        );
        assert_eq!(
            ConnectionLimits::for_descriptor_limit(256).max_connections,
            96
        );
        assert_eq!(
            ConnectionLimits::for_descriptor_limit(20).max_connections,
            MIN_CONNECTIONS
        );
    }

    #[test]
    fn accept_failures_back_off_to_a_second() {
        let mut backoff = AcceptBackoff::default();
        let error = std::io::Error::other("too many open files");
        let pauses: Vec<Duration> = (0..12).map(|_| backoff.failed(&error)).collect();
        assert_eq!(pauses[0], Duration::from_millis(5));
        assert_eq!(pauses[1], Duration::from_millis(10));
        assert_eq!(pauses[11], Duration::from_secs(1));
        assert_eq!(backoff.not_logged, 11);
        backoff.succeeded();
        assert_eq!(backoff.failed(&error), Duration::from_millis(5));
    }
}
