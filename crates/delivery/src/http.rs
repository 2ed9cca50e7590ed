//! The one outbound HTTP client: every delivery attempt leaves webhookd through
//! [`HttpClient::post`], which turns whatever happens into an [`AttemptResult`] (data, never an
//! `Err`) and the text recorded as the attempt's `response`.
//!
//! What it guarantees:
//! 1. **SSRF guard.** Without a proxy, host names are resolved by our own resolver, which drops
//!    every address that [`webhookd_core::ssrf::check`] refuses and hands reqwest only the
//!    allowed ones, so the connection goes to a checked address (no DNS rebinding between the
//!    check and the connect). IP-literal URLs never reach a resolver, so they are checked before
//!    sending. A destination with no allowed address is `Refused` with the operator-facing
//!    sentence of [`Refusal`]. With a proxy, the proxy owns egress filtering: no check is made
//!    and everything goes through it. The policy can be tightened while running
//!    ([`HttpClient::set_allow_private`], when a node leaves local mode).
//! 2. **Bounded attempts.** Connect, send and reading the response body together take at most
//!    `request_timeout`. The body is read up to [`DRAIN_CAP`] so that the connection can be
//!    reused; its first [`RESPONSE_BODY_CAP`] bytes are kept for the record.
//! 3. **No redirects.** A 3xx is a response like any other.
//! 4. **TLS** 1.2 at least, trusting the Mozilla roots, the system's roots and the configured
//!    extra CA files.
//! 5. **Throughput.** Keep-alive with a large idle pool per host and `TCP_NODELAY`: the client
//!    carries thousands of requests per second to a handful of hosts.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{Certificate, Proxy, Url};
use webhookd_core::model::{RESPONSE_BODY_CAP, truncate_response};
use webhookd_core::outcome::AttemptResult;
use webhookd_core::ssrf::{AllowPrivate, Refusal, check};
use webhookd_core::time::format_duration;

/// How much of a response body is read at most. Reading a small body to its end lets the
/// connection go back to the pool; a larger one is abandoned (and its connection closed).
pub const DRAIN_CAP: usize = 64 * 1024;

/// Idle keep-alive connections kept per host.
const IDLE_CONNECTIONS_PER_HOST: usize = 1024;

/// How long an idle pooled connection is kept.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// The resolved configuration of the outbound client.
#[derive(Clone)]
pub struct HttpConfig {
    /// Bound on one whole attempt: connect, send, and read the response body.
    pub request_timeout: Duration,
    /// Which non-public destinations may be reached (ignored when `proxy` is set).
    pub allow_private: AllowPrivate,
    /// `http://`, `https://` or `socks5://` (`socks5h://`) proxy for every delivery.
    pub proxy: Option<Url>,
    /// PEM files of CA certificates trusted beside the Mozilla and system roots.
    pub extra_ca_certs: Vec<PathBuf>,
    pub user_agent: String,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(15),
            allow_private: AllowPrivate::None,
            proxy: None,
            extra_ca_certs: Vec::new(),
            user_agent: concat!("webhookd/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("request_timeout", &self.request_timeout)
            .field("allow_private", &self.allow_private)
            .field("proxy", &self.proxy.as_ref().map(redacted))
            .field("extra_ca_certs", &self.extra_ca_certs)
            .field("user_agent", &self.user_agent)
            .finish()
    }
}

/// A proxy URL fit for logs and error messages: its password, if any, is hidden.
fn redacted(url: &Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Only fails for URLs that cannot carry credentials, which then have none to hide.
        let _ = shown.set_password(Some("***"));
    }
    shown.to_string()
}

/// Why the client could not be built: always a configuration problem.
#[derive(Debug, thiserror::Error)]
pub enum HttpClientError {
    #[error("proxy URL `{url}` is not usable: {reason}")]
    BadProxy { url: String, reason: String },
    #[error("cannot read the CA certificate file {}: {source}", .path.display())]
    UnreadableCaFile { path: PathBuf, source: io::Error },
    #[error("the CA certificate file {} is not usable: {reason}", .path.display())]
    InvalidCaFile { path: PathBuf, reason: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

/// What one POST gave: the result to classify, the text to record as the attempt's
/// `response`, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub result: AttemptResult,
    /// The endpoint's body (first 1,024 bytes, see [`truncate_response`]) when it answered,
    /// otherwise the reason it did not.
    pub response: String,
    pub duration: Duration,
}

/// The guard's policy, shared by the client and its resolver: a node that leaves local mode
/// tightens it while running ([`HttpClient::set_allow_private`]).
type SharedPolicy = Arc<std::sync::RwLock<Arc<AllowPrivate>>>;

fn current(policy: &SharedPolicy) -> Arc<AllowPrivate> {
    Arc::clone(
        &policy
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner()),
    )
}

