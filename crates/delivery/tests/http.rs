//! The outbound client against a real receiver on loopback. Every test contacts only
//! 127.0.0.0/8 or ::1: the SSRF guard's refusals are asserted on loopback destinations, and
//! the proxy test's destination is a loopback address too, should the proxy be bypassed.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::http::header::{LOCATION, RETRY_AFTER, USER_AGENT};
use axum::middleware::{self, Next};
use axum::routing::post;
use bytes::Bytes;
use futures_util::{StreamExt, stream};
use reqwest::header::{HeaderMap, HeaderValue};
use webhookd_core::outcome::AttemptResult;
use webhookd_core::ssrf::AllowPrivate;
use webhookd_delivery::http::{HttpClient, HttpClientError, HttpConfig, Sent};

/// A receiver on 127.0.0.1 that records the request target of everything it gets.
struct Receiver {
    address: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorder = {
            let seen = Arc::clone(&seen);
            move |request: Request, next: Next| {
                seen.lock().unwrap().push(request.uri().to_string());
                next.run(request)
            }
        };
        let router = Router::new()
            .route(
                "/created",
                post(|| async { (StatusCode::CREATED, "created") }),
            )
            .route("/echo", post(echo))
            .route("/big", post(|| async { "é".repeat(100_000) }))
            .route(
                "/endless",
                post(|| async { Body::from_stream(endless_body()) }),
            )
            .route("/slow", post(slow))
            .route(
                "/slow-body",
                post(|| async { Body::from_stream(slow_body()) }),
            )
            .route(
                "/redirect",
                post(|| async { (StatusCode::FOUND, [(LOCATION, "/created")]) }),
            )
            .route(
                "/throttled",
                post(|| async {
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        [(RETRY_AFTER, "7")],
                        "slow down",
                    )
                }),
            )
            .layer(middleware::from_fn(recorder));
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Self { address, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn localhost_url(&self, path: &str) -> String {
        format!("http://localhost:{}{path}", self.address.port())
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn echo(headers: axum::http::HeaderMap, body: Bytes) -> String {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
    };
    format!(
        "{} {} {}",
        header(USER_AGENT.as_str()),
        header("webhook-id"),
        String::from_utf8_lossy(&body)
    )
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(10)).await;
    "late"
}

/// A stall that outlives every test's timeout, so that only the client's cap can end a read.
async fn stall() -> Result<Bytes, Infallible> {
    tokio::time::sleep(Duration::from_secs(30)).await;
    Ok(Bytes::from_static(b"too late"))
}

/// 128 KiB, twice the drain cap, and then nothing for longer than any test runs.
fn endless_body() -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    let chunks = (0..32).map(|_| Ok(Bytes::from(vec![b'x'; 4096])));
    stream::iter(chunks).chain(stream::once(stall()))
}

fn slow_body() -> impl futures_util::Stream<Item = Result<Bytes, Infallible>> {
    stream::once(async { Ok(Bytes::from_static(b"partial")) }).chain(stream::once(stall()))
}

fn config(allow_private: AllowPrivate) -> HttpConfig {
    HttpConfig {
        request_timeout: Duration::from_secs(5),
        allow_private,
        user_agent: "webhookd-test/1".to_owned(),
        ..HttpConfig::default()
    }
}

fn client(allow_private: AllowPrivate) -> HttpClient {
    HttpClient::new(config(allow_private)).unwrap()
}

async fn send(client: &HttpClient, url: &str) -> Sent {
    client
        .post(
            url,
            HeaderMap::new(),
            Bytes::from_static(b"{\"hello\":\"world\"}"),
        )
        .await
}

fn response(status: u16) -> AttemptResult {
    AttemptResult::Response {
        status,
        retry_after: None,
    }
}

#[tokio::test]
async fn status_headers_and_body_go_through() {
    let receiver = Receiver::start().await;
    let client = client(AllowPrivate::All);

    let sent = send(&client, &receiver.url("/created")).await;
    assert_eq!(sent.result, response(201));
    assert_eq!(sent.response, "created");
    assert!(sent.duration < Duration::from_secs(5));

    let mut headers = HeaderMap::new();
    headers.insert("webhook-id", HeaderValue::from_static("msg_1"));
    let sent = client
        .post(&receiver.url("/echo"), headers, Bytes::from_static(b"{}"))
        .await;
    assert_eq!(sent.result, response(200));
    assert_eq!(sent.response, "webhookd-test/1 msg_1 {}");
}

