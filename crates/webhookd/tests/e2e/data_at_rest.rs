//! Data at rest seen from the operator's side: a node started with an encryption key over a
//! store that still holds plain secrets or credentials says so, with the command that seals
//! them, and a delivery still carries a sealed credential header as it was set.

use serde_json::json;

use crate::harness::{Backend, HOOK, Receiver, ServerProcess, TestDatabase, eventually, free_port};

const KEY: &str = "q6Hx7nVYJ1c0mJpM4Jg5bJ8Gz0s3kQ2fWc9tY1r8aXE=";

#[tokio::test(flavor = "multi_thread")]
async fn a_key_over_plain_secrets_is_reported_at_start() {
    let receiver = Receiver::start().await;
    let database = TestDatabase::create(Backend::Sqlite).await;
    let port = free_port();
    let server = ServerProcess::start(&database, port, &[]).await;
    let app = server.create_app().await;
    server
        .create_endpoint(
            &app,
            json!({"url": receiver.url(HOOK), "headers": {"Authorization": "Bearer credential-1"}}),
        )
        .await;
    server.terminate().await;

    let server = ServerProcess::start(&database, port, &[("WEBHOOKD_ENCRYPTION_KEY", KEY)]).await;
    eventually("the start-up warning about plain secrets", || {
        let log = server.log();
        std::future::ready(if log.contains("webhookd secrets reencrypt") {
            Ok(())
        } else {
            Err(log)
        })
    })
    .await;
    // The header reaches the receiver as it was set.
    server
        .send(&app, json!({"eventType": "a", "payload": {"n": 1}}))
        .await;
    let received = receiver
        .wait_for("the delivery", |requests| !requests.is_empty())
        .await;
    assert_eq!(received[0].header("authorization"), "Bearer credential-1");
    server.terminate().await;
}