/// The outbound client. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    request_timeout: Duration,
    /// The policy to check IP-literal destinations against; `None` when a proxy filters egress.
    guard: Option<SharedPolicy>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // reqwest's own Debug would print the proxy URL with its credentials.
        f.debug_struct("HttpClient")
            .field("request_timeout", &self.request_timeout)
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl HttpClient {
    pub fn new(config: HttpConfig) -> Result<Self, HttpClientError> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .tls_built_in_webpki_certs(true)
            .tls_built_in_native_certs(true)
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(IDLE_CONNECTIONS_PER_HOST)
            .pool_idle_timeout(IDLE_TIMEOUT)
            .tcp_nodelay(true)
            .user_agent(config.user_agent);
        for path in &config.extra_ca_certs {
            for certificate in read_ca_file(path)? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let guard = match &config.proxy {
            Some(url) => {
                builder = builder.proxy(proxy(url)?);
                None
            }
            None => {
                // `no_proxy` also stops reqwest from picking up HTTP(S)_PROXY from the
                // environment, which would silently bypass the guard.
                let policy: SharedPolicy =
                    Arc::new(std::sync::RwLock::new(Arc::new(config.allow_private)));
                let resolver = GuardedResolver {
                    policy: Arc::clone(&policy),
                };
                builder = builder.no_proxy().dns_resolver(Arc::new(resolver));
                Some(policy)
            }
        };
        let client = builder.build().map_err(HttpClientError::Build)?;
        Ok(Self {
            client,
            request_timeout: config.request_timeout,
            guard,
        })
    }

    /// Replaces the private destinations allowed, for every clone of this client: IP-literal
    /// destinations and new connections are checked against it at once; idle connections
    /// opened before are reused until they close. No effect behind a proxy, which owns egress
    /// filtering.
    pub fn set_allow_private(&self, allow_private: AllowPrivate) {
        if let Some(policy) = &self.guard {
            *policy
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(allow_private);
        }
    }

    /// POSTs `body` to `url` with `headers`. Never fails: every outcome is a [`Sent`].
    ///
    /// Cancel safety: dropping the future abandons the request and its connection.
    pub async fn post(&self, url: &str, headers: HeaderMap, body: Bytes) -> Sent {
        self.post_within(url, headers, body, None).await
    }

    /// [`HttpClient::post`] with the endpoint's own request timeout when it has one, instead
    /// of the client's.
    ///
    /// Cancel safety: as `post`.
    pub async fn post_within(
        &self,
        url: &str,
        headers: HeaderMap,
        body: Bytes,
        timeout: Option<Duration>,
    ) -> Sent {
        let started = Instant::now();
        let timeout = timeout.unwrap_or(self.request_timeout);
        let attempt = self.attempt(url, headers, body);
        let (result, response) = match tokio::time::timeout(timeout, attempt).await {
            Ok(finished) => finished,
            Err(_elapsed) => transport(format!("timed out after {}", format_duration(timeout))),
        };
        Sent {
            result,
            response,
            duration: started.elapsed(),
        }
    }

    async fn attempt(&self, url: &str, headers: HeaderMap, body: Bytes) -> (AttemptResult, String) {
        let policy = self.guard.as_ref().map(current);
        let url = match destination(url, policy.as_deref()) {
            Ok(url) => url,
            Err(reason) => return refused(reason),
        };
        let sending = self.client.post(url).headers(headers).body(body).send();
        let response = match sending.await {
            Ok(response) => response,
            Err(error) => return describe_failure(&error),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));
        let body = read_capped(response).await;
        (
            AttemptResult::Response {
                status,
                retry_after,
            },
            truncate_response(&body),
        )
    }
}

