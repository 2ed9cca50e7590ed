//! The API listener serves TLS when given a certificate and key.

use std::collections::HashMap;
use std::sync::Arc;

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

/// One HTTP/1.1 request over TLS; the whole answer as text.
async fn over_tls(
    connector: &tokio_rustls::TlsConnector,
    address: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: &str,
) -> String {
    let tcp = TcpStream::connect(address).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn under_tls_portal_links_are_https_and_session_cookies_secure() {
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

    let created = over_tls(
        &connector,
        address,
        "POST",
        "/api/v1/app",
        r#"{"name":"Joe","uid":"joe"}"#,
    )
    .await;
    assert!(created.starts_with("HTTP/1.1 201"), "{created}");
    let access = over_tls(
        &connector,
        address,
        "POST",
        "/api/v1/auth/app-portal-access/joe",
        "{}",
    )
    .await;
    assert!(access.starts_with("HTTP/1.1 200"), "{access}");
    let body: serde_json::Value =
        serde_json::from_str(access.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let token = body["token"].as_str().unwrap();
    assert_eq!(body["url"], format!("https://{address}/portal#key={token}"));
    let login = format!(r#"{{"token":"{token}"}}"#);
    let session = over_tls(&connector, address, "POST", "/api/v1/auth/session", &login).await;
    assert!(session.starts_with("HTTP/1.1 200"), "{session}");
    let cookie = session
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {session}"));
    assert!(
        cookie.contains("webhookd_session=") && cookie.ends_with("; Secure"),
        "{cookie}"
    );

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