#[tokio::test]
async fn long_bodies_are_cut_to_1024_bytes() {
    let receiver = Receiver::start().await;
    let sent = send(&client(AllowPrivate::All), &receiver.url("/big")).await;
    assert_eq!(sent.result, response(200));
    assert_eq!(sent.response, "é".repeat(512));
}

#[tokio::test]
async fn reading_stops_at_the_drain_cap() {
    // The body stalls after 128 KiB: a client that read past the cap would time out.
    let receiver = Receiver::start().await;
    let sent = send(&client(AllowPrivate::All), &receiver.url("/endless")).await;
    assert_eq!(sent.result, response(200));
    assert_eq!(sent.response, "x".repeat(1024));
}

#[tokio::test]
async fn slow_answers_and_slow_bodies_time_out() {
    let receiver = Receiver::start().await;
    let client = HttpClient::new(HttpConfig {
        request_timeout: Duration::from_millis(300),
        ..config(AllowPrivate::All)
    })
    .unwrap();
    for path in ["/slow", "/slow-body"] {
        let sent = send(&client, &receiver.url(path)).await;
        let reason = "timed out after 300ms".to_owned();
        assert_eq!(
            sent.result,
            AttemptResult::Transport {
                reason: reason.clone()
            },
            "{path}"
        );
        assert_eq!(sent.response, reason);
        assert!(
            sent.duration >= Duration::from_millis(300),
            "{path}: {:?}",
            sent.duration
        );
        assert!(
            sent.duration < Duration::from_secs(3),
            "{path}: {:?}",
            sent.duration
        );
    }
}

#[tokio::test]
async fn redirects_are_answers_not_followed() {
    let receiver = Receiver::start().await;
    let sent = send(&client(AllowPrivate::All), &receiver.url("/redirect")).await;
    assert_eq!(sent.result, response(302));
    assert_eq!(receiver.seen(), ["/redirect"]);
}

#[tokio::test]
async fn retry_after_is_read() {
    let receiver = Receiver::start().await;
    let sent = send(&client(AllowPrivate::All), &receiver.url("/throttled")).await;
    let retry_after = Some(Duration::from_secs(7));
    assert_eq!(
        sent.result,
        AttemptResult::Response {
            status: 429,
            retry_after
        }
    );
    assert_eq!(sent.response, "slow down");
}

#[tokio::test]
async fn private_destinations_are_refused_before_any_connection() {
    let receiver = Receiver::start().await;
    let client = client(AllowPrivate::None);
    let literal = send(&client, &receiver.url("/created")).await;
    let AttemptResult::Refused { reason } = &literal.result else {
        panic!("not refused: {literal:?}");
    };
    assert_eq!(
        reason,
        "destination address 127.0.0.1 is loopback; set WEBHOOKD_ALLOW_PRIVATE to a CIDR list \
         containing it (or `all`) to allow it"
    );
    assert_eq!(&literal.response, reason);

    let named = send(&client, &receiver.localhost_url("/created")).await;
    let AttemptResult::Refused { reason } = &named.result else {
        panic!("not refused: {named:?}");
    };
    assert!(
        reason.starts_with("destination localhost resolves to "),
        "{reason}"
    );
    assert!(
        reason.contains("which is loopback; set WEBHOOKD_ALLOW_PRIVATE"),
        "{reason}"
    );

    let ipv6 = send(
        &client,
        &format!("http://[::1]:{}/created", receiver.address.port()),
    )
    .await;
    assert!(
        matches!(ipv6.result, AttemptResult::Refused { .. }),
        "{ipv6:?}"
    );

    let elsewhere = self::client("10.0.0.0/8".parse().unwrap());
    let named = send(&elsewhere, &receiver.localhost_url("/created")).await;
    assert!(
        matches!(named.result, AttemptResult::Refused { .. }),
        "{named:?}"
    );

    assert_eq!(
        receiver.seen(),
        Vec::<String>::new(),
        "the receiver got a request"
    );
}

#[tokio::test]
async fn allowed_private_destinations_are_reached() {
    let receiver = Receiver::start().await;
    for policy in [AllowPrivate::All, "127.0.0.0/8".parse().unwrap()] {
        let client = client(policy.clone());
        for url in [receiver.url("/created"), receiver.localhost_url("/created")] {
            let sent = send(&client, &url).await;
            assert_eq!(
                sent.result,
                response(201),
                "{url} under {policy}: {}",
                sent.response
            );
        }
    }
    assert_eq!(receiver.seen().len(), 4);
}

