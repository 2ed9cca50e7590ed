//! The binary's contract with its operator: a bad setting exits 2 with one
//! line naming it; a public listener without a token is refused; `token create` makes a token
//! that the API accepts (and a wrong one is refused); `version`; SIGTERM exits 0.

use std::collections::BTreeMap;

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{
    Backend, HOOK, Receiver, ServerProcess, TestDatabase, TestServer, free_port, run_cli, settings,
};

/// Environment settings with a SQLite database in `dir`.
fn env_in(dir: &tempfile::TempDir) -> BTreeMap<String, String> {
    let database = format!("sqlite://{}", dir.path().join("webhookd.db").display());
    settings(&database, &[])
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_setting_exits_2_with_one_line_naming_it() {
    let dir = tempfile::tempdir().expect("a data directory");
    let output = run_cli(&["serve", "--request-timeout", "5 parsecs"], &env_in(&dir)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| !line.trim().is_empty())
        .collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    assert!(
        lines[0].contains("request_timeout"),
        "the line names the setting: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_public_listener_without_a_token_is_refused() {
    let dir = tempfile::tempdir().expect("a data directory");
    let output = run_cli(&["serve", "--listen", "0.0.0.0:0"], &env_in(&dir)).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "refuses to start: {stderr}");
    assert!(
        stderr.to_lowercase().contains("token"),
        "the refusal mentions the token: {stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_created_token_authenticates_and_a_wrong_one_does_not() {
    let dir = tempfile::tempdir().expect("a data directory");
    let env = env_in(&dir);
    let output = run_cli(&["token", "create", "--name", "ci"], &env).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "token create: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "the token alone on stdout: {stdout}");
    let token = lines[0].trim();
    assert!(!token.is_empty());

    let server =
        TestServer::start(&[("WEBHOOKD_DATABASE_URL", &env["WEBHOOKD_DATABASE_URL"])]).await;
    let (status, body) = server.with_token(Some(token)).get("/api/v1/app").await;
    assert_eq!(status, StatusCode::OK, "with the created token: {body}");
    for (what, token) in [
        ("a wrong token", Some("whk_not-the-token")),
        ("no token", None),
    ] {
        let (status, body) = server.with_token(token).get("/api/v1/app").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "with {what}: {body}");
        assert!(
            body["code"].is_string(),
            "with {what}, the error shape: {body}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn version_prints_the_version() {
    let output = run_cli(&["version"], &BTreeMap::new()).await;
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("webhookd {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_stops_a_serving_node_with_exit_code_0() {
    let receiver = Receiver::start().await;
    let database = TestDatabase::create(Backend::Sqlite).await;
    let server = ServerProcess::start(&database, free_port(), &[]).await;
    // A node that has delivered, so that the engine's shutdown has something to wind down.
    let app = server.create_app().await;
    server
        .create_endpoint(&app, json!({"url": receiver.url(HOOK)}))
        .await;
    server.send_event(&app, json!({"n": 1})).await;
    receiver.wait_for_count(HOOK, 1).await;

    let status = server.terminate().await;
    assert_eq!(
        status.code(),
        Some(0),
        "exit status after SIGTERM: {status}"
    );
}