/// Parses the destination and, when `guard` is set and the host is an IP literal (which
/// bypasses the resolver), checks it. The error is the reason to record.
fn destination(url: &str, guard: Option<&AllowPrivate>) -> Result<Url, String> {
    let parsed =
        Url::parse(url).map_err(|error| format!("destination URL `{url}` is invalid: {error}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("destination URL `{url}` is not http or https"));
    }
    let literal = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(format!("destination URL `{url}` has no host")),
    };
    if let (Some(policy), Some(ip)) = (guard, literal) {
        check(ip, policy).map_err(|refusal| refusal.to_string())?;
    }
    Ok(parsed)
}

/// Reads at most [`DRAIN_CAP`] bytes of the body and keeps the first [`RESPONSE_BODY_CAP`].
/// A body known to be larger than the drain cap is not drained at all: its connection cannot
/// be reused anyway. A body that breaks off keeps what arrived: the endpoint did answer.
async fn read_capped(mut response: reqwest::Response) -> Vec<u8> {
    let limit = match response.content_length() {
        Some(length) if length > DRAIN_CAP as u64 => RESPONSE_BODY_CAP,
        _ => DRAIN_CAP,
    };
    let mut kept = Vec::new();
    let mut read = 0;
    while read < limit {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                read += chunk.len();
                let room = RESPONSE_BODY_CAP.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            Ok(None) | Err(_) => break,
        }
    }
    kept
}

/// `Retry-After` as delay-seconds or an HTTP date; a date in the past is zero.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Names the failure of a request that got no response, from the most telling error in its
/// chain: our own refusal or DNS failure, a TLS error, or the kind of I/O error.
fn describe_failure(error: &reqwest::Error) -> (AttemptResult, String) {
    let mut innermost: &dyn StdError = error;
    let mut cause: Option<&dyn StdError> = Some(error);
    while let Some(current) = cause {
        if let Some(refusal) = current.downcast_ref::<Refusal>() {
            return refused(refusal.to_string());
        }
        if let Some(dns) = current.downcast_ref::<DnsFailure>() {
            return transport(dns.to_string());
        }
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return transport(format!("TLS handshake failed: {tls}"));
        }
        let io = current.downcast_ref::<io::Error>();
        if let Some(reason) = io.and_then(|io| io_reason(io.kind())) {
            return transport(reason.to_owned());
        }
        innermost = current;
        // An io::Error's `source()` skips the error it wraps (TLS errors arrive wrapped twice),
        // so step into it instead.
        cause = match io.and_then(io::Error::get_ref) {
            Some(wrapped) => Some(wrapped),
            None => current.source(),
        };
    }
    let stage = if error.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    transport(format!("{stage}: {innermost}"))
}

fn io_reason(kind: io::ErrorKind) -> Option<&'static str> {
    use io::ErrorKind::*;
    Some(match kind {
        ConnectionRefused => "connection refused",
        ConnectionReset => "connection reset by the endpoint",
        ConnectionAborted => "connection aborted",
        UnexpectedEof => "the endpoint closed the connection without answering",
        BrokenPipe => "the endpoint closed the connection while the request was being sent",
        HostUnreachable => "host unreachable",
        NetworkUnreachable => "network unreachable",
        AddrNotAvailable => "address not available",
        TimedOut => "connection timed out",
        _ => return None,
    })
}

fn transport(reason: String) -> (AttemptResult, String) {
    (
        AttemptResult::Transport {
            reason: reason.clone(),
        },
        reason,
    )
}

fn refused(reason: String) -> (AttemptResult, String) {
    (
        AttemptResult::Refused {
            reason: reason.clone(),
        },
        reason,
    )
}

fn proxy(url: &Url) -> Result<Proxy, HttpClientError> {
    let bad = |reason: String| HttpClientError::BadProxy {
        url: url.to_string(),
        reason,
    };
    if !matches!(url.scheme(), "http" | "https" | "socks5" | "socks5h") {
        return Err(bad(
            "the scheme must be http, https, socks5 or socks5h".to_owned()
        ));
    }
    if url.host().is_none() {
        return Err(bad("it has no host".to_owned()));
    }
    Proxy::all(url.clone()).map_err(|error| bad(error.to_string()))
}