#[tokio::test]
async fn a_closed_port_is_a_transport_failure() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let sent = send(&client(AllowPrivate::All), &format!("http://{address}/")).await;
    let reason = "connection refused".to_owned();
    assert_eq!(
        sent.result,
        AttemptResult::Transport {
            reason: reason.clone()
        }
    );
    assert_eq!(sent.response, reason);
}

#[tokio::test]
async fn with_a_proxy_everything_goes_through_it_unchecked() {
    // The receiver plays the proxy: a plain-HTTP proxy gets the absolute URL as the request
    // target. The destination is loopback too, should the proxy ever be bypassed.
    let proxy = Receiver::start().await;
    let client = HttpClient::new(HttpConfig {
        proxy: Some(proxy.url("").parse().unwrap()),
        ..config(AllowPrivate::None)
    })
    .unwrap();
    let sent = send(&client, "http://127.0.0.2:9/created").await;
    assert_eq!(sent.result, response(201), "{}", sent.response);
    assert_eq!(proxy.seen(), ["http://127.0.0.2:9/created"]);
}

#[test]
fn bad_configuration_is_explained() {
    let with = |proxy: Option<&str>, ca: Option<PathBuf>| {
        HttpClient::new(HttpConfig {
            proxy: proxy.map(|url| url.parse().unwrap()),
            extra_ca_certs: ca.into_iter().collect(),
            ..HttpConfig::default()
        })
        .unwrap_err()
    };

    let error = with(Some("ftp://proxy.example:21"), None);
    assert!(
        matches!(error, HttpClientError::BadProxy { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("http, https, socks5"), "{error}");

    let missing = std::env::temp_dir().join("webhookd-test-no-such-ca.pem");
    let error = with(None, Some(missing));
    assert!(
        matches!(error, HttpClientError::UnreadableCaFile { .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains("webhookd-test-no-such-ca.pem"),
        "{error}"
    );

    let garbage =
        std::env::temp_dir().join(format!("webhookd-test-{}-garbage.pem", std::process::id()));
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let error = with(None, Some(garbage.clone()));
    std::fs::remove_file(&garbage).unwrap();
    assert!(
        matches!(error, HttpClientError::InvalidCaFile { .. }),
        "{error:?}"
    );
}

/// An axum listener that serves TLS with a certificate made for this test run.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, peer)) = self.tcp.accept().await else {
                continue;
            };
            // A client that rejects our certificate fails the handshake: wait for the next.
            if let Ok(tls) = self.acceptor.accept(stream).await {
                return (tls, peer);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// Starts an HTTPS receiver on 127.0.0.1 with a fresh self-signed certificate for
/// `localhost` and `127.0.0.1`; returns its address and the certificate's PEM.
async fn start_tls_receiver() -> (SocketAddr, String) {
    use tokio_rustls::rustls::ServerConfig;
    use tokio_rustls::rustls::crypto::ring::default_provider;
    use tokio_rustls::rustls::pki_types::PrivatePkcs8KeyDer;

    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let certified = rcgen::generate_simple_self_signed(names).unwrap();
    let key = PrivatePkcs8KeyDer::from(certified.signing_key.serialize_der());
    let config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key.into())
        .unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = tcp.local_addr().unwrap();
    let listener = TlsListener {
        tcp,
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
    };
    let router = Router::new().route("/created", post(|| async { (StatusCode::CREATED, "tls") }));
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (address, certified.cert.pem())
}

#[tokio::test]
async fn extra_ca_certificates_are_trusted_and_others_are_not() {
    let (address, certificate) = start_tls_receiver().await;
    let ca_file = std::env::temp_dir().join(format!("webhookd-test-{}-ca.pem", std::process::id()));
    std::fs::write(&ca_file, certificate).unwrap();
    let trusting = HttpClient::new(HttpConfig {
        extra_ca_certs: vec![ca_file.clone()],
        ..config(AllowPrivate::All)
    });
    std::fs::remove_file(&ca_file).unwrap();
    let trusting = trusting.unwrap();

    let port = address.port();
    for url in [
        format!("https://localhost:{port}/created"),
        format!("https://{address}/created"),
    ] {
        let sent = send(&trusting, &url).await;
        assert_eq!(sent.result, response(201), "{url}: {}", sent.response);
        assert_eq!(sent.response, "tls");
    }

    let sent = send(
        &client(AllowPrivate::All),
        &format!("https://localhost:{port}/created"),
    )
    .await;
    let AttemptResult::Transport { reason } = &sent.result else {
        panic!("not a transport failure: {sent:?}");
    };
    assert!(
        reason.starts_with("TLS handshake failed: invalid peer certificate"),
        "{reason}"
    );
}
