//! The life cycle of API tokens on running nodes: local mode needs an opt-in once a store has
//! had tokens; tokens are managed on a running SQLite node through its API (`token --url`);
//! a node in local mode on PostgreSQL starts requiring tokens created by another process within
//! seconds, and a revoked token stops working at once (and private destinations, allowed for
//! local mode, are refused from then on); weak tokens are refused off loopback.

use reqwest::StatusCode;
use serde_json::json;

use crate::harness::{
    Backend, HOOK, Receiver, ServerProcess, TestDatabase, eventually, free_port, run_cli, settings,
};

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn revoking_the_last_token_does_not_open_the_api_without_the_opt_in() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let env = settings(database.url(), &[]);
    let created = run_cli(&["token", "create", "--name", "ci"], &env).await;
    assert!(created.status.success(), "{}", stderr(&created));
    let revoked = run_cli(&["token", "revoke", "ci"], &env).await;
    assert!(revoked.status.success(), "{}", stderr(&revoked));

    let refused = run_cli(&["serve", "--listen", "127.0.0.1:0"], &env).await;
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let lines: Vec<String> = stderr(&refused)
        .lines()
        .filter(|line| line.starts_with("error"))
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {}", stderr(&refused));
    assert!(lines[0].contains("WEBHOOKD_LOCAL_MODE=on"), "{}", lines[0]);

    // With the opt-in, the node runs in local mode on loopback.
    let server =
        ServerProcess::start(&database, free_port(), &[("WEBHOOKD_LOCAL_MODE", "on")]).await;
    let (status, body) = server.get("/api/v1/app").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn weak_tokens_are_refused_off_loopback() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    for weak in [
        "x",
        "short-token-123",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    ] {
        let env = settings(database.url(), &[("WEBHOOKD_API_TOKENS", weak)]);
        let refused = run_cli(&["serve", "--listen", "0.0.0.0:0"], &env).await;
        assert_eq!(
            refused.status.code(),
            Some(2),
            "{weak}: {}",
            stderr(&refused)
        );
        assert!(
            stderr(&refused).contains("api_tokens"),
            "{}",
            stderr(&refused)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_are_managed_through_a_running_sqlite_node() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let port = free_port();
    let server = ServerProcess::start(&database, port, &[]).await;
    let env = settings(database.url(), &[]);
    let url = format!("http://127.0.0.1:{port}");

    // The data directory belongs to the server: the command says how to go through it.
    let locked = run_cli(&["token", "list"], &env).await;
    assert!(!locked.status.success());
    assert!(stderr(&locked).contains("--url"), "{}", stderr(&locked));

    // In local mode the first token needs none, and requests need one from then on.
    let created = run_cli(&["token", "create", "--name", "ops", "--url", &url], &env).await;
    assert!(created.status.success(), "{}", stderr(&created));
    let ops = stdout(&created).trim().to_owned();
    let (status, body) = server.get("/api/v1/app").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = server.with_token(Some(&ops)).get("/api/v1/app").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut with_ops = env.clone();
    with_ops.insert("WEBHOOKD_TOKEN".into(), ops.clone());
    let second = run_cli(
        &["token", "create", "--name", "deploy", "--url", &url],
        &with_ops,
    )
    .await;
    assert!(second.status.success(), "{}", stderr(&second));
    let deploy = stdout(&second).trim().to_owned();
    let listed = run_cli(&["token", "list", "--url", &url], &with_ops).await;
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(stdout(&listed).contains("\tops\t") && stdout(&listed).contains("\tdeploy\t"));
    assert!(!stdout(&listed).contains(&ops), "never the token itself");

    // A leaked token is revoked without downtime, and stops working at once.
    let revoked = run_cli(
        &["token", "revoke", "ops", "--url", &url, "--token", &deploy],
        &env,
    )
    .await;
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let (status, body) = server.with_token(Some(&ops)).get("/api/v1/app").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = server.with_token(Some(&deploy)).get("/api/v1/app").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_local_node_on_postgres_requires_a_token_created_by_another_process() {
    let Some(database) = TestDatabase::postgres().await else {
        return;
    };
    let server = ServerProcess::start(&database, free_port(), &[]).await;
    let (status, body) = server.get("/api/v1/app").await;
    assert_eq!(status, StatusCode::OK, "local mode at start: {body}");

    let env = settings(database.url(), &[]);
    let created = run_cli(&["token", "create", "--name", "ops"], &env).await;
    assert!(created.status.success(), "{}", stderr(&created));
    let token = stdout(&created).trim().to_owned();
    eventually("the node to require the new token", || {
        let api = server.with_token(None);
        async move {
            match api.get("/api/v1/app").await {
                (StatusCode::UNAUTHORIZED, _) => Ok(()),
                (status, body) => Err(format!("{status} {body}")),
            }
        }
    })
    .await;
    let (status, body) = server.with_token(Some(&token)).get("/api/v1/app").await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let revoked = run_cli(&["token", "revoke", "ops"], &env).await;
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    let (status, body) = server.with_token(Some(&token)).get("/api/v1/app").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked at once: {body}");
    server.terminate().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn leaving_local_mode_refuses_private_destinations() {
    let receiver = Receiver::start().await;
    let database = TestDatabase::create(Backend::Sqlite).await;
    let server = ServerProcess::start(&database, free_port(), &[]).await;
    let app = server.create_app().await;
    let endpoint = server
        .create_endpoint(&app, json!({"url": receiver.url(HOOK)}))
        .await;
    let first = server
        .send(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    server
        .wait_for_delivery_status(&app, &first, &endpoint.id, 0)
        .await;

    let (status, created) = server
        .post("/api/v1/auth/token", json!({"name": "ops"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let api = server.with_token(created["token"].as_str());
    eventually("private destinations to be refused", || {
        let log = server.log();
        std::future::ready(if log.contains("private destinations are refused") {
            Ok(())
        } else {
            Err(log)
        })
    })
    .await;
    let second = api
        .send(&app, json!({"eventType": "a", "payload": {}}))
        .await;
    let attempts = api.wait_for_attempts(&app, &second, 1).await;
    assert!(
        attempts[0]["response"]
            .as_str()
            .is_some_and(|reason| reason.contains("WEBHOOKD_ALLOW_PRIVATE")),
        "{}",
        attempts[0]
    );
    server.terminate().await;
}
