//! The API listener serves TLS when given a certificate and key, and holds up when clients
//! never handshake and descriptors run out.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use webhookd::config::{ConfigArgs, load_from};

#[tokio::test(flavor = "multi_thread")]
async fn the_api_answers_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();

    let settings: HashMap<&str, String> = HashMap::from([
        (
            "WEBHOOKD_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("webhookd.db").display()),
        ),
        ("WEBHOOKD_TLS_CERT", cert_path.display().to_string()),
        ("WEBHOOKD_TLS_KEY", key_path.display().to_string()),
    ]);
    let config = load_from(&ConfigArgs::default(), &|name| settings.get(name).cloned()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(webhookd::run::run(config, listener, async move {
        let _ = stopped.await;
    }));

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(certified.cert.der().to_vec()))
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(address).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /api/v1/health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 204"),
        "unexpected answer: {answer}"
    );

    // A plain-text request on the TLS port gets no HTTP answer.
    let mut plain = TcpStream::connect(address).await.unwrap();
    plain
        .write_all(b"GET /api/v1/health HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let _ = plain.read_to_end(&mut bytes).await;
    assert!(!String::from_utf8_lossy(&bytes).starts_with("HTTP/1.1 204"));

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

/// A TLS client that trusts `certificate`.
fn connector(certificate: &[u8]) -> tokio_rustls::TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(certificate.to_vec()))
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_rustls::TlsConnector::from(Arc::new(client))
}

/// `GET /api/v1/health` over TLS; the status line, or what went wrong.
async fn health(connector: &tokio_rustls::TlsConnector, address: &str) -> Result<String, String> {
    let attempt = async {
        let tcp = TcpStream::connect(address).await?;
        let mut tls = connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await?;
        tls.write_all(
            b"GET /api/v1/health HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
        )
        .await?;
        let mut answer = String::new();
        tls.read_to_string(&mut answer).await?;
        std::io::Result::Ok(answer.lines().next().unwrap_or_default().to_owned())
    };
    match tokio::time::timeout(Duration::from_secs(5), attempt).await {
        Ok(Ok(status)) => Ok(status),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

/// CPU time the process has used, user and system, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The command name in parentheses may hold spaces; the fields after it are numbers.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Polls `check` every 50 ms until it holds; fails after `limit`.
async fn within(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A TLS listener out of descriptors: clients that never handshake are dropped after the
/// handshake timeout, and while every descriptor is taken, failing accepts are retried
/// after a pause and logged sparingly (no busy loop filling the log), and the node serves
/// again once descriptors free up.
#[tokio::test(flavor = "multi_thread")]
async fn the_tls_listener_times_out_handshakes_and_backs_off_when_out_of_descriptors() {
    let dir = tempfile::tempdir().unwrap();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let log_path = dir.path().join("webhookd.log");
    let log = std::fs::File::create(&log_path).unwrap();
    // So few open files that the descriptors run out before the connection cap is reached.
    let mut command = tokio::process::Command::new("sh");
    command
        .args(["-c", "ulimit -n 36 && exec \"$0\" serve"])
        .arg(env!("CARGO_BIN_EXE_webhookd"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("WEBHOOKD_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .env(
            "WEBHOOKD_DATABASE_URL",
            format!("sqlite://{}", dir.path().join("webhookd.db").display()),
        )
        .env("WEBHOOKD_LISTEN", &address)
        .env("WEBHOOKD_TLS_CERT", &cert_path)
        .env("WEBHOOKD_TLS_KEY", &key_path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let connector = connector(certified.cert.der());
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match health(&connector, &address).await {
            Ok(status) if status.starts_with("HTTP/1.1 204") => break,
            other => assert!(
                Instant::now() < deadline,
                "the node did not start: {other:?}\n{}",
                read_log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A client that connects and never starts the handshake is dropped after 10 s.
    let mut silent = TcpStream::connect(&address).await.unwrap();
    let started = Instant::now();
    let mut byte = [0_u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(40), silent.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0) | Err(_))),
        "a client that never handshakes is still connected: {closed:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // Take every descriptor the node has left, and more.
    let mut held = Vec::new();
    for _ in 0..40 {
        held.extend(TcpStream::connect(&address).await.ok());
    }
    within(Duration::from_secs(30), "a failed accept", || {
        read_log().contains("accepting a connection failed")
    })
    .await;
    let (ticks_before, log_before) = (cpu_ticks(pid), read_log().len());
    // A window to measure the node in while it cannot accept.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (ticks, grown) = (cpu_ticks(pid) - ticks_before, read_log().len() - log_before);
    assert!(ticks < 100, "the node spun: {ticks} ticks of CPU in 3 s");
    assert!(
        grown < 4096,
        "the node logged {grown} bytes in 3 s:\n{}",
        read_log()
    );

    drop(held);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match health(&connector, &address).await {
            Ok(status) if status.starts_with("HTTP/1.1 204") => break,
            other => assert!(
                Instant::now() < deadline,
                "the node did not recover: {other:?}\n{}",
                read_log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().await.unwrap();
}
