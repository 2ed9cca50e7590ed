//! No secret reaches the log: a full run at debug level — configured and created API tokens,
//! an endpoint secret given on create, a rotated secret, deliveries signed with them — and
//! then the whole log is searched for each of them.

use std::net::TcpListener as StdListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_reach_the_log() {
    let binary = env!("CARGO_BIN_EXE_webhookd");
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("webhookd.db").display());
    let configured_token = "cfg_token_7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4";

    // A token made with the CLI before the server starts.
    let created = Command::new(binary)
        .args(["token", "create", "--name", "ci"])
        .env("WEBHOOKD_DATABASE_URL", &database)
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created_token = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    assert!(created_token.starts_with("whk_"));

    // The receiver.
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_url = format!("http://{}/hook", receiver.local_addr().unwrap());
    let app = Router::new().route(
        "/hook",
        post(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            async { "ok" }
        }),
    );
    tokio::spawn(async move { axum::serve(receiver, app).await });

    let port = free_port();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Command::new(binary)
        .arg("serve")
        .env("WEBHOOKD_DATABASE_URL", &database)
        .env("WEBHOOKD_LISTEN", format!("127.0.0.1:{port}"))
        .env("WEBHOOKD_API_TOKENS", configured_token)
        .env("WEBHOOKD_ALLOW_PRIVATE", "127.0.0.0/8")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, token: &str, body: Option<String>| {
        let mut request = client
            .request(method, format!("{base}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json");
        if let Some(body) = body {
            request = request.body(body);
        }
        request.send()
    };
    wait_until("the server to start", async || {
        call(reqwest::Method::GET, "/api/v1/health", "", None)
            .await
            .is_ok()
    })
    .await;

    let endpoint_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let answer = call(
        reqwest::Method::POST,
        "/api/v1/app",
        configured_token,
        Some(r#"{"name":"a","uid":"a"}"#.into()),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 201);
    let body = format!(r#"{{"url":"{receiver_url}","secret":"{endpoint_secret}","uid":"e"}}"#);
    let answer = call(
        reqwest::Method::POST,
        "/api/v1/app/a/endpoint",
        &created_token,
        Some(body),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 201);
    let message = r#"{"eventType":"t","payload":{"x":1}}"#;
    let answer = call(
        reqwest::Method::POST,
        "/api/v1/app/a/msg",
        configured_token,
        Some(message.into()),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 202);
    wait_until("the first delivery", async || {
        received.load(Ordering::SeqCst) >= 1
    })
    .await;

    let rotated = call(
        reqwest::Method::POST,
        "/api/v1/app/a/endpoint/e/secret/rotate",
        &created_token,
        Some("{}".into()),
    )
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let rotated: serde_json::Value = serde_json::from_str(&rotated).unwrap();
    let rotated_secret = rotated["key"].as_str().unwrap().to_owned();
    let answer = call(
        reqwest::Method::POST,
        "/api/v1/app/a/msg",
        configured_token,
        Some(message.into()),
    )
    .await
    .unwrap();
    assert_eq!(answer.status(), 202);
    wait_until("the second delivery", async || {
        received.load(Ordering::SeqCst) >= 2
    })
    .await;
    let refused = call(
        reqwest::Method::GET,
        "/api/v1/app",
        "not-a-token-0e1d",
        None,
    )
    .await
    .unwrap();
    assert_eq!(refused.status(), 401);

    Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    let status = server.wait().unwrap();
    assert!(
        status.success(),
        "the server did not stop cleanly: {status}"
    );

    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(log.contains("dispatched"), "the log holds the run:\n{log}");
    for secret in [
        configured_token,
        created_token.as_str(),
        endpoint_secret,
        &endpoint_secret["whsec_".len()..],
        rotated_secret.as_str(),
        &rotated_secret["whsec_".len()..],
    ] {
        assert!(
            !log.contains(secret),
            "the log contains a secret ({}…)",
            &secret[..8]
        );
    }
}