fn read_ca_file(path: &PathBuf) -> Result<Vec<Certificate>, HttpClientError> {
    let pem = std::fs::read(path).map_err(|source| HttpClientError::UnreadableCaFile {
        path: path.clone(),
        source,
    })?;
    let invalid = |reason: String| HttpClientError::InvalidCaFile {
        path: path.clone(),
        reason,
    };
    let certificates =
        Certificate::from_pem_bundle(&pem).map_err(|error| invalid(error.to_string()))?;
    if certificates.is_empty() {
        return Err(invalid("it holds no PEM certificate".to_owned()));
    }
    Ok(certificates)
}

/// The resolver of the SSRF guard: resolves with the system resolver and keeps only the
/// addresses that the policy allows.
struct GuardedResolver {
    policy: SharedPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = current(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|source| DnsFailure {
                    host: host.clone(),
                    source,
                })?;
            let (allowed, refusal) = allowed_addresses(resolved, &policy);
            match (allowed.is_empty(), refusal) {
                (false, _) => Ok(Box::new(allowed.into_iter()) as Addrs),
                (true, Some(refusal)) => Err(refusal.for_host(host).into()),
                (true, None) => Err(DnsFailure {
                    host,
                    source: io::Error::new(io::ErrorKind::NotFound, "no address found"),
                }
                .into()),
            }
        })
    }
}

/// Splits resolved addresses into those the policy allows and the first refusal.
fn allowed_addresses(
    resolved: impl IntoIterator<Item = SocketAddr>,
    policy: &AllowPrivate,
) -> (Vec<SocketAddr>, Option<Refusal>) {
    let mut allowed = Vec::new();
    let mut first_refusal = None;
    for address in resolved {
        match check(address.ip(), policy) {
            Ok(()) => allowed.push(address),
            Err(refusal) => {
                first_refusal.get_or_insert(refusal);
            }
        }
    }
    (allowed, first_refusal)
}

/// A failed host name lookup, carried through reqwest's error chain to the attempt record.
#[derive(Debug, thiserror::Error)]
#[error("DNS lookup of {host} failed: {source}")]
struct DnsFailure {
    host: String,
    source: io::Error,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        let cases = [
            ("7", Some(Duration::from_secs(7))),
            (" 120 ", Some(Duration::from_secs(120))),
            ("0", Some(Duration::ZERO)),
            (
                "Wed, 21 Oct 2015 07:28:30 GMT",
                Some(Duration::from_secs(30)),
            ),
            ("Wed, 21 Oct 2015 07:00:00 GMT", Some(Duration::ZERO)),
            ("-5", None),
            ("1.5", None),
            ("soon", None),
            ("", None),
        ];
        for (value, expected) in cases {
            assert_eq!(parse_retry_after(value, now), expected, "{value:?}");
        }
    }

    #[test]
    fn ip_literals_are_checked_before_sending() {
        let none = AllowPrivate::None;
        let refused = destination("http://127.0.0.1:9/hook", Some(&none)).unwrap_err();
        assert!(
            refused.starts_with("destination address 127.0.0.1 is loopback"),
            "{refused}"
        );
        for url in [
            "http://[::1]/",
            "http://[::ffff:7f00:1]/",
            "http://0x7f.1/",
            "http://10.1/",
        ] {
            assert!(destination(url, Some(&none)).is_err(), "{url}");
        }
        assert!(destination("http://127.0.0.1:9/hook", Some(&AllowPrivate::All)).is_ok());
        assert!(
            destination("http://127.0.0.1:9/hook", None).is_ok(),
            "a proxy filters egress"
        );
        assert!(destination("https://example.com/hook", Some(&none)).is_ok());
        assert!(
            destination("ftp://example.com/", Some(&none))
                .unwrap_err()
                .contains("not http")
        );
        assert!(
            destination("not a url", None)
                .unwrap_err()
                .contains("invalid")
        );
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let resolved: Vec<SocketAddr> =
            vec!["[::1]:0".parse().unwrap(), "127.0.0.1:0".parse().unwrap()];
        let policy: AllowPrivate = "127.0.0.0/8".parse().unwrap();
        let (allowed, refusal) = allowed_addresses(resolved.clone(), &policy);
        assert_eq!(allowed, vec![resolved[1]]);
        assert_eq!(refusal.unwrap().address, resolved[0].ip());
        let (allowed, refusal) = allowed_addresses(resolved, &AllowPrivate::None);
        assert!(allowed.is_empty());
        assert!(refusal.is_some());
    }
}
